"""`sharelift migrate --via migration-api` into the emulator's Migration API service.

The client's packages are read by the emulator's import worker, an independent reading of the
same documents: a package the client writes wrong fails there. What the round reports is then
checked against what Graph shows: names, sizes and quickXorHash of every file.
"""

from __future__ import annotations

import csv
import os
import random
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from migrate_helpers import expected_files, graph_client, megan, target_files, write_tree

import sharelift
from sharelift.emulator.samples import office_file
from sharelift.emulator.server import EmulatorServer
from sharelift.migration_api import archive, blob, crypto, jobs, package
from sharelift.state import ItemStatus, PackageStatus, VerifiedBy, open_state


def share(seed: int, count: int = 12) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {f"d{i % 3}/n{i:02}.txt": rng.randbytes(rng.randint(0, 5000)) for i in range(count)}
    files["top.bin"] = rng.randbytes(3 * 1024 * 1024 + 7)
    return files


@pytest.fixture
def graph(
    migration_emulator: EmulatorServer, app_token: Callable[..., str]
) -> Iterator[httpx.Client]:
    with graph_client(migration_emulator, app_token(migration_emulator)) as client:
        yield client


def migrate(
    server: EmulatorServer, src: Path, folder: str, state: Path, **options: Any
) -> sharelift.MigrationResult:
    upn, _ = megan(server)
    credential = options.pop("credential", None) or sharelift.Credential.from_certificate(
        emulator=server.data_dir
    )
    options.setdefault("migration_poll", 0.1)
    options.setdefault("package_files", 5)
    return sharelift.migrate(
        src,
        f"onedrive:{upn}/{folder}",
        credential=credential,
        via="migration-api",
        state=state,
        **options,
    )


def failures(state: Path) -> dict[str, tuple[str | None, str | None]]:
    with open_state(state) as store:
        (job,) = store.jobs()
        return {
            item.display_path: (item.error_code, item.error_message)
            for item in store.items(job.id, ItemStatus.FAILED)
        }


def packages(state: Path) -> list[Any]:
    with open_state(state) as store:
        (job,) = store.jobs()
        return store.migration_packages(job.id)


@pytest.mark.slow
def test_a_tree_arrives_verified_and_a_second_run_sends_nothing(
    migration_emulator: EmulatorServer,
    graph: httpx.Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = share(1)
    src = tmp_path / "src"
    write_tree(src, files)
    state = tmp_path / "state.db"
    urls: list[str] = []
    real = package.manifest

    def seen(target: Any, entries: Any) -> Iterator[str]:
        def each() -> Iterator[Any]:
            for entry in entries:
                urls.append(entry.url)
                yield entry

        return real(target, each())

    monkeypatch.setattr(package, "manifest", seen)

    result = migrate(migration_emulator, src, "Api", state)

    assert (result.status, result.uploaded, result.failed) == ("completed", len(files), 0)
    # The first round already names each file by its whole path in the library.
    assert sorted(urls) == sorted(f"Documents/Api/{rel}" for rel in files)
    _, drive = megan(migration_emulator)
    assert target_files(graph, drive, "Api") == expected_files(files)
    made = packages(state)
    assert {p.status for p in made} == {PackageStatus.CLOSED}
    assert sum(p.files for p in made) == len(files)
    assert not list((tmp_path / "keys").glob("*.key")), "a key outlived its job"
    assert result.reports is not None
    rows = list(csv.DictReader((result.reports / "MigrationJobs.csv").read_text().splitlines()))
    assert [r["Migration job"] != "" for r in rows] == [True] * len(made)
    with open_state(state) as store:
        assert store.check() == []
        (job,) = store.jobs()
        (first,) = store.rounds(job.id)
        # Every byte went into a package's blob: the round's bytes sent are the tree's.
        assert first.bytes_done == first.bytes_total == sum(map(len, files.values()))

    again = migrate(migration_emulator, src, "Api", state)
    assert (again.uploaded, again.unchanged) == (0, len(files))
    assert len(packages(state)) == len(made), "an unchanged tree made a package"


@pytest.mark.slow
def test_a_bad_item_fails_alone(
    migration_emulator: EmulatorServer,
    graph: httpx.Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = share(2, count=6)
    src = tmp_path / "src"
    write_tree(src, files)
    real = package.manifest

    def one_wrong_size(target: Any, entries: Any) -> Iterator[str]:
        def bent() -> Iterator[Any]:
            for entry in entries:
                yield (
                    replace(entry, size=entry.size + 1) if entry.url.endswith("n04.txt") else entry
                )

        return real(target, bent())

    monkeypatch.setattr(package, "manifest", one_wrong_size)

    result = migrate(migration_emulator, src, "Bad", tmp_path / "state.db")

    assert (result.uploaded, result.failed) == (len(files) - 1, 1)
    failed = failures(tmp_path / "state.db")
    assert list(failed) == ["d1/n04.txt"]
    assert failed["d1/n04.txt"][0] == "MIGRATION_JOB_ERROR"
    _, drive = megan(migration_emulator)
    there = target_files(graph, drive, "Bad")
    assert "d1/n04.txt" not in there
    assert len(there) == len(files) - 1


def test_a_forged_sas_fails_clearly(
    migration_emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = share(3, count=3)
    src = tmp_path / "src"
    write_tree(src, files)
    real = jobs.MigrationService.provision_containers

    async def forged(self: jobs.MigrationService) -> jobs.Containers:
        given = await real(self)
        head, _, sig = given.data_uri.partition("sig=")
        bent = ("A" if sig[0] != "A" else "B") + sig[1:]
        return jobs.Containers(f"{head}sig={bent}", given.manifest_uri, given.key)

    monkeypatch.setattr(jobs.MigrationService, "provision_containers", forged)
    result = migrate(migration_emulator, src, "Forged", tmp_path / "state.db")

    assert (result.uploaded, result.failed) == (0, len(files))
    for code, message in failures(tmp_path / "state.db").values():
        assert code == "MIGRATION_API_REFUSED"
        assert message is not None and "Azure Storage refused" in message
        assert "HTTP 403" in message
        assert "sig=" not in message
    assert {p.status for p in packages(tmp_path / "state.db")} == {PackageStatus.FAILED}


def own_storage(server: EmulatorServer) -> str:
    azurite = server.info["migration_api"]
    return (
        f"DefaultEndpointsProtocol=https;AccountName={azurite['account_name']};"
        f"AccountKey={azurite['account_key']};BlobEndpoint={azurite['blob_endpoint']};"
    )


@pytest.mark.slow
def test_own_containers_and_an_expired_sas(
    migration_emulator: EmulatorServer,
    graph: httpx.Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = share(4, count=4)
    src = tmp_path / "src"
    write_tree(src, files)
    storage = own_storage(migration_emulator)

    result = migrate(migration_emulator, src, "Own", tmp_path / "own.db", migration_storage=storage)
    assert (result.uploaded, result.failed) == (len(files), 0)
    _, drive = megan(migration_emulator)
    assert target_files(graph, drive, "Own") == expected_files(files)
    made = packages(tmp_path / "own.db")
    assert all(p.own_containers and p.status is PackageStatus.CLOSED for p in made)
    service = blob.BlobServiceClient.from_connection_string(
        storage, connection_verify=migration_emulator.info["ca_file"]
    )
    with service:
        left = {c.name for c in service.list_containers(name_starts_with="sharelift-")}
    assert not {n for n in left if any(p.package_id in n for p in made)}, "containers left"

    monkeypatch.setattr(blob, "OWN_SAS_LIFETIME", blob.timedelta(minutes=-1))
    expired = migrate(
        migration_emulator, src, "Expired", tmp_path / "expired.db", migration_storage=storage
    )
    assert (expired.uploaded, expired.failed) == (0, len(files))
    for code, message in failures(tmp_path / "expired.db").values():
        assert code == "MIGRATION_API_REFUSED"
        assert message is not None and "CreateMigrationJobEncrypted failed: HTTP 400" in message
        assert "sig=" not in message


def test_a_wrong_key_fails_the_package(
    migration_emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = share(5, count=3)
    src = tmp_path / "src"
    write_tree(src, files)
    real = jobs.MigrationService.create_job

    async def wrong_key(
        self: jobs.MigrationService, web_id: str, given: jobs.Containers, queue: str | None
    ) -> str:
        other = jobs.Containers(given.data_uri, given.manifest_uri, os.urandom(32))
        return await real(self, web_id, other, queue)

    monkeypatch.setattr(jobs.MigrationService, "create_job", wrong_key)
    result = migrate(migration_emulator, src, "WrongKey", tmp_path / "state.db")

    assert (result.uploaded, result.failed) == (0, len(files))
    for code, message in failures(tmp_path / "state.db").values():
        assert code == "MIGRATION_JOB_FATAL"
        assert message is not None and "cannot be decrypted" in message


def test_a_secret_credential_is_named_before_the_run(
    migration_emulator: EmulatorServer, tmp_path: Path
) -> None:
    files = share(6, count=2)
    src = tmp_path / "src"
    write_tree(src, files)
    heard: list[str] = []

    def listen(event: object) -> None:
        if isinstance(event, sharelift.MessageEvent):
            heard.append(event.text)

    result = migrate(
        migration_emulator,
        src,
        "Secret",
        tmp_path / "state.db",
        credential=sharelift.Credential.from_secret(emulator=migration_emulator.data_dir),
        progress=[listen],
    )
    assert any("certificate" in line for line in heard), heard
    assert result.failed == len(files)
    for code, message in failures(tmp_path / "state.db").values():
        assert code == "MIGRATION_API_REFUSED"
        assert message is not None and "--auth certificate" in message


@pytest.mark.slow
def test_the_job_queue_is_read_too(
    migration_emulator: EmulatorServer,
    graph: httpx.Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = share(7, count=4)
    src = tmp_path / "src"
    write_tree(src, files)
    seen: list[dict[str, str]] = []
    real = jobs.read_queue

    def watched(uri: str, keys: Any, ca_file: str | None) -> list[dict[str, str]]:
        events = real(uri, keys, ca_file)
        seen.extend(events)
        return events

    monkeypatch.setattr("sharelift.migration_api.mover.read_queue", watched)
    result = migrate(migration_emulator, src, "Queue", tmp_path / "state.db", migration_queue=True)

    assert (result.uploaded, result.failed) == (len(files), 0)
    made = packages(tmp_path / "state.db")
    assert all(p.queue_uri for p in made)
    # The encrypted envelopes were opened with each package's key.
    assert {e["Event"] for e in seen} >= {"JobQueued", "JobStart", "JobEnd"}
    assert {e["JobId"] for e in seen} <= {p.migration_job_id for p in made}
    # An event read from both the queue and the job's progress counts once.
    with open_state(tmp_path / "state.db") as store:
        kept = list(store.package_events(made[0].job_id))
    assert [p.warnings for p in made] == [1] * len(made)
    assert [k.message for k in kept] == ["UserGroupMap.xml has no users: authors are not set"]


def test_a_blob_stored_but_not_recorded_is_found_not_uploaded_again(
    migration_emulator: EmulatorServer,
) -> None:
    service = blob.BlobServiceClient.from_connection_string(
        own_storage(migration_emulator), connection_verify=migration_emulator.info["ca_file"]
    )
    key, data = crypto.new_key(), os.urandom(5000)

    def read(at: int, n: int) -> bytes:
        return data[at : at + n]

    with service, ThreadPoolExecutor(2) as pool:
        container = service.create_container(f"sharelift-test-{uuid.uuid4().hex[:12]}")
        assert blob.stored_already(container, "f.dat", read, len(data), key) is None
        put = blob.put_file(container, "f.dat", read, len(data), key, pool)
        found = blob.stored_already(container, "f.dat", read, len(data), key)
        assert found == put  # the same hash and MD5: the bytes are the ones stored
        versions = list(container.list_blobs(include=["snapshots"]))
        assert len(versions) == 3  # the blob, its snapshot, one more snapshot: no upload
        assert len({bytes(v.content_settings.content_md5) for v in versions}) == 1
        other = os.urandom(5000)
        changed = blob.stored_already(
            container, "f.dat", lambda at, n: other[at : at + n], len(other), key
        )
        assert changed is None
        assert blob.stored_already(container, "f.dat", read, len(data), crypto.new_key()) is None
        container.delete_container()


@pytest.mark.slow
def test_small_files_travel_in_archives(
    migration_emulator: EmulatorServer,
    graph: httpx.Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = share(3, count=40)
    files["big/edge.bin"] = os.urandom(archive.MEMBER_BYTES)  # too large once encrypted
    src = tmp_path / "src"
    write_tree(src, files)
    state = tmp_path / "state.db"
    stored: list[str] = []
    real = blob.put_file

    def counted(container: Any, name: str, *args: Any) -> blob.StoredBlob:
        stored.append(name)
        return real(container, name, *args)

    monkeypatch.setattr(blob, "put_file", counted)

    result = migrate(
        migration_emulator, src, "Zipped", state, archive_small_files=True, package_files=20
    )

    assert (result.status, result.uploaded, result.failed) == ("completed", len(files), 0)
    _, drive = megan(migration_emulator)
    assert target_files(graph, drive, "Zipped") == expected_files(files)
    made = packages(state)
    assert len(made) == 3
    content = [n for n in stored if not n.endswith(".xml")]
    # Each package of 20 small files is one archive; the two large files go as blobs.
    assert sorted(n for n in content if not n.endswith(".dat")) == ["archive-0.zip"] * 3
    assert len([n for n in content if n.endswith(".dat")]) == 2
    assert stored.count("ArchivedFiles.xml") == 3

    stored.clear()
    (src / "d0" / "n00.txt").write_bytes(b"changed since")
    again = migrate(migration_emulator, src, "Zipped", state, archive_small_files=True)
    assert (again.uploaded, again.unchanged, again.failed) == (1, len(files) - 1, 0), failures(
        state
    )
    assert [n for n in stored if not n.endswith(".xml")] == ["archive-0.zip"]
    files["d0/n00.txt"] = b"changed since"
    assert target_files(graph, drive, "Zipped") == expected_files(files)


@pytest.mark.slow
def test_office_files_a_library_rewrites_on_import_are_proved(
    migration_emulator: EmulatorServer, graph: httpx.Client, tmp_path: Path
) -> None:
    files = {
        "report.docx": office_file("docx", seed=4, media_bytes=50_000),
        "budget.xlsx": office_file("xlsx", seed=5),
        "notes.txt": b"plain text",
    }
    src = tmp_path / "src"
    write_tree(src, files)
    state = tmp_path / "state.db"
    result = sharelift.migrate(
        src,
        "https://contoso.sharepoint.com/sites/Team/Shared Documents/Imported",
        credential=sharelift.Credential.from_certificate(emulator=migration_emulator.data_dir),
        via="migration-api",
        state=state,
        migration_poll=0.1,
    )

    assert (result.status, result.uploaded, result.failed) == ("completed", len(files), 0)
    with open_state(state) as store:
        (job,) = store.jobs()
        verified = {i.display_path: i.verified_by for i in store.items(job.id, ItemStatus.DONE)}
    assert verified == {
        "report.docx": VerifiedBy.PARTS,  # the library wrote its metadata into them
        "budget.xlsx": VerifiedBy.PARTS,
        "notes.txt": VerifiedBy.HASH,
    }


@pytest.mark.slow
def test_a_changed_file_replaces_the_one_an_earlier_round_put_there(
    migration_emulator: EmulatorServer, graph: httpx.Client, tmp_path: Path
) -> None:
    """A package names a replaced file by its own id: the one Graph gave it (the first round
    went through Graph) or the one an earlier package gave it."""
    files = share(5, count=6)
    src = tmp_path / "src"
    write_tree(src, files)
    state = tmp_path / "state.db"
    upn, drive = megan(migration_emulator)
    first = sharelift.migrate(
        src,
        f"onedrive:{upn}/Switched",
        credential=sharelift.Credential.from_certificate(emulator=migration_emulator.data_dir),
        state=state,
    )
    assert (first.uploaded, first.failed) == (len(files), 0)
    for round_number, path in enumerate(("d0/n00.txt", "d1/n01.txt", "d0/n00.txt")):
        files[path] = f"changed in round {round_number}".encode()
        (src / path).write_bytes(files[path])
        again = migrate(migration_emulator, src, "Switched", state)
        assert (again.uploaded, again.unchanged, again.failed) == (1, len(files) - 1, 0), failures(
            state
        )
        assert target_files(graph, drive, "Switched") == expected_files(files)


def test_an_archive_built_again_is_found_stored_not_uploaded_again(
    migration_emulator: EmulatorServer,
) -> None:
    """What a package taken up after a kill relies on: the same files make the same archive,
    which `stored_already` then finds (re-encrypted with the stored IV, compared by MD5)."""
    service = blob.BlobServiceClient.from_connection_string(
        own_storage(migration_emulator), connection_verify=migration_emulator.info["ca_file"]
    )
    files = {f"{n:02}.dat": os.urandom(n * 997) for n in range(12)}

    def build() -> bytes:
        writer = archive.ArchiveWriter()
        for name in archive.group([(k, len(v)) for k, v in files.items()])[0]:
            writer.add(name, files[name])
        return writer.finish()

    first, key = build(), crypto.new_key()
    with service, ThreadPoolExecutor(2) as pool:
        container = service.create_container(f"sharelift-test-{uuid.uuid4().hex[:12]}")
        put = blob.put_bytes(container, "archive-0.zip", first, key, pool)
        again = build()
        found = blob.stored_already(
            container, "archive-0.zip", lambda at, n: again[at : at + n], len(again), key
        )
        assert found == put
        assert len(list(container.list_blobs(include=["snapshots"]))) == 3  # no upload
        files["05.dat"] = b"changed"
        other = build()
        assert (
            blob.stored_already(
                container, "archive-0.zip", lambda at, n: other[at : at + n], len(other), key
            )
            is None
        )
        container.delete_container()

"""Packages imported by the emulator's Migration API, checked through Graph, over HTTPS, with
Azurite behind them. The packages are written here from the manifest pages."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import QueueClient

from sharelift.emulator.server import EmulatorServer
from support.emulator_http import graph_http
from support.migration import (
    TEAM_SITE,
    Package,
    PackageFile,
    PackageFolder,
    Tamper,
    Target,
    children,
    decrypt,
    package_for,
    progress,
    quickxor_b64,
    sharepoint_token,
    site_call,
    submit,
    team_archive_library,
    upload,
    wait_for_end,
)

pytestmark = pytest.mark.slow
SITE = TEAM_SITE


@pytest.fixture
def client(
    migration_emulator: EmulatorServer, http_client: Callable[..., httpx.Client]
) -> httpx.Client:
    return http_client(migration_emulator)


@pytest.fixture(scope="module")
def token(migration_emulator: EmulatorServer) -> str:
    return sharepoint_token(migration_emulator)


@pytest.fixture
def graph(
    migration_emulator: EmulatorServer, app_token: Callable[..., str]
) -> Iterator[httpx.Client]:
    info = migration_emulator.info
    with graph_http(info, app_token(migration_emulator), http2=False, timeout=30) as g:
        yield g


@pytest.fixture
def target(graph: httpx.Client) -> Target:
    return team_archive_library(graph)


def test_an_encrypted_package_imports_with_times_authors_and_hashes(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    folder = PackageFolder(f"Reports-{uuid.uuid4().hex[:6]}", target.root_id)
    sub = PackageFolder("2024", folder.id)
    files = [
        PackageFile("a.txt", b"alpha" * 1000, folder.id),
        PackageFile("empty.bin", b"", sub.id),
        PackageFile("b.csv", bytes(range(256)) * 40, sub.id, author="2"),
    ]
    package = package_for(target, files, [folder, sub])
    job_id, key, meta = submit(client, migration_emulator, token, package)
    events = wait_for_end(client, migration_emulator, token, job_id, SITE)
    names = [e["Event"] for e in events]
    assert names[:2] == ["JobQueued", "JobStart"]
    assert "JobProgress" in names and names[-1] == "JobEnd"
    assert "JobError" not in names and "JobFatalError" not in names
    end = events[-1]
    assert end["FilesCreated"] == "3"
    assert end["BytesProcessed"] == str(sum(len(f.data) for f in files))
    assert end["TotalErrors"] == "0"
    warnings = [e for e in events if e["Event"] == "JobWarning"]
    assert [w["Message"] for w in warnings] == ["Failed to ensure user 'ghost@fabrikam.com'"]

    top = children(graph, target.drive_id, folder.name)
    assert set(top) == {"a.txt", "2024"}
    a = top["a.txt"]
    assert a["size"] == 5000
    assert a["file"]["hashes"]["quickXorHash"] == quickxor_b64(files[0].data)
    assert a["fileSystemInfo"]["lastModifiedDateTime"] == "2022-04-15T05:20:00Z"
    assert a["fileSystemInfo"]["createdDateTime"] == "2020-09-13T12:26:40Z"
    assert a["createdBy"]["user"]["email"] == "megan@contoso.com"
    ids = graph.get(
        f"/drives/{target.drive_id}/items/{a['id']}", params={"$select": "sharepointIds"}
    ).json()["sharepointIds"]
    assert ids["listItemUniqueId"] == files[0].id and ids["listId"] == target.list_id
    inner = children(graph, target.drive_id, f"{folder.name}/2024")
    assert inner["empty.bin"]["size"] == 0
    assert inner["b.csv"]["createdBy"]["user"]["displayName"] == "System Account"
    downloaded = graph.get(
        f"/drives/{target.drive_id}/items/{inner['b.csv']['id']}/content", follow_redirects=True
    )
    assert downloaded.content == files[2].data

    # The logs are in the manifest container, encrypted with the job's key.
    log_names = [e["FileName"] for e in events if e["Event"] == "JobLogFileCreate"]
    assert len(log_names) == 3 and all(job_id in n for n in log_names)
    storage = migration_emulator.info["migration_api"]
    owner = BlobServiceClient(
        storage["blob_endpoint"],
        credential={"account_name": storage["account_name"], "account_key": storage["account_key"]},
        connection_verify=migration_emulator.info["ca_file"],
    ).get_container_client(meta.container_name)
    for name in log_names:
        blob = owner.get_blob_client(name)
        iv = base64.b64decode(blob.get_blob_properties().metadata["IV"])
        text = decrypt(key, iv, blob.download_blob().readall()).decode()
        if name.endswith(".wrn"):
            assert text == "warning\tFailed to ensure user 'ghost@fabrikam.com'\n"
        if name.endswith(".log"):
            assert "imported file" in text


def test_a_bad_item_is_a_job_error_and_the_others_import(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    folder = PackageFolder(f"Mixed-{uuid.uuid4().hex[:6]}", target.root_id)
    good, missing, corrupt = (
        PackageFile("good.txt", b"good", folder.id),
        PackageFile("missing.txt", b"gone", folder.id),
        PackageFile("corrupt.txt", b"bits", folder.id),
    )
    package = package_for(target, [good, missing, corrupt], [folder])

    def tamper(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        if name == f"{corrupt.id}.dat":
            upload(container, name, body, key, md5=bytes(16))
        return name in (f"{missing.id}.dat", f"{corrupt.id}.dat")

    job_id, _, _ = submit(client, migration_emulator, token, package, tamper=tamper)
    events = wait_for_end(client, migration_emulator, token, job_id, SITE)
    errors = {e["Id"]: e for e in events if e["Event"] == "JobError"}
    assert set(errors) == {missing.id, corrupt.id}
    assert errors[corrupt.id]["ObjectType"] == "File"
    assert "MD5" in errors[corrupt.id]["Message"]
    assert events[-1]["FilesCreated"] == "1" and events[-1]["TotalErrors"] == "2"
    assert set(children(graph, target.drive_id, folder.name)) == {"good.txt"}


def _fatal(
    client: httpx.Client,
    server: EmulatorServer,
    token: str,
    package: Package,
    tamper: Tamper | None = None,
) -> str:
    job_id, _, _ = submit(client, server, token, package, tamper=tamper)
    events = wait_for_end(client, server, token, job_id, SITE)
    fatal = [e for e in events if e["Event"] == "JobFatalError"]
    assert len(fatal) == 1, [e["Event"] for e in events]
    assert events[-1]["FilesCreated"] == "0"
    return fatal[0]["Message"]


def test_bad_packages_are_fatal_errors(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    def one() -> Package:
        return package_for(target, [PackageFile("x.txt", b"x", target.root_id)], [])

    wrong_source = one()
    wrong_source.source_type = "Floppy"
    assert "SourceType" in _fatal(client, migration_emulator, token, wrong_source)

    # gWebId stays right (else the call is refused); the manifest names another web.
    other_web = str(uuid.uuid4()).encode()

    def wrong_web(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        upload(container, name, body.replace(target.web_id.encode(), other_web), key)
        return True

    assert "web" in _fatal(client, migration_emulator, token, one(), wrong_web)

    def no_export_settings(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        return name == "ExportSettings.xml"

    assert "ExportSettings.xml" in _fatal(
        client, migration_emulator, token, one(), no_export_settings
    )

    def no_snapshot(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        if name == "Manifest.xml":
            upload(container, name, body, key, snapshot=False)
        return name == "Manifest.xml"

    assert "snapshot" in _fatal(client, migration_emulator, token, one(), no_snapshot)

    def bad_md5(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        if name == "SystemData.xml":
            upload(container, name, body, key, md5=bytes(16))
        return name == "SystemData.xml"

    assert "MD5" in _fatal(client, migration_emulator, token, one(), bad_md5)

    def other_key(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        upload(container, name, body, bytes(32))
        return True

    assert "decrypted" in _fatal(client, migration_emulator, token, one(), other_key)


def test_resubmitting_the_same_ids_replaces(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    folder = PackageFolder(f"Again-{uuid.uuid4().hex[:6]}", target.root_id)
    first = PackageFile("doc.txt", b"version one", folder.id)
    job_id, _, _ = submit(client, migration_emulator, token, package_for(target, [first], [folder]))
    wait_for_end(client, migration_emulator, token, job_id, SITE)
    second = PackageFile(
        "doc.txt", b"version two, longer", folder.id, id=first.id, modified=1_700_000_000.0
    )
    job_id, _, _ = submit(
        client, migration_emulator, token, package_for(target, [second], [folder])
    )
    events = wait_for_end(client, migration_emulator, token, job_id, SITE)
    assert "JobError" not in [e["Event"] for e in events]
    listed = children(graph, target.drive_id, folder.name)
    assert list(listed) == ["doc.txt"]
    assert listed["doc.txt"]["size"] == len(second.data)
    top = [
        c
        for c in graph.get(f"/drives/{target.drive_id}/root/children").json()["value"]
        if c["name"] == folder.name
    ]
    assert len(top) == 1


def test_progress_tokens_and_the_encrypted_queue(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    target: Target,
) -> None:
    r = site_call(client, migration_emulator, token, "ProvisionMigrationQueue", SITE)
    queue_uri = r.json()["d"]["ProvisionMigrationQueue"]["JobQueueUri"]
    files = [PackageFile(f"f{i}.txt", b"q" * i, target.root_id) for i in range(3)]
    job_id, key, _ = submit(
        client, migration_emulator, token, package_for(target, files, []), queue=queue_uri
    )
    events = wait_for_end(client, migration_emulator, token, job_id, SITE)
    everything, last = progress(client, migration_emulator, token, job_id, "0", SITE)
    assert everything == events
    assert progress(client, migration_emulator, token, job_id, last, SITE) == ([], last)
    assert progress(client, migration_emulator, token, job_id, "0", SITE) == (everything, last)
    middle, _ = progress(client, migration_emulator, token, job_id, "2", SITE)
    assert middle == events[2:]

    queue = QueueClient.from_queue_url(
        queue_uri, connection_verify=migration_emulator.info["ca_file"]
    )
    seen = []
    for message in queue.receive_messages(max_messages=32):
        envelope = json.loads(base64.b64decode(message.content))
        assert envelope["Label"] == "Encrypted" and envelope["JobId"] == job_id
        plain = decrypt(
            key, base64.b64decode(envelope["IV"]), base64.b64decode(envelope["Content"])
        )
        seen.append(json.loads(plain))
    assert seen == events[: len(seen)] and seen


def test_a_job_that_fails_midway(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    folder = PackageFolder(f"Half-{uuid.uuid4().hex[:6]}", target.root_id)
    files = [PackageFile(f"{i}.txt", b"%d" % i, folder.id) for i in range(4)]
    migration_emulator.set_faults(migration_fail_after=2)
    job_id, _, _ = submit(client, migration_emulator, token, package_for(target, files, [folder]))
    events = wait_for_end(client, migration_emulator, token, job_id, SITE)
    names = [e["Event"] for e in events]
    assert "JobFatalError" in names and names[-1] == "JobEnd"
    assert events[-1]["FilesCreated"] == "2"
    assert set(children(graph, target.drive_id, folder.name)) == {"0.txt", "1.txt"}


def test_import_rate_fault(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    target: Target,
) -> None:
    files = [PackageFile(f"r{i}.txt", b"r", target.root_id) for i in range(4)]
    migration_emulator.set_faults(migration_files_per_s=4)
    job_id, _, _ = submit(client, migration_emulator, token, package_for(target, files, []))
    events = wait_for_end(client, migration_emulator, token, job_id, SITE)
    start = next(e for e in events if e["Event"] == "JobStart")["Time"]
    end = events[-1]["Time"]
    spent = (
        dt.datetime.strptime(end, "%m/%d/%Y %H:%M:%S.%f")
        - dt.datetime.strptime(start, "%m/%d/%Y %H:%M:%S.%f")
    ).total_seconds()
    assert spent >= 0.9  # four files at four per second

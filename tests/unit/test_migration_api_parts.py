"""The Migration API client's pure parts: encryption, queue envelopes, the package's XML, the
user map, what a job's events say, and the state store's package records."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import xml.etree.ElementTree as ET
from dataclasses import astuple
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from sharelift.engine.config import EngineConfig
from sharelift.engine.mover import RoundContext
from sharelift.errors import ConfigError
from sharelift.migration_api import crypto, jobs, package
from sharelift.migration_api.intake import read_user_map
from sharelift.migration_api.mover import MigrationApiMover, MigrationApiSettings
from sharelift.migration_api.reconcile import JobReport
from sharelift.state import (
    ItemStatus,
    NewUnit,
    PackageEventRecord,
    PackageFileRecord,
    PackageStatus,
    ServiceJob,
    ServiceJobState,
    StateStore,
    open_state,
)


def reference_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


@given(st.binary(max_size=300), st.lists(st.integers(1, 50), max_size=8))
def test_blob_cipher_is_aes_cbc_pkcs7_in_any_pieces(data: bytes, cuts: list[int]) -> None:
    key, iv = bytes(range(32)), bytes(range(16))
    cipher = crypto.BlobCipher(key, iv)
    out, at = b"", 0
    for cut in cuts:
        out += cipher.update(data[at : at + cut])
        at += cut
    out += cipher.update(data[at:]) + cipher.finalize()
    assert out == reference_encrypt(key, iv, data)
    assert len(out) == crypto.encrypted_size(len(data))
    assert crypto.decrypt(key, iv, out) == data


def test_a_wrong_key_does_not_open_a_message() -> None:
    sealed = reference_encrypt(b"k" * 32, b"i" * 16, b"{}" * 40)
    with pytest.raises(ValueError):
        crypto.decrypt(b"x" * 32, b"i" * 16, sealed)
    with pytest.raises(ValueError, match="multiple of 16"):
        crypto.decrypt(b"k" * 32, b"i" * 16, sealed[:-1])


def test_the_key_file_is_private_and_goes(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "p.key"
    key = crypto.new_key()
    crypto.save_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert crypto.load_key(path) == key
    crypto.delete_key(path)
    crypto.delete_key(path)
    with pytest.raises(crypto.KeyFileError, match=str(path)) as caught:
        crypto.load_key(path)
    assert key.hex() not in str(caught.value)


def envelope(key: bytes, job: str, event: dict[str, str], *, split: bool) -> str:
    iv = os.urandom(16)
    content = reference_encrypt(key, iv, json.dumps(event).encode())
    fields = {
        "Label": "Encrypted",
        "JobId": job,
        "IV": base64.b64encode(iv).decode(),
        "Content": base64.b64encode(content).decode(),
    }
    text = ",".join(json.dumps({k: v}) for k, v in fields.items()) if split else json.dumps(fields)
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("split", [False, True], ids=["one object", "four objects"])
def test_queue_envelopes_open_with_their_jobs_key(split: bool) -> None:
    key = os.urandom(32)
    event = {"Event": "JobEnd", "JobId": "ABC", "FilesCreated": "3"}
    message = envelope(key, "ABC", event, split=split)
    assert jobs.open_envelope(message, {"abc": key}) == event
    assert jobs.open_envelope(message, {"other": key}) is None
    plain = base64.b64encode(json.dumps({"Event": "JobStart"}).encode()).decode()
    assert jobs.open_envelope(plain, {}) == {"Event": "JobStart"}
    assert jobs.open_envelope('{"Event": "JobQueued"}', {}) == {"Event": "JobQueued"}
    assert jobs.open_envelope("not an event", {}) is None


TARGET = package.PackageTarget(
    site_url="https://contoso.sharepoint.com/sites/Team",
    web_id="11111111-1111-1111-1111-111111111111",
    web_url="/sites/Team",
    list_id="22222222-2222-2222-2222-222222222222",
    list_url="Shared Documents",
)


def test_the_package_is_well_formed_xml_in_its_namespaces() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    entry = package.ManifestFile(
        file_id=package.file_id(TARGET.list_id, "a/<b> & c.txt"),
        blob="x.dat",
        url="Shared Documents/a/<b> & c.txt",
        folder_id="33333333-3333-3333-3333-333333333333",
        size=5,
        created=when,
        modified=when,
        md5="bWQ1",
        quick_xor="cXhI",
        author=1,
    )
    users = [package.PackageUser(1, "megan@contoso.com")]
    docs = {
        name: ET.fromstring("".join(pieces).encode())  # noqa: S314 (our own output)
        for name, pieces in package.package_documents(TARGET, [entry], users)
    }
    assert docs["ExportSettings.xml"].get("SourceType") == "FileShare"
    for name, root in docs.items():
        assert root.tag.startswith("{urn:deployment-"), name
    (obj,) = docs["Manifest.xml"]
    (element,) = obj
    assert obj.get("ObjectType") == "SPFile"
    assert element.get("Name") == "<b> & c.txt"
    assert element.get("TimeLastModified") == "2024-05-06T07:08:09"
    assert element.get("ListId") == TARGET.list_id
    assert (element.get("Author"), element.get("MD5Hash")) == ("1", "bWQ1")
    (user,) = docs["UserGroupMap.xml"][0]
    assert user.get("Login") == "i:0#.f|membership|megan@contoso.com"
    (root_object,) = docs["RootObjectMap.xml"]
    assert root_object.get("Url") == "/sites/Team/Shared Documents"


def test_file_ids_are_stable_and_case_blind() -> None:
    one = package.file_id(TARGET.list_id, "Docs/A.txt")
    assert one == package.file_id(TARGET.list_id.upper(), "docs/a.TXT")
    assert one != package.file_id(TARGET.list_id, "Docs/B.txt")


def test_user_map(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text(
        "source,upn\nalice,Alice@contoso.com\nbob,alice@contoso.com\n*,it@contoso.com\n"
    )
    users = read_user_map(path)
    assert users["alice"] == users["bob"] == package.PackageUser(1, "alice@contoso.com")
    assert users["*"].id == 2
    path.write_text("alice\n")
    with pytest.raises(ConfigError, match="row 1"):
        read_user_map(path)


def test_the_store_keeps_packages_for_the_next_run(state_location: str) -> None:
    with open_state(state_location) as store:
        job = store.ensure_job("k", "/src", "t")
        rnd = store.start_round(job.id)
        rows = [
            store.upsert_item(job.id, f"f{i}".encode(), "file", status=ItemStatus.PENDING,
                              round_id=rnd.id, size=10, mtime_ns=1)
            for i in range(3)
        ]  # fmt: skip
        files = [
            PackageFileRecord(0, r, f"id{r}", f"id{r}.dat", 10, 1, None, None, False) for r in rows
        ]
        row = store.create_migration_package(
            job.id, rnd.id, "p1", data_uri="https://a/c?sig=SECRET", manifest_uri="https://a/m?sig=S",
            queue_uri=None, key_file="/k", own_containers=False, files=files,
        )  # fmt: skip
        store.package_file_stored(row, rows[0], quick_xor="q", md5="m")
        store.drop_package_files(row, [rows[2]])
        store.set_package_status(row, PackageStatus.SUBMITTED, migration_job_id="j1")
        store.package_progress(row, "7", errors=1, warnings=2)
    with open_state(state_location) as store:
        (record,) = store.migration_packages(job.id, open_only=True)
        assert (record.status, record.migration_job_id, record.next_token) == (
            PackageStatus.SUBMITTED, "j1", "7"
        )  # fmt: skip
        assert (record.files, record.bytes, record.errors, record.warnings) == (2, 20, 1, 2)
        assert "SECRET" not in repr(record)
        stored = store.package_files(row)
        assert [(f.item_row, f.stored, f.quick_xor) for f in stored] == [
            (rows[0], True, "q"), (rows[1], False, None)
        ]  # fmt: skip
        store.set_package_status(row, PackageStatus.CLOSED)
        assert store.migration_packages(job.id, open_only=True) == []


def test_a_units_package_keeps_its_key_in_the_store_until_its_job_ends(
    state_location: str,
) -> None:
    key = bytes(range(32))
    with open_state(state_location) as store:
        job = store.ensure_job("k", "/src", "t")
        rnd = store.start_round(job.id)
        added = store.add_unit(NewUnit("u1", "run", "tree", "default", {}, job_id=job.id,
                                       round_id=rnd.id))  # fmt: skip
        assert added is not None
        unit = added[0]
        kept = _package(store, job.id, rnd.id, "kept", [5], unit_id=unit, key=key)
        local = _package(store, job.id, rnd.id, "local", [6])
        assert store.package_key(kept) == key
        assert store.package_key(local) is None  # its key is a file
        assert store.package_key(10_000) is None
        store.set_package_status(kept, PackageStatus.SUBMITTING)
        store.set_package_status(kept, PackageStatus.SUBMITTED, migration_job_id="j1")
        assert store.package_key(kept) == key  # the job is followed with it
    with open_state(state_location, readonly=True) as store:
        by_id = {p.id: p for p in store.migration_packages(job.id, open_only=True)}
        assert (by_id[kept].unit_id, by_id[kept].key_file) == (unit, "")
        assert by_id[local].unit_id is None
        # A record never carries the key, in any form.
        text = repr(list(by_id.values())) + str([astuple(p) for p in by_id.values()])
        assert key.hex() not in text and repr(key) not in text
        assert store.package_key(kept) == key
    with open_state(state_location) as store:
        store.set_package_status(kept, PackageStatus.ENDED)  # the job ended: the key goes
        assert store.package_key(kept) is None
        failed = _package(store, job.id, rnd.id, "failed", [7], unit_id=unit, key=key)
        store.set_package_status(failed, PackageStatus.FAILED)
        assert store.package_key(failed) is None
    # Nothing of the key is left in the database, whatever reads it.
    with open_state(state_location, readonly=True) as store:
        assert store.package_key(kept) is None and store.package_key(failed) is None


def test_a_unit_takes_up_only_its_own_open_packages(state_location: str, tmp_path: Path) -> None:
    with open_state(state_location) as store:
        job = store.ensure_job("k", "/src", "t")
        first = store.start_round(job.id)
        earlier = _package(store, job.id, first.id, "earlier", [1])  # one machine, round 1
        second = store.start_round(job.id)
        units = {}
        for name, kind in (("job", "job"), ("a", "tree"), ("b", "tree")):
            added = store.add_unit(NewUnit(name, "run", kind, "default", {}, job_id=job.id,
                                           round_id=second.id))  # fmt: skip
            assert added is not None
            units[name] = added[0]
        mine = {
            name: _package(store, job.id, second.id, f"p-{name}", [2], unit_id=unit, key=bytes(32))
            for name, unit in units.items()
        }
        done = _package(store, job.id, second.id, "done", [3], unit_id=units["a"], key=bytes(32))
        store.set_package_status(done, PackageStatus.CLOSED)

        def taken(unit: int | None, *, earlier_rounds: bool = False) -> set[int]:
            context = RoundContext(
                drive=cast(Any, None), store=store, job=job, round_id=second.id, root_id="",
                config=EngineConfig(), outcomes=cast(Any, None), stopping=asyncio.Event(),
            )  # fmt: skip
            settings = MigrationApiSettings(
                cloud=cast(Any, None), token=cast(Any, None), key_dir=tmp_path,
                unit_id=unit, earlier_rounds=earlier_rounds,
            )  # fmt: skip
            mover = MigrationApiMover(context, settings)
            try:
                return {p.id for p in mover._open_packages()}
            finally:
                mover.abort()
                mover._pool.shutdown()
                mover._sessions.close()

        assert taken(None) == {earlier, *mine.values()}  # one machine: the whole job's
        assert taken(units["a"]) == {mine["a"]}
        assert taken(units["b"]) == {mine["b"]}
        assert taken(units["job"], earlier_rounds=True) == {mine["job"], earlier}


def event(name: str, time: str = "11/23/2026 13:05:01.250", **fields: str) -> dict[str, str]:
    return {"Event": name, "JobId": "j1", "Time": time, **fields}


def test_the_events_say_where_the_service_job_stands() -> None:
    report = JobReport()
    states = []
    for e in (
        event("JobQueued"),
        event("JobPostponed", NextPickupTime="11/23/2026 13:10:00.000"),
        event("JobStart"),
        event("JobProgress", FilesCreated="3", BytesProcessed="3000"),
        event("JobWarning", Message="Failed to ensure user 'i:0#.f|membership|x@contoso.com'"),
        event("JobError", Id="{F1}", Url="Shared Documents/a.txt", ErrorCode="-2147024816",
              Message="The file a.txt is bad"),
        event("JobProgress", ObjectsProcessed="9"),  # no file counters: the last ones hold
        event("JobEnd", FilesCreated="4", BytesProcessed="4000"),
    ):  # fmt: skip
        report.take(e)
        report.take(dict(e))  # read from the queue too: taken once
        assert report.job is not None
        states.append(report.job.state)
    Q, PP, P, D = (ServiceJobState.QUEUED, ServiceJobState.POSTPONED,
                   ServiceJobState.PROCESSING, ServiceJobState.DONE)  # fmt: skip
    assert states == [Q, PP, P, P, P, P, P, D]
    assert report.job == ServiceJob(D, "JobEnd", "2026-11-23T13:05:01.250000Z", 4, 4000)
    assert report.new_problems == [
        PackageEventRecord(0, "JobWarning", "2026-11-23T13:05:01.250000Z", "", "",
                           "Failed to ensure user 'i:0#.f|membership|x@contoso.com'"),
        PackageEventRecord(0, "JobError", "2026-11-23T13:05:01.250000Z", "-2147024816",
                           "Shared Documents/a.txt", "The file a.txt is bad"),
    ]  # fmt: skip
    assert report.error_for("f1", "", "") == "The file a.txt is bad (error -2147024816)"
    assert (report.error_count, report.warning_count) == (1, 1)

    fatal = JobReport()
    for e in (event("JobStart"), event("JobFatalError", Message="bad manifest"), event("JobEnd")):
        fatal.take(e)
    assert fatal.job is not None and fatal.job.state is ServiceJobState.FAILED
    assert [p.event for p in fatal.new_problems] == ["JobFatalError"]

    odd = JobReport()
    odd.take(event("JobStart", time="13:05 yesterday"))  # a malformed time: when it was read
    assert odd.job is not None and odd.job.last_event_at.startswith(str(datetime.now(UTC).year))
    odd.lost("GetMigrationJobProgress failed: HTTP 500 [-2147213145, ...]")
    assert odd.ended and odd.fatal and odd.job.state is ServiceJobState.FAILED


def _package(
    store: StateStore,
    job_id: int,
    round_id: int,
    name: str,
    sizes: list[int],
    *,
    unit_id: int | None = None,
    key: bytes | None = None,
) -> int:
    rows = [
        store.upsert_item(job_id, f"{name}/{i}".encode(), "file", status=ItemStatus.PENDING,
                          round_id=round_id, size=size, mtime_ns=1)
        for i, size in enumerate(sizes)
    ]  # fmt: skip
    return store.create_migration_package(
        job_id, round_id, name, data_uri="https://a/c?sig=S", manifest_uri="https://a/m?sig=S",
        queue_uri=None, key_file="" if key else "/k", own_containers=False,
        files=[PackageFileRecord(0, r, f"id{r}", f"id{r}.dat", size, 1, None, None, False)
               for r, size in zip(rows, sizes, strict=True)],
        unit_id=unit_id, key=key,
    )  # fmt: skip


def test_the_store_keeps_what_the_service_said_bounded(state_location: str) -> None:
    with open_state(state_location) as store:
        job = store.ensure_job("k", "/src", "t")
        first = store.start_round(job.id)
        old_closed = _package(store, job.id, first.id, "old-closed", [5])
        old_open = _package(store, job.id, first.id, "old-open", [7])
        store.set_package_status(old_closed, PackageStatus.CLOSED)
        store.set_package_status(old_open, PackageStatus.SUBMITTED, migration_job_id="j0")
        second = store.start_round(job.id)
        packing = _package(store, job.id, second.id, "packing", [10, 20, 30])
        store.package_file_stored(packing, store.package_files(packing)[1].item_row,
                                  quick_xor="q", md5="m")  # fmt: skip
        done = _package(store, job.id, second.id, "done", [100, 200])
        store.set_package_status(done, PackageStatus.SUBMITTED, migration_job_id="j1")
        warnings = [
            PackageEventRecord(0, "JobWarning", f"2026-11-23T13:05:{i % 60:02d}.000000Z", "0", "",
                               f"warning {i}")
            for i in range(150)
        ]  # fmt: skip
        error = PackageEventRecord(0, "JobError", "2026-11-23T13:06:00.000000Z", "-2147024816",
                                   "Shared Documents/x.txt", "bad x")  # fmt: skip
        job_done = ServiceJob(ServiceJobState.DONE, "JobEnd", "2026-11-23T13:06:01.000000Z", 1, 100)
        store.package_progress(done, "9", errors=1, warnings=150, job=job_done,
                               events=[*warnings, error])  # fmt: skip
        store.set_package_status(done, PackageStatus.CLOSED)

    with open_state(state_location, readonly=True) as store:
        counts = {(c.status, c.job_state): c for c in store.package_counts()}
        # The last round's packages and the earlier round's open one; not its closed one.
        assert set(counts) == {
            (PackageStatus.PACKING, None),
            (PackageStatus.CLOSED, ServiceJobState.DONE),
            (PackageStatus.SUBMITTED, ServiceJobState.QUEUED),  # accepted, no event yet
        }
        assert (counts[PackageStatus.PACKING, None].bytes,
                counts[PackageStatus.PACKING, None].bytes_uploaded) == (60, 20)  # fmt: skip
        closed = counts[PackageStatus.CLOSED, ServiceJobState.DONE]
        assert (closed.packages, closed.files, closed.bytes, closed.bytes_uploaded) == (
            1,
            2,
            300,
            300,
        )
        assert (closed.bytes_imported, closed.errors, closed.warnings) == (100, 1, 150)
        assert closed.last_event_at == "2026-11-23T13:06:01.000000Z"

        kept = list(store.package_events(job.id))
        assert len(kept) == 101  # the first hundred warnings, and the error
        assert kept[0].message == "warning 0" and kept[-1] == PackageEventRecord(
            done, "JobError", "2026-11-23T13:06:00.000000Z", "-2147024816",
            "Shared Documents/x.txt", "bad x",
        )  # fmt: skip
        record = store.migration_package(done)
        assert record is not None
        assert (record.job_state, record.last_event, record.files_imported) == (
            ServiceJobState.DONE, "JobEnd", 1
        )  # fmt: skip
        assert [p.package_id for p in store.migration_packages(job.id, last=2)] == [
            "packing", "done"
        ]  # fmt: skip

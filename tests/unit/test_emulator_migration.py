"""The emulator's Migration API parts that need no server: package reading, AES, SAS, events."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sharelift.emulator.migration import crypto
from sharelift.emulator.migration.blobs import queue_message
from sharelift.emulator.migration.events import EventLog, make_event
from sharelift.emulator.migration.package import PackageError, parse_time, read_package
from sharelift.emulator.migration.sas import (
    CONTENT_PERMISSIONS,
    SasError,
    check_own,
    parse_sas_uri,
)
from support.migration import (
    Package,
    PackageArchive,
    PackageFile,
    PackageFolder,
    decrypt,
    encrypt,
    quickxor_b64,
)

WEB, LIST, ROOT = (
    "7206fc09-e4af-48b3-8730-ed7321396d7a",
    "48ea9454-9538-47ae-926d-917df80bc93e",
    "33ff2f12-c818-4c8d-8578-c6d057172fd8",
)


def _package() -> Package:
    folder = PackageFolder("Reports", ROOT)
    return Package(
        web_id=WEB,
        list_id=LIST,
        root_folder_id=ROOT,
        site_url="https://contoso.sharepoint.com",
        users=[("1", "i:0#.f|membership|megan@contoso.com")],
        folders=[folder],
        files=[PackageFile("a.txt", b"alpha", folder.id), PackageFile("b.txt", b"", ROOT)],
    )


def _fetch(files: dict[str, bytes]):  # type: ignore[no-untyped-def]
    return files.get


def test_a_file_share_package_reads_whole() -> None:
    package = read_package(_fetch(_package().manifest_files()))
    assert package.source_type == "FileShare"
    assert package.manifests == ["Manifest.xml"]
    assert package.root_lists == [(LIST, WEB)]
    assert package.users["1"].upn == "megan@contoso.com"
    assert [o.object_type for o in package.objects] == ["SPFolder", "SPFile", "SPFile"]
    assert package.objects[1].get("Name") == "a.txt"
    assert package.objects[1].get("FileValue").endswith(".dat")
    assert package.warnings == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.pop("ExportSettings.xml"), "ExportSettings.xml is missing"),
        (lambda f: f.pop("SystemData.xml"), "SystemData.xml is missing"),
        (lambda f: f.pop("UserGroupMap.xml"), "UserGroupMap.xml is missing"),
        (lambda f: f.pop("Manifest.xml"), "Manifest.xml, listed in SystemData.xml, is missing"),
        (
            lambda f: f.update({"Manifest.xml": b"<SPObjects/>"}),
            "namespace urn:deployment-manifest-schema",
        ),
        (lambda f: f.update({"SystemData.xml": b"<not xml"}), "not well-formed"),
    ],
)
def test_a_package_missing_a_required_file_is_refused(change, message: str) -> None:  # type: ignore[no-untyped-def]
    files = _package().manifest_files()
    change(files)
    with pytest.raises(PackageError, match=message):
        read_package(_fetch(files))


@pytest.mark.parametrize(
    ("source_type", "ok"), [("FileShare", True), ("Other", True), ("", False), ("Floppy", False)]
)
def test_source_type_must_be_a_documented_one(source_type: str, ok: bool) -> None:
    package = _package()
    package.source_type = source_type
    files = package.manifest_files()
    if ok:
        read_package(_fetch(files))
    else:
        with pytest.raises(PackageError, match="SourceType"):
            read_package(_fetch(files))


def test_optional_files_missing_and_no_users_are_warnings() -> None:
    package = _package()
    package.users = []
    files = package.manifest_files()
    for name in ("Requirements.xml", "LookupListMap.xml", "ViewFormsList.xml"):
        files.pop(name)
    warnings = read_package(_fetch(files)).warnings
    assert len(warnings) == 4
    assert any("no users" in w for w in warnings)


def test_user_group_xml_is_accepted_and_duplicate_users_refused() -> None:
    files = _package().manifest_files()
    files["UserGroup.xml"] = files.pop("UserGroupMap.xml")
    assert read_package(_fetch(files)).users["1"].login.endswith("megan@contoso.com")
    package = _package()
    package.users.append(("2", "i:0#.f|membership|megan@contoso.com"))
    with pytest.raises(PackageError, match="more than once"):
        read_package(_fetch(package.manifest_files()))


def _archived_package(archives: int = 1) -> Package:
    package = _package()
    for n in range(archives):
        small = PackageFile(f"small{n}.txt", b"tiny", ROOT)
        package.files.append(small)
        package.archives.append(PackageArchive(f"pack{n}.zip", [small]))
    return package


def test_archived_files_xml_is_read_with_or_without_a_namespace() -> None:
    package = _archived_package(2)
    package.archives[1].stray.append("orphan.dat")
    files = package.manifest_files()
    read = read_package(_fetch(files))
    assert [(a.name, a.members) for a in read.archives] == [
        ("pack0.zip", (package.files[2].file_value,)),
        ("pack1.zip", (package.files[3].file_value, "orphan.dat")),
    ]
    assert read.archives[0].checksum == quickxor_b64(package.archives[0].zip_bytes())
    assert read.warnings == [
        "ArchivedFiles.xml: 'orphan.dat' of pack1.zip is the FileValue of no File"
    ]
    files["ArchivedFiles.xml"] = (
        files["ArchivedFiles.xml"]
        .replace(b"<ArchivedFiles>", b'<a:ArchivedFiles xmlns:a="urn:any">')
        .replace(b"</ArchivedFiles>", b"</a:ArchivedFiles>")
    )
    assert len(read_package(_fetch(files)).archives) == 2
    assert read_package(_fetch(_package().manifest_files())).archives == []


def test_archived_files_xml_past_two_archives_or_ambiguous_is_refused() -> None:
    with pytest.raises(PackageError, match="3 archives; a package may have 2"):
        read_package(_fetch(_archived_package(3).manifest_files()))
    twice = _archived_package(2)
    twice.archives[1].stray.append(twice.files[2].file_value)
    with pytest.raises(PackageError, match="listed more than once"):
        read_package(_fetch(twice.manifest_files()))
    files = _archived_package().manifest_files()
    files["ArchivedFiles.xml"] = b"<Archives/>"
    with pytest.raises(PackageError, match="must be ArchivedFiles"):
        read_package(_fetch(files))
    files["ArchivedFiles.xml"] = b'<ArchivedFiles><ArchivedFile Checksum="x"/></ArchivedFiles>'
    with pytest.raises(PackageError, match="has no Name"):
        read_package(_fetch(files))


def test_times_without_offset_are_utc() -> None:
    assert parse_time("2021-11-08T03:57:05") == 1636343825.0
    assert parse_time("2021-11-08T04:57:05+01:00") == 1636343825.0
    assert parse_time("yesterday") is None


def test_aes_cbc_pkcs7_round_trips_with_an_independent_writer() -> None:
    key = crypto.new_key()
    for size in (0, 1, 15, 16, 17, 1000):
        data = secrets.token_bytes(size)
        iv, sealed = encrypt(key, data)
        assert crypto.decrypt(key, iv, sealed) == data
        iv2, sealed2 = crypto.encrypt(key, data)
        assert decrypt(key, iv2, sealed2) == data
    # A wrong key gives random plaintext: its padding is valid now and then (a last byte of
    # 0x01 one time in 256), so the certain refusal is checked on a block whose padding is
    # wrong by construction, and a wrong key is only required never to give the data back.
    try:
        wrong = crypto.decrypt(crypto.new_key(), iv, sealed)
    except crypto.DecryptionError:
        pass
    else:
        assert wrong != data
    data = secrets.token_bytes(1000)
    iv, sealed = encrypt(key, data)
    decryption = crypto.Decryption(key, iv)
    parts = [decryption.update(sealed[i : i + 7]) for i in range(0, len(sealed), 7)]
    assert b"".join([*parts, decryption.finalize()]) == data
    with pytest.raises(crypto.DecryptionError, match="whole number"):
        crypto.decrypt(key, iv, sealed[:-1])
    bare = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    unpadded = bare.update(b"x" * 15 + b"\x00") + bare.finalize()  # 0x00 is never padding
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(key, iv, unpadded)
    assert crypto.parse_key(base64.b64encode(key).decode()) == key
    assert crypto.parse_key("c2hvcnQ=") is None
    assert crypto.parse_iv(base64.b64encode(b"x" * 16).decode()) == b"x" * 16


def test_encrypted_queue_messages_are_envelopes() -> None:
    key = crypto.new_key()
    event = make_event("JobStart", "job", "corr", SiteId="s")
    envelope = json.loads(base64.b64decode(queue_message(event, "job", key)))
    assert envelope["Label"] == "Encrypted" and envelope["JobId"] == "job"
    inner = decrypt(key, base64.b64decode(envelope["IV"]), base64.b64decode(envelope["Content"]))
    assert json.loads(inner) == event
    assert json.loads(base64.b64decode(queue_message(event, "job", None))) == event


def test_sas_uris_are_checked_for_exact_flags_and_https() -> None:
    base = "https://127.0.0.1:1/acct/cont?sv=2025-11-05&sr=c&sig=abc"
    sas = parse_sas_uri("p", base + "&sp=rl&spr=https&se=2999-01-01T00:00:00Z")
    assert (sas.account, sas.name, sas.base) == ("acct", "cont", "https://127.0.0.1:1/acct/cont")
    check_own("p", sas, CONTENT_PERMISSIONS)
    for bad in ("&sp=rlw&spr=https", "&sp=rl", "&sp=rl&spr=https&se=2000-01-01T00:00:00Z"):
        with pytest.raises(SasError):
            check_own("p", parse_sas_uri("p", base + bad), CONTENT_PERMISSIONS)
    hosted = parse_sas_uri("p", "https://acct.blob.core.windows.net/cont?sp=rl&sig=x")
    assert (hosted.account, hosted.name) == ("acct", "cont")
    for bad_uri in (
        "http://h/a/c?sp=rl&sig=x",
        "https://h/a/c?sp=rl",
        None,
        "https://h/a/b/c?sp=r&sig=x",
    ):
        with pytest.raises(SasError):
            parse_sas_uri("p", bad_uri)


def test_event_log_tokens_page_and_repeat(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "job.jsonl")
    assert log.page("0") == ([], "0")
    for name in ("JobQueued", "JobStart", "JobEnd"):
        log.append(make_event(name, "job", "corr"))
    events, token = log.page("0")  # type: ignore[misc]
    assert [json.loads(e)["Event"] for e in events] == ["JobQueued", "JobStart", "JobEnd"]
    assert log.page(token) == ([], token)
    assert log.page("0") == (events, token)  # idempotent for a finished job
    assert log.page("9") is None and log.page("x") is None
    assert EventLog(tmp_path / "job.jsonl").page("1") == (events[1:], token)  # survives restart
    assert log.finished


def test_without_azurite_and_npm_the_error_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharelift.emulator.migration import azurite
    from sharelift.errors import EmulatorError

    monkeypatch.setattr(azurite.shutil, "which", lambda name: None)
    monkeypatch.setattr(azurite, "_project_bin", lambda: [tmp_path / "none"])
    monkeypatch.setattr(azurite, "cache_prefix", lambda: tmp_path / "cache")
    assert azurite.find_azurite() is None
    with pytest.raises(EmulatorError, match="npm is not installed") as refused:
        azurite.install_azurite()
    assert "\n" not in str(refused.value)


def test_the_storage_account_is_made_once_and_private(tmp_path: Path) -> None:
    from sharelift.emulator.migration.azurite import load_or_create_account

    account = load_or_create_account(tmp_path, "Contoso")
    assert account == load_or_create_account(tmp_path, "Contoso")
    assert account.name.startswith("contosomig") and account.name != "devstoreaccount1"
    assert len(base64.b64decode(account.key)) == 64
    assert (tmp_path / "account.json").stat().st_mode & 0o777 == 0o600

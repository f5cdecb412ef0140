"""The emulator's tenant model: seeding, provisioning, persistence, thread safety."""

from __future__ import annotations

import base64
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sharelift.emulator.graph.downloads import parse_range
from sharelift.emulator.graph.wire import iso, parse_iso
from sharelift.emulator.settings import EmulatorSettings
from sharelift.emulator.store import (
    DEFAULT_USERS,
    SYSTEM_IDENTITY,
    Content,
    Drive,
    DriveError,
    Stamp,
    Store,
    UnknownUserError,
    UnlicensedUserError,
    UserSpec,
    check_name,
    conflict_candidate,
)
from sharelift.emulator.store.schema import MIGRATIONS
from sharelift.errors import EmulatorError
from sharelift.quickxorhash import QuickXorHash


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(EmulatorSettings(data_dir=tmp_path))
    s.tenant.seed()
    return s


def test_default_tenant(store: Store) -> None:
    upns = {u.upn: u for u in store.tenant.users()}
    assert set(upns) == {f"{s.upn}@contoso.com" for s in DEFAULT_USERS}
    assert upns["megan@contoso.com"].drive_id is not None
    assert upns["nestor@contoso.com"].drive_id is None
    assert not upns["diego@contoso.com"].licensed
    urls = {s.web_url for s in store.tenant.sites()}
    assert {
        "https://contoso.sharepoint.com",
        "https://contoso.sharepoint.com/sites/Team",
        "https://contoso.sharepoint.com/sites/Marketing",
        "https://contoso-my.sharepoint.com/personal/megan_contoso_com",
    } <= urls
    team = store.tenant.site_by_path("contoso.sharepoint.com", "/sites/team")
    assert team is not None and team.id.startswith("contoso.sharepoint.com,")
    drives = store.tenant.drives(team.id)
    assert [d.web_url for d in drives] == [
        "https://contoso.sharepoint.com/sites/Team/Shared%20Documents",
        "https://contoso.sharepoint.com/sites/Team/Archive",
    ]
    summary = {d["webUrl"]: d for d in store.tenant.drives_summary()}
    megan = summary["https://contoso-my.sharepoint.com/personal/megan_contoso_com/Documents"]
    assert megan["owner"] == "megan@contoso.com" and megan["driveType"] == "business"
    assert megan["id"].startswith("b!")


def test_provisioning(store: Store) -> None:
    drive_id = store.tenant.provision_onedrive("Nestor@contoso.com")
    assert store.tenant.provision_onedrive("nestor@contoso.com") == drive_id
    drive = store.tenant.drive(drive_id)
    assert drive is not None and drive.name == "OneDrive" and drive.drive_type == "business"
    with pytest.raises(UnlicensedUserError):
        store.tenant.provision_onedrive("diego@contoso.com")
    with pytest.raises(UnknownUserError):
        store.tenant.provision_onedrive("nobody@contoso.com")


def test_seed_is_idempotent_and_survives_restart(tmp_path: Path) -> None:
    settings = EmulatorSettings(data_dir=tmp_path)
    first = Store.open(settings)
    first.tenant.seed([UserSpec("ann@fabrikam.com", "Ann Example")])
    drive_id = first.tenant.user("ann@fabrikam.com").drive_id  # type: ignore[union-attr]
    assert drive_id is not None
    root = first.tenant.drive(drive_id).root_id  # type: ignore[union-attr]
    folder, _ = first.folders.create(drive_id, root, "Keep", "fail", Stamp(SYSTEM_IDENTITY))
    first.close()

    again = Store.open(settings)
    again.tenant.seed([UserSpec("ann@fabrikam.com", "Ann Example")])
    assert len(again.tenant.sites()) == len({s.id for s in again.tenant.sites()})
    assert again.tenant.user("ann@fabrikam.com").drive_id == drive_id  # type: ignore[union-attr]
    assert again.items.child(drive_id, root, "keep") == folder
    again.close()


def test_threads_never_duplicate_names(store: Store) -> None:
    drive_id = store.tenant.user("megan@contoso.com").drive_id  # type: ignore[union-attr]
    assert drive_id is not None
    root = store.tenant.drive(drive_id).root_id  # type: ignore[union-attr]

    def upload(i: int) -> str:
        content = store.files.stage([f"body {i}".encode()])
        item, _ = store.files.put(
            drive_id, root, "same.txt", content, "rename", Stamp(SYSTEM_IDENTITY)
        )
        return item.name

    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(upload, range(40)))
    assert len(set(names)) == 40
    assert "same.txt" in names and "same 39.txt" in names
    listed = store.items.children(drive_id, root, None, 1000)
    assert len(listed) == 40
    assert store.items.get(drive_id, root).child_count == 40  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name",
    ["a:b", "a*b", 'a"b', "a<b", "a>b", "a?b", "a|b", "a\\b", " lead", "trail ", "CON", "lpt1",
     "x_vti_y", "desktop.ini", ".lock", "~$doc.docx", "dot.", "x" * 256],
)  # fmt: skip
def test_refused_names(name: str) -> None:
    with pytest.raises(DriveError) as info:
        check_name(name, is_folder=False, at_root=False)
    assert (info.value.status, info.value.code) == (400, "invalidRequest")


def test_accepted_names_and_rename_candidates() -> None:
    for name in ["a b.txt", "x" * 255, "über+plus#hash%.txt", "forms", "con.d", "nul.txt", "~file"]:
        check_name(name, is_folder=False, at_root=True)
    with pytest.raises(DriveError):
        check_name("Forms", is_folder=True, at_root=True)
    check_name("Forms", is_folder=True, at_root=False)
    assert conflict_candidate("a.txt", False, 1) == "a 1.txt"
    assert conflict_candidate("a.tar.gz", False, 2) == "a.tar 2.gz"
    assert conflict_candidate("folder.v2", True, 1) == "folder.v2 1"
    assert conflict_candidate(".env", False, 1) == ".env 1"


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "emulator.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(EmulatorError, match="not an emulator database"):
        Store.open(EmulatorSettings(data_dir=tmp_path))


@given(st.integers(0, 10_000), st.integers(0, 20_000), st.integers(0, 20_000))
def test_ranges_stay_inside_the_file(size: int, a: int, b: int) -> None:
    for header in (f"bytes={a}-{b}", f"bytes={a}-", f"bytes=-{b}"):
        parsed = parse_range(header, size)
        if parsed is not None:
            start, end = parsed
            assert 0 <= start <= end < size


@given(st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2100, 1, 1)))
def test_timestamps_round_trip_to_the_second(moment: datetime) -> None:
    stamp = moment.replace(tzinfo=UTC)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # nine fraction digits, as Go sends
    assert iso(parse_iso(text)) == stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_commit_hook_changes_what_is_stored(store: Store) -> None:
    drive_id = store.tenant.user("megan@contoso.com").drive_id  # type: ignore[union-attr]
    assert drive_id is not None
    root = store.tenant.drive(drive_id).root_id  # type: ignore[union-attr]
    seen: list[tuple[str, str, int]] = []

    def stamp_docx(drive: Drive, name: str, content: Content) -> Content:
        seen.append((drive.drive_type, name, content.size))
        if not name.endswith(".docx"):
            return content
        return store.files.stage([content.path.read_bytes(), b"+metadata"])

    store.files.add_commit_hook(stamp_docx)
    by = Stamp(SYSTEM_IDENTITY)
    doc, _ = store.files.put(drive_id, root, "a.docx", store.files.stage([b"body"]), "fail", by)
    txt, _ = store.files.put(drive_id, root, "a.txt", store.files.stage([b"body"]), "fail", by)
    again = store.files.replace(drive_id, doc.id, store.files.stage([b"new body"]), by)
    assert seen == [("business", "a.docx", 4), ("business", "a.txt", 4), ("business", "a.docx", 8)]
    assert (doc.size, txt.size, again.size) == (13, 4, 17)
    assert doc.qxh == base64.b64encode(QuickXorHash(b"body+metadata").digest()).decode()
    assert again.content_key is not None
    assert store.files.content_path(again.content_key).read_bytes() == b"new body+metadata"
    assert list(store.files.tmp_dir.iterdir()) == []


def test_a_commit_hook_may_refuse_a_commit(store: Store) -> None:
    drive_id = store.tenant.user("megan@contoso.com").drive_id  # type: ignore[union-attr]
    assert drive_id is not None
    root = store.tenant.drive(drive_id).root_id  # type: ignore[union-attr]

    def refuse(drive: Drive, name: str, content: Content) -> Content:
        raise DriveError(404, "itemNotFound", "The resource could not be found.")

    store.files.add_commit_hook(refuse)
    with pytest.raises(DriveError):
        store.files.put(
            drive_id, root, "a.docx", store.files.stage([b"x"]), "fail", Stamp(SYSTEM_IDENTITY)
        )
    assert store.items.child(drive_id, root, "a.docx") is None
    assert list(store.files.tmp_dir.iterdir()) == []


def test_folders_on_a_path_are_created_once(store: Store) -> None:
    drive_id = store.tenant.user("megan@contoso.com").drive_id  # type: ignore[union-attr]
    assert drive_id is not None
    root = store.tenant.drive(drive_id).root_id  # type: ignore[union-attr]
    by = Stamp(SYSTEM_IDENTITY)
    with ThreadPoolExecutor(4) as pool:
        made = list(
            pool.map(lambda _: store.folders.ensure(drive_id, root, ["a", "b"], by), range(8))
        )
    assert len({f.id for f in made}) == 1
    found = store.items.resolve(drive_id, root, "/A/b/")
    assert found is not None and found.id == made[0].id
    store.files.put(drive_id, made[0].id, "f.txt", store.files.stage([b"x"]), "fail", by)
    with pytest.raises(DriveError) as info:
        store.folders.ensure(drive_id, root, ["a", "b", "f.txt", "c"], by)
    assert info.value.status == 404


def test_a_data_folder_from_before_named_migrations_opens(tmp_path: Path) -> None:
    settings = EmulatorSettings(data_dir=tmp_path)
    first = Store.open(settings)
    first.tenant.seed()
    users = first.tenant.users()
    first.close()
    conn = sqlite3.connect(tmp_path / "emulator.db")
    conn.execute("DROP TABLE schema_migrations")
    conn.commit()
    conn.close()
    again = Store.open(settings)
    assert again.tenant.users() == users
    applied = again.db.all("SELECT name FROM schema_migrations")
    assert [name for (name,) in applied] == [name for name, _ in MIGRATIONS]
    again.close()

"""The planner: every combination of source, state and target for one folder."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sharelift.plan import Action, RemoteItem, plan_folder
from sharelift.source.rules import RenamePolicy, decide_siblings
from sharelift.source.walk import Listing, WalkItem, WalkProblem
from sharelift.state import KnownItem

MTIME = 1_700_000_000.0


def _file(name: str, size: int = 10, mtime: float = MTIME, **kw: object) -> WalkItem:
    return WalkItem(("docs", name), False, size, mtime, mtime, None, 1, 1, **kw)  # type: ignore[arg-type]


def _dir(name: str) -> WalkItem:
    return WalkItem(("docs", name), True, 0, MTIME, MTIME, None, 1, 1)


def _row(
    path: str,
    *,
    size: int = 10,
    mtime: float = MTIME,
    target: str | None = None,
    item_id: str | None = "ID",
    status: str = "done",
) -> KnownItem:
    return KnownItem(
        id=1,
        path=path.encode(),
        status=status,
        item_id=item_id,
        target_path=target if target is not None else path,
        size=size,
        mtime_ns=int(mtime * 1e9),
    )


def _remote(
    name: str, *, size: int = 10, modified: float = MTIME, folder: bool = False, rid: str = "R"
) -> RemoteItem:
    return RemoteItem(rid, name, folder, size, "h", datetime.fromtimestamp(modified, UTC))


def _plan(
    children: list[WalkItem],
    state: dict[bytes, KnownItem] | None = None,
    remote: dict[str, RemoteItem] | None = None,
    policy: str = "newer",
    rename: str = "underscore",
) -> dict[str, tuple[Action, str, str | None, str | None]]:
    listing = Listing(("docs",), children)
    decisions = decide_siblings(children, RenamePolicy.parse(rename))
    plans = plan_folder(listing, decisions, "docs", state or {}, remote, policy)
    return {p.item.name: (p.action, p.conflict, p.target_relpath, p.code) for p in plans}


def test_new_file_without_a_listing_expects_a_free_name() -> None:
    assert _plan([_file("a.txt")])["a.txt"] == (Action.UPLOAD, "fail", "docs/a.txt", None)


def test_unchanged_file_costs_nothing() -> None:
    state = {b"docs/a.txt": _row("docs/a.txt")}
    assert _plan([_file("a.txt")], state)["a.txt"][0] is Action.SKIP_UNCHANGED


@pytest.mark.parametrize("change", [{"size": 11}, {"mtime": MTIME + 5}])
def test_changed_file_replaces_our_own_upload(change: dict[str, float]) -> None:
    state = {b"docs/a.txt": _row("docs/a.txt")}
    assert _plan([_file("a.txt", **change)], state)["a.txt"][:2] == (Action.UPLOAD, "replace")  # type: ignore[arg-type]


def test_failed_before_is_tried_again() -> None:
    state = {b"docs/a.txt": _row("docs/a.txt", status="failed", item_id=None)}
    assert _plan([_file("a.txt")], state)["a.txt"][:2] == (Action.UPLOAD, "fail")


def test_same_size_at_target_is_compared_by_hash_first() -> None:
    remote = {"a.txt": _remote("a.txt")}
    assert _plan([_file("a.txt")], remote=remote)["a.txt"][:2] == (Action.ADOPT_IF_SAME, "replace")
    got = _plan([_file("a.txt")], remote=remote, policy="rename")["a.txt"]
    assert got[:2] == (Action.ADOPT_IF_SAME, "rename")


def test_target_newer_is_skipped_by_default() -> None:
    remote = {"a.txt": _remote("a.txt", size=99, modified=MTIME + 60)}
    assert _plan([_file("a.txt")], remote=remote)["a.txt"][0] is Action.SKIP_TARGET_NEWER
    assert _plan([_file("a.txt")], remote=remote, policy="overwrite")["a.txt"][:2] == (
        Action.UPLOAD,
        "replace",
    )
    assert _plan([_file("a.txt")], remote=remote, policy="rename")["a.txt"][:2] == (
        Action.UPLOAD,
        "rename",
    )


def test_target_older_is_replaced() -> None:
    remote = {"a.txt": _remote("a.txt", size=99, modified=MTIME - 3600)}
    assert _plan([_file("a.txt")], remote=remote)["a.txt"][:2] == (Action.UPLOAD, "replace")


def test_remote_match_is_case_insensitive() -> None:
    remote = {"a.txt": _remote("A.TXT", size=99, modified=MTIME + 60)}
    assert _plan([_file("a.txt")], remote=remote)["a.txt"][0] is Action.SKIP_TARGET_NEWER


def test_a_folder_in_the_way_is_a_failure() -> None:
    remote = {"a.txt": _remote("a.txt", folder=True)}
    assert _plan([_file("a.txt")], remote=remote)["a.txt"][3] == "TARGET_IS_FOLDER"


def test_folders() -> None:
    assert _plan([_dir("new")])["new"][0] is Action.CREATE_FOLDER
    state = {b"docs/old": _row("docs/old")}
    assert _plan([_dir("old")], state)["old"][0] is Action.FOLDER_KNOWN
    remote = {"there": _remote("there", folder=True)}
    assert _plan([_dir("there")], remote=remote)["there"][0] is Action.FOLDER_KNOWN


def test_rules_filters_and_source_problems() -> None:
    children = [
        _file("x" * 300),
        _file("CON"),
        _file("a:b.txt"),
        _file("skip.tmp", filtered="--skip-extensions"),
        _file("locked.db", problem=WalkProblem.UNREADABLE_FILE, detail="Permission denied"),
        _file("link", problem=WalkProblem.SYMLINK_NOT_FOLLOWED, detail="not followed"),
        _file("pipe", problem=WalkProblem.SPECIAL_FILE, detail="not a regular file"),
    ]
    got = _plan(children)
    assert got["x" * 300][0] is Action.BLOCK and got["x" * 300][3] == "NAME_TOO_LONG"
    assert got["CON"] == (Action.UPLOAD, "fail", "docs/CON_", "BLOCKED_NAME")
    assert got["a:b.txt"] == (Action.UPLOAD, "fail", "docs/a_b.txt", "INVALID_CHARACTER")
    assert got["skip.tmp"][0] is Action.SKIP_FILTERED
    assert (
        got["locked.db"][:1] == (Action.FAIL_SOURCE,) and got["locked.db"][3] == "UNREADABLE_FILE"
    )
    # sharelift's own choice (scan calls them skipped): never a failure
    assert got["link"][0] is Action.SKIP_SOURCE and got["link"][3] == "SYMLINK_NOT_FOLLOWED"
    assert got["pipe"][0] is Action.SKIP_SOURCE and got["pipe"][3] == "SPECIAL_FILE"


def test_rename_off_skips_what_would_need_a_new_name() -> None:
    got = _plan([_file("a:b.txt")], rename="off")
    assert got["a:b.txt"][0] is Action.SKIP_RULE


def test_a_renamed_target_changes_the_plan() -> None:
    # Uploaded before as "a_b.txt"; the policy now gives "a＿b.txt": upload again under it.
    state = {b"docs/a:b.txt": _row("docs/a:b.txt", target="docs/a_b.txt")}
    got = _plan([_file("a:b.txt")], state, rename="fullwidth")["a:b.txt"]
    assert got[0] is Action.UPLOAD and got[2] != "docs/a_b.txt"


def test_unknown_policy() -> None:
    with pytest.raises(ValueError, match="conflict policy"):
        plan_folder(Listing((), []), [], "", {}, None, "clobber")

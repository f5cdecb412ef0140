"""The source walk over awkward trees: deep, wide, non-ASCII, NFD, unreadable, loops, sparse."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
import tempfile
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sharelift.errors import SourceError, UsageError
from sharelift.source.walk import ScanOptions, WalkProblem, walk, walk_listings

DEFAULT = ScanOptions()


def rel(root: Path, **kw: object) -> list[str]:
    return [item.relpath for item in walk(root, ScanOptions(**kw))]  # type: ignore[arg-type]


def kept(root: Path, **kw: object) -> list[str]:
    options = ScanOptions(**kw)  # type: ignore[arg-type]
    return [i.relpath for i in walk(root, options) if i.filtered is None]


def snapshot(paths: list[Path]) -> dict[Path, tuple[int, int, int, int]]:
    """Mode, size, mtime and atime (ns) of each path, by lstat only (listing would touch atime)."""
    out = {}
    for path in paths:
        st = os.lstat(path)
        out[path] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_atime_ns)
    return out


def test_missing_or_non_folder_source_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        list(walk(tmp_path / "nope"))
    (tmp_path / "f").write_text("x")
    with pytest.raises(SourceError, match="not a folder"):
        list(walk(tmp_path / "f"))


def test_order_is_stable_depth_first_and_sorted(tmp_path: Path) -> None:
    for p in ("b/z", "b/a", "a/y/deep", "c"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_text("x")
    listings = [lst.parts for lst in walk_listings(tmp_path, DEFAULT)]
    assert listings == [(), ("a",), ("a", "y"), ("b",)]
    assert rel(tmp_path) == ["a", "b", "c", "a/y", "a/y/deep", "b/a", "b/z"]
    assert rel(tmp_path) == rel(tmp_path)


def test_deep_tree(tmp_path: Path) -> None:
    depth = 300
    path = tmp_path
    for i in range(depth):
        path = path / f"d{i:03}"
    path.mkdir(parents=True)
    (path / "leaf.txt").write_bytes(b"leaf")
    items = list(walk(tmp_path))
    assert len(items) == depth + 1
    assert items[-1].parts[-1] == "leaf.txt" and len(items[-1].parts) == depth + 1
    assert items[-1].size == 4


def test_tree_deeper_than_the_os_path_limit(tmp_path: Path) -> None:
    # 40 levels of 154-character names: about 6,200 bytes, over Linux's PATH_MAX of 4,096.
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        for i in range(40):
            name = f"{i:03}" + "x" * 151
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("leaf.txt", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    items = list(walk(tmp_path))
    assert len(items) == 41
    assert all(i.problem is None for i in items)
    assert items[-1].name == "leaf.txt" and len(items[-1].relpath) > 6000


@pytest.mark.slow
def test_wide_folder(tmp_path: Path) -> None:
    for i in range(3000):
        (tmp_path / f"f{i:05}").touch()
    names = rel(tmp_path)
    assert len(names) == 3000
    assert names == sorted(names)


def test_non_ascii_nfd_and_non_utf8_names(tmp_path: Path) -> None:
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    for name in (nfc, nfd, "日本語.txt", "emoji 🙂"):
        (tmp_path / name).touch()
    raw = os.path.join(os.fsencode(tmp_path), b"latin\xe9.txt")
    with open(raw, "wb"):
        pass
    names = set(rel(tmp_path))
    assert {nfc, nfd, "日本語.txt", "emoji 🙂"} <= names  # both normal forms survive, unchanged
    assert "latin\udce9.txt" in names  # surrogate escape for a byte that is not UTF-8


def test_zero_byte_and_sparse_large_files(tmp_path: Path) -> None:
    (tmp_path / "empty").touch()
    with open(tmp_path / "sparse", "wb") as f:
        f.truncate(300 * 1024**3)  # 300 GiB, no blocks allocated
    sizes = {i.relpath: i.size for i in walk(tmp_path)}
    assert sizes == {"empty": 0, "sparse": 300 * 1024**3}


def test_symlinks_are_not_followed_by_default(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "filelink").symlink_to("real/f")
    items = {i.relpath: i for i in walk(tmp_path)}
    assert set(items) == {"filelink", "link", "real", "real/f"}
    assert items["link"].problem is WalkProblem.SYMLINK_NOT_FOLLOWED
    assert items["link"].is_symlink and not items["link"].is_dir


def test_followed_symlinks_and_loops(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_text("xy")
    (tmp_path / "a" / "b" / "up").symlink_to("../..")  # loop back to the root
    (tmp_path / "a" / "self").symlink_to(".")  # loop to its own folder
    (tmp_path / "alias").symlink_to("a/b")  # not a loop: a second copy
    (tmp_path / "dangling").symlink_to("nowhere")
    listings = {
        lst.parts: lst for lst in walk_listings(tmp_path, ScanOptions(follow_symlinks=True))
    }
    assert listings[("a", "b", "up")].problem is WalkProblem.SYMLINK_LOOP
    assert listings[("a", "self")].problem is WalkProblem.SYMLINK_LOOP
    assert [c.name for c in listings[("alias",)].children] == ["f", "up"]
    dangling = next(c for c in listings[()].children if c.name == "dangling")
    assert dangling.problem is WalkProblem.BROKEN_SYMLINK
    file_via_alias = next(c for c in listings[("alias",)].children if c.name == "f")
    assert file_via_alias.size == 2 and file_via_alias.is_symlink is False


def test_special_files_are_reported_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # opening it would block the walk
    [item] = list(walk(tmp_path))
    assert item.problem is WalkProblem.SPECIAL_FILE


def test_hidden_items(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").touch()
    (tmp_path / ".env").touch()
    (tmp_path / "visible").touch()
    assert kept(tmp_path) == [".env", ".git", "visible", ".git/config"]  # included by default
    assert kept(tmp_path, skip_hidden=True) == ["visible"]
    filtered = {i.relpath: i.filtered for i in walk(tmp_path, ScanOptions(skip_hidden=True))}
    assert filtered == {".env": "hidden", ".git": "hidden", "visible": None}  # not entered


def test_include_exclude_globs(tmp_path: Path) -> None:
    for p in ("docs/a.txt", "docs/b.pdf", "tmp/x.txt", "top.txt", "build/out/a.txt"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).touch()
    assert kept(tmp_path, exclude=("tmp",)) == [
        "build", "docs", "top.txt", "build/out", "build/out/a.txt", "docs/a.txt", "docs/b.pdf",
    ]  # fmt: skip
    assert kept(tmp_path, include=("*.txt",), exclude=("build/out",)) == [
        "build", "docs", "tmp", "top.txt", "docs/a.txt", "tmp/x.txt",
    ]  # fmt: skip
    assert kept(tmp_path, include=("docs/*",)) == ["build", "docs", "tmp", "build/out",
                                                   "docs/a.txt", "docs/b.pdf"]  # fmt: skip


def test_skip_extensions_uses_the_last_extension(tmp_path: Path) -> None:
    for name in ("a.TXT", "b.tar.gz", "c.gz.txt", "d.mp3", "noext", ".mp3"):
        (tmp_path / name).touch()
    options = ScanOptions(skip_extensions=ScanOptions.parse_extensions(".txt, mp3:gz"))
    assert [i.relpath for i in walk(tmp_path, options) if i.filtered is None] == [".mp3", "noext"]
    assert ScanOptions.parse_extensions("txt:mp3") == frozenset({"txt", "mp3"})
    for bad in ("", "txt::mp3", "a.b"):
        with pytest.raises(UsageError, match="--skip-extensions"):
            ScanOptions.parse_extensions(bad)


def test_date_filters(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.touch()
    new.touch()
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp()
    os.utime(old, (past, past))
    cut = ScanOptions.parse_date("--modified-after", "2023-06-01")
    assert kept(tmp_path, modified_after=cut) == ["new"]
    # Birth time is not reported on Linux: the created-after filter then keeps the file.
    items = list(walk(tmp_path, ScanOptions(created_after=cut)))
    if all(i.birthtime is None for i in items):
        assert all(i.filtered is None for i in items)
    with pytest.raises(UsageError, match="--created-after"):
        ScanOptions.parse_date("--created-after", "last week")


def test_walk_changes_nothing_on_the_source(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "f").write_text("content")
    (tmp_path / "l").symlink_to("d")
    paths = [tmp_path / "d", tmp_path / "d" / "e", tmp_path / "d" / "f", tmp_path / "l"]
    # Old access times: any ordinary read would now update them, even under relatime.
    past = 1_500_000_000
    for p in paths[:3]:
        os.utime(p, (past, past))
    before = snapshot(paths)
    assert len(list(walk(tmp_path))) == 4
    assert snapshot(paths) == before


@pytest.mark.slow
def test_memory_stays_bounded(tmp_path: Path) -> None:
    def make(root: Path, folders: int) -> None:
        for d in range(folders):
            (root / f"d{d:04}").mkdir(parents=True)
            for f in range(100):
                (root / f"d{d:04}" / f"file-with-a-longish-name-{f:04}.dat").touch()

    def peak(root: Path) -> int:
        tracemalloc.start()
        try:
            count = sum(1 for _ in walk(root))
            return tracemalloc.get_traced_memory()[1] if count else 0
        finally:
            tracemalloc.stop()

    make(tmp_path / "small", 10)
    make(tmp_path / "large", 100)
    # Ten times the tree, about the same peak: only one folder's listing is held at a time.
    assert peak(tmp_path / "large") < 2 * peak(tmp_path / "small") + 100_000


# --- unreadable entries -------------------------------------------------------------------------
# chmod 000 does not stop root, and the tests run as root in CI: the walk then runs in a child
# process as "nobody" so that permissions bite for real.


@dataclass(frozen=True)
class _Child:
    name: str
    problem: WalkProblem | None


@dataclass(frozen=True)
class Listing:
    parts: tuple[str, ...]
    children: list[_Child]
    problem: WalkProblem | None


@pytest.fixture
def world_tree() -> Iterator[Path]:
    """A tree under a world-traversable temporary folder (tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="sharelift-walk-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for dirpath, _, _ in os.walk(base):
            os.chmod(dirpath, 0o700)
        shutil.rmtree(base)


def _walk_as(tree: Path, user: int | None) -> dict[tuple[str, ...], Listing]:
    """Walk in a forked child that drops to ``user`` first (the interpreter itself may live
    where that user cannot read, so nothing is imported after the fork)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(read_end)
            if user is not None:
                os.setgroups([])
                os.setgid(user)
                os.setuid(user)
            listings = [
                [list(x.parts), x.problem, [[c.name, c.problem] for c in x.children]]
                for x in walk_listings(tree, DEFAULT)
            ]
            os.write(write_end, json.dumps(listings).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        data = stream.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return {
        tuple(parts): Listing(
            tuple(parts),
            [_Child(name, WalkProblem(p) if p else None) for name, p in children],
            WalkProblem(problem) if problem else None,
        )
        for parts, problem, children in json.loads(data)
    }


def test_unreadable_folders_and_files_are_reported(world_tree: Path) -> None:
    (world_tree / "ok").mkdir()
    (world_tree / "ok" / "fine.txt").write_text("x")
    (world_tree / "locked").mkdir()
    (world_tree / "locked" / "hidden-inside.txt").write_text("x")
    (world_tree / "secret.txt").write_text("x")
    (world_tree / "locked").chmod(0)
    (world_tree / "secret.txt").chmod(0)
    (world_tree / "ok").chmod(0o755)
    (world_tree / "ok" / "fine.txt").chmod(0o644)
    user = 65534 if os.geteuid() == 0 else None
    if user is None and os.access(world_tree / "secret.txt", os.R_OK):
        pytest.skip("permissions do not apply to this user")
    listings = _walk_as(world_tree, user)
    assert listings[("locked",)].problem is WalkProblem.UNREADABLE_FOLDER
    assert listings[("locked",)].children == []
    root_children = {c.name: c.problem for c in listings[()].children}
    assert root_children == {
        "locked": None,
        "ok": None,
        "secret.txt": WalkProblem.UNREADABLE_FILE,
    }
    assert listings[("ok",)].children == [_Child("fine.txt", None)]


def test_entry_that_vanishes_mid_walk_is_reported(tmp_path: Path) -> None:
    (tmp_path / "gone").mkdir()
    listings = walk_listings(tmp_path, DEFAULT)
    root = next(listings)
    assert [c.name for c in root.children] == ["gone"]
    (tmp_path / "gone").rmdir()  # removed between its parent's listing and its own
    gone = next(listings)
    assert gone.parts == ("gone",) and gone.problem is WalkProblem.UNREADABLE_FOLDER


def test_file_modes_untouched_by_unreadable_walk(world_tree: Path) -> None:
    (world_tree / "f").write_text("x")
    (world_tree / "f").chmod(0)
    mode = stat.S_IMODE(os.stat(world_tree / "f").st_mode)
    list(walk(world_tree))
    assert stat.S_IMODE(os.stat(world_tree / "f").st_mode) == mode == 0


def test_a_walk_can_start_below_source_and_leave_folders_out(tmp_path: Path) -> None:
    for rel in ("a/x.txt", "a/b/y.txt", "a/b/c/z.txt", "a/d/w.txt", "top.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    asked: list[tuple[str, ...]] = []

    def prune(parts: tuple[str, ...]) -> bool:
        asked.append(parts)
        return parts == ("a", "b", "c")

    options = ScanOptions(exclude=("a/d",))
    listings = list(walk_listings(tmp_path, options, start=("a",), prune=prune))
    assert [listing.parts for listing in listings] == [("a",), ("a", "b")]
    assert [c.relpath for c in listings[0].children] == ["a/b", "a/d", "a/x.txt"]
    assert listings[0].children[1].filtered == "exclude"  # a pattern of SOURCE's paths
    assert asked == [("a", "b"), ("a", "b", "c")]  # never the start itself
    deep = list(walk_listings(tmp_path, ScanOptions(), start=("a", "b", "c")))
    assert [(x.parts, [c.name for c in x.children]) for x in deep] == [(("a", "b", "c"), ["z.txt"])]
    gone = list(walk_listings(tmp_path, ScanOptions(), start=("nowhere", "x")))
    assert [(x.parts, x.problem) for x in gone] == [
        (("nowhere", "x"), WalkProblem.UNREADABLE_FOLDER)
    ]

"""rclone's OneDrive backend (the Debian build, 1.60.x) against the emulator, unchanged
(through the CONNECT proxy that support/rclone.py sets up)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sharelift.emulator.server import EmulatorServer
from support.rclone import Rclone, rclone_for

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not on PATH"),
]

_LSL = re.compile(r"^\s*(\d+) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{9}) (.+)$")
_BIG = 15 * 1024 * 1024

# Local tree: nested folders, an empty file, a 15 MB file (upload session), non-ASCII names.
_FILES: dict[str, bytes] = {
    "docs/readme.txt": b"hello from the file share\n",
    "docs/2024/q1/report.csv": b"a,b\n1,2\n" * 100,
    "docs/empty.txt": b"",
    "Übersicht/naïve café.txt": "crème brûlée\n".encode(),
    "日本語/ファイル 1.txt": "こんにちは\n".encode(),
    "old/stale.txt": b"to be deleted by sync\n",
}
_MTIME = datetime(2021, 3, 4, 5, 6, 7, 654321, tzinfo=UTC).timestamp()


@pytest.fixture
def rclone(
    emulator_factory: Callable[..., EmulatorServer],
    app_token: Callable[..., str],
    tmp_path: Path,
) -> Iterator[Rclone]:
    server = emulator_factory()
    with rclone_for(server, app_token(server), tmp_path) as client:
        yield client


def _make_tree(root: Path) -> None:
    for rel, data in _FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (_MTIME, _MTIME))
    big = root / "media/big.bin"
    big.parent.mkdir(parents=True)
    big.write_bytes(os.urandom(_BIG))
    os.utime(big, (_MTIME + 60, _MTIME + 60))


def _local_listing(root: Path) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            stat = path.stat()
            when = datetime.fromtimestamp(int(stat.st_mtime), UTC)
            rel = path.relative_to(root).as_posix()
            out[rel] = (stat.st_size, when.strftime("%Y-%m-%d %H:%M:%S"))
    return out


@pytest.mark.slow
def test_rclone_onedrive_backend(rclone: Rclone, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _make_tree(src)

    rclone("copy", str(src), "od:share")
    assert set(rclone("lsd", "od:share").stdout.split()) >= {"docs", "Übersicht", "日本語"}
    assert "share" in rclone("lsd", "od:").stdout

    listing = rclone.lsl("od:share")
    assert listing == _local_listing(src)
    assert listing["docs/empty.txt"][0] == 0
    assert listing["media/big.bin"][0] == _BIG

    checked = rclone("check", str(src), "od:share")
    assert "0 differences found" in checked.stderr
    assert "No common hash found" not in checked.stderr
    downloaded = rclone("check", "--download", str(src), "od:share")
    assert "0 differences found" in downloaded.stderr

    # sync with deletions: a file and its folder leave the source, one file changes
    shutil.rmtree(src / "old")
    (src / "docs/readme.txt").write_bytes(b"hello again, longer this time\n")
    rclone("sync", str(src), "od:share")
    after = rclone.lsl("od:share")
    assert "old/stale.txt" not in after
    assert after == _local_listing(src)
    assert "old" not in rclone("lsd", "od:share").stdout

    rclone("moveto", "od:share/docs/2024/q1/report.csv", "od:share/docs/2024/q1/final.csv")
    moved = rclone.lsl("od:share/docs/2024")
    assert set(moved) == {"q1/final.csv"}
    assert moved["q1/final.csv"] == after["docs/2024/q1/report.csv"]

    about = rclone("about", "od:").stdout
    assert re.search(r"^Total:\s+\S", about, re.M), about
    assert re.search(r"^Used:\s+\S", about, re.M), about
    assert re.search(r"^Free:\s+\S", about, re.M), about

    # same size, same time, other bytes: only the hash can tell, and check must say so
    (src / "docs/2024/q1/report.csv").rename(src / "docs/2024/q1/final.csv")
    target = src / "Übersicht/naïve café.txt"
    data = bytearray(target.read_bytes())
    data[0] ^= 0x20
    target.write_bytes(bytes(data))
    os.utime(target, (_MTIME, _MTIME))
    differs = rclone("check", str(src), "od:share", check=False)
    assert differs.returncode != 0
    assert "1 differences found" in differs.stderr
    assert "naïve café.txt" in differs.stderr

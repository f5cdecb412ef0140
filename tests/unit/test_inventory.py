"""`scan --inventory`: every item, each folder's totals, streamed in bounded memory."""

from __future__ import annotations

import csv
import os
import tracemalloc
from pathlib import Path

import pytest

from sharelift.cli import main
from sharelift.errors import EXIT_USAGE
from sharelift.inventory import FOLDER_COLUMNS, FOLDERS_CSV, INVENTORY_COLUMNS, INVENTORY_CSV
from sharelift.scanner import run_scan
from sharelift.source import ScanOptions


def _read(path: Path) -> list[dict[str, str]]:
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _tree(root: Path) -> None:
    files = {
        "a/one.txt": 10,
        "a/b/two.txt": 20,
        "a/b/c/three.txt": 30,
        "a/b/bad:name.txt": 5,
        "d/four.bin": 40,
        "top.txt": 1,
        "skip.tmp": 7,
    }
    for rel, size in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    (root / "empty").mkdir()
    os.symlink("nowhere", root / "d" / "link")


def test_every_item_and_each_folders_totals(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src)
    reports = tmp_path / "reports"
    code = main(
        ["scan", str(src), "--report", str(reports), "--inventory", "--exclude", "*.tmp", "--json"]
    )
    assert code == 0
    items = _read(reports / INVENTORY_CSV)
    assert list(items[0]) == list(INVENTORY_COLUMNS)
    by_path = {os.path.relpath(r["Source"], src): r for r in items}
    # every item, not only those with findings: 7 files, 1 link and 5 folders
    assert len(by_path) == 13
    assert by_path["a/b/c/three.txt"]["Status"] == "migrate"
    assert by_path["a/b/c/three.txt"]["Target path"] == "/a/b/c/three.txt"
    assert by_path["a/b/c/three.txt"]["Modified (UTC)"][4] == "-"
    assert by_path["a/b/bad:name.txt"]["Codes"] == "INVALID_CHARACTER"
    assert by_path["a/b/bad:name.txt"]["Target path"] == "/a/b/bad_name.txt"
    assert by_path["skip.tmp"]["Status"] == "filtered" and by_path["skip.tmp"]["Filter"]
    assert by_path["d/link"]["Codes"] == "SYMLINK_NOT_FOLLOWED" and by_path["d/link"]["Message"]
    # a link not followed is neither called a file nor a folder: reading it would touch it
    assert by_path["d/link"]["Item type"] == "Link"
    assert by_path["a/b/c"]["Item type"] == "Folder"
    assert by_path["a/b/c/three.txt"]["Item type"] == "File"

    folders = _read(reports / FOLDERS_CSV)
    assert list(folders[0]) == list(FOLDER_COLUMNS)
    rows = {os.path.relpath(r["Folder"], src): r for r in folders}
    assert set(rows) == {".", "a", "a/b", "a/b/c", "d", "empty"}
    order = [os.path.relpath(r["Folder"], src) for r in folders]
    assert order.index("a/b/c") < order.index("a/b") < order.index("a") < order.index(".")
    ab = rows["a/b"]
    assert (ab["Files"], ab["Folders"], ab["Bytes"], ab["Items with findings"]) == (
        "2",
        "1",
        "25",
        "1",
    )
    assert (ab["Files (with subfolders)"], ab["Bytes (with subfolders)"]) == ("3", "55")
    root = rows["."]
    assert root["Files (with subfolders)"] == "8"  # the filtered file and the link count
    assert root["Folders (with subfolders)"] == "5"
    assert root["Bytes (with subfolders)"] == str(10 + 20 + 30 + 5 + 40 + 1 + 7)
    assert root["Items with findings (with subfolders)"] == "2"
    assert rows["empty"]["Files (with subfolders)"] == "0"


def test_inventory_needs_a_report_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", str(tmp_path), "--inventory"]) == EXIT_USAGE
    assert "--inventory: needs a report folder" in capsys.readouterr().err


def _peak(root: Path, reports: Path) -> int:
    tracemalloc.start()
    try:
        run_scan(root, ScanOptions(), report_dir=reports, inventory=True)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_does_not_grow_with_the_tree(tmp_path: Path) -> None:
    """Ten times the items, about the same peak: both files are written as the walk goes."""

    def make(root: Path, folders: int) -> None:
        for f in range(folders):
            folder = root / f"d{f // 10}" / f"e{f}"
            folder.mkdir(parents=True)
            for i in range(20):
                (folder / f"file{i}.txt").touch()

    small, large = tmp_path / "small", tmp_path / "large"
    make(small, 10)
    make(large, 100)
    peak_small = _peak(small, tmp_path / "r1")
    peak_large = _peak(large, tmp_path / "r2")
    assert len(_read(tmp_path / "r2" / INVENTORY_CSV)) == 100 * 21 + 10
    assert peak_large < peak_small * 2, (peak_small, peak_large)

"""docs/outcomes.md, row by row: a tree that meets every outcome the emulator can produce,
migrated through `sharelift migrate` in a child process, then its reports and exit codes read.

Skips never fail a run (exit 0); failures do (exit 1); every row of the ItemReport has a
category of the table and, when not migrated, a message saying why. The rows an interrupted
round produces are walked in test_reports_rebuild.py; Verification and Permission failures,
which the emulator cannot be made to produce, through `describe` here.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from migrate_helpers import graph_client, megan, run_migrate, write_tree

from sharelift.emulator.server import EmulatorServer
from sharelift.report.outcomes import CATEGORIES, describe
from sharelift.state import ItemRecord, ItemStatus

DOCS = Path(__file__).resolve().parents[2] / "docs" / "outcomes.md"
WRITE_ONLY = Path("/sys/bus/pci/rescan")
"""Readable by access(), yet open() fails even for root (see test_migrate_kill.py)."""
LONG = ("a" * 140, "b" * 140, "c" * 140)


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return emulator_factory()


@pytest.fixture
def graph(server: EmulatorServer, app_token: Callable[..., str]) -> Iterator[httpx.Client]:
    with graph_client(server, app_token(server)) as client:
        yield client


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _items(reports: Path, src: Path) -> dict[str, tuple[str, str, str]]:
    """ItemReport rows by path below `src`: (Status, Result category, Error code); every
    row that is not migrated says why."""
    found = {}
    known = {c.name for c in CATEGORIES}
    for row in _csv(reports / "ItemReport.csv"):
        assert row["Result category"] in known, row
        if row["Status"] != "Migrated":
            assert row["Message"].strip(), row
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row["End time"]), row
        found[os.path.relpath(row["Source"], src)] = (
            row["Status"],
            row["Result category"],
            row["Error code"],
        )
    return found


def _summary(reports: Path) -> dict[str, str]:
    (row,) = _csv(reports / "SummaryReport.csv")
    return row


def _failure_codes(reports: Path) -> set[str]:
    return {row["Error code"] for row in _csv(reports / "FailureSummary.csv")}


def _opens(path: Path) -> bool:
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_every_outcome_through_the_command_line(
    server: EmulatorServer, graph: httpx.Client, tmp_path: Path
) -> None:
    _, drive = megan(server)
    src, state = tmp_path / "src", tmp_path / "state.db"
    write_tree(
        src,
        {
            "plain.txt": b"plain",
            "a:b.txt": b"renamed",
            "same.txt": b"already there",
            "newer.txt": b"older at the source",
            "clash.txt": b"a folder is in the way",
            "blocked_dir/child.txt": b"its folder cannot be made",
            "notes.tmp": b"filtered",
            "big.bin": os.urandom(3_000_000),
            "/".join((*LONG, "deep.txt")): b"path too long",
        },
    )
    os.utime(src / "newer.txt", (1_600_000_000, 1_600_000_000))
    os.mkfifo(src / "pipe")
    (src / "dangling").symlink_to(tmp_path / "nowhere")
    readable_failure = WRITE_ONLY.exists() and os.access(WRITE_ONLY, os.R_OK)
    if readable_failure and not _opens(WRITE_ONLY):
        (src / "rescan").symlink_to(WRITE_ONLY)
    else:
        readable_failure = False
    # What the target holds before the first run: the same bytes, a newer file, a folder where a
    # file goes, and a file where a folder goes.
    for name, body in (("same.txt", b"already there"), ("newer.txt", b"newer at the target!")):
        assert graph.put(f"/drives/{drive}/root:/Out/{name}:/content", content=body).is_success
    made = graph.post(
        f"/drives/{drive}/root:/Out:/children", json={"name": "clash.txt", "folder": {}}
    )
    assert made.is_success
    assert graph.put(f"/drives/{drive}/root:/Out/blocked_dir:/content", content=b"x").is_success
    # big.bin's upload session is never answered: it fails, the rest goes on. (A full drive
    # no longer fails a file: it stops the round, exit 75, see docs/migrate.md.)
    server.set_faults(never_answer="path:*/big.bin:/createUploadSession")

    reports = tmp_path / "r1"
    run = run_migrate(
        server, src, "Out", state, "--exclude", "*.tmp", "--follow-symlinks",
        "--report", str(reports), "--workers", "2", "--chunk-size", "960k", "--read-timeout", "0.3",
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # something failed
    got = _items(reports, src)
    assert got["plain.txt"] == ("Migrated", "Migrated", "")
    assert got["same.txt"] == ("Migrated", "Migrated", "")  # found there, nothing sent
    assert got["a:b.txt"] == ("Migrated", "Migrated, renamed", "INVALID_CHARACTER")
    assert got["notes.tmp"] == ("Skipped", "Filtered out", "FILTERED")
    assert got["pipe"] == ("Skipped", "Not a regular file", "SPECIAL_FILE")
    assert got["dangling"] == ("Skipped", "Not a regular file", "BROKEN_SYMLINK")
    assert got["newer.txt"] == ("Skipped", "Target is newer", "TARGET_NEWER")
    assert got["/".join(LONG)] == ("Not migrated", "Blocked by a SharePoint limit", "PATH_TOO_LONG")
    deep = "/".join((*LONG, "deep.txt"))
    assert got[deep] == got["/".join(LONG)]  # its own rule first, then its folder's
    assert got["clash.txt"] == ("Failed", "Conflict at the target", "TARGET_IS_FOLDER")
    assert got["blocked_dir"][0] == "Failed"
    assert got["blocked_dir/child.txt"] == ("Failed", "Parent folder failed", "PARENT_NOT_CREATED")
    assert got["big.bin"][:2] == ("Failed", "Upload failure")
    if readable_failure:
        assert got["rescan"] == ("Failed", "Source read failure", "READ_ERROR")
    failed = [k for k, v in got.items() if v[0] == "Failed"]
    summary = _summary(reports)
    assert summary["Failed items"] == str(len(failed))
    assert summary["Skipped items"] == str(sum(v[0] == "Skipped" for v in got.values()))
    assert summary["Items not migrated"] == str(len(failed) + 2)  # and the two blocked
    assert summary["Migrated items"] == str(sum(v[0] == "Migrated" for v in got.values()))
    codes = _failure_codes(reports)
    assert {"TARGET_IS_FOLDER", "PARENT_NOT_CREATED", "PATH_TOO_LONG"} <= codes
    assert not codes & {"FILTERED", "SPECIAL_FILE", "BROKEN_SYMLINK", "TARGET_NEWER"}

    # A second job with renaming off and links not followed: skips only, so exit 0.
    src2 = tmp_path / "src2"
    write_tree(src2, {"ok.txt": b"ok", "a:b.txt": b"x", "CON/inside.txt": b"y", "gone.txt": b"z",
                      "lost.txt": b"w"})  # fmt: skip
    (src2 / "link").symlink_to("/usr/share/doc")
    reports = tmp_path / "r2"
    run = run_migrate(server, src2, "Out2", state, "--rename", "off", "--report", str(reports))
    assert run.returncode == 0, run.stderr
    got = _items(reports, src2)
    assert got["a:b.txt"] == ("Skipped", "Name not allowed", "INVALID_CHARACTER")
    assert got["CON"] == ("Skipped", "Name not allowed", "BLOCKED_NAME")
    assert got["CON/inside.txt"] == ("Skipped", "Parent folder not migrated", "PARENT_NOT_MIGRATED")
    assert got["link"] == ("Skipped", "Not a regular file", "SYMLINK_NOT_FOLLOWED")
    assert _failure_codes(reports) == set()

    # Nothing to do: exit 0, the unchanged files counted apart from the skips.
    reports = tmp_path / "r3"
    run = run_migrate(server, src2, "Out2", state, "--rename", "off", "--report", str(reports))
    assert run.returncode == 0, run.stderr
    summary = _summary(reports)
    assert (summary["Unchanged items"], summary["Migrated items"]) == ("3", "0")
    assert summary["Skipped items"] == "4"  # decided again, with the reason, every round

    # Deleted at the source: mirrored; deleted at both ends: nothing left to migrate.
    (src2 / "gone.txt").unlink()
    (src2 / "lost.txt").unlink()
    assert graph.delete(f"/drives/{drive}/root:/Out2/lost.txt").is_success
    reports = tmp_path / "r4"
    run = run_migrate(
        server, src2, "Out2", state, "--rename", "off", "--mirror", "--verify-target",
        "--report", str(reports),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = _items(reports, src2)
    assert got["gone.txt"] == ("Deleted", "Deleted at the target", "MIRRORED")
    assert got["lost.txt"] == ("Skipped", "Changed at the target", "TARGET_MISSING")
    assert _summary(reports)["Deleted items"] == "1"


def _item(status: ItemStatus, code: str, message: str = "") -> ItemRecord:
    return ItemRecord(
        1, 1, b"x", b"", "file", "x", 1, 1, None, None, None, status, code, message, 3, 1, 1,
        None, None,
    )  # fmt: skip


def test_failures_the_emulator_cannot_produce_have_their_rows() -> None:
    assert describe(_item(ItemStatus.FAILED, "HASH_MISMATCH", "mismatch")).category == (
        "Verification failure"
    )
    denied = describe(_item(ItemStatus.FAILED, "accessDenied"))
    assert (denied.status, denied.category) == ("Failed", "Permission failure")
    assert denied.message  # no message of its own: the category's meaning says why


def test_the_documented_table_is_the_code_s() -> None:
    """Every category has its row in docs/outcomes.md, with its status; nothing more."""
    text = DOCS.read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([^|*]+?) \| ([^|]+?) \|", text, re.MULTILINE)
    documented = {name: status for name, status in rows if name not in {"Result category", "code"}}
    documented = {k: v for k, v in documented.items() if not k.isdigit() and k != "---"}
    expected = {c.name: describe(_item(c.status, next(iter(c.codes), ""))).status
                for c in CATEGORIES}  # fmt: skip
    assert documented == expected

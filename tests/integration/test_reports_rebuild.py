"""`sharelift report` rebuilds a round's files with the figures of the original ones, after
later rounds changed the same items: a round with failures and skips, and a round stopped by
Ctrl-C then resumed (whose reports list what each round did, not files it never reached)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from migrate_helpers import UNIT, migrate_command, run_migrate, write_tree

from sharelift.cli import main
from sharelift.emulator.server import EmulatorServer

ROUND_FILES = ("ItemReport.csv", "FailureSummary.csv", "SummaryReport.csv", "summary.json")


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return emulator_factory()


def _rebuilt(state: Path, round_number: int, out: Path) -> Path:
    code = main(["report", "--state", str(state), "--round", str(round_number), "--out", str(out)])
    assert code == 0
    return out


def _same(original: Path, rebuilt: Path) -> None:
    for name in ROUND_FILES:
        assert (rebuilt / name).read_bytes() == (original / name).read_bytes(), name


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_a_round_with_failures_is_rebuilt_after_the_next_one(
    server: EmulatorServer, tmp_path: Path
) -> None:
    src, state = tmp_path / "src", tmp_path / "state.db"
    write_tree(src, {f"docs/f{i}.txt": b"x" * (100 + i) for i in range(12)})
    write_tree(src, {"big.bin": os.urandom(2_000_000)})
    for i in range(5):
        (src / "docs" / f"link{i}").symlink_to("/usr/share/doc")
    # big.bin's upload session is never answered: it fails (a full drive would stop the round).
    server.set_faults(never_answer="path:*/big.bin:/createUploadSession")
    first = run_migrate(
        server, src, "Rebuild", state, "--report", str(tmp_path / "r1"),
        "--chunk-size", "960k", "--read-timeout", "0.3",
    )  # fmt: skip
    assert first.returncode == 1, first.stderr
    (summary,) = _csv(tmp_path / "r1" / "SummaryReport.csv")
    assert (summary["Failed items"], summary["Skipped items"]) == ("1", "5")

    # The next round changes the same items: big.bin now goes, a file changed, links skipped.
    server.set_faults(never_answer="")
    (src / "docs" / "f0.txt").write_bytes(b"changed")
    second = run_migrate(server, src, "Rebuild", state, "--report", str(tmp_path / "r2"))
    assert second.returncode == 0, second.stderr
    (summary,) = _csv(tmp_path / "r2" / "SummaryReport.csv")
    assert (summary["Migrated items"], summary["Failed items"]) == ("2", "0")

    _same(tmp_path / "r1", _rebuilt(state, 1, tmp_path / "again1"))
    _same(tmp_path / "r2", _rebuilt(state, 2, tmp_path / "again2"))
    # A third round with nothing to do exits 0 and leaves the first two as they were.
    third = run_migrate(server, src, "Rebuild", state, "--report", str(tmp_path / "r3"))
    assert third.returncode == 0, third.stderr
    _same(tmp_path / "r1", _rebuilt(state, 1, tmp_path / "again1b"))

    # The job across its rounds: what is at the target and what is not, and why.
    everything = tmp_path / "all"
    assert main(["report", "--state", str(state), "--all-rounds", "--out", str(everything)]) == 0
    _same(tmp_path / "r2", everything / "round-2")
    job = {(r["Where"], r["Result category"], r["Content type"]): r
           for r in _csv(everything / "JobReport.csv")}  # fmt: skip
    assert job[("At the target", "Migrated", "File")]["Items"] == "13"
    links = job[("Not at the target", "Not a regular file", "File")]
    assert (links["Items"], links["Error code"], links["Last round"]) == (
        "5",
        "SYMLINK_NOT_FOLLOWED",
        "3",
    )
    assert links["Message"]
    assert [r["Round number"] for r in _csv(everything / "JobRounds.csv")] == ["1", "2", "3"]


def _session_started(server: EmulatorServer, size: int) -> bool:
    assert server.store is not None
    sessions = server.store.sessions
    for sid in os.listdir(sessions.sessions_dir):
        session = sessions.get(sid)
        if session is not None and session.file_size == size and session.received > 0:
            return True
    return False


@pytest.mark.slow
def test_an_interrupted_round_then_resumed(server: EmulatorServer, tmp_path: Path) -> None:
    big = 12 * UNIT + 99
    src, state = tmp_path / "src", tmp_path / "state.db"
    write_tree(src, {"a-big.bin": os.urandom(big)})
    write_tree(src, {f"f{i:02}.txt": os.urandom(40_000) for i in range(40)})
    server.set_faults(bandwidth_bps=400_000)
    command = migrate_command(
        server, src, "Resume", state, "--chunk-size", "320k", "--workers", "2",
        "--report", str(tmp_path / "r1"),
    )  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not _session_started(server, big):
            assert time.monotonic() < deadline, "the big file never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    rows = _csv(tmp_path / "r1" / "ItemReport.csv")
    statuses = {r["Item name"]: (r["Status"], r["Result category"]) for r in rows}
    assert statuses["a-big.bin"] == ("In progress", "Interrupted")
    assert all(r["Message"] for r in rows if r["Status"] != "Migrated")
    (summary,) = _csv(tmp_path / "r1" / "SummaryReport.csv")
    assert summary["Status"] == "Interrupted"
    interrupted, not_started = int(summary["Interrupted items"]), int(summary["Not started items"])
    assert interrupted == sum(s == ("In progress", "Interrupted") for s in statuses.values())
    assert not_started > 0  # queued, never reached: counted, not listed
    assert "Upload failure" not in {c for _, c in statuses.values()}

    server.set_faults(bandwidth_bps=0)
    done = run_migrate(server, src, "Resume", state, "--report", str(tmp_path / "r2"))
    assert done.returncode == 0, done.stderr
    rows2 = _csv(tmp_path / "r2" / "ItemReport.csv")
    migrated = {r["Item name"] for r in rows2 if r["Status"] == "Migrated"}
    assert "a-big.bin" in migrated  # resumed, and listed by the round that finished it
    assert {r["Status"] for r in rows2} == {"Migrated"}
    done_before = {name for name, (status, _) in statuses.items() if status == "Migrated"}
    assert migrated.isdisjoint(done_before)  # each round lists what it did
    assert len(migrated | done_before) == 41

    _same(tmp_path / "r1", _rebuilt(state, 1, tmp_path / "again1"))
    _same(tmp_path / "r2", _rebuilt(state, 2, tmp_path / "again2"))

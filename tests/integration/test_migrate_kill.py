"""`sharelift migrate` as a process against the emulator (served by this test process): killed
with SIGKILL at random points and run again until it finishes, stopped with Ctrl-C or SIGTERM,
and meeting files it cannot read.

Every kill lands while work is under way (the emulator's bandwidth is capped so that a run lasts
seconds, and a kill waits for the run's first request); at least one lands inside the upload
session of a large file, so that the next run resumes that session.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from migrate_helpers import (
    UNIT,
    download,
    expected_files,
    graph_client,
    live_sessions,
    megan,
    migrate_command,
    run_migrate,
    target_files,
    write_tree,
)

from sharelift.emulator.server import EmulatorServer
from sharelift.state import open_state

BIG = 24 * UNIT + 4321  # 25 fragments of 320 KiB


def share(seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {
        f"f{i // 8}/g{i % 3}/n{i:02}.txt": rng.randbytes(rng.randint(0, 3000)) for i in range(30)
    }
    files["big.bin"] = rng.randbytes(BIG)
    files["f1/medium.bin"] = rng.randbytes(4 * UNIT + 17)
    return files


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return emulator_factory()


@pytest.fixture
def graph(server: EmulatorServer, app_token: Callable[..., str]) -> Iterator[httpx.Client]:
    with graph_client(server, app_token(server)) as client:
        yield client


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def big_session_started(server: EmulatorServer) -> bool:
    """The emulator holds a session for big.bin that has received a fragment."""
    assert server.store is not None
    sessions = server.store.sessions
    for sid in os.listdir(sessions.sessions_dir):
        session = sessions.get(sid)
        if session is not None and session.file_size == BIG and session.received > 0:
            return True
    return False


def requests_beyond(server: EmulatorServer, count: int) -> bool:
    return int(server.stats()["requests"]) > count


def request_log(server: EmulatorServer) -> list[dict[str, Any]]:
    server.stats()  # flushes the log
    text = (server.data_dir / "requests.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_target_is_source(
    server: EmulatorServer, graph: httpx.Client, folder: str, files: dict[str, bytes]
) -> None:
    """Same names (so no "name 1.ext" duplicates), sizes and quickXorHash; small files are
    also downloaded and compared byte for byte."""
    _, drive = megan(server)
    assert target_files(graph, drive, folder) == expected_files(files)
    for rel, data in files.items():
        if len(data) < UNIT:
            assert download(graph, drive, f"{folder}/{rel}") == data, rel


def assert_state_clean(state: Path) -> None:
    with open_state(state) as store:
        assert store.check() == []
        (job,) = store.jobs()
        assert store.upload_sessions(job.id) == []


@pytest.mark.slow
def test_killed_at_random_points_then_resumed(
    server: EmulatorServer, graph: httpx.Client, tmp_path: Path
) -> None:
    files = share(10)
    src = tmp_path / "src"
    write_tree(src, files)
    state = tmp_path / "state.db"
    command = migrate_command(
        server, src, "Killed", state, "--chunk-size", "320k", "--workers", "4"
    )
    rng = random.Random(20261123)
    server.set_faults(bandwidth_bps=1_500_000)
    kills: list[float] = []
    for n in range(4):
        before = server.stats()["requests"]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if n == 0:  # the first kill lands inside big.bin's upload session
                wait_for(lambda: big_session_started(server), "big.bin's first fragment")
                delay = rng.uniform(0.2, 0.5)
            else:
                wait_for(functools.partial(requests_beyond, server, before), "a request")
                delay = rng.uniform(0.2, 1.5)
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        if proc.returncode == 0:
            break  # it finished before this kill
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
        kills.append(delay)
        if proc.stderr is not None:
            proc.stderr.close()
    assert kills, "no run was killed"
    server.set_faults(bandwidth_bps=0)
    runs = 0
    while True:
        runs += 1
        done = run_migrate(server, src, "Killed", state, "--chunk-size", "320k", "--workers", "4")
        if done.returncode == 0 or runs == 3:
            break
    assert done.returncode == 0, done.stderr
    assert_target_is_source(server, graph, "Killed", files)
    assert_state_clean(state)
    # A run after the first kill asked the emulator where big.bin's persisted session stood
    # (GET on the upload URL), and carried on from there rather than from byte 0.
    log = request_log(server)
    resumed = [
        r
        for r in log
        if r["kind"] == "upload-session" and r["method"] == "GET" and r["status"] == 200
    ]
    assert resumed, "no run resumed a persisted upload session"
    sent = sum(
        r["bytes_in"] for r in log if r["kind"] == "upload" and r["status"] in (200, 201, 202)
    )
    assert sent < sum(len(d) for d in files.values()) + BIG


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_stops_quickly_and_resumes(
    server: EmulatorServer, graph: httpx.Client, tmp_path: Path, signum: signal.Signals
) -> None:
    files = share(11)
    src = tmp_path / "src"
    write_tree(src, files)
    state = tmp_path / "state.db"
    server.set_faults(bandwidth_bps=1_000_000)
    proc = subprocess.Popen(
        migrate_command(server, src, "Stopped", state, "--chunk-size", "320k", "--workers", "4"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: big_session_started(server), "big.bin's first fragment")
        proc.send_signal(signum)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=15)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (out, err)
    assert took < 5, took
    assert signum.name in err
    with open_state(state) as store:
        assert store.check() == []
        (job,) = store.jobs()
        assert [r.status for r in store.rounds(job.id)] == ["interrupted"]
        # big.bin's session is kept for the next run to resume.
        assert len(store.upload_sessions(job.id)) >= 1
    server.set_faults(bandwidth_bps=0)
    done = run_migrate(server, src, "Stopped", state, "--chunk-size", "320k")
    assert done.returncode == 0, done.stderr
    assert_target_is_source(server, graph, "Stopped", files)
    assert_state_clean(state)
    with open_state(state) as store:
        (job,) = store.jobs()
        assert [r.status for r in store.rounds(job.id)] == ["interrupted", "completed"]
    assert live_sessions(server) == []


WRITE_ONLY = Path("/sys/bus/pci/rescan")
"""A sysfs attribute with no read method: even root's open(O_RDONLY) fails (EACCES), though
access() says it is readable, so the walk passes it and the engine meets the error."""


def _opens(path: Path) -> bool:
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_unreadable_files_are_reported_and_the_rest_migrates(
    server: EmulatorServer, graph: httpx.Client, tmp_path: Path
) -> None:
    files = {"ok/one.txt": b"one", "ok/two.bin": os.urandom(5000), "three.txt": b"three"}
    src = tmp_path / "src"
    write_tree(src, files)
    os.mkfifo(src / "ok" / "pipe")  # a FIFO: opening it would block; never opened
    (src / "dangling.txt").symlink_to(tmp_path / "nowhere")
    # Nothing to send: skipped, with the reason, as scan says.
    skipped = {"ok/pipe": "SPECIAL_FILE", "dangling.txt": "BROKEN_SYMLINK"}
    unreadable = {}
    if WRITE_ONLY.exists() and os.access(WRITE_ONLY, os.R_OK) and not _opens(WRITE_ONLY):
        (src / "rescan").symlink_to(WRITE_ONLY)
        unreadable["rescan"] = "READ_ERROR"
    reports = tmp_path / "reports"
    done = run_migrate(
        server, src, "Unreadable", tmp_path / "s.db", "--follow-symlinks", "--report", str(reports)
    )
    assert done.returncode == (1 if unreadable else 0), (done.stdout, done.stderr)
    assert_target_is_source(server, graph, "Unreadable", files)
    with (reports / "ItemReport.csv").open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))

    def outcome(rel: str) -> tuple[str, str, str]:
        (row,) = [r for r in rows if r["Source"] == str(src / rel)]
        assert row["Message"], row
        return row["Status"], row["Result category"], row["Error code"]

    for rel, code in skipped.items():
        assert outcome(rel) == ("Skipped", "Not a regular file", code)
    for rel, code in unreadable.items():
        assert outcome(rel) == ("Failed", "Source read failure", code)
    summary = (reports / "FailureSummary.csv").read_text("utf-8-sig")
    for code in unreadable.values():
        assert code in summary
    for code in skipped.values():
        assert code not in summary


@pytest.mark.slow
def test_second_ctrl_c_stops_at_once(
    server: EmulatorServer, graph: httpx.Client, tmp_path: Path
) -> None:
    files = share(12)
    src = tmp_path / "src"
    write_tree(src, files)
    state = tmp_path / "state.db"
    # A 320 KiB fragment in flight takes over 3 s: the graceful stop the first signal asks
    # for cannot end before the second signal, 0.3 s later, arrives.
    server.set_faults(bandwidth_bps=100_000)
    proc = subprocess.Popen(
        migrate_command(server, src, "Twice", state, "--chunk-size", "320k", "--workers", "4"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: big_session_started(server), "big.bin's first fragment")
        # The emulator counts the fragment before its answer reaches the client: give the
        # client time to start the next one, so that a fragment is in flight at the signal.
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=15)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err, err
    assert took < 3, took
    with open_state(state) as store:
        assert store.check() == []
        (job,) = store.jobs()
        assert [r.status for r in store.rounds(job.id)] == ["interrupted"]
    server.set_faults(bandwidth_bps=0)
    done = run_migrate(server, src, "Twice", state, "--chunk-size", "320k")
    assert done.returncode == 0, done.stderr
    assert_target_is_source(server, graph, "Twice", files)
    assert_state_clean(state)

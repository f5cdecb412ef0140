"""A cluster for real: redis-server, PostgreSQL and three `sharelift worker` processes on this
machine, a job file of several shares migrated into the emulator by `migrate --broker`.

One worker is SIGKILLed in the middle of a unit (a file's upload session open); another is
cut from Redis for a while (a TCP proxy between it and the broker); and a unit that is
running is handed to the broker a second time. The result must be exact (`rclone check`),
no byte may be accepted twice by the emulator (its request log: nothing uploaded twice), and
every unit must end once, the dead worker's taken over by another.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from migrate_helpers import UNIT, megan, write_tree

from sharelift.cluster.app import make_app, publish
from sharelift.emulator.server import EmulatorServer
from sharelift.state import StateStore, UnitStatus, open_state
from support.cluster import Worker, cluster_progress, follow, wait_for
from support.rclone import rclone_for
from support.tcp_proxy import TcpProxy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not on PATH"),
]

SHARES = ("finance", "hr", "sales")
BIG = 5 * UNIT + 777
LEASE = 4.0
MEGAN = "https://contoso-my.sharepoint.com/personal/megan_contoso_com/"


def share(seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {
        f"d{i % 3}/e{i % 2}/n{i:02}.txt": rng.randbytes(rng.randint(1, 3000)) for i in range(24)
    }
    files["d0/big.bin"] = rng.randbytes(BIG)
    files["top.txt"] = b"top"
    return files


def session_in_flight(server: EmulatorServer) -> bool:
    """The emulator holds an upload session of a big file that has taken a fragment."""
    assert server.store is not None
    sessions = server.store.sessions
    for sid in os.listdir(sessions.sessions_dir):
        session = sessions.get(sid)
        if session is not None and session.file_size == BIG and session.received > 0:
            return True
    return False


def busy(store: StateStore, worker: Worker) -> int | None:
    """The unit `worker` runs now (as its heartbeat last said), if any."""
    for row in store.workers():
        if row.name == worker.name and row.status == "busy" and row.unit_id is not None:
            unit = store.unit(row.unit_id)
            if unit is not None and unit.status is UnitStatus.RUNNING:
                return unit.id
    return None


def test_a_cluster_migrates_exactly_whatever_happens_to_its_workers(
    emulator_factory: Callable[..., EmulatorServer],
    app_token: Callable[..., str],
    cluster_state: str,
    broker: str,
    tmp_path: Path,
) -> None:
    server = emulator_factory()
    _, drive = megan(server)
    trees = {name: share(seed) for seed, name in enumerate(SHARES)}
    for name, files in trees.items():
        write_tree(tmp_path / "shares" / name, files)
    jobs = tmp_path / "jobs.json"
    jobs.write_text(
        json.dumps(
            {
                "Tasks": [
                    {
                        "SourcePath": str(tmp_path / "shares" / name),
                        "TargetPath": MEGAN,
                        "TargetList": "Documents",
                        "TargetListRelativePath": f"Cluster/{name}",
                    }
                    for name in SHARES
                ]
            }
        )
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    server.set_faults(bandwidth_bps=1_500_000)  # a big file takes seconds: a kill lands in it
    host, port = broker.removeprefix("redis://").split("/")[0].split(":")
    with TcpProxy((host, int(port))) as proxy:
        behind_proxy = f"redis://127.0.0.1:{proxy.port}/0"
        workers = [
            Worker(0, broker, cluster_state, server.data_dir, logs, lease=LEASE),
            Worker(1, broker, cluster_state, server.data_dir, logs, lease=LEASE),
            Worker(2, behind_proxy, cluster_state, server.data_dir, logs, lease=LEASE),
        ]
        command = [
            sys.executable, "-m", "sharelift", "migrate", "--jobs", str(jobs),
            "--broker", broker, "--state", cluster_state, "--quiet",
            "--unit-files", "8", "--chunk-size", "320k", "--workers", "4",
            "--report", str(tmp_path / "reports"),
        ]  # fmt: skip
        out_file, err_file = tmp_path / "migrate.out", tmp_path / "migrate.err"
        with out_file.open("w") as out_fh, err_file.open("w") as err_fh:
            migrate = subprocess.Popen(command, stdout=out_fh, stderr=err_fh, text=True)
        try:
            with open_state(cluster_state, readonly=True) as store:

                def moving() -> object:
                    return cluster_progress(store)

                # SIGKILL a worker in the middle of a unit: a big file's session is open.
                wait_for(
                    lambda: session_in_flight(server),
                    "a big file's first fragment",
                    progress=moving,
                )
                victim = wait_for(
                    lambda: next((w for w in workers[:2] if busy(store, w)), None),
                    "a busy worker",
                    progress=moving,
                )
                killed_unit = busy(store, victim)
                victim.kill()
                # A running unit handed to the broker a second time: its lease sends it back.
                alive = [w for w in workers if w is not victim]
                doubled = wait_for(
                    lambda: next((u for w in alive if (u := busy(store, w))), None),
                    "a running unit",
                    progress=moving,
                )
                app = make_app(broker)
                publish(app, doubled, "default")
                app.close()
                # Cut the third worker from Redis while it works, then mend the link.
                wait_for(lambda: busy(store, workers[2]), "the third worker busy", progress=moving)
                proxy.cut()
                time.sleep(3 * LEASE)  # the partition: longer than the third worker's lease
                proxy.restore()
            follow(migrate, cluster_state, "the run to end")
        finally:
            if migrate.poll() is None:
                migrate.kill()
                migrate.wait()
            for worker in workers:
                worker.stop()
    out, err = out_file.read_text(), err_file.read_text()
    server.set_faults(bandwidth_bps=0)
    assert migrate.returncode == 0, (out, err, [w.lines()[-20:] for w in workers])
    assert "3 jobs: 3 completed" in out

    # Exact: a real client finds every file with its hash, and nothing else.
    with rclone_for(server, app_token(server), tmp_path, drive) as rclone:
        for name in SHARES:
            checked = rclone("check", str(tmp_path / "shares" / name), f"od:Cluster/{name}")
            assert "0 differences found" in checked.stderr, checked.stderr

    # Nothing uploaded twice: the service accepted each byte of each file once.
    server.stats()
    text = (server.data_dir / "requests.jsonl").read_text()
    log = [json.loads(line) for line in text.splitlines()]
    accepted = sum(
        r["bytes_in"] for r in log if r["kind"] == "upload" and r["status"] in (200, 201, 202)
    )
    assert accepted == sum(len(d) for files in trees.values() for d in files.values())

    # Every unit ended once: done, by one worker's one line; the dead worker's taken over.
    with open_state(cluster_state, readonly=True) as store:
        units = store.units()
        assert units and all(u.status is UnitStatus.DONE for u in units)
        assert store.check() == []
        for job in store.jobs():
            assert store.upload_sessions(job.id) == []
            assert [r.status for r in store.rounds(job.id)] == ["completed"]
        # The coordinator kept samples of the cluster's throughput (the reports' chart).
        samples = [list(store.round_samples(r.id)) for r in store.rounds()]
        assert any(samples), "no round has a throughput sample"
        taken_over = store.unit(killed_unit or 0)
        assert taken_over is not None and taken_over.attempts >= 2
        assert taken_over.owner != victim.name
    ended = Counter(
        int(m[1])
        for w in workers
        for line in w.lines()
        if (m := re.match(r"unit (\d+) \(\w+ [^)]*\): done", line))
    )
    assert ended == Counter({u.id: 1 for u in units}), ended
    backed_off = [
        line for w in workers for line in w.lines() if f"unit {doubled}: backed off" in line
    ]
    assert backed_off, "the second delivery of a running unit did not back off"
    status = subprocess.run(
        [sys.executable, "-m", "sharelift", "status", "--state", cluster_state, "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    doc = json.loads(status.stdout)
    assert [r["units"]["done"] for r in doc["runs"]] == [len(units)]
    assert sorted(w["name"] for w in doc["workers"]) == sorted(w.name for w in workers)
    with (tmp_path / "reports" / "SummaryReport.csv").open(encoding="utf-8-sig") as fh:
        summary = list(csv.DictReader(fh))
    assert [r["Status"] for r in summary[:-1]] == ["completed"] * 3


def test_sigterm_hands_the_unit_in_flight_back_and_another_worker_ends_it(
    emulator_factory: Callable[..., EmulatorServer],
    cluster_state: str,
    broker: str,
    tmp_path: Path,
) -> None:
    server = emulator_factory()
    files = share(7)
    write_tree(tmp_path / "share", files)
    logs = tmp_path / "logs"
    logs.mkdir()
    server.set_faults(bandwidth_bps=400_000)  # the big file takes seconds
    first = Worker(0, broker, cluster_state, server.data_dir, logs, lease=LEASE)
    command = [
        sys.executable, "-m", "sharelift", "migrate", str(tmp_path / "share"),
        "onedrive:megan@contoso.com/Stopped", "--broker", broker, "--state", cluster_state,
        "--quiet", "--chunk-size", "320k", "--unit-files", "1000",
    ]  # fmt: skip
    out_file, err_file = tmp_path / "migrate.out", tmp_path / "migrate.err"
    with out_file.open("w") as out_fh, err_file.open("w") as err_fh:
        migrate = subprocess.Popen(command, stdout=out_fh, stderr=err_fh, text=True)
    second: Worker | None = None
    try:
        with open_state(cluster_state, readonly=True) as store:

            def moving() -> object:
                return cluster_progress(store)

            unit = wait_for(lambda: busy(store, first), "the first worker busy", progress=moving)
            wait_for(lambda: session_in_flight(server), "the big file under way", progress=moving)
            os.killpg(first.process.pid, signal.SIGTERM)
            sent = time.monotonic()
            first.process.wait(30)
            took = time.monotonic() - sent
            handed_back = store.unit(unit)
            assert handed_back is not None and handed_back.status is UnitStatus.QUEUED
            assert handed_back.owner is None
        server.set_faults(bandwidth_bps=0)
        second = Worker(1, broker, cluster_state, server.data_dir, logs, lease=LEASE)
        follow(migrate, cluster_state, "the run to end")
    finally:
        if migrate.poll() is None:
            migrate.kill()
            migrate.wait()
        for worker in (first, second):
            if worker is not None:
                worker.stop()
    out, err = out_file.read_text(), err_file.read_text()
    assert took < 15, took
    assert first.process.returncode == 0
    assert migrate.returncode == 0, (out, err)
    assert any(f"unit {unit} (job .): released" in line for line in first.lines())
    assert any(f"unit {unit} (job .): done" in line for line in second.lines())
    with open_state(cluster_state, readonly=True) as store:
        assert store.check() == []
        (job,) = store.jobs()
        assert store.upload_sessions(job.id) == []
    # The big file's session was kept and resumed, not sent again from its start.
    server.stats()
    text = (server.data_dir / "requests.jsonl").read_text()
    accepted = sum(
        r["bytes_in"]
        for r in map(json.loads, text.splitlines())
        if r["kind"] == "upload" and r["status"] in (200, 201, 202)
    )
    assert accepted == sum(len(d) for d in files.values())

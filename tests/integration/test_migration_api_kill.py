"""`sharelift migrate --via migration-api` as a process, killed with SIGKILL while it packages,
uploads, submits and while the service imports, then run again until it finishes: nothing lost,
nothing duplicated, no package submitted twice (the emulator's job list shows one job per
package's containers), no key left behind; with its small files in blobs of their own, and
zipped into archives (rebuilt the same by the run that takes a package up again)."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from migrate_helpers import (
    expected_files,
    graph_client,
    megan,
    migrate_command,
    target_files,
    write_tree,
)

from sharelift.emulator.server import EmulatorServer
from sharelift.state import ItemStatus, PackageStatus, open_state

API = ("--via", "migration-api", "--auth", "certificate", "--migration-poll", "0.1",
       "--package-files", "4", "--workers", "4")  # fmt: skip


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return emulator_factory(migration_api="start")


@pytest.fixture
def graph(server: EmulatorServer, app_token: Callable[..., str]) -> Iterator[httpx.Client]:
    with graph_client(server, app_token(server)) as client:
        yield client


def share(seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {f"k{i % 4}/f{i:02}.txt": rng.randbytes(rng.randint(1, 4000)) for i in range(26)}
    files["large.bin"] = rng.randbytes(9 * 1024 * 1024 + 5)
    return files


def recorded_packages(state: Path) -> int:
    if not state.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM migration_packages").fetchone()[0])
    except sqlite3.Error:
        return 0


def service_jobs(server: EmulatorServer) -> list[dict[str, object]]:
    folder = server.data_dir / "migration" / "jobs"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("archives", [False, True], ids=["blobs", "archives"])
def test_killed_while_packaging_uploading_submitting_importing_then_resumed(
    server: EmulatorServer, graph: httpx.Client, tmp_path: Path, archives: bool
) -> None:
    files = share(7)
    src = tmp_path / "src"
    write_tree(src, files)
    state = tmp_path / "state.db"
    zipped = ("--archive-small-files",) if archives else ()
    command = migrate_command(server, src, "Killed", state, *API, *zipped)
    server.set_faults(migration_files_per_s=6)
    rng = random.Random(20261205)
    waits: list[Callable[[], bool]] = [
        lambda: True,  # while it walks and packages
        lambda: recorded_packages(state) >= 1,  # while blobs upload
        lambda: len(service_jobs(server)) >= 1,  # around a submission
        lambda: len(service_jobs(server)) >= 3,  # while the service imports
    ]
    killed = 0
    for ready in waits:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(lambda ready=ready, proc=proc: ready() or proc.poll() is not None)
            time.sleep(rng.uniform(0.05, 0.4))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        if proc.stderr is not None:
            proc.stderr.close()
        killed += proc.returncode == -signal.SIGKILL
    assert killed >= 3
    server.set_faults(migration_files_per_s=0)
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr

    _, drive = megan(server)
    assert target_files(graph, drive, "Killed") == expected_files(files)  # no "name 1.txt"
    with open_state(state) as store:
        assert store.check() == []
        (job,) = store.jobs()
        assert store.count_items(job.id).get(ItemStatus.DONE.value) == len(files) + 4  # folders
        made = store.migration_packages(job.id)
        last = store.rounds(job.id)[-1].id
    assert {p.status for p in made} <= {PackageStatus.CLOSED, PackageStatus.FAILED}
    resumed = [p for p in made if p.round_id != last and p.status is PackageStatus.CLOSED]
    assert resumed, "no package a killed run made was taken up again"
    assert not list((tmp_path / "keys").glob("*.key"))
    jobs = service_jobs(server)
    per_container = Counter(str(j["source"]) for j in jobs)
    assert max(per_container.values()) == 1, "a package's containers served two jobs"
    submitted = [p.migration_job_id for p in made if p.migration_job_id]
    assert len(submitted) == len(set(submitted))
    assert set(submitted) <= {str(j["id"]) for j in jobs}

"""A full target drive (507 insufficientStorage / quotaLimitReached) stops the job cleanly: one
clear line, exit 75, the files already there recorded, the others still pending, nothing
failed or lost; the next run, once there is room, finishes the job."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from migrate_helpers import expected_files, graph_client, megan, target_files, write_tree

from sharelift.cli import main
from sharelift.emulator.server import EmulatorServer
from sharelift.state import open_state


@pytest.mark.slow
def test_a_full_drive_stops_the_job_and_the_next_run_finishes_it(
    emulator_factory: Callable[..., EmulatorServer],
    tmp_path: Path,
    app_token: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = emulator_factory()
    rng = random.Random(5)
    files = {f"d{i % 2}/f{i:02}.bin": rng.randbytes(100_000) for i in range(12)}
    src = tmp_path / "src"
    write_tree(src, files)
    upn, drive = megan(server)
    store = server.store
    assert store is not None
    record = store.tenant.drive(drive)
    assert record is not None
    used = record.used
    store.versions.set_quota(drive, used + 450_000)  # room for four of the twelve
    command = [
        "migrate", str(src), f"onedrive:{upn}/Full", "--emulator", str(server.data_dir),
        "--state", str(tmp_path / "s.db"), "--quiet", "--workers", "2",
    ]  # fmt: skip
    assert main(command) == 75
    err = capsys.readouterr().err
    assert "the target drive is full" in err and "run again" in err, err
    with open_state(tmp_path / "s.db") as state:
        job = state.jobs()[0]
        counts = state.count_items(job.id)
        assert "failed" not in counts, counts  # nothing is a failure: it waits for room
        done = [i for i in state.items(job.id) if i.kind == "file" and i.status == "done"]
        assert 1 <= len(done) <= 4
        assert state.check() == []
        assert state.rounds(job.id)[-1].status == "interrupted"
    store.versions.set_quota(drive, used + 10_000_000)
    assert main(command) == 0
    with graph_client(server, app_token(server)) as graph:
        assert target_files(graph, drive, "Full") == expected_files(files)

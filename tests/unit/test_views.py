"""The views of a bulk run and of provisioning, without a terminal (plain and JSON lines),
and one round's display at 80 columns."""

from __future__ import annotations

import io
import json
import time

from rich.console import Console

from sharelift.progress import Outcome, Tally
from sharelift.provision import ProvisionProgress
from sharelift.views import BulkView, ProvisionView, RichRenderer


def _round(files: int, size: int) -> Tally:
    t = Tally(phase="migrating")
    t.counted_files, t.counted_bytes, t.count_complete = files, files * size, True
    return t


def test_plain_bulk_lines_give_each_running_job_and_a_total() -> None:
    out = io.StringIO()
    view = BulkView(["a.csv#2", "a.csv#3", "a.csv#4"], "plain", stream=out, interval=3600)
    view.start()
    first, second = _round(2, 100), _round(3, 100)
    view.renderer_for("a.csv#2").start(first)
    view.renderer_for("a.csv#3").start(second)
    first.finished("x", Outcome.UPLOADED, 100)
    second.finished("y", Outcome.FAILED, 100, "READ_ERROR")
    view.stop()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("a.csv#2: [") and "1/2 files, 100 B/200 B (50%)" in lines[0]
    assert (
        lines[1].startswith("a.csv#3: [")
        and "0 migrated, 0 unchanged, 0 skipped, 1 failed" in lines[1]
    )
    assert lines[2].startswith("3 jobs: 2 running, 1 waiting, 0 ended; total: [")
    # A job still waiting will add to the totals: no percentage yet.
    assert "2/5+ files" in lines[2] and "(counting)" in lines[2]


def test_json_bulk_lines_and_an_ended_job_leaves_its_figures_in_the_total() -> None:
    out = io.StringIO()
    view = BulkView(["j#2", "j#3"], "json", stream=out, interval=3600)
    view.start()
    first, second = _round(1, 10), _round(1, 10)
    view.renderer_for("j#2").start(first)
    first.finished("x", Outcome.UPLOADED, 10)
    view.renderer_for("j#2").stop()
    view.finished("j#2", "completed")
    view.renderer_for("j#3").start(second)
    view.stop()
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["event"] for d in docs] == ["job", "total"]
    assert docs[0]["job"] == "j#3" and docs[0]["files_counted"] == 1
    assert docs[1]["files_settled"] == 1 and docs[1]["files_counted"] == 2
    assert docs[1]["count_complete"] is True


def test_provisioning_says_what_it_waits_for() -> None:
    out = io.StringIO()
    state = ProvisionProgress(users=5, requested=3, ready=2, failed=1, pending=2, waited=75.0,
                              timeout=600.0)  # fmt: skip
    view = ProvisionView(lambda: state, rich=False, stream=out, interval=3600)
    view.start()
    view.stop()
    assert out.getvalue().strip() == (
        "OneDrives of 5 users: 2 ready, 2 pending, 1 failed; 3 asked for, waited 1:15 of 10:00"
    )


def test_a_round_fits_80_columns() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True, color_system=None)
    t = _round(3, 50 * 1024**2)
    t.begun("a/very/long/path/" * 8 + "file.bin", 50 * 1024**2)
    t.throttled_until = time.monotonic() + 30
    console.print(RichRenderer(console).render(t.snapshot()))
    lines = buf.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "files" in lines[0] and "ETA" in lines[0] and "throttled" in buf.getvalue()

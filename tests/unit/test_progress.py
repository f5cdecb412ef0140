"""Progress tally and its renderers."""

from __future__ import annotations

import io
import json

from rich.console import Console

from sharelift.progress import JsonRenderer, PlainRenderer, RichRenderer, Tally


def test_tally_counts_and_rewinds() -> None:
    t = Tally()
    t.found(files=3, size=300)
    t.sent(100)
    t.sent(-40)  # a fragment failed and will be sent again
    t.finished("a", "done", 100)
    t.finished("b", "skipped", 100)
    t.finished("c", "failed", 100)
    s = t.snapshot()
    assert (s.files_done, s.files_skipped, s.files_failed) == (1, 1, 1)
    assert s.bytes_done == 60 and s.bytes_total == 200


def test_plain_renderer_prints_a_final_line() -> None:
    out = io.StringIO()
    r = PlainRenderer(out, interval=3600)
    t = Tally(phase="uploading", files_total=2, bytes_total=2048, walk_complete=True)
    r.start(t)
    t.sent(1024)
    t.finished("x", "done", 1024)
    t.throttled_until = t.started + 10**6
    r.stop()
    line = out.getvalue().strip()
    assert "files 1/2" in line and "1.0 KiB of 2.0 KiB" in line and "throttled" in line


def test_json_renderer_emits_items_and_progress() -> None:
    out = io.StringIO()
    r = JsonRenderer(out, interval=3600)
    t = Tally()
    r.start(t)
    t.finished("dir/é.txt", "failed", 5, "read_error")
    r.stop()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events[0] == {
        "event": "item",
        "path": "dir/é.txt",
        "status": "failed",
        "size": 5,
        "detail": "read_error",
    }
    assert events[-1]["event"] == "progress" and events[-1]["files_failed"] == 1


def test_rich_renderer_runs_on_a_terminal() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=150)
    r = RichRenderer(console)
    t = Tally(phase="uploading", files_total=1, bytes_total=10, walk_complete=True)
    r.start(t)
    t.sent(10)
    t.finished("f", "done", 10)
    r.stop()
    assert "uploading" in buf.getvalue()

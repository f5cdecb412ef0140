"""The round's tally, its subscribers and its renderers."""

from __future__ import annotations

import io
import json
import logging

import pytest
from rich.console import Console

from sharelift.progress import (
    BytesEvent,
    ItemEvent,
    Outcome,
    PhaseEvent,
    ProgressEvent,
    Tally,
    end_line,
)
from sharelift.state import ItemStatus
from sharelift.views import JsonRenderer, PlainRenderer, RichRenderer


def test_tally_counts_and_rewinds() -> None:
    t = Tally()
    t.found(files=3, size=300)
    t.sent(100)
    t.sent(-40)  # a fragment failed and will be sent again
    t.finished("a", Outcome.UPLOADED, 100)
    t.finished("b", Outcome.SKIPPED, 100)
    t.finished("c", Outcome.FAILED, 100)
    t.finished("d", Outcome.BLOCKED)  # refused by a rule: never planned to move
    t.finished("e", Outcome.FAILED, folder=True)
    s = t.snapshot()
    assert (s.files_done, s.files_skipped, s.files_failed) == (1, 2, 1)
    assert s.bytes_done == 60 and s.bytes_total == 200
    assert (t.uploaded, t.skipped, t.blocked, t.failed, t.bytes_uploaded) == (1, 1, 1, 2, 100)


def test_unchanged_files_count_the_same_with_and_without_events() -> None:
    quiet, heard = Tally(), Tally()
    events: list[ProgressEvent] = []
    heard.subscribe(events.append)
    quiet.unchanged_files(2, 30)
    heard.finished("x", Outcome.UNCHANGED, 10, "unchanged")
    heard.finished("y", Outcome.UNCHANGED, 20, "unchanged")
    for t in (quiet, heard):
        assert (t.files_total, t.files_skipped, t.unchanged, t.bytes_total) == (2, 2, 2, 0)
    assert events == [
        ItemEvent("x", Outcome.UNCHANGED, 10, "unchanged"),
        ItemEvent("y", Outcome.UNCHANGED, 20, "unchanged"),
    ]
    assert events[0].status is ItemStatus.SKIPPED  # as a display shows it


def test_several_subscribers_hear_every_event_in_order_until_they_leave() -> None:
    t = Tally()
    first: list[ProgressEvent] = []
    second: list[ProgressEvent] = []
    assert not t.listening
    stop_first = t.subscribe(first.append)
    t.subscribe(second.append)
    assert t.listening
    t.phase = "migrating"
    t.sent(320)
    t.sent(-320)  # a rewind
    t.finished("a.txt", Outcome.ADOPTED, 5, "already at target")
    stop_first()
    stop_first()  # twice is harmless
    t.finished("b.txt", Outcome.FAILED, 7, "READ_ERROR")
    expected: list[ProgressEvent] = [
        PhaseEvent("migrating"),
        BytesEvent(320),
        BytesEvent(-320),
        ItemEvent("a.txt", Outcome.ADOPTED, 5, "already at target"),
    ]
    assert first == expected
    assert second == [*expected, ItemEvent("b.txt", Outcome.FAILED, 7, "READ_ERROR")]


def test_a_failing_subscriber_is_dropped_and_the_round_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = Tally()
    heard: list[ProgressEvent] = []

    def broken(event: ProgressEvent) -> None:
        raise RuntimeError("oops")

    t.subscribe(broken)
    t.subscribe(heard.append)
    with caplog.at_level(logging.ERROR, "sharelift.progress"):
        t.sent(1)
        t.sent(2)
    assert heard == [BytesEvent(1), BytesEvent(2)]
    assert "unsubscribed" in caplog.text and t.bytes_done == 3


def test_plain_renderer_prints_a_final_line() -> None:
    out = io.StringIO()
    r = PlainRenderer(out, interval=3600)
    t = Tally(phase="uploading")
    t.counted_files, t.counted_bytes = 2, 2048
    t.found(2, 2048)
    r.start(t)
    t.begun("x", 1024)
    t.sent(1024, "x")
    t.finished("x", Outcome.UPLOADED, 1024)
    t.throttled_until = t.started + 10**6
    r.stop()
    line = out.getvalue().strip()
    assert "1/2+ files" in line and "1.0 KiB/2.0 KiB+" in line and "(counting)" in line
    assert "/s" in line and "ETA -:--" in line and "throttled by Microsoft 365: waiting" in line


def test_settled_totals_count_files_as_files_and_never_go_back() -> None:
    t = Tally(phase="migrating")
    t.counted_files, t.counted_bytes, t.count_complete = 3, 3000, True
    t.begun("a", 1000)
    t.sent(600, "a")
    first = t.snapshot()
    assert (first.files_settled, first.files_counted) == (0, 3)
    assert first.bytes_settled == 600 and first.fraction == 0.2
    assert [(f.path, f.size, f.sent) for f in first.in_flight] == [("a", 1000, 600)]
    t.sent(-600, "a")  # the fragment failed; it will be sent again
    assert t.snapshot().bytes_settled == 600
    t.sent(1000, "a")
    t.finished("a", Outcome.UPLOADED, 1000)
    t.finished("b", Outcome.SKIPPED, 0, "FILTERED", item_size=1000)
    t.unchanged_files(1, 1000)
    last = t.snapshot()
    assert (last.files_settled, last.files_counted, last.bytes_settled) == (3, 3, 3000)
    assert last.in_flight == [] and last.fraction == 1.0 and last.eta == 0.0
    assert (last.unchanged_files, last.unchanged_bytes) == (1, 1000)


def test_a_tree_that_grew_since_it_was_counted_never_shows_more_done_than_total() -> None:
    t = Tally()
    t.counted_files, t.counted_bytes, t.count_complete = 1, 10, True
    t.finished("a", Outcome.UPLOADED, 10)
    t.finished("new", Outcome.UPLOADED, 30)
    s = t.snapshot()
    assert (s.files_settled, s.files_counted, s.bytes_counted) == (2, 2, 40)


def test_the_end_of_a_run_is_one_line() -> None:
    assert end_line(3 * 1024**3, 125) == "sent 3.0 GiB in 2:05 (24.6 MiB/s)"
    assert end_line(0, 0) == "sent 0 B in 0:00 (0 B/s)"


def test_json_renderer_emits_items_and_progress() -> None:
    out = io.StringIO()
    r = JsonRenderer(out, interval=3600)
    t = Tally()
    r.start(t)
    t.finished("dir/é.txt", Outcome.FAILED, 5, "read_error")
    t.finished("same.txt", Outcome.UNCHANGED, 3, "unchanged")
    r.stop()
    t.finished("after.txt", Outcome.FAILED, 1, "x")  # stopped: no longer written
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events[0] == {
        "event": "item",
        "path": "dir/é.txt",
        "status": "failed",
        "size": 5,
        "detail": "read_error",
    }
    assert events[1]["status"] == "skipped" and events[1]["detail"] == "unchanged"
    assert events[-1]["event"] == "progress" and events[-1]["files_failed"] == 1
    assert len(events) == 3


def test_rich_renderer_runs_on_a_terminal() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=150)
    r = RichRenderer(console)
    t = Tally(phase="uploading")
    t.found(1, 10)
    t.walk_complete = True
    r.start(t)
    t.sent(10)
    t.finished("f", Outcome.UPLOADED, 10)
    r.stop()
    assert "uploading" in buf.getvalue()


def test_a_resumed_round_says_what_was_done_before() -> None:
    from sharelift.views import plain_line

    t = Tally(phase="migrating")
    t.resumed_from = "round 2, interrupted"
    t.counted_files, t.counted_bytes, t.count_complete = 3, 3000, True
    t.unchanged_files(1, 1000)
    t.begun("big.iso", 2000)
    t.resumed("big.iso", 1280)  # the upload session an interrupted round left holds these
    s = t.snapshot()
    assert (s.resumed_bytes, s.bytes_settled, s.in_flight[0].sent) == (1280, 2280, 1280)
    assert (
        "earlier rounds (last: round 2, interrupted): 1 file (1000 B) already migrated and "
        "unchanged; 1.2 KiB of unfinished uploads resumed"
    ) in plain_line(s)

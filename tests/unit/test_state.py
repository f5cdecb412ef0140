"""The state store: schema, write grouping, crash safety, privacy, queries; every test that
is not about one backend's file runs against SQLite and PostgreSQL (`state_location`)."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sharelift.state import (
    ItemStatus,
    MovedAside,
    RoundSample,
    RoundStatus,
    StateError,
    StateStore,
    VerifiedBy,
    open_state,
    parent_of,
)
from sharelift.state.schema import MIGRATIONS, SQLITE, statements


@pytest.fixture
def store(state_location: str) -> Iterator[StateStore]:
    with open_state(state_location) as s:
        yield s


def raw_sql(location: str, *statements: str) -> list[Any]:
    """Run statements on the store behind the backend's back (as an older or newer release
    would have left it); returns the rows of the last."""
    rows: list[Any] = []
    if "://" in location:
        with psycopg.connect(location, autocommit=True) as pg:
            for statement in statements:
                cur = pg.execute(statement.encode())
                rows = cur.fetchall() if cur.description else []
        return rows
    conn = sqlite3.connect(location)
    try:
        for statement in statements:
            rows = conn.execute(statement).fetchall()
        conn.commit()
    finally:
        conn.close()
    return rows


def test_file_and_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "private" / "state.db"
    open_state(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_reopen_keeps_data_and_applies_no_migration_twice(state_location: str) -> None:
    with open_state(state_location) as s:
        s.ensure_job("k", "/src", "https://t")
    with open_state(state_location) as s:
        assert [j.key for j in s.jobs()] == ["k"]
    applied = raw_sql(state_location, "SELECT name FROM schema_migrations ORDER BY name")
    assert [name for (name,) in applied] == [name for name, _ in MIGRATIONS]


def test_a_store_of_an_earlier_version_is_brought_up_to_date(state_location: str) -> None:
    with open_state(state_location) as s:
        job = s.ensure_job("k", "/src", "https://t")
        rnd = s.start_round(job.id)
        s.upsert_item(job.id, b"a/x", "file", status="done", round_id=rnd.id)
    pg = "://" in state_location
    raw_sql(  # as the first release left it: 0001_initial only
        state_location,
        "DROP TABLE workers",
        "DROP TABLE migration_package_events",
        "DROP TABLE migration_package_files",
        "DROP TABLE migration_packages",  # before units: its unit_id refers to them
        "DROP TABLE units",
        "DROP TABLE folders_seen",
        "DROP INDEX items_by_target_id",
        "ALTER TABLE items DROP COLUMN target_seen_round",
        "DROP TRIGGER items_keep_round_outcome" + (" ON items" if pg else ""),
        *(["DROP FUNCTION items_keep_round_outcome"] if pg else []),
        "DROP TABLE item_history",
        "DROP TABLE round_totals",
        "DROP TABLE round_samples",
        "DROP TABLE version_prunes",
        "DROP TABLE moved_aside",
        "ALTER TABLE rounds DROP COLUMN counted",
        "ALTER TABLE rounds DROP COLUMN log_path",
        "ALTER TABLE rounds DROP COLUMN throttle_wait",
        "ALTER TABLE rounds DROP COLUMN report_dir",
        *(
            f"ALTER TABLE items DROP COLUMN {c}"
            for c in ("stored_size", "stored_hash", "verified_by", "prune_versions")
        ),
        "DELETE FROM schema_migrations WHERE name != '0001_initial'",
    )
    with open_state(state_location) as s:
        r2 = s.start_round(job.id)
        s.mark_folder_seen(job.id, b"a", r2.id)
        assert list(s.unseen_since(job.id, r2.id)) == []
        assert s.units() == [] and s.workers() == []
        assert s.migration_packages(job.id) == []


def _schema(path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()
    return [(kind, name, sql) for kind, name, sql in rows]


@pytest.mark.slow
@pytest.mark.parametrize(
    "applied", range(1, len(MIGRATIONS)), ids=lambda n: f"at-{MIGRATIONS[n - 1][0]}"
)
def test_a_store_left_at_any_earlier_migration_moves_forward_to_the_latest(
    tmp_path: Path, applied: int
) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for name, sql in MIGRATIONS[:applied]:
        for statement in statements(sql, SQLITE):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'x')", (name,))
    # What a run of that version left: a job, a round, a file done in it.
    conn.execute(
        "INSERT INTO jobs (id, key, source, target, created_at) VALUES (1, 'k', 's', 't', 'x')"
    )
    conn.execute(
        "INSERT INTO rounds (id, job_id, number, status, started_at, heartbeat_at) "
        "VALUES (1, 1, 1, 'completed', 'x', 'x')"
    )
    conn.execute(
        "INSERT INTO items (id, job_id, path, parent, kind, size, mtime_ns, quick_xor, item_id, "
        "status, round_id, seen_round) "
        "VALUES (1, 1, X'612F78', X'61', 'file', 3, 1, 'h1', 'A', 'done', 1, 1)"
    )
    conn.close()

    with open_state(path) as s:
        old = s.item(1, b"a/x")
        assert old is not None and (old.status, old.quick_xor, old.stored_size) == (
            "done",
            "h1",
            None,
        )
        r2 = s.start_round(1)
        s.record_done(
            old.id, round_id=r2.id, item_id="A", etag=None, quick_xor="h2", size=4, mtime_ns=2,
            verified_by=VerifiedBy.PARTS, stored_size=9, stored_hash="h2-stored",
        )  # fmt: skip
        s.flush()
        # the round-history trigger of the latest schema keeps what round 1 left...
        assert [(i.quick_xor, i.stored_size) for i in s.round_items(1, 1)] == [("h1", None)]
        # ...and the new columns hold what round 2 proved
        now = s.item_by_row(old.id)
        assert now is not None and (now.stored_size, now.stored_hash, now.verified_by) == (
            9,
            "h2-stored",
            "parts",
        )
        assert s.migration_packages(1) == []
    fresh = tmp_path / "fresh.db"
    open_state(fresh).close()
    assert _schema(path) == _schema(fresh)
    conn = sqlite3.connect(path)
    names = [name for (name,) in conn.execute("SELECT name FROM schema_migrations")]
    conn.close()
    assert sorted(names) == [name for name, _ in MIGRATIONS]


def test_migrations_are_one_ordered_sequence() -> None:
    names = [name for name, _ in MIGRATIONS]
    assert [int(name[:4]) for name in names] == list(range(1, len(names) + 1))
    assert names.index("0007_dashboard") < names.index("0008_stored_version")


def test_refuses_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not sqlite" * 100)
    with pytest.raises(StateError, match=r"notes\.txt"):
        open_state(path)


def test_refuses_a_store_from_a_newer_version(state_location: str) -> None:
    open_state(state_location).close()
    raw_sql(state_location, "INSERT INTO schema_migrations VALUES ('9999_future', 'x')")
    with pytest.raises(StateError, match="newer sharelift"):
        open_state(state_location)


def test_readonly_needs_an_existing_store(state_location: str) -> None:
    with pytest.raises(StateError, match="no state store"):
        open_state(state_location, readonly=True)


def test_a_database_password_is_never_shown(postgres_server: Any) -> None:
    url = f"postgresql://sharelift:hunter2-secret@127.0.0.1:{postgres_server.port}/nowhere"
    with pytest.raises(StateError) as caught:
        open_state(url)
    assert "hunter2" not in str(caught.value)
    assert "sharelift:***@127.0.0.1" in str(caught.value)
    with open_state(postgres_server.database()) as s:
        assert "hunter2" not in repr(s)


def test_jobs_are_keyed_and_refreshed(store: StateStore) -> None:
    a = store.ensure_job("key1", "/data", "https://x/a", {"rename": "underscore"})
    b = store.ensure_job("key1", "/data", "https://x/b", {"rename": "off"})
    assert a.id == b.id
    assert b.target == "https://x/b" and b.options == {"rename": "off"}
    store.set_job_target(a.id, "drive1", "folder1", "/Sub")
    job = store.job(a.id)
    assert job is not None and (job.drive_id, job.folder_id, job.folder_path) == (
        "drive1",
        "folder1",
        "/Sub",
    )


def test_rounds_number_up_and_close_stale_ones(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    first = store.start_round(job.id)
    assert first.number == 1 and first.status == "running" and first.pid == os.getpid()
    # The first round never finished (a crash): starting the next closes it as interrupted.
    second = store.start_round(job.id)
    assert second.number == 2
    rounds = store.rounds(job.id)
    assert [r.status for r in rounds] == ["interrupted", "running"]
    store.update_round(second.id, files_done=3, bytes_done=300)
    store.finish_round(second.id, "completed")
    final = store.round(second.id)
    assert final is not None
    assert (final.status, final.files_done, final.bytes_done) == ("completed", 3, 300)
    assert final.ended_at is not None


def test_round_rejects_unknown_counters_and_statuses(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    rnd = store.start_round(job.id)
    with pytest.raises(ValueError, match="unknown round counters"):
        store.update_round(rnd.id, files_done=1, bogus=2)
    with pytest.raises(ValueError, match="final round status"):
        store.finish_round(rnd.id, "running")


def test_items_lifecycle_and_queries(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    rnd = store.start_round(job.id)
    folder = store.upsert_item(job.id, b"a", "folder", status="pending", round_id=rnd.id)
    f1 = store.upsert_item(
        job.id, b"a/one.txt", "file", status="pending", round_id=rnd.id, size=3, mtime_ns=10
    )
    f2 = store.upsert_item(
        job.id, b"a/two.txt", "file", status="pending", round_id=rnd.id, size=4, mtime_ns=20
    )
    store.mark_started(f1, rnd.id)
    store.record_done(
        f1, round_id=rnd.id, item_id="ID1", etag="e1", quick_xor="h1", size=3, mtime_ns=10
    )
    store.record_outcome(f2, round_id=rnd.id, status="failed", code="io", message="boom")
    store.record_done(
        folder, round_id=rnd.id, item_id="F", etag=None, quick_xor=None, size=None, mtime_ns=None
    )
    kids = store.children(job.id, b"a")
    assert set(kids) == {b"a/one.txt", b"a/two.txt"}
    assert kids[b"a/one.txt"][:4] == (f1, b"a/one.txt", "done", "ID1")
    assert (kids[b"a/one.txt"].size, kids[b"a/one.txt"].mtime_ns) == (3, 10)
    assert kids[b"a/two.txt"].status == "failed"
    one, two = store.item(job.id, b"a/one.txt"), store.item(job.id, b"a/two.txt")
    assert one is not None and one.attempts == 1
    assert two is not None and two.error_message == "boom"
    assert store.count_items(job.id) == {"done": 2, "failed": 1}
    assert [i.path for i in store.items(job.id, "failed")] == [b"a/two.txt"]
    # A refresh by the next walk keeps what the target holds.
    rnd2 = store.start_round(job.id)
    store.upsert_item(
        job.id, b"a/one.txt", "file", status="done", round_id=rnd2.id, size=3, mtime_ns=10
    )
    again = store.item(job.id, b"a/one.txt")
    assert again is not None and again.item_id == "ID1" and again.quick_xor == "h1"
    assert store.check() == []


def test_unseen_items_are_the_deleted_ones(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    r1 = store.start_round(job.id)
    keep = store.upsert_item(job.id, b"keep", "file", status="done", round_id=r1.id)
    store.upsert_item(job.id, b"gone", "file", status="done", round_id=r1.id)
    r2 = store.start_round(job.id)
    store.mark_seen([keep], r2.id)
    assert [i.path for i in store.unseen_since(job.id, r2.id)] == [b"gone"]


def test_a_folder_seen_whole_marks_every_item_in_it_and_nothing_else(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    other = store.ensure_job("k2", "s2", "t2")
    r1 = store.start_round(job.id)
    for path in (b"a/x", b"a/y", b"a/b", b"a/b/z", b"top"):
        store.upsert_item(job.id, path, "file", status="done", round_id=r1.id)
    store.upsert_item(other.id, b"a/x", "file", status="done", round_id=r1.id)
    r2 = store.start_round(job.id)
    store.mark_folder_seen(job.id, b"a", r2.id)
    # Its children only: not a grandchild, not another folder, not another job's items.
    assert [i.path for i in store.unseen_since(job.id, r2.id)] == [b"a/b/z", b"top"]
    assert [i.path for i in store.unseen_since(other.id, r2.id)] == [b"a/x"]
    assert [(c.items, c.changed) for c in store.round_counts(job.id, r2.id)] == [(3, False)]
    assert store.round_counts(other.id, r2.id) == []
    # Written once for the folder, not once per item.
    assert [i.seen_round for i in store.items(job.id)] == [r1.id] * 5
    # The next round that sees the folder whole moves the mark; one that does not, does not.
    r3 = store.start_round(job.id)
    assert len(list(store.unseen_since(job.id, r3.id))) == 5
    store.mark_folder_seen(job.id, b"a", r3.id)
    assert [i.path for i in store.unseen_since(job.id, r3.id)] == [b"a/b/z", b"top"]
    assert len(list(store.unseen_since(job.id, r2.id))) == 5  # r2's mark was replaced


def test_paths_that_are_not_utf8_round_trip(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    rnd = store.start_round(job.id)
    raw = b"caf\xe9/r\xe9sum\xe9.txt"  # Latin-1 bytes from an old file server
    store.upsert_item(job.id, raw, "file", status="pending", round_id=rnd.id)
    item = store.item(job.id, raw)
    assert item is not None and item.path == raw and item.parent == b"caf\xe9"
    assert "\\udce9" in item.display_path or "\\xe9" in item.display_path


def test_upload_sessions_are_kept_and_hidden(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    rnd = store.start_round(job.id)
    row = store.upsert_item(job.id, b"big.bin", "file", status="pending", round_id=rnd.id)
    store.save_upload_session(row, "https://up/secret-token", "2026-01-01T00:00:00Z", 10, 5)
    sess = store.upload_session(row)
    assert sess is not None and sess.upload_url.endswith("secret-token")
    assert "secret-token" not in repr(sess)
    assert [s.item_row for s in store.upload_sessions(job.id)] == [row]
    store.record_done(
        row, round_id=rnd.id, item_id="I", etag=None, quick_xor="h", size=10, mtime_ns=5
    )
    assert any("upload session" in p for p in store.check())
    store.drop_upload_session(row)
    assert store.upload_session(row) is None
    assert store.check() == []


def test_check_finds_done_files_without_a_hash(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    rnd = store.start_round(job.id)
    row = store.upsert_item(job.id, b"x", "file", status="pending", round_id=rnd.id)
    store.record_done(
        row, round_id=rnd.id, item_id="I", etag=None, quick_xor=None, size=1, mtime_ns=1
    )
    assert any("without a target id and hash" in p for p in store.check())


def test_grouped_writes_become_visible_on_flush(state_location: str) -> None:
    path = state_location
    writer = open_state(path, commit_every=10_000, commit_interval=3600)
    job = writer.ensure_job("k", "s", "t")
    rnd = writer.start_round(job.id)
    for i in range(50):
        writer.upsert_item(job.id, f"f{i}".encode(), "file", status="pending", round_id=rnd.id)
    reader = open_state(path, readonly=True)
    assert reader.count_items(job.id) == {}
    writer.flush()
    assert reader.count_items(job.id) == {"pending": 50}
    reader.close()
    writer.close()


def test_committed_writes_survive_sigkill(state_location: str) -> None:
    path = state_location
    script = textwrap.dedent(
        f"""
        import os, signal
        from sharelift.state import open_state
        s = open_state({str(path)!r}, commit_every=100, commit_interval=3600)
        job = s.ensure_job("k", "s", "t")
        rnd = s.start_round(job.id)
        for i in range(250):
            s.upsert_item(job.id, b"f%d" % i, "file", status="pending", round_id=rnd.id)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -9
    with open_state(path) as s:
        job = s.job_by_key("k")
        assert job is not None
        # Two full groups of 100 were committed; the last 50 were in flight.
        assert s.count_items(job.id) == {"pending": 200}
        assert s.check() == []
        assert s.start_round(job.id).number == 2
        assert s.rounds(job.id)[0].status == "interrupted"


def test_parent_of() -> None:
    assert parent_of(b"a/b/c") == b"a/b"
    assert parent_of(b"c") == b""


def test_round_items_and_counts_cover_what_the_round_changed_or_saw(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    r1 = store.start_round(job.id)
    kept = []
    for i in range(3):
        row = store.upsert_item(
            job.id, b"same%d" % i, "file", status="pending", round_id=r1.id, size=10
        )
        store.record_done(
            row, round_id=r1.id, item_id=f"I{i}", etag=None, quick_xor="h", size=10, mtime_ns=1
        )
        kept.append(row)
    gone = store.upsert_item(job.id, b"gone", "file", status="done", round_id=r1.id, size=99)
    store.finish_round(r1.id, "completed")

    r2 = store.start_round(job.id)
    store.mark_seen(kept, r2.id)  # unchanged: seen, not changed
    folder = store.upsert_item(job.id, b"new", "folder", status="pending", round_id=r2.id)
    store.record_done(
        folder, round_id=r2.id, item_id="F", etag=None, quick_xor=None, size=None, mtime_ns=None
    )
    renamed = store.upsert_item(
        job.id, b"new/a:b", "file", status="pending", round_id=r2.id, size=7
    )
    store.record_done(
        renamed,
        round_id=r2.id,
        item_id="I9",
        etag=None,
        quick_xor="h",
        size=7,
        mtime_ns=1,
        note_code="INVALID_CHARACTER",
        note="renamed",
    )
    bad = store.upsert_item(job.id, b"new/bad", "file", status="pending", round_id=r2.id, size=5)
    store.record_outcome(bad, round_id=r2.id, status="failed", code="io", message="boom")

    assert [i.path for i in store.round_items(job.id, r2.id)] == [b"new", b"new/a:b", b"new/bad"]
    assert gone in {i.id for i in store.round_items(job.id, r1.id)}
    counts = {
        (c.kind, c.status, c.changed, c.noted): (c.items, c.size)
        for c in store.round_counts(job.id, r2.id)
    }
    assert counts == {
        ("file", "done", False, False): (3, 30),  # seen unchanged; "gone" was not seen
        ("folder", "done", True, False): (1, 0),
        ("file", "done", True, True): (1, 7),
        ("file", "failed", True, True): (1, 5),
    }


def test_a_closed_round_keeps_its_items_and_counts_whatever_later_rounds_do(
    store: StateStore,
) -> None:
    job = store.ensure_job("k", "s", "t")
    r1 = store.start_round(job.id, log_path="/var/log/sharelift.log")
    assert r1.log_path == "/var/log/sharelift.log"
    bad = store.upsert_item(job.id, b"bad", "file", status="pending", round_id=r1.id, size=5)
    store.mark_started(bad, r1.id)
    store.record_outcome(bad, round_id=r1.id, status="failed", code="io", message="boom")
    ok = store.upsert_item(job.id, b"ok", "file", status="pending", round_id=r1.id, size=7)
    store.record_done(
        ok, round_id=r1.id, item_id="I1", etag=None, quick_xor="h", size=7, mtime_ns=1
    )
    queued = store.upsert_item(job.id, b"queued", "file", status="pending", round_id=r1.id)
    store.finish_round(r1.id, "interrupted")
    before_items = list(store.round_items(job.id, r1.id))
    before_counts = sorted(store.round_counts(job.id, r1.id), key=repr)
    assert {(c.status, c.started) for c in before_counts if c.status == "pending"} == {
        ("pending", False)  # "queued" was never started
    }

    r2 = store.start_round(job.id)
    store.mark_folder_seen(job.id, b"", r2.id)  # the folder seen whole: "ok" unchanged
    for row in (bad, queued):
        again = store.item_by_row(row)
        assert again is not None
        store.upsert_item(job.id, again.path, "file", status="pending", round_id=r2.id, size=5)
        store.mark_started(row, r2.id)
        store.record_done(
            row, round_id=r2.id, item_id=f"N{row}", etag=None, quick_xor="h", size=5, mtime_ns=2
        )
    store.finish_round(r2.id, "completed")

    assert list(store.round_items(job.id, r1.id)) == before_items
    assert sorted(store.round_counts(job.id, r1.id), key=repr) == before_counts
    assert [(i.path, i.status) for i in store.round_items(job.id, r2.id)] == [
        (b"bad", "done"),
        (b"queued", "done"),
    ]
    by_status = {(c.status, c.code): (c.items, c.size) for c in store.outcome_counts(job.id)}
    assert by_status == {("done", ""): (3, 17)}
    (group,) = store.outcome_counts(job.id)
    assert group.example_path == b"bad" and group.last_round == 2


def test_round_samples_are_kept_in_order_and_idempotent(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    rnd = store.start_round(job.id)
    later = RoundSample("2026-01-01T00:00:04.000000Z", 3, 300, 1, 0, 2)
    store.add_round_sample(rnd.id, later)
    store.add_round_sample(rnd.id, RoundSample("2026-01-01T00:00:02.000000Z", 1, 100, 0, 0, 0))
    store.add_round_sample(rnd.id, later)
    assert [s.bytes_done for s in store.round_samples(rnd.id)] == [100, 300]
    assert list(store.round_samples(rnd.id + 1)) == []


def test_samples_since_reads_every_round_after_an_instant(store: StateStore) -> None:
    first = store.start_round(store.ensure_job("a", "s", "t").id)
    second = store.start_round(store.ensure_job("b", "s", "t").id)
    for round_id, second_of_minute, done in ((first.id, 2, 1), (second.id, 3, 5), (first.id, 4, 2)):
        at = f"2026-01-01T00:00:0{second_of_minute}.000000Z"
        store.add_round_sample(round_id, RoundSample(at, done, done * 10, 0, 0, 1, 2.5))
    store.flush()
    since = list(store.samples_since("2026-01-01T00:00:02.000000Z"))
    assert [(r, s.files_done) for r, s in since] == [(second.id, 5), (first.id, 2)]
    assert since[0][1].throttle_wait == 2.5
    assert len(list(store.samples_since(""))) == 3


def test_samples_since_reads_in_pages_and_keeps_samples_of_one_instant(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sharelift.state.postgres._SAMPLE_PAGE", 2)
    rounds = [store.start_round(store.ensure_job(k, "s", "t").id).id for k in "abc"]
    for second in range(3):  # three rounds sampled at the same instants: ties across pages
        for n, round_id in enumerate(rounds):
            at = f"2026-01-01T00:00:0{second}.000000Z"
            store.add_round_sample(round_id, RoundSample(at, second * 10 + n, 0, 0, 0, 0))
    store.flush()
    since = [(r, s.files_done) for r, s in store.samples_since("2026-01-01T00:00:00.000000Z")]
    assert sorted(since) == sorted((r, s * 10 + n) for s in (1, 2) for n, r in enumerate(rounds))
    assert [done // 10 for _, done in since] == [1, 1, 1, 2, 2, 2]


def test_latest_rounds_give_each_job_its_last_round(store: StateStore) -> None:
    a = store.ensure_job("a", "s", "t")
    b = store.ensure_job("b", "s", "t")
    store.ensure_job("c", "s", "t")  # no round
    store.finish_round(store.start_round(a.id).id, RoundStatus.COMPLETED)
    last_a = store.start_round(a.id)
    last_b = store.start_round(b.id)
    store.update_round(last_a.id, files_done=4, throttled=2, throttle_wait=7.5)
    store.set_round_reports(last_b.id, "/reports/job-2/round-1")
    latest = store.latest_rounds()
    assert [(r.job_id, r.number) for r in latest] == [(a.id, 2), (b.id, 1)]
    assert latest[0].files_done == 4 and latest[0].throttle_wait == 7.5
    assert latest[1].report_dir == "/reports/job-2/round-1"


def test_noted_items_are_the_status_items_with_a_code(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    rnd = store.start_round(job.id)
    for name, code in (
        (b"b:c", "INVALID_CHARACTER"),
        (b"plain", None),
        (b"a:b", "INVALID_CHARACTER"),
    ):
        row = store.upsert_item(job.id, name, "file", status=ItemStatus.PENDING, round_id=rnd.id)
        store.record_done(
            row, round_id=rnd.id, item_id="i" + name.decode(), etag=None, quick_xor="q",
            size=1, mtime_ns=1, note_code=code, note="renamed" if code else None,
        )  # fmt: skip
    assert [i.path for i in store.noted_items(job.id, ItemStatus.DONE)] == [b"a:b", b"b:c"]
    assert list(store.noted_items(job.id, ItemStatus.FAILED)) == []


def test_outcome_counts_say_what_is_left_and_why(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    rnd = store.start_round(job.id)
    for name, status, code in (
        (b"b.lnk", "skipped", "SYMLINK_NOT_FOLLOWED"),
        (b"a.lnk", "skipped", "SYMLINK_NOT_FOLLOWED"),
        (b"locked", "failed", "READ_ERROR"),
    ):
        row = store.upsert_item(job.id, name, "file", status="pending", round_id=rnd.id, size=1)
        store.record_outcome(row, round_id=rnd.id, status=status, code=code, message=f"{name!r}")
    counts = {(c.status, c.code): c for c in store.outcome_counts(job.id)}
    links = counts[("skipped", "SYMLINK_NOT_FOLLOWED")]
    assert (links.items, links.size, links.example_path) == (2, 2, b"a.lnk")
    assert links.example_message == "b'a.lnk'" and links.last_round == 1
    assert counts[("failed", "READ_ERROR")].items == 1


def test_statuses_come_back_as_enums(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    rnd = store.start_round(job.id)
    row = store.upsert_item(job.id, b"a", "file", status=ItemStatus.PENDING, round_id=rnd.id)
    store.record_outcome(row, round_id=rnd.id, status=ItemStatus.BLOCKED, code="c", message="m")
    store.finish_round(rnd.id, RoundStatus.COMPLETED)
    item = store.item(job.id, b"a")
    assert item is not None and item.status is ItemStatus.BLOCKED
    assert store.children(job.id, b"")[b"a"].status is ItemStatus.BLOCKED
    assert store.rounds(job.id)[0].status is RoundStatus.COMPLETED
    assert [c.status for c in store.round_counts(job.id, rnd.id)] == [ItemStatus.BLOCKED]
    with pytest.raises(ValueError, match="unknown item status"):
        store.upsert_item(job.id, b"b", "file", status="lost", round_id=rnd.id)  # type: ignore[arg-type]


def test_open_state_refuses_a_url_it_cannot_serve(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=r"mysql://user:\*\*\*@db/sharelift is not supported"):
        open_state("mysql://user:secret@db/sharelift")
    with open_state(tmp_path / "s.db") as s:  # a path is SQLite
        assert s.jobs() == []


def test_reconciling_with_the_target_finds_the_missing_items_in_pages(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sharelift.state.sqlite_items._TARGET_PAGE", 3)
    monkeypatch.setattr("sharelift.state.postgres_items._PAGE", 3)
    job = store.ensure_job("k", "s", "t")
    other = store.ensure_job("k2", "s", "t2")
    rnd = store.start_round(job.id)
    rows = {}
    for n in range(8):
        row = store.upsert_item(job.id, b"f%d" % n, "file", status="pending", round_id=rnd.id)
        store.record_done(
            row, round_id=rnd.id, item_id=f"T{n}", etag=None, quick_xor=f"h{n}", size=1, mtime_ns=1
        )
        rows[f"T{n}"] = row
    pending = store.upsert_item(job.id, b"p", "file", status="pending", round_id=rnd.id)
    theirs = store.upsert_item(other.id, b"f0", "file", status="pending", round_id=rnd.id)
    store.record_done(
        theirs, round_id=rnd.id, item_id="X", etag=None, quick_xor="h", size=1, mtime_ns=1
    )
    check = store.start_round(job.id)
    found = store.done_at_target(job.id, ["T1", "T3", "X", "nobody", "T5"])
    assert sorted((k.item_id, k.kind, k.quick_xor) for k in found) == [
        ("T1", "file", "h1"),
        ("T3", "file", "h3"),
        ("T5", "file", "h5"),
    ]
    store.mark_at_target([k.id for k in found], check.id)
    missing = []
    for known in store.done_not_at_target(job.id, check.id):
        missing.append(known.item_id)  # marked failed while the pages are read
        store.record_outcome(
            known.id, round_id=check.id, status=ItemStatus.FAILED, code="GONE", message="gone"
        )
    assert missing == ["T0", "T2", "T4", "T6", "T7"]
    assert pending not in {k.id for k in store.done_not_at_target(job.id, check.id)}
    assert list(store.done_not_at_target(job.id, check.id)) == []
    assert store.count_items(job.id) == {"done": 3, "failed": 5, "pending": 1}


def test_a_done_file_keeps_what_the_target_stores_and_how_it_was_proved(
    store: StateStore,
) -> None:
    job = store.ensure_job("k", "s", "t")
    rnd = store.start_round(job.id)
    plain = store.upsert_item(job.id, b"a.txt", "file", status="pending", round_id=rnd.id)
    office = store.upsert_item(job.id, b"b.docx", "file", status="pending", round_id=rnd.id)
    store.record_done(
        plain, round_id=rnd.id, item_id="A", etag=None, quick_xor="ha", size=3, mtime_ns=1,
        verified_by=VerifiedBy.HASH,
    )  # fmt: skip
    store.record_done(
        office, round_id=rnd.id, item_id="B", etag=None, quick_xor="hb", size=10, mtime_ns=1,
        verified_by=VerifiedBy.PARTS, stored_size=17, stored_hash="hb-stored",
    )  # fmt: skip
    a, b = store.item_by_row(plain), store.item_by_row(office)
    assert a is not None and (a.stored_size, a.stored_hash, a.verified_by) == (3, "ha", "hash")
    assert b is not None and (b.size, b.quick_xor) == (10, "hb")
    assert (b.stored_size, b.stored_hash, b.verified_by) == (17, "hb-stored", "parts")
    # --verify-target compares the target's hash with what it should store
    assert {k.item_id: k.quick_xor for k in store.done_at_target(job.id, ["A", "B"])} == {
        "A": "ha",
        "B": "hb-stored",
    }


def test_a_later_round_keeps_the_stored_version_of_the_round_before(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    first = store.start_round(job.id)
    row = store.upsert_item(job.id, b"b.docx", "file", status="pending", round_id=first.id)
    store.record_done(
        row, round_id=first.id, item_id="B", etag=None, quick_xor="h1", size=10, mtime_ns=1,
        verified_by=VerifiedBy.PARTS, stored_size=17, stored_hash="h1-stored",
    )  # fmt: skip
    store.finish_round(first.id, RoundStatus.COMPLETED)
    second = store.start_round(job.id)
    store.record_done(
        row, round_id=second.id, item_id="B", etag=None, quick_xor="h2", size=11, mtime_ns=2,
        verified_by=VerifiedBy.HASH,
    )  # fmt: skip
    store.flush()
    (before,) = store.round_items(job.id, first.id)
    assert (before.quick_xor, before.stored_size, before.stored_hash, before.verified_by) == (
        "h1", 17, "h1-stored", "parts"
    )  # fmt: skip
    (now,) = store.round_items(job.id, second.id)
    assert (now.stored_size, now.stored_hash, now.verified_by) == (11, "h2", "hash")


def test_work_left_at_the_target_is_kept_until_settled(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    other = store.ensure_job("k2", "s", "t2")
    rnd = store.start_round(job.id)
    rows = [
        store.upsert_item(job.id, name, "file", status="pending", round_id=rnd.id)
        for name in (b"a.docx", b"b.aspx", b"c.txt")
    ]
    store.note_target_item(rows[2], "C-unverified")
    noted = store.item_by_row(rows[2])
    assert noted is not None and (noted.item_id, noted.status) == ("C-unverified", "pending")
    for n, row in enumerate(rows[:2]):
        store.record_done(
            row, round_id=rnd.id, item_id=f"I{n}", etag=None, quick_xor="h", size=1, mtime_ns=1
        )
    # Old versions: marked before the replacement is sent, cleared once gone.
    store.mark_prune(rows[0], True)
    store.mark_prune(rows[1], True)
    store.mark_prune(rows[1], False)
    assert store.prunes_pending(job.id) == [(rows[0], "I0")]
    assert store.prunes_pending(other.id) == []
    store.record_pruned("drive/folder", ["I0", "I1"])
    store.record_pruned("drive/folder", ["I1"])  # again: no harm
    store.flush()
    assert store.pruned_among("drive/folder", ["I0", "I1", "I9"]) == {"I0", "I1"}
    assert store.pruned_among("drive/other", ["I0"]) == set()
    store.forget_pruned("drive/folder")
    assert store.pruned_among("drive/folder", ["I0", "I1"]) == set()
    # Files moved aside: recorded before the rename, replaced by a later one, then dropped.
    first = MovedAside(rows[0], "I0", "P", "a.docx", "a (aside).docx")
    store.save_moved_aside(first)
    store.save_moved_aside(first._replace(aside_name="a (aside 2).docx"))
    store.save_moved_aside(MovedAside(rows[1], "I1", "P", "b.aspx", "b (aside).aspx"))
    assert store.moved_aside(rows[0]) == first._replace(aside_name="a (aside 2).docx")
    assert [a.item_row for a in store.moved_aside_of_job(job.id)] == rows[:2]
    assert store.moved_aside_of_job(other.id) == []
    store.drop_moved_aside(rows[0])
    assert store.moved_aside(rows[0]) is None
    assert [a.name for a in store.moved_aside_of_job(job.id)] == ["b.aspx"]

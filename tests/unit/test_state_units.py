"""Units of work, leases and worker heartbeats in the state store, on both backends.

The store's clock decides every lease: the tests move time by waiting out short leases
(tenths of a second), never by changing a clock.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest

from sharelift.state import NewUnit, RoundStatus, StateStore, UnitStatus, open_state


@pytest.fixture
def store(state_location: str) -> Iterator[StateStore]:
    with open_state(state_location) as s:
        yield s


def new(key: str, **more: object) -> NewUnit:
    fields: dict[str, object] = {"run": "r1", "kind": "tree", "queue": "default", "spec": {}}
    fields.update(more)
    return NewUnit(key, **fields)  # type: ignore[arg-type]


def test_a_unit_is_added_once_by_its_key(store: StateStore) -> None:
    first = store.add_unit(new("a", spec={"source": "/s"}, path=b"caf\xe9"))
    again = store.add_unit(new("a", spec={"other": 1}))
    assert first is not None and first[1] is True
    assert again == (first[0], False)
    unit = store.unit(first[0])
    assert unit is not None
    assert (unit.status, unit.spec, unit.path, unit.owner, unit.attempts) == (
        UnitStatus.QUEUED, {"source": "/s"}, b"caf\xe9", None, 0,
    )  # fmt: skip
    assert unit.status is UnitStatus.QUEUED and not unit.finished


def test_one_live_owner_at_a_time(store: StateStore) -> None:
    uid, _ = store.add_unit(new("a")) or (0, False)
    taken = store.claim_unit(uid, "w1", ttl=30)
    assert taken is not None and taken.owner == "w1" and taken.attempts == 1
    assert taken.status is UnitStatus.RUNNING
    assert taken.lease_until is not None and taken.lease_until > store.store_time() + 20
    # Delivered twice: the second worker finds a live lease and backs off.
    assert store.claim_unit(uid, "w2", ttl=30) is None
    # The owner's own redelivery is its own.
    assert store.claim_unit(uid, "w1", ttl=30) is not None
    assert store.renew_lease(uid, "w1", 30, files_done=3, bytes_done=300)
    assert not store.renew_lease(uid, "w2", 30)
    assert not store.end_unit(uid, "w2", UnitStatus.DONE)
    assert store.end_unit(uid, "w1", UnitStatus.DONE, files_done=4)
    done = store.unit(uid)
    assert done is not None and done.finished and done.files_done == 4
    assert done.bytes_done == 300 and done.ended_at is not None
    # A finished unit is never taken again, by anyone.
    assert store.claim_unit(uid, "w1", ttl=30) is None
    assert store.claim_unit(uid, "w2", ttl=30) is None


@pytest.mark.slow
def test_a_lapsed_lease_is_taken_over_and_the_old_owner_is_fenced(store: StateStore) -> None:
    uid, _ = store.add_unit(new("a")) or (0, False)
    assert store.claim_unit(uid, "dead", ttl=0.2) is not None
    time.sleep(0.4)
    taken = store.claim_unit(uid, "w2", ttl=30)
    assert taken is not None and taken.owner == "w2" and taken.attempts == 2
    # The worker that lost it learns so at its next heartbeat, and changes nothing.
    assert not store.renew_lease(uid, "dead", 30)
    assert not store.release_unit(uid, "dead")
    assert not store.set_unit_round(uid, "dead", 1, 1)
    assert store.add_unit(new("child", parent=uid), owner="dead") is None
    made = store.add_unit(new("child", parent=uid), owner="w2")
    assert made is not None and made[1]
    assert [u.key for u in store.units(parent=uid)] == ["child"]
    # A unit already carved is found again by the owner that carves it again.
    assert store.add_unit(new("child", parent=uid), owner="w2") == (made[0], False)


@pytest.mark.slow
def test_a_released_unit_waits_out_its_delay(store: StateStore) -> None:
    uid, _ = store.add_unit(new("a")) or (0, False)
    store.mark_published([uid])
    assert store.claim_unit(uid, "w1", ttl=30) is not None
    assert store.release_unit(uid, "w1", delay=0.3, message="throttled", files_done=2)
    unit = store.unit(uid)
    assert unit is not None and unit.status is UnitStatus.QUEUED and unit.owner is None
    assert unit.message == "throttled" and unit.files_done == 2 and unit.published_at is None
    assert store.claim_unit(uid, "w2", ttl=30) is None  # not due yet
    assert store.due_units(["default"], republish_after=60, waiting=True) == []
    time.sleep(0.4)
    assert [u.id for u in store.due_units(["default"], republish_after=60, waiting=False)] == [uid]
    assert store.claim_unit(uid, "w2", ttl=30) is not None


@pytest.mark.slow
def test_due_units_are_handed_out_once(store: StateStore) -> None:
    a, _ = store.add_unit(new("a")) or (0, False)
    b, _ = store.add_unit(new("b")) or (0, False)
    other, _ = store.add_unit(new("c", queue="emea")) or (0, False)
    # Never handed to the broker: due, for the workers of its queue.
    assert [u.id for u in store.due_units(["default"], republish_after=60, waiting=False)] == [
        a,
        b,
    ]
    assert store.due_units(["default"], republish_after=60, waiting=False) == []
    assert [u.id for u in store.due_units(["emea"], republish_after=60, waiting=False)] == [other]
    # Handed over a while ago and still waiting: due again only for an idle worker.
    time.sleep(0.3)
    assert store.due_units(["default"], republish_after=0.2, waiting=False) == []
    assert len(store.due_units(["default"], republish_after=0.2, waiting=True)) == 2
    # A running unit whose lease lapsed is due again (its owner died).
    assert store.claim_unit(a, "dead", ttl=0.1) is not None
    assert store.claim_unit(b, "alive", ttl=30) is not None
    time.sleep(0.3)
    due = store.due_units(["default"], republish_after=0.2, waiting=False)
    assert [u.id for u in due] == [a]
    assert store.due_units(["default"], republish_after=60, waiting=False) == []


def test_units_are_found_by_run_round_parent_and_status(store: StateStore) -> None:
    job = store.ensure_job("k", "s", "t")
    rnd = store.start_round(job.id)
    root, _ = store.add_unit(new("job", kind="job")) or (0, False)
    assert store.claim_unit(root, "w", ttl=30) is not None
    assert store.set_unit_round(root, "w", job.id, rnd.id)
    child, _ = store.add_unit(new("t1", job_id=job.id, round_id=rnd.id, parent=root)) or (0, 0)
    store.add_unit(new("x", run="r2"))
    assert [u.id for u in store.units(run="r1")] == [root, child]
    assert [u.id for u in store.units(round_id=rnd.id)] == [root, child]
    assert [u.id for u in store.units(parent=root)] == [child]
    assert [u.id for u in store.units(status=UnitStatus.RUNNING)] == [root]
    unit = store.unit(root)
    assert unit is not None and (unit.job_id, unit.round_id) == (job.id, rnd.id)
    with pytest.raises(ValueError, match="final unit status"):
        store.end_unit(root, "w", UnitStatus.QUEUED)
    with pytest.raises(ValueError, match="unknown unit counters"):
        store.renew_lease(root, "w", 30, nonsense=1)


def test_workers_beat_and_are_listed(store: StateStore) -> None:
    before = store.store_time()
    store.beat_worker("w1", host="h1", pid=11, queues=["default"], status="idle", unit_id=None)
    store.beat_worker(
        "w2", host="h2", pid=22, queues=["a", "b"], status="busy", unit_id=7, throttled_until=5.0
    )
    store.beat_worker(
        "w1", host="h1", pid=11, queues=["default"], status="busy", unit_id=3, lease_ttl=4.0
    )
    w1, w2 = store.workers()
    assert (w1.name, w1.status, w1.unit_id, w1.queues) == ("w1", "busy", 3, ("default",))
    assert (w2.queues, w2.throttled_until, w2.pid) == (("a", "b"), 5.0, 22)
    assert (w1.lease_ttl, w2.lease_ttl) == (4.0, 60.0)
    assert before - 1 <= w1.seen_at <= store.store_time() + 1


def test_a_heartbeat_gives_the_round_its_units_sums(store: StateStore) -> None:
    job = store.ensure_job("k", "/s", "t")
    rnd = store.start_round(job.id)
    other = store.start_round(store.ensure_job("k2", "/s2", "t").id)
    ids = []
    for key, kind, round_id in (("a", "tree", rnd.id), ("b", "tree", rnd.id),
                                ("f", "finish", rnd.id), ("o", "tree", other.id)):  # fmt: skip
        uid, _ = store.add_unit(new(key, kind=kind, job_id=job.id, round_id=round_id)) or (0, 0)
        assert store.claim_unit(uid, f"w-{key}", ttl=30) is not None
        ids.append(uid)
    a, b, finish, theirs = ids
    store.end_unit(b, "w-b", UnitStatus.DONE, files_total=2, files_done=2, bytes_done=20)
    store.renew_lease(finish, "w-f", 30, files_done=99)  # a finish unit moves no file
    store.renew_lease(theirs, "w-o", 30, files_done=50)
    before = store.round(rnd.id)
    assert before is not None
    time.sleep(0.01)
    assert store.renew_lease(a, "w-a", 30, files_total=5, files_done=3, bytes_done=300)
    after = store.round(rnd.id)
    assert after is not None
    assert (after.files_total, after.files_done, after.bytes_done) == (7, 5, 320)
    assert after.heartbeat_at > before.heartbeat_at
    assert (after.host, after.pid) == (socket.gethostname(), os.getpid())
    # A closed round keeps what it closed with.
    store.finish_round(rnd.id, RoundStatus.COMPLETED)
    assert store.renew_lease(a, "w-a", 30, files_done=4)
    closed = store.round(rnd.id)
    assert closed is not None and closed.files_done == 5


def test_unit_counts_cover_each_jobs_last_round_and_the_jobs_not_opened(
    store: StateStore,
) -> None:
    job = store.ensure_job("k", "/s", "t")
    old = store.start_round(job.id)
    store.add_unit(new("old", job_id=job.id, round_id=old.id))  # an earlier round: not counted
    last = store.start_round(job.id)
    for key in ("a", "b", "c"):
        store.add_unit(new(key, job_id=job.id, round_id=last.id))
    (c,) = [u.id for u in store.units() if u.key == "c"]
    store.claim_unit(c, "w", ttl=30)
    store.add_unit(new("job-1", kind="job"))  # its job is not opened yet
    gone, _ = store.add_unit(new("job-2", kind="job")) or (0, False)
    store.claim_unit(gone, "w", ttl=30)
    store.end_unit(gone, "w", UnitStatus.FAILED, "no such target")  # no round, finished
    counts = store.unit_counts()
    assert sorted((c.round_id or 0, c.status.value, c.units) for c in counts) == [
        (0, "queued", 1),
        (last.id, "queued", 2),
        (last.id, "running", 1),
    ]

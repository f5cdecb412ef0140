"""The dashboard's Workers section and units of work, from a real state store on both backends:
which machine runs which unit and when it last reported (a silent worker marked stale), units
by status, a cluster's round running whatever its own heartbeat; and the dashboard over a
PostgreSQL store, its password never shown."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from sharelift.dashboard import DashboardServer
from sharelift.dashboard.fragments import overview_update
from sharelift.dashboard.readings import Reader
from sharelift.state import NewUnit, StateStore, UnitStatus, open_state


def raw_sql(location: str, *statements: str) -> None:
    """Statements run behind the store's back (to age a heartbeat)."""
    if "://" in location:
        with psycopg.connect(location, autocommit=True) as pg:
            for statement in statements:
                pg.execute(statement.encode())
        return
    conn = sqlite3.connect(location)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def unit(store: StateStore, key: str, job_id: int, round_id: int, path: bytes = b"") -> int:
    made = store.add_unit(
        NewUnit(key, "r1", "tree", "default", {}, path=path, job_id=job_id, round_id=round_id)
    )
    assert made is not None
    return made[0]


@pytest.fixture
def cluster_store(state_location: str) -> Iterator[str]:
    """A store with a cluster's job (units queued, running and done; a busy worker, a lost
    one and a stopped one) and a job running on this machine alone."""
    with open_state(state_location) as store:
        job = store.ensure_job("c", "/srv/finance", "https://t/finance", {"name": "jobs.csv#2"})
        rnd = store.start_round(job.id)
        busy = unit(store, "a", job.id, rnd.id, b"d0/e1")
        unit(store, "b", job.id, rnd.id)
        done = unit(store, "c", job.id, rnd.id)
        for uid, owner in ((busy, "node1:11"), (done, "node2:22")):
            assert store.claim_unit(uid, owner, ttl=60) is not None
        store.end_unit(done, "node2:22", UnitStatus.DONE, files_done=3)
        store.renew_lease(busy, "node1:11", 60, files_total=9, files_done=4)
        store.beat_worker("node1:11", host="node1", pid=11, queues=["default", "emea"],
                          status="busy", unit_id=busy)  # fmt: skip
        store.beat_worker("node2:22", host="node2", pid=22, queues=["default"], status="idle",
                          unit_id=None)  # fmt: skip
        store.beat_worker("node3:33", host="node3", pid=33, queues=["default"],
                          status="stopped", unit_id=None)  # fmt: skip
        alone = store.ensure_job("m", "/srv/hr", "https://t/hr")
        store.start_round(alone.id)  # this process, on this machine
        store.flush()
    raw_sql(
        state_location,
        "UPDATE workers SET seen_at = seen_at - 600 WHERE name = 'node2:22'",
        # The round's own heartbeat is old: its units say it is running.
        "UPDATE rounds SET heartbeat_at = '2020-01-01T00:00:00.000000Z' "
        "WHERE job_id = (SELECT id FROM jobs WHERE key = 'c')",
    )
    yield state_location


def test_the_workers_section_says_who_runs_what_as_the_store_does(cluster_store: str) -> None:
    with open_state(cluster_store, readonly=True) as store:
        reading = Reader().read(store)
        counts = store.unit_counts()
        (busy,) = store.units(status=UnitStatus.RUNNING)
    assert reading.cluster.units == {"queued": 1, "running": 1, "done": 1}
    assert sum(reading.cluster.units.values()) == sum(c.units for c in counts)
    states = {j.name or j.source: j.state for j in reading.jobs}
    assert states == {"jobs.csv#2": "running", "/srv/hr": "running"}
    rows = {w.process: w for w in reading.workers}
    assert set(rows) == {"node1:11", "node2:22", f"pid {os.getpid()}"}  # not the stopped one
    assert rows["node1:11"].unit is not None and rows["node1:11"].unit.id == busy.id
    assert rows["node1:11"].unit.path == "d0/e1" and rows["node1:11"].state == "busy"
    assert rows["node2:22"].state == "lost" and rows["node2:22"].stale
    assert rows[f"pid {os.getpid()}"].machine == socket.gethostname()

    up = overview_update(reading)
    html = up.html["workers"]
    found = dict(re.findall(r'data-worker="([^"]+)" data-state="([^"]+)"', html))
    assert found == {"node1:11": "busy", "node2:22": "lost", f"pid {os.getpid()}": "running"}
    assert html.count(">stale</strong>") == 1
    assert f'data-unit="{busy.id}"' in html and 'href="/jobs/1"' in html
    assert "default, emea" in html
    units = dict(re.findall(r'data-units="(\w+)">.*?<strong>(\d+)</strong>', up.html["units"]))
    assert units == {"queued": "1", "running": "1", "done": "1"}


def test_on_one_machine_the_section_shows_the_round_and_no_units(tmp_path: Path) -> None:
    with open_state(tmp_path / "s.db") as store:
        store.start_round(store.ensure_job("k", "/s", "https://t").id)
        reading = Reader().read(store, datetime.now(UTC))
    up = overview_update(reading)
    assert reading.cluster.units == {} and "no job here runs on a cluster" in up.html["units"]
    (worker,) = reading.workers
    assert worker.process == f"pid {os.getpid()}" and worker.round_number == 1


def test_a_dashboard_over_postgresql_never_shows_its_password(postgres_url: str) -> None:
    secret = "pw-s3cret-0042"
    url = postgres_url.replace("sharelift@", f"sharelift:{secret}@")
    with open_state(url) as store:
        store.start_round(store.ensure_job("k", "/srv/share", "https://t/share").id)
    with DashboardServer(url, port=0, interval=0.2) as server:
        base = f"http://127.0.0.1:{server.port}"
        page = httpx.get(base + "/", timeout=30)
        assert page.status_code == 200 and "/srv/share" in page.text
        assert secret not in page.text and "@127.0.0.1:" in page.text  # the store is named
        with httpx.stream("GET", base + "/events?view=overview", timeout=30) as events:
            lines = events.iter_lines()
            while not (line := next(lines)).startswith("data:"):
                pass
            assert "/srv/share" in line and secret not in line
        assert secret not in httpx.get(base + "/jobs/1", timeout=30).text

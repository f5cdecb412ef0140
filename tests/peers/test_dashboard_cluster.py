"""The dashboard of a cluster in a real browser: redis-server, PostgreSQL, two `sharelift worker`
processes and `sharelift migrate --broker` move a share into the emulator while Debian's
headless Chromium holds the page of `sharelift dashboard --state postgresql://...` (a child
process, as a user runs it, its URL with a password).

While the run goes on, every unit the Workers section says a worker runs is one the store says
that worker holds (or held), the units by status and the files settled are never ahead of the
store, and the job reads as running. Once it is over, the page's units and workers are the
store's exactly; a worker then killed is marked stale once its lease has lapsed, as the store
says. The password is never on the page."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from sharelift.emulator.server import EmulatorServer
from sharelift.state import StateStore, open_state
from sharelift.status import worker_state
from support.browser import needs_chromium
from support.cluster import Worker, cluster_progress, wait_for

pytestmark = [pytest.mark.peers, pytest.mark.slow, needs_chromium]

LEASE = 4.0
SECRET = "pw-0f-the-cluster"


def _tree(root: Path, files: int, size: int = 20_000) -> None:
    for i in range(files):
        path = root / f"folder{i % 6}" / f"file{i:03}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))


def _dashboard_url(stderr: IO[str]) -> str:
    """The address `sharelift dashboard` prints first."""
    while line := stderr.readline():
        if found := re.search(r"dashboard: (http://\S+)", line):
            return found[1]
    raise AssertionError("sharelift dashboard printed no address")


@pytest.fixture
def dashboard(cluster_state: str) -> Iterator[str]:
    """`sharelift dashboard` over the cluster's store, named by a URL with a password (the
    test server trusts local users: the password is carried, not checked)."""
    url = cluster_state.replace("sharelift@", f"sharelift:{SECRET}@")
    command = [sys.executable, "-m", "sharelift", "dashboard", "--state", url, "--port", "0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        yield _dashboard_url(process.stderr)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


_ROWS = """
return Array.from(document.querySelectorAll('[data-live="workers"] tr[data-worker]')).map(
  tr => [tr.dataset.worker, tr.dataset.state, tr.dataset.unit,
         tr.querySelector('.stale') !== null]);
"""
_UNITS = """
return Array.from(document.querySelectorAll('[data-live="units"] [data-units]')).map(
  li => [li.dataset.units, li.querySelector('strong').textContent]);
"""


def _page(browser: Any) -> tuple[list[tuple[str, str, str, bool]], dict[str, int], str]:
    """The Workers rows (worker, state, unit, marked stale), the units by status and the
    files settled, as the page shows them now."""
    rows = [tuple(r) for r in browser.execute_script(_ROWS)]
    units = {s: int(n.replace(",", "")) for s, n in browser.execute_script(_UNITS)}
    files = browser.execute_script(
        "const e = document.querySelector('[data-live=\"files\"]'); return e ? e.textContent : ''"
    )
    return rows, units, str(files)  # type: ignore[return-value]


def _store_units(store: StateStore) -> dict[str, int]:
    units: dict[str, int] = {}
    for count in store.unit_counts():
        units[count.status.value] = units.get(count.status.value, 0) + count.units
    return units


def _settled(text: str) -> int:
    found = re.fullmatch(r"([\d,]+) of [\d,]+", text)
    return int(found[1].replace(",", "")) if found else 0


def test_the_workers_section_shows_the_cluster_as_the_store_does(
    emulator_factory: Callable[..., EmulatorServer],
    cluster_state: str,
    broker: str,
    dashboard: str,
    browser: Any,
    tmp_path: Path,
) -> None:
    server = emulator_factory()
    server.set_faults(bandwidth_bps=150_000)  # 1.2 MB: several seconds of work per worker
    _tree(tmp_path / "share", 60)
    logs = tmp_path / "logs"
    logs.mkdir()
    workers = [Worker(i, broker, cluster_state, server.data_dir, logs, lease=LEASE) for i in (0, 1)]
    browser.get(dashboard)
    command = [
        sys.executable, "-m", "sharelift", "migrate", str(tmp_path / "share"),
        "onedrive:megan@contoso.com/Cluster", "--broker", broker, "--state", cluster_state,
        "--quiet", "--unit-files", "8", "--workers", "2",
    ]  # fmt: skip
    with (tmp_path / "migrate.log").open("w") as log:
        migrate = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    held: set[tuple[str, int]] = set()
    settled: set[int] = set()
    job_states: set[str] = set()
    try:
        with open_state(cluster_state, readonly=True) as store:

            def watch() -> bool:
                rows, units, files = _page(browser)
                now_units = _store_units(store)
                # Never ahead of the store: units only get more and only end.
                assert sum(units.values()) <= sum(now_units.values()), (units, now_units)
                assert units.get("done", 0) <= now_units.get("done", 0), (units, now_units)
                for name, _, unit, _ in rows:
                    if unit:
                        record = store.unit(int(unit))
                        assert record is not None and record.owner == name, (name, record)
                        held.add((name, int(unit)))
                if _settled(files):
                    (rnd,) = store.latest_rounds()
                    assert _settled(files) <= rnd.files_done + rnd.files_skipped + rnd.files_failed
                    settled.add(_settled(files))
                job_states.update(
                    browser.execute_script(
                        "return Array.from(document.querySelectorAll("
                        "'[data-table=jobs] tbody tr[data-state]')).map(tr => tr.dataset.state)"
                    )
                )
                assert SECRET not in browser.page_source
                return migrate.poll() is not None

            wait_for(watch, "the run to end", progress=lambda: cluster_progress(store))
            assert migrate.returncode == 0, (tmp_path / "migrate.log").read_text()
            assert len({name for name, _ in held}) == 2, held  # both workers seen at work
            assert len(settled) >= 2, settled  # the figures moved without a reload
            assert job_states <= {"running", "completed", "not started"}, job_states
            assert "running" in job_states

            # Over: the page's units and workers are the store's, exactly.
            def same() -> bool:
                rows, units, _ = _page(browser)
                now = store.store_time()
                expected = {
                    w.name: worker_state(w, now)
                    for w in store.workers()
                    if worker_state(w, now) != "stopped"
                }
                shown = {name: state for name, state, _, _ in rows}
                return units == _store_units(store) and shown == expected

            wait_for(same, "the page to show the store's units and workers", stall=60)
            rows, units, _ = _page(browser)
            assert (
                units == {"done": len(store.units())} and units["done"] >= 4
            )  # job, trees, finish
            assert {name for name, *_ in rows} == {w.name for w in workers}
            assert all(state == "idle" and not stale for _, state, _, stale in rows), rows

            # A worker killed: stale on the page once its lease has lapsed, as in the store.
            victim = workers[0]
            victim.kill()

            def marked() -> bool:
                rows, _, _ = _page(browser)
                return any(name == victim.name and stale for name, _, _, stale in rows)

            wait_for(marked, "the killed worker marked stale", stall=60)
            rows, _, _ = _page(browser)
            (row,) = [r for r in rows if r[0] == victim.name]
            (record,) = [w for w in store.workers() if w.name == victim.name]
            assert row[1] == worker_state(record, store.store_time()) == "lost"
            (alive,) = [r for r in rows if r[0] == workers[1].name]
            assert alive[1] == "idle" and not alive[3]
            assert SECRET not in browser.page_source
            assert "@127.0.0.1:" in browser.page_source  # the store is named, without it
    finally:
        if migrate.poll() is None:
            migrate.kill()
            migrate.wait()
        for worker in workers:
            worker.stop()
        server.set_faults(bandwidth_bps=0)

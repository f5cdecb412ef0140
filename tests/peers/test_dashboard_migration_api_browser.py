"""The dashboard's Migration API section in a real browser: Debian's headless Chromium holds the
overview while `sharelift migrate --via migration-api` (a child process, as a user runs it)
packs a tree into the emulator, whose service (over Azurite) postpones each job once and
imports slowly. The package figures on the page are never ahead of the state store's and
change without a reload while the run goes on; once it ends they equal the store's. A job's
page lists its packages as the store has them and the service's warnings, filtered, and no
page shows a SAS signature.

With DOCS_SCREENSHOTS set to a folder (docs/img), the section is saved there as
dashboard-migration-api.png for docs/dashboard.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sharelift.dashboard import DashboardServer
from sharelift.emulator.server import EmulatorServer
from sharelift.state import PackageStatus, StateStore, open_state
from support.browser import needs_chromium

pytestmark = [pytest.mark.peers, pytest.mark.slow, needs_chromium]

Figures = dict[str, int]


_READ_SECTION = """
const section = document.querySelector('[data-live="migration-api-section"]');
if (!section || section.hidden) return null;
const found = {};
const number = (el) => Number(el.textContent.replace(/,/g, ""));
for (const li of section.querySelectorAll("[data-package-state]"))
  found["package " + li.dataset.packageState] = number(li.querySelector("strong"));
for (const li of section.querySelectorAll("[data-job-state]"))
  found["job " + li.dataset.jobState] = number(li.querySelector("strong"));
for (const el of section.querySelectorAll("[data-bytes]"))
  found["bytes " + el.dataset.bytes] = Number(el.dataset.value);
for (const el of section.querySelectorAll("[data-problems]"))
  found[el.dataset.problems] = number(el);
return found;
"""
"""Read in one go (a live update replaces the section's content between two look-ups)."""


def _page_figures(browser: Any) -> Figures | None:
    """The section's figures as the page shows them (None while it is hidden)."""
    found = browser.execute_script(_READ_SECTION)
    return None if found is None else {str(k): int(v) for k, v in found.items()}


def _store_figures(store: StateStore) -> Figures:
    """The same figures, from the store's package records (one job, one round)."""
    (job,) = store.jobs()
    packages = store.migration_packages(job.id)
    found: Figures = {}
    for p in packages:
        found[f"package {p.status.value}"] = found.get(f"package {p.status.value}", 0) + 1
    for state in ("queued", "postponed", "processing", "done", "failed"):
        found[f"job {state}"] = sum(1 for p in packages if p.job_state == state)
    found["bytes packaged"] = sum(p.bytes for p in packages)
    found["bytes uploaded"] = sum(
        sum(f.size for f in store.package_files(p.id) if f.stored)
        if p.status in (PackageStatus.PACKING, PackageStatus.FAILED)
        else p.bytes
        for p in packages
    )
    found["bytes imported"] = sum(p.bytes_imported for p in packages)
    found["errors"] = sum(p.errors for p in packages)
    found["warnings"] = sum(p.warnings for p in packages)
    return found


MONOTONE = ("package closed", "job done", "bytes packaged", "bytes imported", "warnings")
"""Figures that only grow during this run: the page, a reading behind, never shows more."""


def _store_now(state: Path) -> Figures:
    with open_state(state, readonly=True) as store:
        return _store_figures(store)


def test_the_migration_api_section_follows_a_run(
    emulator_factory: Callable[..., EmulatorServer], browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    server = emulator_factory(migration_api="start")
    # Each job waits in the queue once (JobPostponed), then imports a few files a second.
    server.set_faults(migration_postpone_s=2, migration_files_per_s=8)
    src, state = tmp_path / "src", tmp_path / "state" / "state.db"
    for i in range(60):
        path = src / f"folder{i % 3}" / f"file{i:02}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(20_000 + i))
    users = tmp_path / "users.csv"
    users.write_text("*,nobody@contoso.com\n", encoding="utf-8")  # unknown: a warning per job
    command = [
        sys.executable, "-m", "sharelift", "migrate", str(src), "onedrive:megan@contoso.com/MA",
        "--emulator", str(server.data_dir), "--state", str(state), "--quiet",
        "--via", "migration-api", "--auth", "certificate", "--migration-poll", "0.2",
        "--package-files", "6", "--user-map", str(users),
    ]  # fmt: skip
    shots = os.environ.get("DOCS_SCREENSHOTS")
    with DashboardServer(state, port=0, interval=0.5) as dashboard:
        browser.get(dashboard.url)  # before the store exists: the page waits for it
        run = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        seen: list[Figures] = []
        service_states: set[str] = set()
        shot_taken = False
        try:
            deadline = time.monotonic() + 150
            while run.poll() is None and time.monotonic() < deadline:
                page = _page_figures(browser)
                if page is not None:
                    store = _store_now(state)
                    ahead = {
                        k: (page.get(k, 0), store.get(k, 0))
                        for k in MONOTONE
                        if page.get(k, 0) > store.get(k, 0)
                    }
                    assert not ahead, ahead  # (page, store)
                    if not seen or seen[-1] != page:
                        seen.append(page)
                    moving = {k for k, n in page.items() if k.startswith("job ") and n}
                    service_states |= moving
                    if shots and not shot_taken and len(moving) >= 3:
                        _screenshot(browser, Path(shots))
                        shot_taken = True
                time.sleep(0.3)
            assert run.wait(60) == 0, run.stderr.read().decode() if run.stderr else ""
        finally:
            if run.poll() is None:
                run.kill()
            run.communicate()
        updates = int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-updates"))
        assert updates >= 3 and len(seen) >= 3, seen  # it changed while we watched, unreloaded
        assert {"job postponed", "job done"} <= service_states, service_states
        assert len({s["bytes imported"] for s in seen}) >= 2, seen

        # Once the run has ended, the page shows what the store holds.
        final = _store_now(state)
        settle = time.monotonic() + 20
        while _page_figures(browser) != final and time.monotonic() < settle:
            time.sleep(0.3)
        assert _page_figures(browser) == final
        assert final["package closed"] == final["job done"] == 10
        assert final["bytes imported"] == final["bytes uploaded"] == final["bytes packaged"]
        assert final["warnings"] == 10 and final["errors"] == 0
        if shots and not shot_taken:
            _screenshot(browser, Path(shots))
        assert "sig=" not in browser.page_source

        # The job's page: its packages as the store has them, the service's warnings.
        with open_state(state, readonly=True) as store:
            (job,) = store.jobs()
            packages = store.migration_packages(job.id)
            events = list(store.package_events(job.id))
        browser.get(dashboard.url + f"jobs/{job.id}")
        rows = browser.find_elements(By.CSS_SELECTOR, '[data-live="job-packages"] tr')
        shown = {
            r.get_attribute("data-package"): [c.text for c in r.find_elements(By.TAG_NAME, "td")]
            for r in rows
        }
        assert set(shown) == {p.package_id for p in packages}
        for p in packages:
            cells = shown[p.package_id]
            assert cells[1] == str(p.files) and cells[3:6] == ["closed", "done", p.migration_job_id]
            assert cells[6].startswith("JobEnd") and cells[7] == f"0 / {p.warnings}"
        count = browser.find_element(By.CSS_SELECTOR, '[data-live="job-event-count"]').text
        assert count == f"{len(events)} events: {len(events)} warnings." and len(events) == 10
        listed = browser.find_elements(By.CSS_SELECTOR, '[data-live="job-events"] tr')
        assert len(listed) == 10 and "Failed to ensure user" in listed[0].text

        box = browser.find_element(By.ID, "events-filter")
        box.send_keys(packages[0].package_id[:8])
        box.submit()
        time.sleep(0.5)
        count = browser.find_element(By.CSS_SELECTOR, '[data-live="job-event-count"]').text
        assert count == "1 event matching the filter: 1 warning.", count
        assert "sig=" not in browser.page_source


def _screenshot(browser: Any, folder: Path) -> None:
    from selenium.webdriver.common.by import By

    section = browser.find_element(By.CSS_SELECTOR, '[data-live="migration-api-section"]')
    browser.execute_script("arguments[0].scrollIntoView()", section)
    folder.mkdir(parents=True, exist_ok=True)
    section.screenshot(str(folder / "dashboard-migration-api.png"))

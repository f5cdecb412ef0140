"""The dashboard in a real browser: Debian's headless Chromium holds the page of a migration into
the emulator while it runs (`sharelift migrate --dashboard`, a child process, as a user runs
it). The figures read from the page are the state store's, and they change without a reload
(server-sent events); a job file's jobs are listed, a job's page shows its rounds, failures
with reasons, renames and report files; a dashboard bound beyond this machine refuses a browser
without its token."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest

from sharelift.dashboard import DashboardServer
from sharelift.emulator.server import EmulatorServer
from sharelift.state import RoundStatus, open_state
from support.browser import needs_chromium

T = TypeVar("T")

pytestmark = [pytest.mark.peers, pytest.mark.slow, needs_chromium]


def _tree(root: Path, files: int, size: int = 20_000) -> None:
    for i in range(files):
        path = root / f"folder{i % 4}" / f"file{i:03}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))


def _dashboard_url(stderr: IO[str]) -> str:
    """The address `migrate --dashboard` prints first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = stderr.readline()
        found = re.search(r"dashboard: (http://\S+)", line)
        if found:
            return found[1]
        if not line:
            break
    raise AssertionError("migrate --dashboard printed no address")


@pytest.fixture
def slow_emulator(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    server = emulator_factory()
    server.set_faults(bandwidth_bps=400_000)  # 3.2 MB: about ten seconds of a running job
    return server


def _steady(read: Callable[[], T]) -> T:
    """`read()` again while the live page replaced what it held: a table is redrawn when a
    figure in it changes (its "12 s ago" text does every few seconds)."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(20):
        try:
            return read()
        except StaleElementReferenceException:
            time.sleep(0.1)
    return read()


def _text(browser: Any, name: str) -> str:
    """The text of a live figure ("" while the page has none: it waits for the store)."""
    from selenium.webdriver.common.by import By

    found = browser.find_elements(By.CSS_SELECTOR, f'[data-live="{name}"]')
    return str(found[0].get_attribute("textContent")) if found else ""


def _settled(text: str) -> tuple[int, int]:
    done, total = re.fullmatch(r"([\d,]+) of ([\d,]+)", text).groups()  # type: ignore[union-attr]
    return int(done.replace(",", "")), int(total.replace(",", ""))


def test_the_page_follows_a_running_migration(
    slow_emulator: EmulatorServer, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    src, state = tmp_path / "src", tmp_path / "state" / "state.db"
    _tree(src, 160)
    (src / "budget: 2024.xlsx").write_bytes(b"renamed on the way")
    deep = src / "/".join(["d" * 90] * 5)  # a path over 400 characters: not migrated
    deep.mkdir(parents=True)
    (deep / "too-deep.txt").write_bytes(b"x")
    command = [
        sys.executable, "-m", "sharelift", "migrate", str(src), "onedrive:megan@contoso.com/Live",
        "--emulator", str(slow_emulator.data_dir), "--state", str(state), "--quiet",
        "--workers", "2", "--dashboard", "0",
    ]  # fmt: skip
    run = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert run.stderr is not None
        url = _dashboard_url(run.stderr)
        browser.get(url)
        seen: list[tuple[int, int]] = []
        states: set[str] = set()
        deadline = time.monotonic() + 90
        while run.poll() is None and time.monotonic() < deadline:
            text = _text(browser, "files")
            if text and " of " in text:
                seen.append(_settled(text))
                # What the page says is never ahead of the store.
                with open_state(state, readonly=True) as db:
                    (rnd,) = db.latest_rounds()
                    assert seen[-1][0] <= rnd.files_done + rnd.files_skipped + rnd.files_failed
            connection = browser.find_elements(By.CSS_SELECTOR, "[data-connection]")
            states.add(connection[0].text if connection else "")
            time.sleep(0.5)
        updates = int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-updates"))
        running = {s for s in seen if s[1] > 0}
        assert updates >= 3 and len(running) >= 3, seen  # it moved while we watched, unreloaded
        assert "live" in states
        assert run.wait(60) == 0  # the deep file is not migrated: a limit, not a failure
    finally:
        if run.poll() is None:
            run.kill()
        run.communicate()

    with open_state(state, readonly=True) as db:
        (job,) = db.jobs()
        (rnd,) = db.rounds(job.id)
    assert rnd.status == RoundStatus.COMPLETED and rnd.report_dir


def test_a_job_file_and_a_job_page(
    emulator_factory: Callable[..., EmulatorServer], browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    server = emulator_factory()
    state = tmp_path / "state.db"
    lines = ["Source,Source DocLib,Source SubFolder,Target Web,Target DocLib,Target SubFolder"]
    for name in ("alpha", "beta", "gamma"):
        _tree(tmp_path / name, 12, 5_000)
        lines.append(f"{tmp_path / name},,,https://contoso-my.sharepoint.com/personal/"
                     f"megan_contoso_com,Documents,{name}")  # fmt: skip
    (tmp_path / "beta" / "a|b.txt").write_bytes(b"renamed")
    (tmp_path / "gamma" / "deep").mkdir()
    deep = tmp_path / "gamma" / "deep" / "/".join(["e" * 90] * 5)
    deep.mkdir(parents=True)
    (deep / "too-deep.txt").write_bytes(b"x")
    job_file = tmp_path / "jobs.csv"
    job_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    command = [
        sys.executable, "-m", "sharelift", "migrate", "--jobs", str(job_file),
        "--emulator", str(server.data_dir), "--state", str(state), "--quiet",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr

    with DashboardServer(state, port=0) as dashboard:
        browser.get(dashboard.url)

        def rows() -> list[Any]:
            return list(browser.find_elements(By.CSS_SELECTOR, "[data-table=jobs] tbody tr"))

        def shown() -> int:
            return [r.is_displayed() for r in rows()].count(True)

        assert len(rows()) == 3
        names = _steady(lambda: [r.find_element(By.TAG_NAME, "a").text for r in rows()])
        assert sorted(names) == ["jobs.csv#2", "jobs.csv#3", "jobs.csv#4"]
        with open_state(state, readonly=True) as db:
            latest = db.latest_rounds()
        settled = sum(r.files_done + r.files_skipped + r.files_failed for r in latest)
        total = sum(r.files_total for r in latest)
        assert _text(browser, "files") == f"{settled} of {total}" and settled >= 37
        assert _text(browser, "files-done") == f"{sum(r.files_done for r in latest)} migrated"
        assert _text(browser, "failures") == "0"  # the deep file is not migrated, not failed
        states = browser.find_element(By.CSS_SELECTOR, '[data-live="states"]').text
        assert "completed" in states and "3" in states

        # Filter and sort without a reload.
        Select(browser.find_element(By.ID, "jobs-state")).select_by_value("completed")
        assert _steady(shown) == 3
        box = browser.find_element(By.ID, "jobs-filter")
        box.send_keys("gamma")
        assert _steady(shown) == 1
        box.clear()
        box.send_keys(" ")  # an input event with nothing to match on
        headers = browser.find_elements(By.CSS_SELECTOR, "[data-sort-column]")
        headers[0].click()
        headers[0].click()
        first = _steady(
            lambda: browser.find_element(
                By.CSS_SELECTOR, "[data-table=jobs] tbody tr a"
            ).get_attribute("href")
        )
        assert first.endswith("/jobs/3")  # descending by job
        heading = _steady(
            lambda: browser.find_element(By.CSS_SELECTOR, "th[aria-sort=descending]").text
        )
        assert heading.startswith("Job")

        # The job page of gamma: its round, its failure with the reason, its reports.
        with open_state(state, readonly=True) as db:
            gamma = next(j for j in db.jobs() if j.source.endswith("gamma"))
            (rnd,) = db.rounds(gamma.id)
            counts = db.count_items(gamma.id)
        browser.get(dashboard.url + f"jobs/{gamma.id}")
        assert "gamma" in browser.find_element(By.TAG_NAME, "h1").text + browser.page_source
        failures = browser.find_element(By.CSS_SELECTOR, "[data-failure-count]").text
        # The file and the folders whose path is over the limit.
        assert failures == f"{counts['blocked']} failures." and counts["blocked"] >= 2
        body = browser.find_element(By.TAG_NAME, "main").text
        assert "too-deep.txt" in body and "Not migrated" in body and "PATH_TOO_LONG" in body
        link = browser.find_element(By.LINK_TEXT, "summary.json")
        assert link.get_attribute("href").endswith(f"/jobs/{gamma.id}/rounds/1/summary.json")
        assert rnd.report_dir and Path(rnd.report_dir, "summary.json").is_file()
        csv_link = browser.find_element(By.PARTIAL_LINK_TEXT, "CSV").get_attribute("href")
        assert csv_link.endswith(f"/jobs/{gamma.id}/failures.csv")

        browser.get(dashboard.url)
        _steady(lambda: browser.find_element(By.PARTIAL_LINK_TEXT, "#3").click())
        renames = browser.find_element(By.ID, "renames-h").find_element(By.XPATH, "..").text
        assert "a|b.txt" in renames and "a_b.txt" in renames and "INVALID_CHARACTER" in renames

        # Works offline and fits a laptop: only its own files were fetched, no sideways scroll.
        fetched = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        assert all(u.startswith(dashboard.url.rstrip("/")) for u in fetched), fetched
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        )
        assert len(browser.find_elements(By.TAG_NAME, "h1")) == 1
        for field in browser.find_elements(By.CSS_SELECTOR, "input, select"):
            labelled = f'label[for="{field.get_attribute("id")}"]'
            label = browser.find_elements(By.CSS_SELECTOR, labelled)
            assert label, field.get_attribute("outerHTML")


def test_a_dashboard_beyond_this_machine_needs_its_token(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.wait import WebDriverWait

    state = tmp_path / "state.db"
    with open_state(state) as db:
        db.ensure_job("k", "/srv/share", "https://contoso.sharepoint.com/sites/T/Shared")
    with DashboardServer(state, host="0.0.0.0", port=0, token="t0ken-for-test") as dashboard:  # noqa: S104
        local = f"http://127.0.0.1:{dashboard.port}/"
        browser.get(local)
        assert browser.find_element(By.TAG_NAME, "h1").text == "A token is needed"
        assert "/srv/share" not in browser.page_source
        field = browser.find_element(By.ID, "token")
        field.send_keys("wrong")
        field.submit()
        WebDriverWait(browser, 20).until(staleness_of(field))  # the answer is a new page
        assert "/srv/share" not in browser.page_source
        field = browser.find_element(By.ID, "token")
        field.send_keys("t0ken-for-test")
        field.submit()
        WebDriverWait(browser, 20).until(staleness_of(field))
        assert "/srv/share" in browser.find_element(By.TAG_NAME, "main").text
        assert "token" not in browser.current_url  # kept as a cookie, out of the address
        browser.get(local + "jobs/1")
        assert "/srv/share" in browser.find_element(By.TAG_NAME, "main").text

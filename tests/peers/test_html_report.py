"""report.html in a real browser: Debian's headless Chromium, driven by chromedriver, opens the
HTML report of a real migration into the emulator; the figures read from the rendered page are
compared with the state store's. The page must need no network, fit a laptop screen, and keep
its accessibility promises (headings, captions, scoped headers, a labelled chart, contrast)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sharelift.emulator.server import EmulatorServer
from sharelift.report import summarize
from sharelift.report.chart import intervals
from sharelift.report.html import size_text
from sharelift.state import ItemStatus, open_state
from support.browser import needs_chromium

pytestmark = [pytest.mark.peers, pytest.mark.slow, needs_chromium]


@pytest.fixture
def server(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return emulator_factory()


def _migrate(server: EmulatorServer, src: Path, state: Path, reports: Path) -> int:
    command = [
        sys.executable, "-m", "sharelift", "migrate", str(src), "onedrive:megan@contoso.com/Web",
        "--emulator", str(server.data_dir), "--state", str(state), "--report", str(reports),
        "--quiet", "--workers", "2", "--chunk-size", "960k", "--read-timeout", "2",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120).returncode


def _number(text: str) -> int:
    return int(text.split()[0].replace(",", ""))


def _luminance(css: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+(?:\.\d+)?", css)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(foreground: str, background: str) -> float:
    light, dark = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_html_report_shows_what_the_state_store_holds(
    server: EmulatorServer, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    src, state, reports = tmp_path / "src", tmp_path / "state.db", tmp_path / "reports"
    for i in range(30):
        path = src / f"folder{i % 3}" / f"file{i:02}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(20_000 + 500 * i))
    (src / "budget: 2024.xlsx").write_bytes(b"renamed")
    (src / "link").symlink_to("/usr/share/doc")
    (src / "huge.bin").write_bytes(os.urandom(1_500_000))
    # huge.bin's upload session is never answered: it fails, the rest goes on (a full drive
    # stops the round instead, exit 75, see docs/migrate.md).
    server.set_faults(
        bandwidth_bps=300_000,  # a few seconds: several points on the chart
        never_answer="path:*/huge.bin:/createUploadSession",
    )
    assert _migrate(server, src, state, reports) == 1

    with open_state(state, readonly=True) as db:
        (job,) = db.jobs()
        (rnd,) = db.rounds(job.id)
        summary = summarize(db, job, rnd)
        failed = [i for i in db.round_items(job.id, rnd.id) if i.status == ItemStatus.FAILED]
        chart = intervals(db.round_samples(rnd.id), rnd.started_at, rnd.ended_at or "")

    browser.get((reports / "report.html").as_uri())

    def figure(key: str) -> str:
        return str(browser.find_element(By.CSS_SELECTOR, f'[data-figure="{key}"]').text)

    assert figure("status") == "Completed"
    assert _number(figure("migrated_items")) == summary.migrated_items == 30 + 1 + 3
    assert _number(figure("failed_items")) == summary.failed_items == len(failed) == 1
    assert _number(figure("skipped_items")) == summary.skipped_items == 1
    assert _number(figure("warning_count")) == summary.warning_count == 1
    assert _number(figure("total_scanned_items")) == summary.total_scanned_items
    migrated = figure("migrated_bytes")
    assert migrated.startswith(size_text(summary.migrated_bytes))
    assert f"({summary.migrated_bytes:,} bytes)" in migrated
    assert figure("gb_per_hour") == f"{summary.gb_per_hour:,.3f} GB/hour"

    # Outcomes by category: the rendered table adds up to the round's items.
    rows = browser.find_elements(By.CSS_SELECTOR, "#categories tbody tr")
    cells = [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in rows]
    categories = {name: _number(count) for name, count, *_ in cells}
    assert categories["Migrated, renamed"] == 1
    assert categories["Not a regular file"] == 1
    assert categories["Upload failure"] == 1
    assert sum(categories.values()) == summary.total_scanned_items - summary.unchanged_items

    # The failed item, with Graph's reason; the rename, with its new name.
    failed_text = browser.find_element(By.ID, "failed-items").text
    assert "huge.bin" in failed_text and "did not answer" in failed_text
    renames = browser.find_element(By.ID, "renames").text
    assert "budget_ 2024.xlsx" in renames and "INVALID_CHARACTER" in renames
    largest = browser.find_element(By.CSS_SELECTOR, "#largest tbody tr").text
    assert "huge.bin" in largest

    # The chart: drawn, labelled, and its figures the store's samples.
    svg = browser.find_element(By.CSS_SELECTOR, "svg.chart")
    assert svg.get_attribute("role") == "img"
    title_id, desc_id = (svg.get_attribute("aria-labelledby") or "").split()
    assert "Throughput" in browser.find_element(By.ID, title_id).get_attribute("textContent")
    assert "MB" in browser.find_element(By.ID, desc_id).get_attribute("textContent")
    assert svg.size["width"] > 600 and svg.size["height"] > 150
    browser.find_element(By.CSS_SELECTOR, "details summary").click()
    shown = [
        float(r.find_elements(By.TAG_NAME, "td")[1].text.replace(",", ""))
        for r in browser.find_elements(By.CSS_SELECTOR, "#intervals tbody tr")
    ]
    expected = [round(i.rate / 1_000_000, 2) for i in chart if i.bytes]
    assert shown == expected and len(shown) >= 2

    # Self-contained: nothing was fetched to show it.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    # Fits a laptop screen: no sideways scrolling at 1366 pixels.
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    # Accessible: one h1, captions and scoped headers, enough contrast.
    assert len(browser.find_elements(By.TAG_NAME, "h1")) == 1
    tables = browser.find_elements(By.TAG_NAME, "table")
    assert tables and all(t.find_elements(By.TAG_NAME, "caption") for t in tables)
    headers = browser.find_elements(By.TAG_NAME, "th")
    assert all(th.get_attribute("scope") == "col" for th in headers)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    for selector in ("dt", "dd", "td", "th", "caption", "h2", ".status", "footer p"):
        element = browser.find_element(By.CSS_SELECTOR, selector)
        color = element.value_of_css_property("color")
        background = browser.execute_script(
            "let e = arguments[0];"
            "while (e && getComputedStyle(e).backgroundColor === 'rgba(0, 0, 0, 0)')"
            "  e = e.parentElement;"
            "return e ? getComputedStyle(e).backgroundColor : 'rgb(255, 255, 255)';",
            element,
        )
        assert _contrast(color, background) >= 7, (selector, color, background)

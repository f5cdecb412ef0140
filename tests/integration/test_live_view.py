"""What a person sees while `sharelift migrate` runs: the real command line against the emulator,
on a pseudo-terminal (the live display) and without one (plain lines)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from migrate_helpers import megan, write_tree

from sharelift.emulator.server import EmulatorServer
from support.terminal import frames, plain, run_in_terminal

KIB = 1024
BAR = re.compile(
    r"(?P<phase>[a-z ]+) \S+ +(?P<pct>\d+|\?)% (?P<done>[\d,]+)/(?P<total>[\d,]+)(?P<more>\+?) "
    r"files (?P<bytes>\S+ \S+/\S+ \S+) (?P<rate>\S+ \S+/s) ETA (?P<eta>\S+)"
)


def _tree(root: Path) -> int:
    files = {f"docs/report-{i:02d}.bin": os.urandom(150 * KIB) for i in range(24)}
    files["media/video.bin"] = os.urandom(2400 * KIB)
    write_tree(root, files)
    return len(files)


def _migrate(server: EmulatorServer, source: Path, state: Path, *extra: str) -> list[str]:
    upn, _ = megan(server)
    return [
        sys.executable, "-m", "sharelift", "migrate", str(source),
        f"onedrive:{upn}/LiveView-{source.parent.name}", "--emulator", str(server.data_dir),
        "--state", str(state), *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_the_terminal_shows_files_bytes_rate_eta_and_files_in_flight(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    source = tmp_path / "share"
    count = _tree(source)
    emulator.set_faults(bandwidth_bps=2_500_000)  # about two seconds of uploads
    code, output = run_in_terminal(_migrate(emulator, source, tmp_path / "state.db"))
    assert code == 0, plain(output)
    shown = frames(output)
    bars = [m for f in shown for m in [BAR.search(f)] if m]
    assert len(bars) >= 4, shown  # redrawn while it ran, not only at the end
    assert "/?" not in output and "? files" not in output
    counted = [b for b in bars if not b["more"]]
    assert counted and all(int(b["total"]) == count for b in counted)
    done = [int(b["done"]) for b in bars]
    percents = [int(b["pct"]) for b in counted if b["pct"] != "?"]
    assert done == sorted(done) and percents == sorted(percents), "the bar went back"
    assert percents[-1] == 100 and done[-1] == count
    assert all(b["rate"].endswith("/s") and b["eta"] for b in bars)
    in_flight = re.compile(r"^\s*\d+%\s+[\d.]+ (?:KiB|MiB)\s+(?:docs|media)/\S+\.bin", re.M)
    assert any(in_flight.search(f) for f in shown), "no file in flight was listed"
    text = plain(output)
    assert re.search(r"^sent \d+\.\d MiB in \d+:\d\d \([\d.]+ [KM]iB/s\)$", text, re.M), text
    assert "Traceback" not in text

    # Again, one file changed: the display says what earlier rounds had done.
    (source / "docs/report-03.bin").write_bytes(os.urandom(10 * KIB))
    code, output = run_in_terminal(_migrate(emulator, source, tmp_path / "state.db"))
    assert code == 0, plain(output)
    last = frames(output)[-1]
    assert f"earlier rounds (last: round 1, completed): {count - 1} files" in last
    assert "already migrated and unchanged" in last
    assert f"1 migrated, {count - 1} unchanged, 0 skipped, 0 failed" in last


@pytest.mark.slow
def test_without_a_terminal_progress_is_plain_lines(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    source = tmp_path / "share"
    count = _tree(source)
    done = subprocess.run(
        _migrate(emulator, source, tmp_path / "state.db"),
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stderr  # no escape sequences in a log
    line = done.stderr.strip().splitlines()[-1]
    assert re.match(
        rf"\[\s*\d+:\d\d\] completed: {count}/{count} files, \d+\.\d MiB/\d+\.\d MiB \(100%\), "
        rf"[\d.]+ [KM]iB/s, ETA 0:00; {count} migrated, 0 unchanged, 0 skipped, 0 failed$",
        line,
    ), line
    assert re.search(r"^sent \d+\.\d MiB in \d+:\d\d", done.stdout, re.M), done.stdout


@pytest.mark.slow
def test_a_job_file_shows_every_running_job_and_a_total(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    count = _tree(first) + _tree(second)
    jobs = tmp_path / "jobs.csv"
    team = "https://contoso.sharepoint.com/sites/Team"
    jobs.write_text(
        "Source,Source DocLib,Source SubFolder,Target Web,Target DocLib,Target SubFolder\n"
        f"{first},,,{team},Documents,Live-{tmp_path.name}/first\n"
        f"{second},,,{team},Documents,Live-{tmp_path.name}/second\n"
    )
    emulator.set_faults(bandwidth_bps=4_000_000)
    argv = [
        sys.executable, "-m", "sharelift", "migrate", "--jobs", str(jobs), "--emulator",
        str(emulator.data_dir), "--state", str(tmp_path / "state.db"), "--report",
        str(tmp_path / "reports"),
    ]  # fmt: skip
    code, output = run_in_terminal(argv)
    assert code == 0, plain(output)
    shown = frames(output)
    both = [
        f
        for f in shown
        if re.search(r"^jobs\.csv#2 .* files ", f, re.M)
        and re.search(r"^jobs\.csv#3 .* files ", f, re.M)
        and re.search(r"^total .* files .*/s ETA", f, re.M)
    ]
    assert both, shown  # both jobs live at once, each on its own line, and a total
    assert "2 jobs: 2 running, 0 waiting, 0 ended" in both[-1]
    assert re.search(rf"^total .*100% {count}/{count} files", shown[-1], re.M), shown[-1]
    assert "2 jobs: 2 completed" in plain(output)
    assert re.search(r"^sent \d+\.\d MiB in \d+:\d\d \([\d.]+ [KM]iB/s\)$", plain(output), re.M)


@pytest.mark.slow
def test_provision_shows_what_it_waits_for(
    emulator_factory: Callable[..., EmulatorServer], tmp_path: Path
) -> None:
    users = tmp_path / "tenant.csv"
    users.write_text(
        "upn,display_name,licensed,onedrive\n"
        + "".join(f"u{i}@contoso.com,U {i},true,false\n" for i in range(3))
        + "ready@contoso.com,Ready,true,true\n"
    )
    server = emulator_factory(provisioning_delay_s=1.5, users_file=users)
    argv = [
        sys.executable, "-m", "sharelift", "provision", "u0@contoso.com", "u1@contoso.com",
        "u2@contoso.com", "ready@contoso.com", "--emulator", str(server.data_dir), "--auth",
        "certificate", "--poll-interval", "0.3",
    ]  # fmt: skip
    code, output = run_in_terminal(argv)
    assert code == 0, plain(output)
    shown = frames(output)
    waiting = re.compile(
        r"OneDrives of 4 users: 1 ready, 3 pending, 0 failed; 3 asked for, waited "
        r"0:0\d of 10:00"
    )
    assert any(waiting.search(f) for f in shown), shown
    assert "OneDrives of 4 users: 4 ready, 0 pending, 0 failed" in shown[-1]

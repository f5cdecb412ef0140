"""What an open dashboard costs a running migration.

    .venv/bin/python bench/dashboard.py [--files N] [--repeat R]

One emulator in its own process; sharelift migrates N small files (1-4 KiB, 100 to a folder)
into it, R times without a dashboard and R times with one, alternating (off, on, off, on...),
each run into a new folder with a new state store. "With" means `sharelift dashboard` in its
own process over the run's state store, and Debian's headless Chromium holding its overview
page and the page's event stream for the whole run (opened before the run starts: the page
waits for the store, then loads itself again). Printed per run: wall time, files/s, the
migration's CPU seconds (wait4), and the dashboard server's CPU seconds and the updates the
page received.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PYTHON, RESULTS, Emulator, Run, clean_env, make_tree, measure, sharelift_cmd
from support.browser import start_browser  # common put tests/ on the path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(
    label: str, source: Path, emulator: Emulator, files: int, with_page: bool, home: Path
) -> tuple[Run, float, int]:
    state = RESULTS / f"dashboard-{label}" / "state.db"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.unlink(missing_ok=True)
    drive = emulator.drives[0]
    run = Run(label, sharelift_cmd(source, emulator, drive, label, state, "--workers", "16"))
    server_cpu, updates = 0.0, 0
    if not with_page:
        measure(run, clean_env(home, None), emulator, RESULTS / f"dashboard-{label}.log")
    else:
        port = _free_port()
        server = subprocess.Popen(
            [PYTHON, "-m", "sharelift", "dashboard", "--state", str(state), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with tempfile.TemporaryDirectory() as profile:
            browser = start_browser(Path(profile))
            try:
                time.sleep(1.5)
                browser.get(f"http://127.0.0.1:{port}/")
                measure(run, clean_env(home, None), emulator, RESULTS / f"dashboard-{label}.log")
                time.sleep(3)  # the last update reaches the page
                updates = int(browser.execute_script("return document.body.dataset.updates || 0"))
                server_cpu = _cpu_seconds(server.pid)
            finally:
                browser.quit()
                server.terminate()
                server.wait(10)
    run.files = files
    return run, server_cpu, updates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    source = make_tree(f"dashboard-{args.files}", args.files, max(args.files // 100, 1), 1024, 4096)
    emulator = Emulator("dashboard")
    home = RESULTS / "dashboard-home"
    home.mkdir(parents=True, exist_ok=True)
    rows: dict[bool, list[tuple[Run, float, int]]] = {False: [], True: []}
    try:
        for index in range(args.repeat):
            for with_page in (False, True):
                label = f"{'on' if with_page else 'off'}-{index + 1}"
                result = one_run(label, source, emulator, args.files, with_page, home)
                run, server_cpu, updates = result
                assert run.returncode == 0, f"{label} exited {run.returncode}"
                rows[with_page].append(result)
                print(
                    f"{label:6} wall {run.wall:7.1f} s  {run.files_per_s:6.1f} files/s  "
                    f"migrate CPU {run.cpu:6.1f} s  emulator CPU {run.emulator_cpu:6.1f} s  "
                    f"dashboard CPU {server_cpu:5.2f} s  page updates {updates}",
                    flush=True,
                )
    finally:
        emulator.stop()
    off = statistics.median(r.wall for r, _, _ in rows[False])
    on = statistics.median(r.wall for r, _, _ in rows[True])
    cpu_off = statistics.median(r.cpu for r, _, _ in rows[False])
    cpu_on = statistics.median(r.cpu for r, _, _ in rows[True])
    server = statistics.median(c for _, c, _ in rows[True])
    print(
        f"median wall: {off:.1f} s without, {on:.1f} s with a page ({(on / off - 1) * 100:+.1f}%); "
        f"migrate CPU {cpu_off:.1f} / {cpu_on:.1f} s; dashboard server CPU {server:.2f} s "
        f"({server / on * 100:.2f}% of one core)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared machinery of the side-by-side benchmarks (`bench/run.py`): data, emulator, clients.

- `make_tree`: a deterministic source tree under bench/data/ (generated once, reused).
- `Emulator`: `sharelift emulator` in its own process (so that its CPU is not the client's and
  no client shares its GIL), with its admin endpoints: counters, faults, reset.
- `Proxy`: the TLS-intercepting CONNECT proxy the rclone peer test uses (tests/support), so
  that rclone, which only speaks to graph.microsoft.com, reaches the emulator. sharelift goes
  through the same proxy (HTTPS_PROXY), so that both pay the same extra hop.
- `measure`: runs one client as a child process and returns wall time, CPU seconds (user +
  system, from wait4) and peak RSS (the child's VmHWM), with the emulator's counters.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / "data"
RESULTS = BENCH / "results"
PYTHON = sys.executable
RCLONE = shutil.which("rclone") or "/usr/bin/rclone"
MIB = 1024 * 1024

sys.path.insert(0, str(REPO / "tests"))
from support.connect_proxy import ConnectProxy  # noqa: E402

# --- data --------------------------------------------------------------------------------


def make_tree(name: str, files: int, folders: int, min_size: int, max_size: int) -> Path:
    """`files` files of min_size..max_size random bytes spread over `folders` folders (two
    levels: dNN/fNNN), under bench/data/NAME; reused when it already holds that many files."""
    root = DATA / name
    marker = root.with_suffix(".done")
    spec = f"{files} {folders} {min_size} {max_size}"
    if marker.exists() and marker.read_text() == spec:
        return root
    if root.exists():
        shutil.rmtree(root)
    rng = random.Random(f"{name}-{spec}")
    top = max(1, int(folders**0.5))
    dirs = [root / f"d{i % top:02d}" / f"f{i:04d}" for i in range(folders)]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    mtime = time.time() - 86400
    block = os.urandom(max_size + 4096)
    for n in range(files):
        size = rng.randint(min_size, max_size)
        start = rng.randint(0, 4096)
        path = dirs[n % folders] / f"file-{n:07d}.bin"
        with open(path, "wb") as out:
            # unique content per file: a counter at the front of a random window
            out.write(n.to_bytes(8, "little") + block[start : start + max(0, size - 8)])
        os.utime(path, (mtime, mtime))
    marker.write_text(spec)
    return root


def make_large(name: str, files: int, size: int) -> Path:
    """`files` files of `size` random bytes in one folder."""
    root = DATA / name
    marker = root.with_suffix(".done")
    spec = f"{files} {size}"
    if marker.exists() and marker.read_text() == spec:
        return root
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for n in range(files):
        with open(root / f"large-{n}.bin", "wb") as out:
            left = size
            while left:
                piece = min(left, 16 * MIB)
                out.write(os.urandom(piece))
                left -= piece
    marker.write_text(spec)
    return root


def make_empty_tree(name: str, files: int, per_folder: int = 1000) -> Path:
    """`files` empty files, `per_folder` to a folder (for the memory scenario)."""
    root = DATA / name
    marker = root.with_suffix(".done")
    spec = f"{files} {per_folder}"
    if marker.exists() and marker.read_text() == spec:
        return root
    if root.exists():
        shutil.rmtree(root)
    for n in range(files):
        d = root / f"g{n // (per_folder * 100):03d}" / f"d{n // per_folder:05d}"
        if n % per_folder == 0:
            d.mkdir(parents=True)
        os.close(os.open(d / f"e{n:07d}.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    marker.write_text(spec)
    return root


def tree_size(root: Path) -> tuple[int, int]:
    """(files, bytes) under root."""
    count = total = 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            count += 1
            total += os.stat(os.path.join(dirpath, n)).st_size
    return count, total


# --- the emulator --------------------------------------------------------------------------


class Emulator:
    """`python -m sharelift emulator` in a child process, on a fresh data folder."""

    def __init__(self, name: str, *extra: str) -> None:
        self.data = RESULTS / f"emulator-{name}"
        if self.data.exists():
            shutil.rmtree(self.data)
        self.data.mkdir(parents=True)
        self.log = open(self.data.parent / f"emulator-{name}.log", "w")  # noqa: SIM115
        # BENCH_EMULATOR_SRC: run the emulator from another source tree (e.g. a clean export
        # of a commit) while the client under test comes from this one.
        env = dict(os.environ)
        if os.environ.get("BENCH_EMULATOR_SRC"):
            env["PYTHONPATH"] = os.environ["BENCH_EMULATOR_SRC"]
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "sharelift",
                "emulator",
                "--data",
                str(self.data),
                "--port",
                "0",
                *extra,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        info_file = self.data / "emulator.json"
        deadline = time.monotonic() + 60
        while not info_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start; see {self.log.name}")
            time.sleep(0.1)
        time.sleep(0.2)
        self.info: dict[str, Any] = json.loads(info_file.read_text())
        self.ca = Path(self.info["ca_file"])
        self.http = httpx.Client(
            base_url=self.info["base_url"],
            verify=str(self.ca),
            headers={self.info["admin_header"]: self.info["admin_key"]},
            timeout=60,
        )
        users = [u for u in self.info["users"] if u["drive_id"]]
        self.drives = [u["drive_id"] for u in users]

    @property
    def port(self) -> int:
        return int(self.info["base_url"].rsplit(":", 1)[1])

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def faults(self, **changes: float) -> dict[str, Any]:
        if not changes:
            self.http.post("/_emulator/faults/reset").raise_for_status()
            return {}
        response = self.http.put("/_emulator/faults", json=changes)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def reset_faults(self) -> None:
        self.http.post("/_emulator/faults/reset").raise_for_status()

    def reset_stats(self) -> None:
        self.http.post("/_emulator/stats/reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = self.http.get("/_emulator/stats")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def app_token(self) -> str:
        response = httpx.post(
            f"{self.info['authority']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.info["client_id"],
                "client_secret": self.info["client_secret"],
                "scope": self.info["graph_scope"],
            },
            verify=str(self.ca),
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def requests_log(self) -> Path:
        return self.data / "requests.jsonl"

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Proxy:
    """The CONNECT proxy in front of one emulator (see tests/support/connect_proxy.py)."""

    def __init__(self, emulator: Emulator) -> None:
        self.proxy = ConnectProxy(
            ca_cert=emulator.ca,
            ca_key=emulator.data / "ca-key.pem",
            upstream=("127.0.0.1", emulator.port),
            upstream_ca=emulator.ca,
        ).start()

    @property
    def url(self) -> str:
        return self.proxy.url

    def stop(self) -> None:
        self.proxy.stop()


# --- clients -------------------------------------------------------------------------------


def clean_env(home: Path, proxy: str | None) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE is dropped: the client runs as an installed package does, with
    # its bytecode cached (pip compiles it on install), not compiled anew by every run.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().endswith("_PROXY")
        and not k.startswith(("RCLONE_", "SHARELIFT_"))
        and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(TZ="UTC", HOME=str(home))
    if proxy:
        env["HTTPS_PROXY"] = proxy
    return env


@dataclass
class Run:
    """One client's run: its command and what it cost."""

    label: str
    command: list[str]
    wall: float = 0.0
    cpu: float = 0.0
    rss_mib: float = 0.0
    returncode: int = 0
    files: int = 0
    bytes: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    emulator_cpu: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        """Graph operations: HTTP requests plus the requests inside $batch (each counted)."""
        return int(self.stats.get("requests", 0))

    @property
    def http_requests(self) -> int:
        return self.requests - int(self.stats.get("batch_inner", 0))

    @property
    def throttled(self) -> int:
        return int(self.stats.get("by_status", {}).get("429", 0))

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall if self.wall else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.wall if self.wall else 0.0


def measure(
    run: Run, env: dict[str, str], emulator: Emulator | None, log: Path, timeout: float = 7200
) -> Run:
    """Run `run.command` as a child; fill in wall, CPU, peak RSS and the emulator's counters."""
    if emulator is not None:
        emulator.reset_stats()
        emu_cpu = emulator.cpu_seconds()
    peak_kib = 0
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(run.command, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_kib = max(peak_kib, _high_water_kib(proc.pid))
            if time.monotonic() > deadline:
                proc.kill()
            time.sleep(0.02)
        run.wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    run.returncode = proc.returncode
    run.cpu = usage.ru_utime + usage.ru_stime
    # Not ru_maxrss unless nothing else is known: Linux carries the high-water mark across
    # exec, so a child's ru_maxrss is at least this (bench) process's RSS when it started.
    run.rss_mib = (peak_kib or usage.ru_maxrss) / 1024
    if emulator is not None:
        run.stats = emulator.stats()
        run.emulator_cpu = emulator.cpu_seconds() - emu_cpu
    return run


def _high_water_kib(pid: int) -> int:
    """The peak resident set of a running process, in KiB (VmHWM); 0 when unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def sharelift_cmd(
    source: Path, emulator: Emulator, drive: str, folder: str, state: Path, *extra: str
) -> list[str]:
    return [
        PYTHON, "-m", "sharelift", "migrate", str(source), f"drive:{drive}/{folder}",
        "--emulator", str(emulator.data), "--state", str(state), "--quiet", *extra,
    ]  # fmt: skip


class Rclone:
    """rclone's OneDrive backend pointed at the emulator (as in tests/peers/test_rclone.py)."""

    def __init__(self, emulator: Emulator, drive: str, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        token = {
            "access_token": emulator.app_token(),
            "token_type": "Bearer",
            "refresh_token": "unused",
            "expiry": "2099-01-01T00:00:00Z",
        }
        self.config = home / "rclone.conf"
        self.config.write_text(
            "[od]\n"
            "type = onedrive\n"
            f"client_id = {emulator.info['client_id']}\n"
            f"client_secret = {emulator.info['client_secret']}\n"
            f"drive_id = {drive}\n"
            "drive_type = business\n"
            f"token = {json.dumps(token)}\n",
            encoding="utf-8",
        )
        self.ca = emulator.ca

    def cmd(self, *args: str) -> list[str]:
        return [RCLONE, "--config", str(self.config), "--ca-cert", str(self.ca), *args]


def fmt_table(runs: list[Run], base: Run | None = None) -> str:
    """The figures of `runs` as a Markdown table, with ratios to `base` (rclone)."""
    head = (
        "| client | wall s | files/s | MB/s | requests (HTTP + inside $batch) | 429s "
        "| CPU s | peak RSS MiB | emulator CPU s | exit |"
    )
    rows = [head, "|" + "---|" * 10]
    for r in runs:
        rows.append(
            f"| {r.label} | {r.wall:.2f} | {r.files_per_s:.1f} | {r.mb_per_s:.1f} "
            f"| {r.requests} ({r.http_requests} + {r.stats.get('batch_inner', 0)}) "
            f"| {r.throttled} | {r.cpu:.2f} | {r.rss_mib:.0f} | {r.emulator_cpu:.2f} "
            f"| {r.returncode} |"
        )
    return "\n".join(rows)


def ratio_line(ours: Run, theirs: Run) -> str:
    def q(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b else "n/a"

    return (
        f"ratio sharelift/rclone ({ours.label} vs {theirs.label}): "
        f"wall {q(ours.wall, theirs.wall)}, "
        f"files/s {q(ours.files_per_s, theirs.files_per_s)}, "
        f"MB/s {q(ours.mb_per_s, theirs.mb_per_s)}, "
        f"requests {q(ours.requests, theirs.requests)}, CPU {q(ours.cpu, theirs.cpu)}, "
        f"RSS {q(ours.rss_mib, theirs.rss_mib)}"
    )

"""The `cluster` scenario of bench/run.py: files/s with 1, 2 and 3 `sharelift worker`
processes against one emulator that adds latency to every request (so that the machine's
cores are not what limits one worker), PostgreSQL and redis-server started for it in
temporary folders (tests/support/servers.py).

Each count of workers migrates the same tree into a folder of its own, from `migrate
--broker` handing the job over to its run being over (the round closed): the wall time a user
waits. The goal: 3 workers >= 2.5x one worker's files/s.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import PYTHON, RESULTS, Emulator, clean_env, make_tree, tree_size

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.servers import PostgresServer, RedisServer


def _workers(count: int, env: dict[str, str], emulator: Emulator, logs: Path) -> list[Any]:
    procs = []
    for i in range(count):
        with (logs / f"worker{count}-{i}.log").open("w") as out:
            procs.append(
                subprocess.Popen(
                    [PYTHON, "-m", "sharelift", "worker", "--emulator", str(emulator.data)],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    return procs


def _stop(procs: list[Any]) -> None:
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def cluster(args: argparse.Namespace) -> None:
    files = max(60, round(2000 * args.scale))
    src = make_tree(f"cluster-{files}", files, 40, 4 * 1024, 16 * 1024)
    n, size = tree_size(src)
    out = RESULTS / "cluster"
    out.mkdir(parents=True, exist_ok=True)
    emulator = Emulator("cluster")
    postgres, redis = PostgresServer().start(), RedisServer().start()
    rows = []
    try:
        emulator.faults(latency_ms=args.latency_ms)
        upn = next(u["upn"] for u in emulator.info["users"] if u["drive_id"])
        for count in args.workers:
            env = clean_env(out, None)
            env.update(SHARELIFT_STATE=postgres.database(), SHARELIFT_BROKER=redis.url)
            procs = _workers(count, env, emulator, out)
            try:
                time.sleep(3)  # the workers sign in and connect before the clock starts
                command = [
                    PYTHON, "-m", "sharelift", "migrate", str(src), f"onedrive:{upn}/c{count}",
                    "--quiet", "--workers", str(args.concurrency),
                    "--unit-files", str(args.unit_files),
                    "--report", str(out / f"reports-{count}"),
                ]  # fmt: skip
                started = time.monotonic()
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
                wall = time.monotonic() - started
            finally:
                _stop(procs)
            if done.returncode != 0:
                raise SystemExit(f"{count} workers: exit {done.returncode}\n{done.stderr}")
            rows.append((count, wall, n / wall))
            print(f"  {count} worker(s): {wall:.1f} s, {n / wall:.1f} files/s", flush=True)
    finally:
        redis.stop()
        postgres.stop()
        emulator.stop()
    base = rows[0][2]
    lines = [
        f"## cluster ({n} files, {size / 2**20:.0f} MiB, {args.latency_ms:g} ms latency, "
        f"{args.concurrency} transfers per worker, units of {args.unit_files} files)",
        "",
        "| workers | wall (s) | files/s | x one worker |",
        "|---|---|---|---|",
        *(f"| {c} | {w:.1f} | {r:.1f} | {r / base:.2f} |" for c, w, r in rows),
        "",
        "goal: 3 workers >= 2.5x one worker's files/s",
    ]
    text = "\n".join(lines)
    print("\n" + text + "\n")
    (out / f"cluster-{time.strftime('%Y%m%dT%H%M%S')}.md").write_text(text + "\n")

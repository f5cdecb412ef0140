"""Side-by-side benchmarks: sharelift against rclone's OneDrive backend, one emulator, one run.

Usage:
    .venv/bin/python bench/run.py SCENARIO [--scale 1.0] [options]

SCENARIO is one of small, large, throttled, rerun, api, hash, memory, cluster (see
bench/README.md and docs/performance.md for what each measures and the goal it checks). --scale
multiplies the file counts (not the file sizes) for a quicker, smaller run. Data is generated
once under bench/data/; each run's emulator, logs and state live under bench/results/ (both
gitignored). Prints one table per scenario with wall time, files/s, MB/s, Graph requests (the
emulator's counters), 429s, CPU seconds, peak RSS, and the ratio sharelift / rclone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cluster import cluster
from common import (
    MIB,
    PYTHON,
    RESULTS,
    Emulator,
    Proxy,
    Rclone,
    Run,
    clean_env,
    fmt_table,
    make_empty_tree,
    make_large,
    make_tree,
    measure,
    ratio_line,
    sharelift_cmd,
    tree_size,
)

KIB = 1024


def scaled(n: int, scale: float, least: int = 1) -> int:
    return max(least, round(n * scale))


class Bench:
    """One emulator (own process) + the CONNECT proxy + the two clients, for one scenario."""

    def __init__(self, name: str, via_proxy: bool = True, *emulator_flags: str) -> None:
        self.name = name
        self.dir = RESULTS / name
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.emulator = Emulator(name, *emulator_flags)
        self.proxy = Proxy(self.emulator)
        self.env = clean_env(self.dir, self.proxy.url)
        self.sl_env = self.env if via_proxy else clean_env(self.dir, None)
        self.rclone = Rclone(self.emulator, self.emulator.drives[1], self.dir / "rclone")
        self.runs: list[Run] = []

    def sharelift(self, label: str, source: Path, folder: str, *flags: str, state: str = "") -> Run:
        state_file = self.dir / f"{state or label}.db"
        cmd = sharelift_cmd(
            source, self.emulator, self.emulator.drives[0], folder, state_file, *flags
        )
        return self._measure(Run(label, cmd), self.sl_env)

    def rclone_run(self, label: str, *args: str, remote: Rclone | None = None) -> Run:
        return self._measure(Run(label, (remote or self.rclone).cmd(*args)), self.env)

    def _measure(self, run: Run, env: dict[str, str]) -> Run:
        print(f"  running {run.label}: {' '.join(run.command)}", flush=True)
        measure(run, env, self.emulator, self.dir / f"{run.label}.log")
        print(
            f"    {run.wall:.1f} s, exit {run.returncode}, {run.requests} requests, "
            f"{run.throttled} x 429",
            flush=True,
        )
        self.runs.append(run)
        return run

    def close(self) -> None:
        self.proxy.stop()
        self.emulator.stop()


def report(title: str, runs: list[Run], pairs: list[tuple[Run, Run]], notes: list[str]) -> None:
    lines = [f"## {title}", "", fmt_table(runs), ""]
    lines += [ratio_line(a, b) for a, b in pairs]
    lines += notes
    text = "\n".join(lines)
    print("\n" + text + "\n")
    for r in runs:
        print(f"command ({r.label}): {' '.join(r.command)}")
    out = RESULTS / f"{title.split()[0].lower()}-{time.strftime('%Y%m%dT%H%M%S')}.md"
    out.write_text(
        text
        + "\n\n"
        + "\n".join(f"    {r.label}: {' '.join(r.command)}" for r in runs)
        + "\n"
        + json.dumps([{**r.__dict__, "command": r.command} for r in runs], default=str, indent=1)
    )
    print(f"saved to {out}")


def _count(run: Run, files: int, size: int) -> None:
    run.files, run.bytes = files, size


# --- scenarios -------------------------------------------------------------------------------


def small(args: argparse.Namespace) -> None:
    """10,000 files of 4-64 KiB in 200 folders; 50 ms added latency per request."""
    files, folders = scaled(10_000, args.scale), scaled(200, args.scale, 2)
    src = make_tree(f"small-{files}", files, folders, 4 * KIB, 64 * KIB)
    n, size = tree_size(src)
    b = Bench("small")
    try:
        b.emulator.faults(latency_ms=args.latency_ms)
        pairs = []
        for conc in args.concurrency:
            ours = b.sharelift(f"sharelift-{conc}", src, f"small-{conc}", "--workers", str(conc))
            theirs = [
                b.rclone_run(
                    f"rclone{suffix}-{conc}",
                    "copy",
                    str(src),
                    f"od:small{suffix}-{conc}",
                    "--transfers",
                    str(conc),
                    "--checkers",
                    str(conc),
                    "--no-check-dest",
                    "-q",
                    *flags,
                )
                # rclone negotiates HTTP/2 by default; it is compared at its faster setting.
                for suffix, flags in (("", ()), ("-http1", ("--disable-http2",)))
            ]
            for r in (ours, *theirs):
                _count(r, n, size)
            pairs.append((ours, min(theirs, key=lambda r: r.wall)))
        report(
            f"small files ({n} files, {size / MIB:.0f} MiB, {folders} folders, "
            f"{args.latency_ms:g} ms latency)",
            b.runs,
            pairs,
            ["goal: sharelift files/s >= 2x rclone's at 16, and at each one's best setting"],
        )
    finally:
        b.close()


def large(args: argparse.Namespace) -> None:
    """8 files of 256 MiB; no added latency."""
    files = scaled(8, args.scale)
    src = make_large(f"large-{files}", files, 256 * MIB)
    n, size = tree_size(src)
    b = Bench("large")
    try:
        chunk = args.chunk
        runs: dict[str, Run] = {}
        if "sharelift" in args.clients:
            runs["sharelift"] = b.sharelift(
                "sharelift", src, "large", "--workers", str(files), "--chunk-size", chunk
            )
        if "rclone" in args.clients:
            runs["rclone"] = b.rclone_run(
                "rclone", "copy", str(src), "od:large", "--transfers", str(files),
                "--checkers", str(files), "--no-check-dest", "--onedrive-chunk-size", chunk, "-q",
            )  # fmt: skip
            # rclone negotiates HTTP/2 by default; over HTTP/1.1 it uploads faster here.
            runs["rclone-http1"] = b.rclone_run(
                "rclone-http1", "copy", str(src), "od:large-h1", "--transfers", str(files),
                "--checkers", str(files), "--no-check-dest", "--onedrive-chunk-size", chunk,
                "--disable-http2", "-q",
            )  # fmt: skip
        for r in runs.values():
            _count(r, n, size)
        gb = size / 1e9
        pairs, notes = [], ["goal: MB/s >= rclone's"]
        if "sharelift" in runs and "rclone" in runs:
            ours = runs["sharelift"]
            theirs = min(runs["rclone"], runs["rclone-http1"], key=lambda r: r.wall)
            pairs.append((ours, theirs))
            notes.insert(
                0,
                f"CPU s per GB: sharelift {ours.cpu / gb:.2f}, rclone {theirs.cpu / gb:.2f} "
                f"(ratio {ours.cpu / theirs.cpu:.2f}; goal <= 1.5)",
            )
        report(f"large files ({n} x {size // n // MIB} MiB, chunk {chunk})", b.runs, pairs, notes)
    finally:
        b.close()


def _ok_ru(emulator: Emulator, since: float) -> tuple[int, int]:
    """(resource units of requests not throttled, of throttled ones) logged since `since`."""
    ok = bad = 0
    with open(emulator.requests_log()) as log:
        for line in log:
            rec = json.loads(line)
            if rec["time"] < since:
                continue
            if rec["fault"] == "throttled":
                bad += rec["ru"]
            else:
                ok += rec["ru"]
    return ok, bad


def throttled(args: argparse.Namespace) -> None:
    """3,000 small files under a resource-unit budget with Retry-After."""
    files, folders = scaled(3_000, args.scale), scaled(60, args.scale, 2)
    src = make_tree(f"throttled-{files}", files, folders, 4 * KIB, 64 * KIB)
    n, size = tree_size(src)
    b = Bench(f"throttled{args.tag}")
    rate = args.ru / args.window  # RU per second
    notes = []
    try:
        runs = []
        for label in args.clients:
            b.emulator.reset_faults()
            b.emulator.faults(ru_per_minute=args.ru, ru_window_s=args.window)
            since = time.time()
            if label == "sharelift":
                r = b.sharelift(label, src, "throttled", "--workers", str(args.concurrency))
            else:
                r = b.rclone_run(
                    label, "copy", str(src), "od:throttled", "--transfers", str(args.concurrency),
                    "--checkers", str(args.concurrency), "--no-check-dest", "-q",
                )  # fmt: skip
            _count(r, n, size)
            time.sleep(1.5)  # the emulator's request log flushes at least every second
            ok, bad = _ok_ru(b.emulator, since)
            minimum = ok / rate
            # A fixed window hands out a whole budget at once: the exact lower bound.
            windows = max(0, -(-ok // args.ru) - 1) * args.window
            r.extra = {"ru_ok": ok, "ru_throttled": bad, "min_s": minimum}
            notes.append(
                f"{label}: {ok} RU in requests that passed (+{bad} RU in throttled ones); "
                f"budget {args.ru} RU / {args.window:g} s -> minimum {minimum:.1f} s at the "
                f"budget's rate ({windows:g} s by whole windows); wall {r.wall:.1f} s = "
                f"{r.wall / minimum:.2f}x the minimum (goal <= 1.15); failures: exit {r.returncode}"
            )
            runs.append(r)
        report(
            f"throttled ({n} files, {args.ru} RU per {args.window:g} s window)",
            b.runs,
            [(runs[0], runs[1])] if len(runs) == 2 else [],
            notes,
        )
    finally:
        b.close()


def rerun(args: argparse.Namespace) -> None:
    """N unchanged files already migrated: the second run (and --repeat more)."""
    files, folders = scaled(100_000, args.scale), scaled(1000, args.scale, 2)
    src = make_tree(f"rerun-{files}", files, folders, 1 * KIB, 4 * KIB)
    n, size = tree_size(src)
    b = Bench("rerun")
    conc = str(args.first_workers)
    copy = ["copy", str(src), "od:rerun", "-q"]
    try:
        first = b.sharelift("sharelift-first", src, "rerun", "--workers", conc, state="rerun")
        _completed(first)
        agains = [
            b.sharelift(label, src, "rerun", "--workers", "32", state="rerun")
            for label in _labels("sharelift-rerun", args.repeat)
        ]
        if args.rclone_on == "own":
            remote = b.rclone
            _completed(b.rclone_run("rclone-first", *copy, "--transfers", conc, "--checkers", conc))
        else:
            # The folder sharelift migrated: rclone compares size and modification time, and
            # sharelift gave every file its source time, so this is rclone's re-run of it.
            remote = Rclone(b.emulator, b.emulator.drives[0], b.dir / "rclone-on-sharelift")
        ragains = [
            b.rclone_run(label, *copy, "--transfers", "32", "--checkers", "32", remote=remote)
            for label in _labels("rclone-rerun", args.repeat)
        ]
        for r in b.runs:
            _count(r, n, size)
        walls = ", ".join(f"{r.wall:.2f}" for r in agains)
        on = "its own first migration" if args.rclone_on == "own" else "sharelift's folder"
        report(
            f"re-run ({n} unchanged files in {folders} folders)",
            b.runs,
            [(_median(agains), _median(ragains))],
            [
                f"sharelift re-run: {walls} s, {max(r.requests for r in agains)} Graph requests "
                "at most (goal: under 10 s, no per-file request)",
                f"first migrations with {conc} workers; rclone re-runs {on}"
                + (f"; ratio of the medians of {args.repeat} re-runs" if args.repeat > 1 else ""),
            ],
        )
    finally:
        b.close()


def _completed(first: Run) -> None:
    """A re-run is measured only after a first migration that completed."""
    if first.returncode != 0:
        raise SystemExit(f"{first.label} exited with {first.returncode}: no re-run to measure")


def _labels(base: str, count: int) -> list[str]:
    return [base] if count == 1 else [f"{base}-{i}" for i in range(1, count + 1)]


def _median(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.wall)[(len(runs) - 1) // 2]


def hash_(args: argparse.Namespace) -> None:
    """QuickXorHash of 1 GiB: bench/hash.py (sharelift in memory and on a file, rclone)."""
    size = max(1, round(1024 * args.scale))
    cmd = [PYTHON, str(Path(__file__).with_name("hash.py")), "--size-mib", str(size)]
    print("  running", " ".join(cmd), flush=True)
    raise SystemExit(subprocess.call(cmd))


def memory(args: argparse.Namespace) -> None:
    """Scan and plan 1,000,000 files (a dry run against the emulator): peak RSS."""
    files = scaled(1_000_000, args.scale)
    print(f"  generating {files} empty files (once)...", flush=True)
    src = make_empty_tree(f"memory-{files}", files)
    b = Bench("memory")
    try:
        ours = b.sharelift("sharelift-dry-run", src, "memory", "--dry-run")
        scan = b._measure(
            Run("sharelift-scan", [PYTHON, "-m", "sharelift", "scan", str(src), "--json"]), b.env
        )
        theirs = b.rclone_run(
            "rclone-dry-run", "copy", str(src), "od:memory", "--dry-run", "--checkers", "16", "-q"
        )
        for r in (ours, scan, theirs):
            _count(r, files, 0)
        report(
            f"memory (scan and plan {files} files)",
            b.runs,
            [(ours, theirs)],
            [f"sharelift peak RSS {ours.rss_mib:.0f} MiB (goal: under 300 MB = 286 MiB)"],
        )
    finally:
        b.close()


API = ("--via", "migration-api", "--auth", "certificate", "--migration-poll", "2")
PIPELINES = ("plain", "plain+snapshot", "pipeline", "archives")


def _pipeline(src: Path, info: dict[str, object], workers: int, how: str) -> float:
    """Seconds to store every file of `src` in the emulator's Azurite, `workers` files at a
    time, 250 files to a container as packages go: through sharelift's packaging pipeline
    (`how="pipeline"`: read, quickXorHash, AES-256-CBC, MD5, block upload with the next part
    read meanwhile, snapshot), or that pipeline with the files under 100 KB packed into zip
    archives first (`"archives"`, `--archive-small-files`: each package's two archives are
    built, then stored as blobs), or a plain azure-storage-blob `upload_blob` of the same
    bytes (`"plain"`: the limit here; the SDK's own chunking), or that and the snapshot the
    service requires of every blob (`"plain+snapshot"`). All through the same connection
    pool."""
    from concurrent.futures import ThreadPoolExecutor

    from azure.storage.blob import BlobServiceClient

    from sharelift.migration_api import archive, blob
    from sharelift.migration_api.crypto import new_key

    azurite = info["migration_api"]
    assert isinstance(azurite, dict)
    conn = (
        f"DefaultEndpointsProtocol=https;AccountName={azurite['account_name']};"
        f"AccountKey={azurite['account_key']};BlobEndpoint={azurite['blob_endpoint']};"
    )
    ca = str(info["ca_file"])
    service = BlobServiceClient.from_connection_string(conn, connection_verify=ca)
    sessions = blob.Sessions(2 * workers + 4)
    paths = [p for p in sorted(src.rglob("*")) if p.is_file()]
    containers = []
    for first in range(0, len(paths), 250):
        name = f"bench-{how.replace('+', '-')}-{first}-{time.time_ns()}"
        service.create_container(name)
        containers.append(blob.own_container(conn, f"{service.url}{name}", ca, sessions))
    key = new_key()
    stage = ThreadPoolExecutor(max_workers=workers * 2)

    def one(index: int) -> None:
        path = paths[index]
        container = containers[index // 250]
        blob_name = path.relative_to(src).as_posix()
        if how == "archives" and index in archived:
            return
        if how in ("pipeline", "archives"):
            fd = os.open(path, os.O_RDONLY)
            try:
                size = os.fstat(fd).st_size
                blob.put_file(
                    container, blob_name, lambda at, n: os.pread(fd, n, at), size, key, stage
                )
            finally:
                os.close(fd)
        else:
            with path.open("rb") as handle:
                client = container.upload_blob(blob_name, handle, overwrite=True)
            if how == "plain+snapshot":
                client.create_snapshot()

    def pack(first: int, number: int, group: list[str]) -> None:
        writer = archive.ArchiveWriter()
        for name in group:
            writer.add(name, (src / name).read_bytes())
        data = writer.finish()
        container = containers[first // 250]
        blob.put_bytes(container, archive.archive_name(number), data, key, stage)

    groups: list[tuple[int, int, list[str]]] = []
    archived: set[int] = set()
    if how == "archives":
        index = {p.relative_to(src).as_posix(): i for i, p in enumerate(paths)}
        for first in range(0, len(paths), 250):
            small = [
                (p.relative_to(src).as_posix(), p.stat().st_size)
                for p in paths[first : first + 250]
                if archive.fits(p.stat().st_size)
            ]
            for number, group in enumerate(archive.group(small)):
                groups.append((first, number, group))
                archived.update(index[name] for name in group)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        packed = [pool.submit(pack, *group) for group in groups]
        list(pool.map(one, range(len(paths))))
        for future in packed:
            future.result()
    took = time.perf_counter() - start
    stage.shutdown()
    sessions.close()
    for container in containers:
        service.delete_container(container.container_name)
    service.close()
    return took


def api(args: argparse.Namespace) -> None:
    """The Migration API against Graph: 10,000 small files and 8 x 256 MiB, both ways, one
    emulator; then the packaging pipeline against a plain blob upload to the same Azurite."""
    files, folders = scaled(10_000, args.scale), scaled(200, args.scale, 2)
    small_src = make_tree(f"small-{files}", files, folders, 4 * KIB, 64 * KIB)
    large_src = make_large(f"large-{scaled(8, args.scale)}", scaled(8, args.scale), 256 * MIB)
    b = Bench("api", False, "--migration-api", "start")
    notes: list[str] = []
    try:
        runs: dict[str, Run] = {}
        for shape, src in (
            () if args.pipeline_only else (("small", small_src), ("large", large_src))
        ):
            n, size = tree_size(src)
            at_once = str(args.workers if shape == "small" else 8)
            for via in ("graph", "api") + (("api-archive",) if shape == "small" else ()):
                flags = {"graph": (), "api": API, "api-archive": (*API, "--archive-small-files")}[
                    via
                ]
                label = f"{via}-{shape}"
                runs[label] = run = b.sharelift(label, src, label, "--workers", at_once, *flags)
                _count(run, n, size)
            gb = size / 1e9
            graph, ours = runs[f"graph-{shape}"], runs[f"api-{shape}"]
            notes.append(
                f"{shape}: client CPU s per GB: migration-api {ours.cpu / gb:.2f}, graph "
                f"{graph.cpu / gb:.2f} (goal: migration-api <= graph); wall: migration-api "
                f"{ours.wall:.1f} s (upload, then the service's import), graph {graph.wall:.1f} s"
            )
            if shape == "small":
                packed = runs["api-archive-small"]
                notes.append(
                    f"small with --archive-small-files: client CPU s per GB "
                    f"{packed.cpu / gb:.2f}, wall {packed.wall:.1f} s"
                )
        info = json.loads((b.emulator.data / "emulator.json").read_text())
        for shape, src in (("large", large_src), ("small", small_src)):
            n, size = tree_size(src)
            workers = 8 if shape == "large" else args.workers
            took = {how: _pipeline(src, info, workers, how) for how in PIPELINES}
            mib = size / MIB
            notes.append(
                f"packaging pipeline, {shape} ({n} files, {mib:.0f} MiB, {workers} at a time, "
                f"250 to a container): read + hash + encrypt + upload + snapshot "
                f"{mib / took['pipeline']:.1f} MiB/s; plain upload_blob "
                f"{mib / took['plain']:.1f} MiB/s (the limit): "
                f"{took['plain'] / took['pipeline']:.0%} of it (goal >= 70%); plain upload_blob "
                f"+ snapshot {mib / took['plain+snapshot']:.1f} MiB/s: "
                f"{took['plain+snapshot'] / took['pipeline']:.0%} of that; with archives "
                f"(--archive-small-files) {mib / took['archives']:.1f} MiB/s: "
                f"{took['plain'] / took['archives']:.0%} of plain upload_blob"
            )
        report("api (the Migration API against Graph)", b.runs, [], notes)
    finally:
        b.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="scenario", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--scale", type=float, default=1.0, help="multiply file counts by this")
    p = sub.add_parser("small", parents=[common])
    p.add_argument("--latency-ms", type=float, default=50)
    p.add_argument(
        "--concurrency", type=int, nargs="+", default=[16],
        help="transfers to compare at (both clients), e.g. 16 64",
    )  # fmt: skip
    p.set_defaults(run=small)
    p = sub.add_parser("large", parents=[common])
    p.add_argument("--chunk", default="10M", help="fragment size for both (multiple of 320k)")
    p.add_argument("--clients", nargs="+", default=["sharelift", "rclone"])
    p.set_defaults(run=large)
    p = sub.add_parser("throttled", parents=[common])
    p.add_argument("--ru", type=int, default=1000, help="resource units per window")
    p.add_argument("--window", type=float, default=15.0, help="window length, seconds")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--clients", nargs="+", default=["sharelift", "rclone"])
    p.add_argument("--tag", default="", help="suffix of the results folder")
    p.set_defaults(run=throttled)
    p = sub.add_parser("rerun", parents=[common])
    p.add_argument("--repeat", type=int, default=1, help="measured re-runs per client")
    p.add_argument(
        "--first-workers", type=int, default=32,
        help="workers (sharelift) / transfers and checkers (rclone) of the first migrations",
    )  # fmt: skip
    p.add_argument(
        "--rclone-on", choices=["own", "sharelift"], default="own",
        help="rclone re-runs its own first migration (own) or the folder sharelift migrated "
        "(sharelift: no second first migration)",
    )  # fmt: skip
    p.set_defaults(run=rerun)
    p = sub.add_parser("api", parents=[common])
    p.add_argument("--workers", type=int, default=16, help="sharelift workers for small files")
    p.add_argument(
        "--pipeline-only", action="store_true", help="only the packaging pipeline's figures"
    )
    p.set_defaults(run=api)
    p = sub.add_parser("hash", parents=[common])
    p.set_defaults(run=hash_)
    p = sub.add_parser("memory", parents=[common])
    p.set_defaults(run=memory)
    p = sub.add_parser("cluster", parents=[common])
    p.add_argument("--latency-ms", type=float, default=100)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--concurrency", type=int, default=4, help="transfers per worker")
    p.add_argument("--unit-files", type=int, default=100, help="files per unit of work")
    p.set_defaults(run=cluster)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

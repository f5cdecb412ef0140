"""QuickXorHash throughput: sharelift's vectorised hash against rclone's, on the same bytes.

Usage:
    .venv/bin/python bench/hash.py [--size-mib 1024] [--repeat 3] [--dir /tmp] [--no-rclone]

Generates SIZE random bytes in memory (nothing is committed or kept), then measures:

1. ``QuickXorHash.update`` on the in-memory buffer (one core; the hash's own speed);
2. ``quickxor_file`` on a temporary file holding the same bytes (read + hash, page cache warm);
3. ``rclone hashsum quickxor`` on that file (process start included), when rclone is installed,
   and checks that both digests agree.

Prints GB/s (10^9 bytes per second) for each, best of REPEAT runs, and the ratio to rclone.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

from sharelift.quickxorhash import QuickXorHash, b64, quickxor_file


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, object]:
    """The shortest wall time of ``repeat`` runs, and the last result."""
    best = float("inf")
    result: object = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="bytes to hash, in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best)")
    parser.add_argument("--dir", default=None, help="folder for the temporary file")
    parser.add_argument("--no-rclone", action="store_true", help="skip the rclone comparison")
    args = parser.parse_args()

    size = args.size_mib * 1024 * 1024
    print(f"generating {args.size_mib} MiB of random bytes...", flush=True)
    data = np.random.default_rng(2024).integers(0, 256, size, dtype=np.uint8).tobytes()

    def in_memory() -> bytes:
        h = QuickXorHash()
        h.update(data)
        return h.digest()

    seconds, digest = best_of(args.repeat, in_memory)
    assert isinstance(digest, bytes)
    memory_rate = size / seconds / 1e9
    print(f"sharelift in memory : {memory_rate:6.2f} GB/s  ({seconds:.3f} s)  {b64(digest)}")

    fd, path = tempfile.mkstemp(prefix="sharelift-hash-", suffix=".bin", dir=args.dir)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        seconds, file_digest = best_of(args.repeat, lambda: quickxor_file(path))
        file_rate = size / seconds / 1e9
        print(f"sharelift file      : {file_rate:6.2f} GB/s  ({seconds:.3f} s)  {b64(digest)}")
        if file_digest != digest:
            print("MISMATCH between in-memory and file digests", file=sys.stderr)
            return 1
        rclone = shutil.which("rclone")
        if args.no_rclone or rclone is None:
            print("rclone              : not run")
            return 0

        def run_rclone() -> str:
            out = subprocess.run(
                [rclone, "hashsum", "quickxor", "--base64", path],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            return out.stdout.split()[0]

        seconds, rclone_digest = best_of(args.repeat, run_rclone)
        rclone_rate = size / seconds / 1e9
        print(f"rclone file         : {rclone_rate:6.2f} GB/s  ({seconds:.3f} s)  {rclone_digest}")
        # rclone prints URL-safe base64; Graph (and b64()) use the standard alphabet.
        assert isinstance(rclone_digest, str)
        if base64.urlsafe_b64decode(rclone_digest) != digest:
            print("MISMATCH between sharelift and rclone digests", file=sys.stderr)
            return 1
        print(
            f"ratio sharelift/rclone: {memory_rate / rclone_rate:.1f}x in memory, "
            f"{file_rate / rclone_rate:.1f}x on the file; digests agree"
        )
    finally:
        os.unlink(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Run the real command line under a pseudo-terminal and read what it drew.

`run_in_terminal(argv)` starts the process with a pty as its stdin, stdout and stderr (so it
takes itself to be on a person's terminal, and draws its live display), sized `columns` x
`rows`, and returns its exit code and everything it wrote. `frames(output)` splits a live
display's output into the text of each redraw, escape sequences removed.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence

_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def run_in_terminal(
    argv: Sequence[str],
    *,
    columns: int = 120,
    rows: int = 40,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
) -> tuple[int, str]:
    """Run `argv` on a new pseudo-terminal; returns (exit code, all output as text)."""
    main, child = os.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    environment = dict(os.environ if env is None else env)
    environment.update({"TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows)})
    environment.pop("NO_COLOR", None)
    process = subprocess.Popen(
        list(argv), stdin=child, stdout=child, stderr=child, env=environment, close_fds=True
    )
    os.close(child)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(main, 65536)
            except OSError as exc:  # the child side closed: Linux says EIO
                if exc.errno == errno.EIO:
                    break
                raise
            if not data:
                break
            chunks.append(data)
        else:
            process.kill()
            raise TimeoutError(f"{argv[:4]} did not end within {timeout} s")
        code = process.wait(timeout=30)
    finally:
        os.close(main)
    return code, b"".join(chunks).decode("utf-8", "replace")


def plain(output: str) -> str:
    """The output without escape sequences, carriage returns made line ends."""
    return _ESCAPE.sub("", output).replace("\r\n", "\n").replace("\r", "\n")


def frames(output: str) -> list[str]:
    """The text of each redraw of a live display (rich moves the cursor up and erases the
    previous frame before it draws the next)."""
    parts = re.split(r"(?:\x1b\[1A\x1b\[2K)+|\x1b\[\d+A", output)
    return [plain(part) for part in parts if plain(part).strip()]

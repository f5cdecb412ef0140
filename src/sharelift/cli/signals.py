"""Ctrl-C and SIGTERM for the commands that migrate: the first one stops gracefully, the second
stops now. The library only knows a stop event and cancellation; this is the one place that
turns signals into them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def run_until_signalled(
    work: Callable[[asyncio.Event], Awaitable[T]],
    say: Callable[[str], None],
    first: str,
) -> T:
    """Await `work(stop)` with SIGINT and SIGTERM handled: the first sets `stop` (and says
    `SIGNAME: first`), the second cancels the work. Raises KeyboardInterrupt when the work was
    cancelled that way (the command's exit code 130), after the work has cleaned up."""
    stop = asyncio.Event()
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    stopped_now = False
    installed: list[signal.Signals] = []

    def fire(signum: signal.Signals) -> None:
        nonlocal stopped_now
        if not stop.is_set():
            say(f"{signum.name}: {first}")
            stop.set()
        elif main is not None:
            say(f"{signum.name}: stopping now")
            stopped_now = True
            main.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, fire, signum)
            installed.append(signum)
    try:
        return await work(stop)
    except asyncio.CancelledError:
        if not stopped_now:
            raise
        # The rounds are closed as interrupted already: end as an interrupted run does.
        raise KeyboardInterrupt from None
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)

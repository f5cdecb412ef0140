"""Waiting for a round's tasks to end, cancellations included.

A round must not close (and its state store must not be closed) while one of its tasks may
still write; `wait_all` is how every part of the engine waits for its tasks, even while it is
itself being cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_all(tasks: list[asyncio.Task[None]], *, on_cancel: Callable[[], None]) -> None:
    """Wait until every task has ended. A cancellation of the caller meanwhile calls
    `on_cancel`, cancels the tasks and still waits for them; the caller learns of it through
    `on_cancel` and passes it on."""
    pending = [t for t in tasks if not t.done()]
    while pending:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            on_cancel()
            for task in pending:
                task.cancel()
        pending = [t for t in pending if not t.done()]
    for task in tasks:  # retrieved here; the caller looks at those it cares about
        if not task.cancelled():
            task.exception()

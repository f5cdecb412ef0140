"""`sharelift worker`'s library side: one Celery worker process that runs units of work.

    serve(...)  checks the state store, registers the task, starts the heartbeat thread and
                runs a Celery worker (threads pool, one unit at a time) on the given queues
                until it is stopped; SIGTERM stops the unit it runs gracefully (files in
                flight end their fragment, the unit is handed back to the queue) and then the
                worker; a second SIGTERM or SIGQUIT ends it (Celery's cold shutdown)

The worker signs in with its own credential (its environment, files, profile): nothing secret
travels through the broker or the state store.
"""

from __future__ import annotations

import functools
import logging
import re
import socket
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from sharelift.cluster.app import TASK, make_app, publish
from sharelift.cluster.heartbeat import Heartbeat, worker_name
from sharelift.cluster.runner import WorkerContext, execute
from sharelift.credential import Credential
from sharelift.errors import OptionError
from sharelift.state import open_state
from sharelift.urls import hide_password

log = logging.getLogger("sharelift.cluster")
_QUEUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_queue(name: str) -> str:
    """A queue (group of workers) name, checked: letters, digits, `_`, `.`, `-`."""
    if not _QUEUE.fullmatch(name):
        raise OptionError(
            "queue", f"{name!r} is not a queue name (letters, digits, '_', '.', '-', up to 64)"
        )
    return name


def check_broker(url: str) -> str:
    """A broker URL, checked: Redis."""
    if not url.lower().startswith(("redis://", "rediss://")):
        raise OptionError("broker", f"{hide_password(url)}: expected redis://HOST:PORT/DB")
    return url


def serve(
    *,
    broker: str,
    state: str,
    queues: Sequence[str],
    credential: Credential,
    lease_ttl: float,
    heartbeat: float,
    visibility_timeout: float,
    say: Callable[[str], None],
) -> int:
    """Run a worker until it is stopped; returns its exit code (see the module docstring)."""
    check_broker(broker)
    queues = [check_queue(q) for q in queues]
    open_state(state).close()  # a store that cannot be opened fails now, with its reason
    app = make_app(broker, visibility_timeout=visibility_timeout)
    name = worker_name()
    handover = functools.partial(publish, app)
    beat = Heartbeat(
        state,
        name,
        queues,
        handover,
        interval=heartbeat,
        ttl=lease_ttl,
        republish_after=max(lease_ttl, 3 * heartbeat),
    )
    ctx = WorkerContext(name, state, credential, beat, handover, lease_ttl)

    @app.task(name=TASK)  # type: ignore[untyped-decorator]
    def unit(unit_id: int) -> None:
        say(execute(ctx, int(unit_id)))

    from celery.exceptions import CPendingDeprecationWarning
    from celery.signals import worker_shutting_down

    # Celery warns, on every lost broker connection, that it will cancel late-acknowledged
    # tasks by default one day; this app says not to (`make_app`): the lease carries the unit.
    warnings.filterwarnings("ignore", category=CPendingDeprecationWarning)

    def shutting_down(**_: Any) -> None:
        busy = " once the unit in flight is handed back" if ctx.running is not None else ""
        say(f"worker {name}: stopping{busy}")
        ctx.stop()

    worker_shutting_down.connect(shutting_down, weak=False)
    say(
        f"worker {name}: queues {', '.join(queues)}, broker {hide_password(broker)}, "
        f"state {hide_password(state)}"
    )
    beat.start()
    host = socket.gethostname()
    worker = app.Worker(
        hostname=f"sharelift-{name.replace(':', '-')}@{host}",
        queues=queues,
        loglevel="WARNING",
        quiet=True,
        without_heartbeat=True,
        without_gossip=True,
        without_mingle=True,
        optimization="fair",
    )
    try:
        worker.start()
    finally:
        beat.stop()
    return int(worker.exitcode or 0)

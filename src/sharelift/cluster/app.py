"""The Celery app of a cluster, and how a unit of work is handed to the broker.

The broker only carries unit ids to the workers of a queue; what a unit is, who holds it and
how far it got live in the state store. The settings fit units that take minutes to an hour:

- `task_acks_late` with `task_reject_on_worker_lost`: a message is acknowledged when its unit
  has ended, so a worker that dies takes nothing with it;
- `worker_prefetch_multiplier = 1` (and one unit at a time per worker): a worker holds no
  message it is not working on, which another worker could have taken;
- a Redis `visibility_timeout` longer than any unit (4 h by default): Redis hands an
  unacknowledged message to another worker only after it; a worker that died is found sooner
  by its lease, which lapses in a minute;
- `worker_soft_shutdown_timeout`: a cold shutdown (SIGQUIT) still lets the files in flight
  finish; SIGTERM stops the unit gracefully (its files in flight end their fragment, the unit
  is handed back) and the worker leaves;
- broker connections retried for ever, and a task is not cancelled when the connection drops:
  the unit goes on under its lease (a duplicate delivery backs off);
- JSON only, no results kept.

Retries do not use Celery's countdowns: within a unit every wait is the tenant's pacer's
(Retry-After included); a unit that the tenant kept throttling is handed back with a delay
(`StateStore.release_unit`) and handed to the broker again when it is due.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

TASK = "sharelift.unit"
"""The one task: run the unit whose id it carries."""
SOFT_SHUTDOWN = 60.0
"""Seconds a cold shutdown waits for a unit to stop by itself."""


def make_app(broker_url: str, *, visibility_timeout: float = 14_400.0) -> Celery:
    """A Celery app on the broker at `broker_url` (Redis)."""
    app = Celery("sharelift", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        worker_pool="threads",
        worker_soft_shutdown_timeout=SOFT_SHUTDOWN,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            "socket_connect_timeout": 5,
            "socket_timeout": 30,
        },
        broker_heartbeat=0,
    )
    return app


def publish(app: Celery, unit_id: int, queue: str) -> None:
    """Hand unit `unit_id` to the workers of `queue`. Raises what the broker's client raises
    when it cannot be reached after a short retry (the unit stays due in the state store)."""
    policy: dict[str, Any] = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}
    app.send_task(TASK, args=[unit_id], queue=queue, retry=True, retry_policy=policy)

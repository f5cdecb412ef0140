"""Migration job events and the per-job event log that GetMigrationJobProgress pages through.

Events are flat JSON objects whose values are all strings, nested statistics included as JSON
text; `Time` is `MM/dd/yyyy HH:mm:ss.fff` in UTC (sp-dev-docs `docs/apis/migration-events.md`,
`migration-job-progress-api-reference.md`). Every event of an import carries `JobId`, `Time`,
`CorrelationId`, `TotalRetryCount`, `MigrationType` ("None") and `MigrationDirection`
("Import"); the event name is in `Event`.

`EventLog` keeps a job's events in order, on disk (one JSON line each) so that a restarted
emulator still answers for its jobs. A progress token is the count of events already handed
out, as decimal text: "0" starts, a caller that got everything gets its own token back with no
events, and asking again with an old token returns the same events (idempotent, as the page
requires for finished jobs).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

TERMINAL_EVENTS = frozenset({"JobEnd", "JobCancelled", "JobDeleted"})
PAGE_SIZE = 500
"""Most events one GetMigrationJobProgress answer carries (the page gives no figure)."""


def event_time(when: dt.datetime | None = None) -> str:
    """`05/20/2025 09:18:48.132`: the services's event time format, UTC."""
    when = when or dt.datetime.now(dt.UTC)
    return when.strftime("%m/%d/%Y %H:%M:%S.") + f"{when.microsecond // 1000:03d}"


def make_event(name: str, job_id: str, correlation_id: str, **fields: object) -> dict[str, str]:
    """One event: the common fields, then `fields` as strings (dicts become JSON text)."""
    event: dict[str, str] = {
        "Event": name,
        "JobId": job_id,
        "Time": event_time(),
        "CorrelationId": correlation_id,
        "TotalRetryCount": "0",
        "MigrationType": "None",
        "MigrationDirection": "Import",
    }
    for key, value in fields.items():
        if isinstance(value, dict | list):
            event[key] = json.dumps(value, separators=(",", ":"))
        elif isinstance(value, bool):
            event[key] = "True" if value else "False"
        else:
            event[key] = "" if value is None else str(value)
    return event


def new_correlation_id() -> str:
    return str(uuid.uuid4())


class EventLog:
    """The ordered events of one job, appended by the worker and read by REST calls."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._events: list[str] = []
        if path.exists():
            self._events = [line for line in path.read_text("utf-8").splitlines() if line]

    def append(self, event: dict[str, Any]) -> str:
        """Add `event`; returns its JSON text (as GetMigrationJobProgress hands it out)."""
        text = json.dumps(event, separators=(",", ":"))
        with self._lock:
            self._events.append(text)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(text + "\n")
        return text

    def age_s(self) -> float:
        """Seconds since the job's last event."""
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:
            return 0.0

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def names(self) -> list[str]:
        with self._lock:
            return [json.loads(e)["Event"] for e in self._events]

    @property
    def finished(self) -> bool:
        names = self.names()
        return bool(names) and names[-1] in TERMINAL_EVENTS

    def page(self, token: str) -> tuple[list[str], str] | None:
        """The events after `token` and the next token; None for a token never handed out."""
        if not token.isdigit():
            return None
        start = int(token)
        with self._lock:
            if start > len(self._events):
                return None
            chunk = self._events[start : start + PAGE_SIZE]
        return chunk, str(start + len(chunk))

"""What the emulator saw: a JSON-lines request log and counters.

`ObserveMiddleware` is the outermost layer. It puts a `RequestRecord` into the ASGI scope under
`RECORD_KEY`; inner layers (faults) fill in the kind, resource-unit cost and any injected fault.
When the response ends it adds the record to `Stats` and to the buffered `RequestLog`
(`data_dir/requests.jsonl`, one JSON object a line). Neither ever holds a token, a secret or an
Authorization header: only the path, and the query with every value outside a short allow-list
replaced by `***`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RECORD_KEY = "sharelift.record"
"""ASGI scope key holding the current request's RequestRecord."""

_SAFE_QUERY = frozenset(
    {"$top", "$select", "$expand", "$orderby", "$filter", "$count", "api-version", "$format"}
)


@dataclass
class RequestRecord:
    """One request as the log and counters see it. Inner layers may set the mutable fields."""

    method: str
    path: str
    started: float
    kind: str = "other"
    ru: int = 0
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    batch: bool = False
    bearer: bool = False
    """The request carried an Authorization header (counted for pre-authenticated URLs)."""
    fault: str | None = None
    """None, "throttled", "injected" (a 5xx), "dropped", "replace_refused" (SharePoint's 404
    on replacing an Office file) or "never_answered"."""


def loggable_path(scope: Scope) -> str:
    """The request's path and query, with every query value outside the allow-list redacted."""
    path: str = scope.get("path", "")
    raw = scope.get("query_string", b"")
    if not raw:
        return path
    pairs = parse_qsl(bytes(raw).decode("latin-1"), keep_blank_values=True)
    query = "&".join(
        f"{quote(k, safe='$')}={quote(v, safe='') if k in _SAFE_QUERY else '***'}" for k, v in pairs
    )
    return f"{path}?{query}"


class Stats:
    """Thread-safe counters since start (or the last reset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._by_kind: Counter[str] = Counter()
            self._by_status: Counter[int] = Counter()
            self._throttled = 0
            self._injected = 0
            self._dropped = 0
            self._replace_refused = 0
            self._never_answered = 0
            self._bearer_on_upload_urls = 0
            self._bearer_on_download_urls = 0
            self._bytes_in = 0
            self._bytes_out = 0
            self._ru = 0
            self._batch_inner = 0
            self._since = time.time()

    def add(self, rec: RequestRecord) -> None:
        with self._lock:
            self._requests += 1
            self._by_kind[rec.kind] += 1
            if rec.status:
                self._by_status[rec.status] += 1
            self._throttled += rec.fault == "throttled"
            self._injected += rec.fault == "injected"
            self._dropped += rec.fault == "dropped"
            self._replace_refused += rec.fault == "replace_refused"
            self._never_answered += rec.fault == "never_answered"
            if rec.bearer and rec.kind in ("upload", "upload-session"):
                self._bearer_on_upload_urls += 1
            self._bearer_on_download_urls += rec.bearer and rec.kind == "download-url"
            self._bytes_in += rec.bytes_in
            self._bytes_out += rec.bytes_out
            self._ru += rec.ru
            self._batch_inner += rec.batch

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON-ready data (the body of GET /_emulator/stats)."""
        with self._lock:
            return {
                "since": self._since,
                "requests": self._requests,
                "by_kind": dict(self._by_kind),
                "by_status": {str(k): v for k, v in sorted(self._by_status.items())},
                "throttled": self._throttled,
                "injected_5xx": self._injected,
                "dropped": self._dropped,
                "replace_refused": self._replace_refused,
                "never_answered": self._never_answered,
                "bearer_on_upload_urls": self._bearer_on_upload_urls,
                "bearer_on_download_urls": self._bearer_on_download_urls,
                "bytes_in": self._bytes_in,
                "bytes_out": self._bytes_out,
                "resource_units": self._ru,
                "batch_inner": self._batch_inner,
            }


class RequestLog:
    """Append-only JSON-lines log with buffered writes; `flush()` and `close()` are safe anytime."""

    def __init__(self, path: Path | None, flush_every: int = 512, flush_after_s: float = 1.0):
        self.path = path
        self._file: IO[str] | None = path.open("a", encoding="utf-8") if path else None
        self._buffer: list[str] = []
        self._lock = threading.Lock()
        self._flush_every = flush_every
        self._flush_after_s = flush_after_s
        self._last_flush = time.monotonic()

    def write(self, rec: RequestRecord, ended: float) -> None:
        if self._file is None:
            return
        line = json.dumps(
            {
                "time": round(rec.started, 6),
                "method": rec.method,
                "path": rec.path,
                "status": rec.status,
                "kind": rec.kind,
                "ru": rec.ru,
                "bytes_in": rec.bytes_in,
                "bytes_out": rec.bytes_out,
                "duration_ms": round((ended - rec.started) * 1000, 3),
                "batch": rec.batch,
                "fault": rec.fault,
            },
            separators=(",", ":"),
        )
        with self._lock:
            self._buffer.append(line)
            due = time.monotonic() - self._last_flush >= self._flush_after_s
            if len(self._buffer) >= self._flush_every or due:
                self._flush_locked()

    def _flush_locked(self) -> None:
        if self._file is not None and self._buffer:
            self._file.write("\n".join(self._buffer) + "\n")
            self._file.flush()
            self._buffer.clear()
        self._last_flush = time.monotonic()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        with self._lock:
            self._flush_locked()
            if self._file is not None:
                self._file.close()
                self._file = None


class ObserveMiddleware:
    """Pure ASGI, outermost: measures each HTTP request and records it in stats and the log."""

    def __init__(self, app: ASGIApp, stats: Stats, log: RequestLog) -> None:
        self.app = app
        self.stats = stats
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            # Admin calls are left out, so reading the counters does not change them.
            await self.app(scope, receive, send)
            return
        rec = RequestRecord(
            method=scope["method"],
            path=loggable_path(scope),
            started=time.time(),
            batch="sharelift.batch" in (scope.get("extensions") or {}),
            bearer=any(key == b"authorization" for key, _ in scope.get("headers") or ()),
        )
        scope[RECORD_KEY] = rec

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                rec.bytes_in += len(message.get("body", b""))
            return message

        recorded = False

        def record() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                self.stats.add(rec)
                self.log.write(rec, time.time())

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                rec.status = int(message["status"])
            elif message["type"] == "http.response.body":
                rec.bytes_out += len(message.get("body", b""))
                if not message.get("more_body"):
                    # Counted before the last bytes leave, so a client that reads the counters
                    # right after its response always finds its request in them.
                    record()
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        except BaseException:
            if not rec.status:
                rec.status = 500
            raise
        finally:
            record()

"""Upload sessions opened together: many callers, one JSON $batch per 20 sessions.

Small files cost two round trips each when every one opens its own upload session (create,
then the single fragment). `SessionBatcher` lets callers ask for sessions one by one while it
sends them to Graph 20 to a `$batch` (https://learn.microsoft.com/graph/json-batching): the
round trips and the per-request overhead shrink twentyfold; the resource units do not (Graph
charges each inner request as if it came alone), so throttling sees the same cost.
"""

from __future__ import annotations

import asyncio
import contextlib

from sharelift.graph.drive import DriveClient, NewFile
from sharelift.graph.errors import GraphError
from sharelift.graph.types import UploadSession

MAX_BATCH = 20


class SessionBatcher:
    """Coalesces `create_upload_session` calls into `$batch` requests of up to 20.

    `await open(new)` returns the session for `new` or raises its own GraphError, as if it had
    been asked alone. A batch leaves when 20 requests have joined it or `linger` seconds after
    the first; several batches may be in flight at once. A session whose caller was cancelled
    while it was being made, or just as it arrived, is cancelled (no session is leaked, short of
    `abort()`). Call `aclose()` at the end: it waits for the batches and cancellations still in
    flight.
    """

    def __init__(self, drive: DriveClient, *, linger: float = 0.005) -> None:
        self.drive = drive
        self.linger = linger
        self._waiting: list[tuple[NewFile, asyncio.Future[UploadSession]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._aborted = False

    async def open(self, new: NewFile) -> UploadSession:
        """A new upload session for `new` (the caller owns it: finish it or cancel it)."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[UploadSession] = loop.create_future()
        self._waiting.append((new, answer))
        if len(self._waiting) >= MAX_BATCH:
            self._send()
        elif self._timer is None:
            self._timer = loop.call_later(self.linger, self._send)
        try:
            return await answer
        except asyncio.CancelledError:
            # Cancelled as its session arrived: the caller never sees it, so it goes here.
            if answer.done() and not answer.cancelled() and answer.exception() is None:
                self._cancel_later(answer.result())
            raise

    def _cancel_later(self, session: UploadSession) -> None:
        if self._aborted or not session.upload_url:
            return  # stopping now: no request; Graph expires the session
        task = asyncio.create_task(self._cancel(session.upload_url))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _cancel(self, upload_url: str) -> None:
        with contextlib.suppress(GraphError):
            await self.drive.cancel_upload_session(upload_url)

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        group, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        if self._waiting:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._send)
        group = [(new, answer) for new, answer in group if not answer.done()]
        if group:
            task = asyncio.create_task(self._batch(group))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _batch(self, group: list[tuple[NewFile, asyncio.Future[UploadSession]]]) -> None:
        try:
            results = await self.drive.create_upload_sessions([new for new, _ in group])
        except Exception as exc:  # the whole batch failed: each caller gets the error
            for _, answer in group:
                if not answer.done():
                    answer.set_exception(exc)
            return
        except BaseException:
            for _, answer in group:
                answer.cancel()
            raise
        for (_, answer), result in zip(group, results, strict=True):
            if answer.done():  # its caller gave up: the session must not outlive it
                if isinstance(result, UploadSession):
                    self._cancel_later(result)
            elif isinstance(result, UploadSession):
                answer.set_result(result)
            else:
                answer.set_exception(result)

    def abort(self) -> None:
        """Stop now: cancel the batches in flight (their callers get CancelledError; sessions
        Graph made for them meanwhile are left to expire) and what is waiting."""
        self._aborted = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, []
        for _, answer in waiting:
            answer.cancel()
        for task in self._sending:
            task.cancel()

    async def aclose(self) -> None:
        """Send what is waiting and wait for every batch in flight."""
        if self._waiting:
            self._send()
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

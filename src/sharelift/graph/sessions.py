"""Upload sessions opened together: many callers, one JSON $batch per 20 sessions.

Small files cost two round trips each when every one opens its own upload session (create,
then the single fragment). `SessionBatcher` lets callers ask for sessions one by one while it
sends them to Graph 20 to a `$batch` (https://learn.microsoft.com/graph/json-batching), grouped
by a `Coalescer`: the round trips and the per-request overhead shrink twentyfold; the resource
units do not (Graph charges each inner request as if it came alone), so throttling sees the
same cost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from sharelift.graph.coalesce import Coalescer
from sharelift.graph.drive import DriveClient, NewFile
from sharelift.graph.errors import GraphError
from sharelift.graph.types import UploadSession

Record = Callable[[UploadSession], None]
"""Keeps a session the moment it exists (the state store's `save_upload_session`)."""
_Request = tuple[NewFile, asyncio.Future[UploadSession], Record | None]


class SessionBatcher:
    """Coalesces `create_upload_session` calls into `$batch` requests of up to 20.

    `await open(new, record)` returns the session for `new` or raises its own GraphError, as
    if it had been asked alone; `record` is called with the session as soon as the batch's
    answer is read, before any other task runs, so a session is unrecorded only while its
    batch is in flight. A batch leaves when 20 requests have joined it or `linger` seconds
    after the first; at most `in_flight` batches are out at once, so a process killed at any
    instant leaves at most `in_flight` x 20 sessions the state store never heard of (the
    service expires them). A session whose caller was cancelled while it was being made, or
    just as it arrived, is cancelled (no session is leaked, short of `abort()`). Call
    `aclose()` at the end: it waits for the batches and cancellations still in flight.
    """

    def __init__(self, drive: DriveClient, *, linger: float = 0.005, in_flight: int = 1) -> None:
        self.drive = drive
        self._requests: Coalescer[_Request] = Coalescer(linger=linger)
        self._sender: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(in_flight)
        self._aborted = False

    async def open(self, new: NewFile, record: Record | None = None) -> UploadSession:
        """A new upload session for `new` (the caller owns it: finish it or cancel it),
        recorded by `record` the moment it exists."""
        answer: asyncio.Future[UploadSession] = asyncio.get_running_loop().create_future()
        self._requests.put_nowait((new, answer, record))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_groups())
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
        self._spawn(self._cancel(session.upload_url))

    async def _cancel(self, upload_url: str) -> None:
        with contextlib.suppress(GraphError):
            await self.drive.cancel_upload_session(upload_url)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_groups(self) -> None:
        async for group in self._requests.groups():
            wanted = [(new, answer, rec) for new, answer, rec in group if not answer.done()]
            if wanted:
                await self._slots.acquire()
                self._spawn(self._batch(wanted))

    async def _batch(self, group: list[_Request]) -> None:
        try:
            results = await self.drive.create_upload_sessions([new for new, _, _ in group])
        except Exception as exc:  # the whole batch failed: each caller gets the error
            for _, answer, _ in group:
                if not answer.done():
                    answer.set_exception(exc)
            return
        except BaseException:
            for _, answer, _ in group:
                answer.cancel()
            raise
        finally:
            self._slots.release()
        for (_, answer, record), result in zip(group, results, strict=True):
            if answer.done():  # its caller gave up: the session must not outlive it
                if isinstance(result, UploadSession):
                    self._cancel_later(result)
            elif isinstance(result, UploadSession):
                if record is not None:
                    record(result)
                answer.set_result(result)
            else:
                answer.set_exception(result)

    def abort(self) -> None:
        """Stop now: cancel the batches in flight (their callers get CancelledError; sessions
        Graph made for them meanwhile are left to expire) and what is waiting."""
        self._aborted = True
        self._requests.close()
        for _, answer, _ in self._requests.take_all():
            answer.cancel()
        if self._sender is not None:
            self._sender.cancel()
        for task in self._sending:
            task.cancel()

    async def aclose(self) -> None:
        """Send what is waiting and wait for every batch in flight."""
        self._requests.close()
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

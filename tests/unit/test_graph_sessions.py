"""SessionBatcher over a fake drive: batching, and no session left behind by a caller that
gives up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from sharelift.graph.drive import NewFile
from sharelift.graph.errors import GraphError
from sharelift.graph.sessions import SessionBatcher
from sharelift.graph.types import UploadSession

pytestmark = pytest.mark.anyio


class FakeDrive:
    """Makes a session per file when `release` is set; records batches and cancellations."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.cancelled: list[str] = []
        self.release = asyncio.Event()
        self.release.set()
        self.sent = asyncio.Event()
        self.on_answer: Callable[[], object] | None = None
        """Scheduled (call_soon) as the answer is returned: it runs after the batcher has
        handed the sessions out and before their callers resume."""

    async def create_upload_sessions(
        self, files: Sequence[NewFile]
    ) -> list[UploadSession | GraphError]:
        self.batches.append([f.name for f in files])
        self.sent.set()
        await self.release.wait()
        if self.on_answer is not None:
            asyncio.get_running_loop().call_soon(self.on_answer)
        return [UploadSession(f"https://up/{f.name}", None, ("0-",)) for f in files]

    async def cancel_upload_session(self, upload_url: str) -> None:
        self.cancelled.append(upload_url)


def new(name: str) -> NewFile:
    return NewFile(parent_id="P", name=name, size=10)


def batcher(drive: FakeDrive) -> SessionBatcher:
    return SessionBatcher(drive, linger=0.01)  # type: ignore[arg-type]


async def test_sessions_go_twenty_to_a_batch_and_each_caller_gets_its_own() -> None:
    drive = FakeDrive()
    sessions = batcher(drive)
    names = [f"f{i:02}" for i in range(25)]
    got = await asyncio.gather(*(sessions.open(new(n)) for n in names))
    await sessions.aclose()
    assert [s.upload_url for s in got] == [f"https://up/{n}" for n in names]
    assert [len(b) for b in drive.batches] == [20, 5]
    assert drive.cancelled == []


async def test_a_caller_that_gives_up_while_its_batch_is_out_has_its_session_cancelled() -> None:
    drive = FakeDrive()
    drive.release.clear()
    sessions = batcher(drive)
    kept = asyncio.create_task(sessions.open(new("kept")))
    gone = asyncio.create_task(sessions.open(new("gone")))
    await drive.sent.wait()
    gone.cancel()
    drive.release.set()
    assert (await kept).upload_url == "https://up/kept"
    with pytest.raises(asyncio.CancelledError):
        await gone
    await sessions.aclose()
    assert drive.cancelled == ["https://up/gone"]


async def test_a_caller_cancelled_as_its_session_arrives_has_it_cancelled() -> None:
    drive = FakeDrive()
    drive.release.clear()
    sessions = batcher(drive)
    caller = asyncio.create_task(sessions.open(new("late")))
    await drive.sent.wait()
    # The caller is cancelled after the batcher has handed it its session, before it resumed:
    # it never sees the session.
    drive.on_answer = caller.cancel
    drive.release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await sessions.aclose()
    assert drive.cancelled == ["https://up/late"]


async def test_abort_cancels_what_is_in_flight_without_a_request() -> None:
    drive = FakeDrive()
    drive.release.clear()
    sessions = batcher(drive)
    callers = [asyncio.create_task(sessions.open(new(f"f{i}"))) for i in range(3)]
    await drive.sent.wait()
    waiting = asyncio.create_task(sessions.open(new("waiting")))
    await asyncio.sleep(0)
    sessions.abort()
    for task in [*callers, waiting]:
        with pytest.raises(asyncio.CancelledError):
            await task
    await sessions.aclose()
    assert drive.cancelled == []


async def test_one_batch_at_a_time_and_each_session_recorded_before_anything_else_runs() -> None:
    """A kill at any instant leaves unrecorded only the sessions of the one batch in flight."""
    drive = FakeDrive()
    drive.release.clear()
    recorded: list[str] = []
    seen_at_answer: list[int] = []
    drive.on_answer = lambda: seen_at_answer.append(len(recorded))
    sessions = SessionBatcher(drive, linger=0.01, in_flight=1)  # type: ignore[arg-type]

    def record(session: UploadSession) -> None:
        assert session.upload_url is not None
        recorded.append(session.upload_url)

    opened = [asyncio.create_task(sessions.open(new(f"f{i:02}"), record)) for i in range(45)]
    await drive.sent.wait()
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert len(drive.batches) == 1  # the others wait for the first to come back
    drive.release.set()
    await asyncio.gather(*opened)
    await sessions.aclose()
    assert [len(b) for b in drive.batches] == [20, 20, 5]
    assert seen_at_answer == [20, 40, 45]  # recorded as the answer was read
    assert sorted(recorded) == sorted(f"https://up/f{i:02}" for i in range(45))

"""The Coalescer: groups of at most 20, a bounded wait for company, backpressure."""

from __future__ import annotations

import asyncio

import pytest

from sharelift.graph.client import MAX_BATCH
from sharelift.graph.coalesce import Coalescer

pytestmark = pytest.mark.anyio


async def collect(queue: Coalescer[int]) -> list[list[int]]:
    return [group async for group in queue.groups()]


async def test_full_groups_leave_at_once_and_the_rest_after_the_linger() -> None:
    queue: Coalescer[int] = Coalescer(linger=0.05)
    consumer = asyncio.create_task(collect(queue))
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(45):
        queue.put_nowait(n)
    await asyncio.sleep(0.01)
    assert len(queue) == 5  # two full groups left without waiting
    await asyncio.sleep(0.1)
    assert len(queue) == 0 and loop.time() - started >= 0.05
    queue.close()
    groups = await consumer
    assert [len(g) for g in groups] == [MAX_BATCH, MAX_BATCH, 5]
    assert [n for g in groups for n in g] == list(range(45))


async def test_closing_sends_what_waits_without_lingering() -> None:
    queue: Coalescer[int] = Coalescer(linger=60)
    consumer = asyncio.create_task(collect(queue))
    queue.put_nowait(1)
    await asyncio.sleep(0)
    queue.close()
    assert await asyncio.wait_for(consumer, 1) == [[1]]
    with pytest.raises(RuntimeError, match="closed"):
        queue.put_nowait(2)


async def test_put_waits_while_the_coalescer_is_full() -> None:
    queue: Coalescer[int] = Coalescer(linger=0, size=2, capacity=3)
    for n in range(3):
        await queue.put(n)
    with pytest.raises(RuntimeError, match="full"):
        queue.put_nowait(3)
    blocked = asyncio.create_task(queue.put(3))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    groups = queue.groups()
    assert await anext(groups) == [0, 1]
    await asyncio.wait_for(blocked, 1)
    assert len(queue) == 2
    assert queue.take_all() == [2, 3]
    queue.close()
    assert [g async for g in groups] == []


def test_a_group_holds_at_most_what_graph_takes() -> None:
    with pytest.raises(ValueError, match="1 to 20"):
        Coalescer(linger=0, size=21)

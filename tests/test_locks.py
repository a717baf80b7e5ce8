"""The keyed lock table: one task at a time per key, entries only while needed."""

from __future__ import annotations

import asyncio

import pytest

from bot.locks import KeyedLocks


async def test_one_key_runs_in_arrival_order_other_keys_at_once() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    order: list[str] = []
    gate = asyncio.Event()

    async def turn(key: str, name: str, wait: bool = False) -> None:
        async with locks(key):
            order.append(f"{name} in")
            if wait:
                await gate.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(turn("ana", "a1", wait=True))
    await asyncio.sleep(0)
    second = asyncio.create_task(turn("ana", "a2"))
    other = asyncio.create_task(turn("luis", "l1"))
    await other  # another key does not wait for ana's turn
    assert order == ["a1 in", "l1 in", "l1 out"]
    assert locks.locked("ana") and len(locks) == 1
    gate.set()
    await asyncio.gather(first, second)
    assert order[3:] == ["a1 out", "a2 in", "a2 out"]
    assert len(locks) == 0 and "ana" not in locks


async def test_a_cancelled_waiter_leaves_no_entry_behind() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    gate = asyncio.Event()

    async def hold() -> None:
        async with locks("ana"):
            await gate.wait()

    async def wait() -> None:
        async with locks("ana"):
            raise AssertionError("never reached: cancelled while waiting")

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert len(locks) == 1  # still held by the first
    gate.set()
    await holder
    assert len(locks) == 0


async def test_an_error_inside_releases_the_key() -> None:
    locks: KeyedLocks[int] = KeyedLocks()
    with pytest.raises(ValueError):
        async with locks(7):
            raise ValueError("boom")
    assert len(locks) == 0
    async with locks(7):  # usable again at once
        assert locks.locked(7)


async def test_many_keys_leave_an_empty_table() -> None:
    locks: KeyedLocks[int] = KeyedLocks()

    async def turn(key: int) -> None:
        async with locks(key % 50):
            await asyncio.sleep(0)

    await asyncio.gather(*(turn(n) for n in range(1000)))
    assert len(locks) == 0

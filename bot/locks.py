"""One lock per key (a person, a chat, a media file), kept only while someone needs it.

A busy bot sees many people and each of them rarely: a lock per person kept forever
would grow with every phone number ever seen. Here an entry lives only while a task
holds its lock or waits for it: the table counts them by hand (asyncio's own waiter
list is private) and drops the entry when the count falls to zero, also when a waiter
is cancelled. Knows nothing of who the keys are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["KeyedLocks"]

K = TypeVar("K", bound=Hashable)


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # tasks holding or waiting for `lock`


class KeyedLocks(Generic[K]):
    """`async with locks(key):` runs one task at a time per key, in arrival order."""

    def __init__(self) -> None:
        self._entries: dict[K, _Entry] = {}

    def __call__(self, key: K) -> _Held[K]:
        return _Held(self, key)

    def __len__(self) -> int:
        """Keys held or waited for right now."""
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def locked(self, key: K) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.lock.locked()

    def _enter(self, key: K) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        return entry

    def _leave(self, key: K, entry: _Entry) -> None:
        entry.users -= 1
        if entry.users == 0:
            del self._entries[key]


class _Held(Generic[K]):
    """The context manager `KeyedLocks.__call__` returns: counted in, locked, unlocked, counted out."""

    __slots__ = ("_entry", "_key", "_table")

    def __init__(self, table: KeyedLocks[K], key: K) -> None:
        self._table = table
        self._key = key
        self._entry: _Entry | None = None

    async def __aenter__(self) -> None:
        entry = self._table._enter(self._key)
        try:
            await entry.lock.acquire()
        except BaseException:  # cancelled while waiting: no longer a user of this key
            self._table._leave(self._key, entry)
            raise
        self._entry = entry

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        entry = self._entry
        assert entry is not None, "left a lock that was never entered"
        self._entry = None
        entry.lock.release()
        self._table._leave(self._key, entry)

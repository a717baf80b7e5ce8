"""The durable inbox: nothing accepted is lost, whichever process accepted it.

A channel stores each accepted message (`Inbox.put`) before it acknowledges the webhook
(or, for Telegram polling, before it asks for the next updates). A worker in every
process then claims messages (`Storage.claim`: a person's oldest pending message, under
a lease naming the process), hands each to its channel, and once the reply is sent the
message leaves the inbox together with the person's new state (`Ticket.save`). So:

- a restart, a crash or SIGTERM loses nothing: what was not answered is still pending
  (a clean stop releases its claims at once; a crashed process's leases expire and are
  claimed again);
- only one process handles a person at a time, in order, and each process reads the
  state the last one wrote: several processes, or machines on PostgreSQL, serve one
  campaign;
- the flood guard counts every message of a person, whichever process received it;
- a redelivered message is recognised for two days (`MESSAGE_KEEP_HOURS`) by its row.

A message whose handling fails is tried again later, at most `max_attempts` times, then
given up (counted). Writes from many concurrent tasks are grouped into one transaction
each (`_Grouped`). Knows nothing of platforms: a channel registers a handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bot.conversation import Context, Pending, flood_verdict, load_state
from bot.storage import Claimed, ClaimFor, Finished, NewMessage, Storage, StorageUnavailable

__all__ = ["Handler", "Inbox", "Ticket"]

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


@dataclass
class Ticket:
    """One claimed message in a channel's hands: `save` ends it (state and done mark in one write)."""

    claimed: Claimed
    _inbox: Inbox
    done: bool = False

    async def save(self, pending: Pending | None, *, given_up: bool = False) -> None:
        """The message leaves the inbox; the turn's new state (if any) is written with it."""
        if self.done:
            return
        self.done = True
        await self._inbox._finish(self, pending, given_up)


Handler = Callable[[Claimed, Context, Ticket], Awaitable[None]]


class _Grouped(Generic[ItemT, ResultT]):
    """Calls from many tasks written together: while one transaction runs, the next ones
    queue, and go as one transaction when it ends. At high load a message costs a
    fraction of a transaction; when idle, exactly one."""

    def __init__(self, write: Callable[[list[ItemT]], Awaitable[list[ResultT]]], limit: int = 500) -> None:
        self._write = write
        self._limit = limit
        self._waiting: list[tuple[list[ItemT], asyncio.Future[list[ResultT]]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, items: list[ItemT]) -> list[ResultT]:
        future: asyncio.Future[list[ResultT]] = asyncio.get_running_loop().create_future()
        self._waiting.append((items, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._waiting:
            taken: list[tuple[list[ItemT], asyncio.Future[list[ResultT]]]] = []
            size = 0
            while self._waiting and (not taken or size + len(self._waiting[0][0]) <= self._limit):
                items, future = self._waiting.pop(0)
                taken.append((items, future))
                size += len(items)
            flat = [item for items, _ in taken for item in items]
            try:
                results = await self._write(flat)
            except BaseException as exc:  # every waiter learns of it
                for _, future in taken:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else StorageUnavailable(str(exc)))
                if not isinstance(exc, Exception):
                    raise
                continue
            at = 0
            for items, future in taken:
                if not future.done():
                    future.set_result(results[at : at + len(items)])
                at += len(items)


class Inbox:
    """The inbox of one process: `put` for channels, and the worker (`start`/`stop`)."""

    def __init__(
        self,
        storage: Storage,
        *,
        flood_messages: int = 20,
        flood_seconds: float = 10.0,
        lease: float = 15.0,
        concurrency: int = 256,
        poll: float = 0.25,
        max_attempts: int = 5,
        put_wait: float = 1.0,
        worker: str | None = None,
    ) -> None:
        self.storage = storage
        self.flood_messages = flood_messages
        self.flood_seconds = flood_seconds
        self.lease = lease
        self.concurrency = concurrency
        self.poll = poll
        self.max_attempts = max_attempts
        self.put_wait = put_wait
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.given_up = 0
        self.failed_handlers = 0
        self._handlers: dict[str, Handler] = {}
        self._active: set[asyncio.Task[None]] = set()
        self._answering: set[int] = set()  # ids of the messages this process is answering now
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._put: _Grouped[NewMessage, tuple[bool, Claimed | None]] = _Grouped(self._put_now)
        self._finisher = _Grouped(self._finish_now)
        self._unsaved: list[Finished] = []  # finishes the database refused: written again later

    # -- for channels ----------------------------------------------------------------

    def register(self, channel: str, handler: Handler) -> None:
        self._handlers[channel] = handler

    async def put(self, messages: Sequence[NewMessage]) -> list[bool]:
        """Store accepted messages (one grouped transaction); True for each new one. A new
        message that is its person's next one is claimed by this process in the same
        transaction and handled at once; the others wait for the worker.

        Raises StorageUnavailable when the database does not take them within `put_wait`:
        the caller then answers without the inbox (and counts it).
        """
        if not messages:
            return []
        results = await self._put(list(messages))
        new = [fresh for fresh, _ in results]
        claimed = [c for _, c in results if c is not None]
        for item in claimed:
            self._spawn(item)
        if len(claimed) < new.count(True):
            self._wake.set()
        return new

    def wake(self) -> None:
        self._wake.set()

    @property
    def active(self) -> int:
        return len(self._active)

    # -- the worker ------------------------------------------------------------------

    async def start(self) -> None:
        if self._loop_task is not None:
            return
        self._stopping.clear()
        self._loop_task = asyncio.create_task(self._run(), name="inbox-worker")
        self._renewer = asyncio.create_task(self._renew(), name="inbox-leases")

    async def stop(self, drain: float = 5.0) -> int:
        """Claim nothing more; give messages in hand `drain` seconds, cancel the rest and
        release their claims for the next process; the number cancelled."""
        self._stopping.set()
        self._wake.set()
        for task in (self._loop_task, self._renewer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._loop_task = self._renewer = None
        cancelled = 0
        if self._active:
            _, pending = await asyncio.wait(set(self._active), timeout=drain)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            cancelled = len(pending)
        await self._save_unsaved()
        try:
            released = await self.storage.release(self.worker)
        except StorageUnavailable:
            released = 0
        if cancelled or released:
            log.info("inbox: %d message(s) left for the next process (%d cancelled at shutdown)", released, cancelled)
        return cancelled

    async def _run(self) -> None:
        pause = 0.0
        while not self._stopping.is_set():
            free = self.concurrency - len(self._active)
            claimed: list[Claimed] = []
            self._wake.clear()
            if free > 0 and self._handlers:
                try:
                    claimed = await self.storage.claim(
                        self.worker, list(self._handlers), limit=min(free, 128), lease=self.lease, flood_window=self.flood_seconds
                    )
                    pause = 0.0
                except StorageUnavailable:
                    pause = min(2.0, max(0.1, pause * 2))
                    await asyncio.sleep(pause)
                    continue
            for item in claimed:
                self._spawn(item)
            if claimed and len(claimed) >= min(free, 128):
                continue  # there may be more
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)

    def _spawn(self, claimed: Claimed) -> None:
        if claimed.id in self._answering:
            # Our own lease lapsed while the reply was still on its way (a very slow
            # platform, a database too busy to renew): the claim is ours again, the answer
            # is already being sent. Never a second one from this process.
            return
        self._answering.add(claimed.id)
        task = asyncio.create_task(self._handle(claimed))
        self._active.add(task)
        task.add_done_callback(functools.partial(self._done, message_id=claimed.id))

    def _done(self, task: asyncio.Task[None], message_id: int) -> None:
        self._answering.discard(message_id)
        self._active.discard(task)
        self._wake.set()  # a slot is free, and the person's next message may be claimable

    async def _handle(self, claimed: Claimed) -> None:
        ticket = Ticket(claimed, self)
        handler = self._handlers.get(claimed.channel)
        try:
            if handler is None:
                raise LookupError(f"no handler for channel {claimed.channel}")
            if claimed.attempts > self.max_attempts:
                self.given_up += 1
                log.error("inbox: a %s message failed %d times: given up", claimed.channel, claimed.attempts - 1)
                await ticket.save(None, given_up=True)
                return
            context = Context(load_state(claimed.state), flood_verdict(claimed.recent, claimed.previous, self.flood_messages))
            await handler(claimed, context, ticket)
            if not ticket.done:
                await ticket.save(None)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failed_handlers += 1
            log.exception("inbox: handling a %s message failed; it will be tried again", claimed.channel)
            if not ticket.done:
                with contextlib.suppress(StorageUnavailable):
                    await self.storage.retry_later(self.worker, claimed.id, min(60.0, 2.0**claimed.attempts))

    async def _finish(self, ticket: Ticket, pending: Pending | None, given_up: bool) -> None:
        claimed = ticket.claimed
        verdict = pending.verdict if pending is not None else "ok"
        state = pending.new_state if pending is not None else None
        if given_up:
            self.given_up += 1
        item = Finished(claimed.id, claimed.person, state, verdict, given_up)
        try:
            kept = await self._finisher([item])
        except StorageUnavailable:
            # The reply went out: keep the done mark and write it again soon, so that the
            # message is not answered twice; meanwhile its lease is renewed.
            self._unsaved.append(item)
            return
        if not kept[0]:
            log.warning("inbox: a claim expired before its reply was saved; another process may answer it too")

    async def _put_now(self, messages: list[NewMessage]) -> list[tuple[bool, Claimed | None]]:
        """One transaction for the grouped messages; the new ones claimed when this process has room."""
        room = self.concurrency - len(self._active)
        claim = None
        if room > 0 and not self._stopping.is_set() and self._loop_task is not None and self._handlers:
            claim = ClaimFor(self.worker, tuple(self._handlers), room, self.lease, self.flood_seconds)
        new, claimed = await self.storage.put_messages(messages, wait=self.put_wait, claim=claim)
        # Claimed rows come in id order, the order the new messages were inserted; a claimed
        # row is the first new message of its person in the batch, so walking both in step
        # gives each claim back to the message it belongs to (and so to the caller that sent it).
        pending = sorted(claimed, key=lambda c: c.id)
        result: list[tuple[bool, Claimed | None]] = []
        for message, fresh in zip(messages, new, strict=True):
            match = None
            if fresh and pending and pending[0].person == message.person and pending[0].channel == message.channel:
                match = pending.pop(0)
            result.append((fresh, match))
        return result

    async def _finish_now(self, items: list[Finished]) -> list[bool]:
        return await self.storage.finish(self.worker, items)

    async def _save_unsaved(self) -> None:
        if not self._unsaved:
            return
        items, self._unsaved = self._unsaved, []
        try:
            await self._finisher(items)
        except StorageUnavailable:
            self._unsaved = items + self._unsaved

    async def _renew(self) -> None:
        """Keep this process's claims (a slow send, a retry pause) and write back refused finishes."""
        while True:
            await asyncio.sleep(self.lease / 3)
            await self._save_unsaved()
            if self._active or self._unsaved:
                with contextlib.suppress(StorageUnavailable):
                    await self.storage.renew(self.worker, self.lease)

    def status(self) -> dict[str, Any]:
        return {"active": len(self._active), "given_up": self.given_up, "unsaved": len(self._unsaved), "worker": self.worker}

"""Sending an alert to its subscribers: each once, at the platform's pace, resumable after a crash.

`pregunta alerts send ID` runs this beside `pregunta serve` (another process, the same
database). For every subscription it writes a delivery row *before* the message goes
out (`sending`, its pseudonym, never its address), and the outcome after (`sent`,
`failed`, `unsubscribed`, `unknown`). The row is written only when there is none for that
person and alert, or the one there `failed` (the platform said it was not delivered); so:

- a second `send` of the same alert sends only to those never sent (and to those whose
  send failed);
- after a crash or kill -9 half-way, the next run sends to the rest; the few messages in
  flight at the crash stay `sending`, shown as "sin confirmar", and are never sent again
  (an alert must not arrive twice);
- two runs at once split the subscribers between them instead of both sending.

Rows are written in grouped transactions (one commit for all the sends that reached that
point together), subscribers are read a page at a time (memory stays flat at 100,000),
and each platform's `TokenBucket` keeps the pace. A person who blocked the bot is
unsubscribed. Knows nothing of HTTP: couriers (`bot.channels.broadcast`) send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.channels.broadcast import Courier, Outcome, TokenBucket
from bot.clock import today
from bot.content import Alert, Content
from bot.errors import PreguntaError
from bot.storage import Storage
from bot.subscriptions import Subscriber, Subscriptions, UnreadableSubscription

__all__ = [
    "DONE",
    "Plan",
    "RunResult",
    "alert_state",
    "delivery_counts",
    "find_alert",
    "plan",
    "send_alert",
]

log = logging.getLogger(__name__)

DONE = ("sending", "sent", "unsubscribed", "unknown")  # statuses never sent again; "failed" is
_PAGE = 500
_WORKERS = 32  # sends in flight per platform (the bucket sets the pace)
_ATTEMPTS = 5  # tries of one person's message against 429s and 5xx
_CLAIM = (
    "INSERT INTO alert_deliveries (alert, person, channel, lang, status, run, at) VALUES (?, ?, ?, ?, 'sending', ?, ?) "
    "ON CONFLICT (alert, person) DO UPDATE SET status = 'sending', run = excluded.run, at = excluded.at, detail = NULL "
    "WHERE alert_deliveries.status = 'failed'"
)
_RESULT = "UPDATE alert_deliveries SET status = ?, at = ?, detail = ? WHERE alert = ? AND person = ? AND run = ?"
_TO_SEND = (
    "SELECT s.channel, s.lang, COUNT(*) FROM subscriptions AS s WHERE NOT EXISTS (SELECT 1 FROM alert_deliveries AS d "
    "WHERE d.alert = ? AND d.person = s.person AND d.status != 'failed') GROUP BY s.channel, s.lang"
)


def find_alert(content: Content, alert_id: str) -> Alert:
    alerts = content.spanish.alerts
    if alert_id not in alerts:
        known = ", ".join(sorted(alerts)) or "ninguno (content/es/alerts/ está vacío)"
        raise PreguntaError(f"no hay un aviso «{alert_id}» en content/es/alerts/; los avisos son: {known}")
    return alerts[alert_id]


def alert_state(alert: Alert, day: date) -> str:
    """"vigente", "vencido" or "por publicar" on `day` (Guatemala)."""
    if alert.expires is not None and day > alert.expires:
        return "vencido"
    if alert.published is not None and day < alert.published:
        return "por publicar"
    return "vigente"


@dataclass(frozen=True)
class Plan:
    """Who a send would reach: per (channel, language), not yet sent; and what each language reads."""

    alert: Alert
    to_send: dict[tuple[str, str], int]
    texts: dict[str, tuple[str, str]]  # lang → (title, text), the Spanish text where no reviewed translation
    unconfirmed: int  # left "sending" by an earlier run that stopped (a crash): never sent again

    @property
    def total(self) -> int:
        return sum(self.to_send.values())

    def channels(self) -> set[str]:
        return {channel for channel, _ in self.to_send}


async def plan(storage: Storage, content: Content, alert_id: str, *, day: date | None = None) -> Plan:
    """What `send` would do; refuses an alert that expired or is not published yet."""
    alert = find_alert(content, alert_id)
    state = alert_state(alert, day or today())
    if state == "vencido":
        raise PreguntaError(f"el aviso «{alert_id}» venció el {alert.expires}: no se manda (cambiá expires si sigue vigente)")
    if state == "por publicar":
        raise PreguntaError(f"el aviso «{alert_id}» se publica el {alert.published}: todavía no se manda")
    rows = await storage.fetch(_TO_SEND, (alert_id,))
    to_send = {(str(c), str(lang)): int(n) for c, lang, n in rows}
    texts = {}
    for lang in sorted({lang for _, lang in to_send} | {"es"}):
        _, title, text = content.alert(lang if lang in content.languages else "es", alert_id)
        texts[lang] = (title, text)
    [(unconfirmed,)] = await storage.fetch(
        "SELECT COUNT(*) FROM alert_deliveries WHERE alert = ? AND status IN ('sending', 'unknown')", (alert_id,)
    )
    return Plan(alert, to_send, texts, int(unconfirmed))


async def delivery_counts(storage: Storage) -> list[tuple[str, str, str, str, int]]:
    """(alert, channel, lang, status, people) of every delivery row; "sending" rows count as unconfirmed."""
    rows = await storage.fetch("SELECT alert, channel, lang, status, COUNT(*) FROM alert_deliveries GROUP BY alert, channel, lang, status")
    return [(str(a), str(c), str(lang), "unknown" if s == "sending" else str(s), int(n)) for a, c, lang, s, n in rows]


@dataclass
class RunResult:
    """What one run did, per status and channel."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, status) → people
    aborted: str | None = None  # why the run stopped early (our token, account or template)
    interrupted: bool = False  # SIGTERM or Ctrl-C: the rest is left for the next run

    def total(self, status: str) -> int:
        return sum(n for (_, s), n in self.counts.items() if s == status)

    @property
    def done(self) -> int:
        return sum(self.counts.values())


Progress = Callable[[int], None]  # people done so far in this run


class _Grouped:
    """Statements from many tasks written together: one transaction for all that queue while
    the previous one commits (each caller gets its statement's row count)."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._waiting: list[tuple[str, tuple[Any, ...], asyncio.Future[int]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, sql: str, args: tuple[Any, ...]) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((sql, args, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._waiting:
            taken, self._waiting = self._waiting[:1000], self._waiting[1000:]
            try:
                counts = await self._storage.script([(sql, args) for sql, args, _ in taken])
            except Exception as exc:  # noqa: BLE001 - every waiter learns of it
                for _, _, future in taken:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, _, future), count in zip(taken, counts, strict=True):
                if not future.done():
                    future.set_result(count)


async def send_alert(
    storage: Storage,
    content: Content,
    alert_id: str,
    subscriptions: Subscriptions,
    couriers: Sequence[Courier],
    *,
    progress: Progress | None = None,
    stopping: asyncio.Event | None = None,
    workers: int = _WORKERS,
    footer: Callable[[str], str] | None = None,
) -> RunResult:
    """Send the alert to every subscriber of the couriers' channels not sent yet; see the module."""
    plan_ = await plan(storage, content, alert_id)
    run = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    result = RunResult()
    stop = stopping or asyncio.Event()
    grouped = _Grouped(storage)
    say_footer = footer or (lambda lang: content.ui(lang, "alerts_footer"))

    async def one_channel(courier: Courier) -> None:
        bucket = TokenBucket(courier.rate)
        texts = {lang: courier.prepare(title, text, say_footer(lang)) for lang, (title, text) in plan_.texts.items()}
        queue: asyncio.Queue[Subscriber | None] = asyncio.Queue(maxsize=_PAGE * 2)

        async def feed() -> None:
            after = ""
            try:
                while not stop.is_set():
                    page = await subscriptions.page(after, _PAGE, [courier.name])
                    if not page:
                        break
                    for subscriber in page:
                        await queue.put(subscriber)
                    after = page[-1].person
            finally:
                for _ in range(workers):
                    await queue.put(None)

        async def work() -> None:
            while (subscriber := await queue.get()) is not None:
                if stop.is_set():
                    continue  # drain: the feeder may be waiting on a full queue
                text = texts.get(subscriber.lang) or texts["es"]
                status = await _deliver(courier, bucket, grouped, subscriptions, alert_id, run, subscriber, text, result, stop)
                if status is not None:
                    result.counts[(courier.name, status)] += 1
                    if progress is not None:
                        progress(result.done)

        feeder = asyncio.create_task(feed())
        try:
            await asyncio.gather(*(work() for _ in range(workers)))
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder

    await asyncio.gather(*(one_channel(c) for c in couriers))
    result.interrupted = stop.is_set() and result.aborted is None
    return result


async def _deliver(
    courier: Courier,
    bucket: TokenBucket,
    grouped: _Grouped,
    subscriptions: Subscriptions,
    alert_id: str,
    run: str,
    subscriber: Subscriber,
    text: str,
    result: RunResult,
    stop: asyncio.Event,
) -> str | None:
    """One person: a rate token, the `sending` row (None when another run has it, or it was
    sent), the message, the outcome's row. Returns the status written."""
    try:
        address = subscriber.address(subscriptions.key)
    except UnreadableSubscription as exc:
        result.aborted = str(exc)
        stop.set()
        return None
    await bucket.take()
    if stop.is_set():
        return None
    claimed = await grouped(_CLAIM, (alert_id, subscriber.person, subscriber.channel, subscriber.lang, run, time.time()))
    if not claimed:
        return None  # sent before, by this alert's earlier run or another one running now
    outcome = await _attempts(courier, bucket, address, text, stop)
    status = "sent" if outcome is None else ("failed" if outcome.kind in ("retry", "abort") else outcome.kind)
    if outcome is not None and outcome.kind == "abort" and result.aborted is None:
        result.aborted = f"{courier.name}: {outcome.detail}"
        stop.set()
    detail = None if outcome is None else outcome.detail[:80]
    await grouped(_RESULT, (status, time.time(), detail, alert_id, subscriber.person, run))
    if status == "unsubscribed":
        await subscriptions.drop(subscriber.person, blocked=True)
        log.info("a %s subscriber blocked the bot or cannot be reached (%s): unsubscribed", courier.name, detail)
    return status


async def _attempts(courier: Courier, bucket: TokenBucket, address: str, text: str, stop: asyncio.Event) -> Outcome | None:
    """Send, trying again what was surely not delivered (429 waits its Retry-After, for every sender)."""
    outcome: Outcome | None = None
    for attempt in range(_ATTEMPTS):
        if attempt:
            if outcome is not None and outcome.retry_after is not None:
                bucket.pause(min(outcome.retry_after, 300.0))
            else:
                await asyncio.sleep(min(30.0, 0.5 * 2**attempt))
            await bucket.take()
        try:
            await courier.send(address, text)
            return None
        except Exception as exc:
            outcome = courier.outcome(exc)
            if outcome is None:
                raise
        if outcome.kind != "retry" or stop.is_set():
            return outcome
    return outcome


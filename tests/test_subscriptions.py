"""Subscriptions and deliveries on both backends: found by pseudonym, encrypted at rest,
deleted at opt-out, rotated keys; two senders at once never send to one person twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, MultiFernet

from bot.alerts import delivery_counts, send_alert
from bot.channels.broadcast import Outcome, TelegramCourier, TokenBucket, WhatsAppCourier
from bot.channels.http import SharedSession
from bot.channels.whatsapp_graph import GraphError
from bot.content import Content
from bot.conversation import Conversations, MemoryStates
from bot.matcher import Matcher
from bot.replies import Incoming
from bot.storage import Storage, open_storage
from bot.subscriptions import Subscriptions, UnreadableSubscription, subscriber_counts
from tests.fakes.serving import running
from tests.fakes.telegram_api import TOKEN, FakeBotAPI

pytestmark = pytest.mark.filterwarnings("ignore:.*`retry_after` will be of type:telegram.warnings.PTBDeprecationWarning")

PSEUDONYM_KEY = b"p" * 32
ALERT = "citas-de-pasaporte-en-venta"


@pytest.fixture
async def store(db_target: Path | str) -> AsyncIterator[Storage]:
    db = await open_storage(db_target)
    try:
        yield db
    finally:
        await db.close()


def keyring(*keys: bytes) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


async def test_subscribe_and_unsubscribe_by_pseudonym_encrypted_at_rest(store: Storage) -> None:
    key = Fernet.generate_key()
    subs = Subscriptions(store, keyring(key), PSEUDONYM_KEY)
    await subs.subscribe("whatsapp", "50255512345", "es", now=1_780_000_000)
    await subs.subscribe("whatsapp", "50255512345", "quc", now=1_780_000_000)  # again: one row, the new language
    await subs.subscribe("telegram", "987654321012", "es", now=1_780_000_000)
    rows = await store.fetch("SELECT person, channel, lang, token FROM subscriptions ORDER BY channel")
    assert [(c, lang) for _, c, lang, _ in rows] == [("telegram", "es"), ("whatsapp", "quc")]
    for person, channel, _, token in rows:
        assert "50255512345" not in person + token and "987654321012" not in person + token
        assert person == subs.person(channel, "987654321012" if channel == "telegram" else "50255512345")
    [page] = [p for p in await subs.page("", 10, ["whatsapp"])]
    assert page.address(subs.key) == "50255512345"
    assert await subscriber_counts(store) == {("telegram", "es"): 1, ("whatsapp", "quc"): 1}
    assert await subs.unsubscribe("whatsapp", "50255512345", now=1_780_000_000)
    assert not await subs.unsubscribe("whatsapp", "50255512345", now=1_780_000_000)  # nothing left: not counted twice
    assert not await subs.is_subscribed("whatsapp", "50255512345")
    assert await subs.drop(subs.person("telegram", "987654321012"), blocked=True, now=1_780_000_000)
    days = await store.fetch("SELECT day, channel, joined, stopped, blocked FROM subscription_days ORDER BY channel")
    assert [tuple(r) for r in days] == [("2026-05-28", "telegram", 1, 0, 1), ("2026-05-28", "whatsapp", 1, 1, 0)]
    assert await store.fetch("SELECT COUNT(*) FROM subscriptions") == [(0,)]


async def test_rotating_the_key(store: Storage) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    await Subscriptions(store, keyring(old), PSEUDONYM_KEY).subscribe("telegram", "987654321012", "es")
    with pytest.raises(UnreadableSubscription):
        [row] = await Subscriptions(store, keyring(new)).page("", 1, ["telegram"])
        row.address(keyring(new))
    assert await Subscriptions(store, keyring(new, old)).rekey() == 1  # the new key first, the old one after
    [row] = await Subscriptions(store, keyring(new)).page("", 1, ["telegram"])
    assert row.address(keyring(new)) == "987654321012"  # the old key is no longer needed


async def test_without_the_key_people_can_still_stop(store: Storage, fixture_matcher: Matcher) -> None:
    key = keyring(Fernet.generate_key())
    await Subscriptions(store, key, PSEUDONYM_KEY).subscribe("telegram", "987654321012", "es")
    talk = Conversations(fixture_matcher, MemoryStates(), pseudonym_key=PSEUDONYM_KEY)
    talk.subscriptions = Subscriptions(store, None, PSEUDONYM_KEY)  # the key was removed from the settings
    await talk.handle("telegram", "987654321012", Incoming(payload="lang:es"))
    assert "Avisos apagados" in (await talk.handle("telegram", "987654321012", Incoming(text="avisos"))).text  # type: ignore[union-attr]
    assert "Baja de prueba" in (await talk.handle("telegram", "987654321012", Incoming(text="baja"))).text  # type: ignore[union-attr]
    assert await store.fetch("SELECT COUNT(*) FROM subscriptions") == [(0,)]
    terminal = await talk.handle("terminal", "t-1", Incoming(payload="alerts:yes"))
    assert terminal is not None and "Avisos apagados" in terminal.text  # the terminal chat cannot receive alerts


async def test_a_failing_database_asks_to_try_again(db_path: Path, fixture_matcher: Matcher) -> None:
    db = await open_storage(db_path)
    talk = Conversations(fixture_matcher, MemoryStates(), pseudonym_key=PSEUDONYM_KEY)
    talk.subscriptions = Subscriptions(db, keyring(Fernet.generate_key()), PSEUDONYM_KEY)
    await db.close()  # every call now fails
    reply = await talk.handle("whatsapp", "50255512345", Incoming(payload="alerts:yes"))
    assert reply is not None and "Fallo de prueba de los avisos" in reply.text


async def test_two_senders_at_once_never_send_to_one_person_twice(store: Storage, fixture_content: Content) -> None:
    key = keyring(Fernet.generate_key())
    subs = Subscriptions(store, key, PSEUDONYM_KEY)
    chats = [7_100_000_000 + n for n in range(60)]
    for chat in chats:
        await subs.subscribe("telegram", str(chat), "es")
    fake = FakeBotAPI()
    async with running(fake.app) as base:
        async def one_run() -> int:
            http = SharedSession()
            courier = TelegramCourier(TOKEN, f"{base}/bot", f"{base}/file/bot", http=http, rate=500)
            await courier.open()
            try:
                result = await send_alert(store, fixture_content, ALERT, Subscriptions(store, key), [courier], workers=8)
            finally:
                await courier.close()
            return result.total("sent")

        sent = await asyncio.gather(one_run(), one_run())
    assert sum(sent) == len(chats)
    per_chat = [call.chat_id or 0 for call in fake.of("sendMessage")]
    assert sorted(per_chat) == sorted(chats)  # each once
    assert {(s, n) for _, _, _, s, n in await delivery_counts(store)} == {("sent", len(chats))}


async def test_the_bucket_holds_every_sender_during_a_pause() -> None:
    bucket = TokenBucket(rate=1000.0, burst=1.0)
    await bucket.take()
    bucket.pause(0.3)
    started = time.monotonic()
    await asyncio.gather(bucket.take(), bucket.take())
    assert time.monotonic() - started >= 0.3  # a lower bound: the Retry-After, not a speed


def _graph_error(status: int | None, code: int | None, retryable: bool = False) -> GraphError:
    return GraphError("x", status=status, code=code, retryable=retryable)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_graph_error(400, 131026), "unsubscribed"),
        (_graph_error(400, 131050), "unsubscribed"),
        (_graph_error(400, 131047), "failed"),  # the 24-hour window: not a block
        (_graph_error(400, 131051), "failed"),  # an unsupported message type: our mistake
        (_graph_error(400, 131049), "failed"),
        (_graph_error(429, 4, True), "retry"),
        (_graph_error(400, 130429, True), "retry"),
        (_graph_error(503, 2, True), "retry"),
        (_graph_error(401, 190), "abort"),
        (_graph_error(404, 132001), "abort"),
        (_graph_error(None, None, True), "unknown"),  # no answer: it may have arrived
    ],
    ids=lambda value: value if isinstance(value, str) else f"{value.status}-{value.code}",
)
def test_whatsapp_errors_mean_for_the_person(error: GraphError, kind: str) -> None:
    courier = WhatsAppCourier("http://127.0.0.1:9", "1" * 15, "t", "aviso", "es", http=SharedSession())
    outcome = courier.outcome(error)
    assert isinstance(outcome, Outcome) and outcome.kind == kind


def test_telegram_errors_mean_for_the_person() -> None:
    from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut

    courier = TelegramCourier(TOKEN, "http://127.0.0.1:9/bot", "http://127.0.0.1:9/file/bot", http=SharedSession())
    kinds = {
        "blocked": Forbidden("Forbidden: bot was blocked by the user"),
        "gone": BadRequest("Bad Request: chat not found"),
        "bad": BadRequest("Bad Request: message is too long"),
        "429": RetryAfter(3),
        "5xx": NetworkError("Bad Gateway"),
        "token": InvalidToken(),
    }
    read_timeout = TimedOut()
    read_timeout.__cause__ = TimeoutError()
    outcomes = {name: courier.outcome(exc) for name, exc in kinds.items()} | {"timeout": courier.outcome(read_timeout)}
    assert {name: o.kind for name, o in outcomes.items() if o} == {
        "blocked": "unsubscribed", "gone": "unsubscribed", "bad": "failed", "429": "retry", "5xx": "retry",
        "token": "abort", "timeout": "unknown",
    }  # fmt: skip
    assert outcomes["429"] is not None and outcomes["429"].retry_after == 3.0


async def test_opting_out_unlinks_the_alerts_a_person_got(store: Storage) -> None:
    subs = Subscriptions(store, keyring(Fernet.generate_key()), PSEUDONYM_KEY)
    await subs.subscribe("telegram", "987654321012", "es")
    person = subs.person("telegram", "987654321012")
    await store.script([("INSERT INTO alert_deliveries VALUES (?, ?, 'telegram', 'es', 'sent', 'r', 0, NULL)", (alert, person)) for alert in ("a", "b")])
    assert await subs.unsubscribe("telegram", "987654321012")
    rows = await store.fetch("SELECT alert, person, status FROM alert_deliveries ORDER BY alert")
    assert [(a, s) for a, _, s in rows] == [("a", "sent"), ("b", "sent")]  # still counted
    assert all(p != person and p.startswith("gone-") for _, p, _ in rows)  # no longer theirs

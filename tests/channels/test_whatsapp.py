"""The WhatsApp channel end to end: the real server on loopback, a fake Graph API, Meta-shaped payloads.

Payloads come from tests/data/whatsapp/ (Meta's documented shapes, good and bad). Tests
await what the fake Graph API receives or the channel's tasks finishing, never a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.channels.base import MAX_BODY, MemoryDedup, RememberedDedup, RetryPolicy
from bot.channels.whatsapp import WhatsAppChannel
from bot.channels.whatsapp_graph import GraphClient, GraphError
from bot.channels.whatsapp_payloads import parse_webhook, shorten
from bot.replies import Incoming, Kind, Option, Reply
from bot.server import Runtime
from bot.settings import Settings
from tests.conftest import FIXTURE_CONTENT
from tests.fakes.graph_api import FakeGraph, validate_message
from tests.fakes.serving import free_port, running, serving as serving_runtime

DATA = Path(__file__).resolve().parent.parent / "data" / "whatsapp"
PHONE_ID = "106540352242922"
TOKEN = "test-token"
SECRET = "app-secret-for-tests"
VERIFY = "verify-token-for-tests"
USER = "50255501234"
FAST = RetryPolicy(attempts=4, base=0.001, cap=0.01)
_ids = itertools.count(1)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return data


def payload(name: str, *, user: str | None = None, fresh_id: bool = True, **fields: Any) -> dict[str, Any]:
    """A recorded payload, its messages re-addressed from `user` with new ids (so tests don't collide)."""
    data = load(name)
    for change in data["entry"][0]["changes"]:
        for message in change["value"].get("messages", []):
            if user is not None:
                message["from"] = user
            if fresh_id:
                message["id"] = f"wamid.TEST{next(_ids):08d}"
            message.update(fields)
    return data


def text(body: str, user: str = USER) -> dict[str, Any]:
    return payload("text", user=user, text={"body": body})


def choose(choice: str, user: str = USER) -> dict[str, Any]:
    """A tap on a reply button whose id is `choice` ("lang:es")."""
    return payload("interactive_button_reply", user=user, interactive={"type": "button_reply", "button_reply": {"id": choice, "title": "x"}})


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def make_settings(graph_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "pregunta_content": FIXTURE_CONTENT,
        "pregunta_db": tmp_path / "pregunta.sqlite3",
        "pregunta_pseudonym_key": "k" * 32,
        "telegram_bot_token": None,
        "whatsapp_token": TOKEN,
        "whatsapp_phone_number_id": PHONE_ID,
        "whatsapp_app_secret": SECRET,
        "whatsapp_verify_token": VERIFY,
        "whatsapp_api_base_url": graph_url,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


_SIGN = object()


async def settled(runtime: Runtime) -> None:
    """Until the inbox holds nothing pending and no reply is under way (channel tasks included)."""
    while True:
        for channel in runtime.channels:
            await channel.tasks.settle()  # type: ignore[attr-defined]
        inbox, storage = runtime.inbox, runtime.storage
        idle = inbox is None or storage is None or (inbox.active == 0 and await storage.pending() == 0)
        if idle and all(len(c.tasks) == 0 for c in runtime.channels):  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.01)


@dataclass
class Bot:
    """The running server, its WhatsApp channel and the fake Graph API it talks to."""

    url: str
    runtime: Runtime
    channel: WhatsAppChannel
    graph: FakeGraph
    http: httpx.AsyncClient  # the webhook port
    admin: httpx.AsyncClient  # /healthz and /metrics

    async def post(
        self, data: dict[str, Any] | bytes, *, signature: object = _SIGN, content_type: str = "application/json"
    ) -> httpx.Response:
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        headers: dict[str, str | bytes] = {"content-type": content_type}
        if signature is _SIGN:
            headers["x-hub-signature-256"] = sign(body)
        elif isinstance(signature, str | bytes):
            headers["x-hub-signature-256"] = signature  # bytes: a header that is not ASCII
        return await self.http.post("/webhooks/whatsapp", content=body, headers=headers)

    async def settle(self) -> None:
        """Wait until every message accepted has been answered or given up (inbox and background)."""
        await asyncio.wait_for(settled(self.runtime), 10)

    def metric(self, name: str, **labels: str) -> float:
        return self.runtime.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = FakeGraph(TOKEN)
    async with running(fake.app) as url:
        fake.base_url = f"{url}/v22.0"
        yield fake


@contextlib.asynccontextmanager
async def serving(graph: FakeGraph, tmp_path: Path, **overrides: Any) -> AsyncIterator[Bot]:
    """The real service (Runtime.build, both ports, the server's limits) under uvicorn, its
    Graph calls aimed at `graph`."""
    runtime = Runtime.build(make_settings(graph.base_url, tmp_path, **overrides))
    channel = next(c for c in runtime.channels if isinstance(c, WhatsAppChannel))
    channel.graph.retry = FAST
    async with (
        serving_runtime(runtime) as (url, admin_url),
        httpx.AsyncClient(base_url=url, trust_env=False, verify=False) as http,
        httpx.AsyncClient(base_url=admin_url, trust_env=False) as admin,
    ):
        yield Bot(url, runtime, channel, graph, http, admin)


@pytest.fixture
async def bot(graph: FakeGraph, tmp_path: Path) -> AsyncIterator[Bot]:
    async with serving(graph, tmp_path) as running_bot:
        yield running_bot


def kind_of(message: dict[str, Any]) -> str:
    """ "text", "audio", "list" or "button"."""
    return str(message["interactive"]["type"] if message["type"] == "interactive" else message["type"])


def body_of(message: dict[str, Any]) -> str:
    return str(message["text"]["body"] if message["type"] == "text" else message["interactive"]["body"]["text"])


def choices(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(id, title) of a list's rows or of reply buttons."""
    interactive = message["interactive"]
    if interactive["type"] == "list":
        return [(r["id"], r["title"]) for s in interactive["action"]["sections"] for r in s["rows"]]
    return [(b["reply"]["id"], b["reply"]["title"]) for b in interactive["action"]["buttons"]]


# -- verification handshake ----------------------------------------------------------


HANDSHAKES = [  # (what Meta or someone else sends, expected status, expected body)
    ({"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}, 200, "1158201444"),
    ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1158201444"}, 403, None),
    ({"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}, 403, None),
    ({"hub.mode": "subscribe", "hub.challenge": "1158201444"}, 403, None),
    ({"hub.mode": "subscribe", "hub.verify_token": VERIFY}, 403, None),
    ({"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "<script>\n"}, 403, None),
]


async def test_verification_handshake(bot: Bot) -> None:
    for params, status, body in HANDSHAKES:
        response = await bot.http.get("/webhooks/whatsapp", params=params)
        assert response.status_code == status, params
        if body is not None:
            assert response.text == body and response.headers["content-type"].startswith("text/plain")


async def test_verification_refused_without_a_verify_token(graph: FakeGraph, tmp_path: Path) -> None:
    async with serving(graph, tmp_path, whatsapp_verify_token=None) as bot:
        params = {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}
        assert (await bot.http.get("/webhooks/whatsapp", params=params)).status_code == 403


# -- a whole conversation --------------------------------------------------------------


async def test_full_conversation_language_menu_list_answer(bot: Bot) -> None:
    first = text("hola")
    assert (await bot.post(first)).status_code == 200
    [languages] = await bot.graph.wait_sent(USER, 1)
    assert languages["to"] == USER and kind_of(languages) == "button"  # two languages: reply buttons
    assert "No soy una persona" in body_of(languages)
    assert choices(languages) == [("lang:es", "1 Español"), ("lang:quc", "2 K'iche' (quiché)")]

    await bot.post(load("interactive_button_reply"))  # taps "1 Español"
    menu = (await bot.graph.wait_sent(USER, 2))[-1]
    assert kind_of(menu) == "list" and menu["interactive"]["action"]["button"] == "Menú"
    assert choices(menu) == [
        ("topic:pasaporte-requisitos", "1 Pasaporte"),
        ("topic:pasaporte-vigencia", "2 Pasaporte vencido"),
        ("topic:asilo-como-solicitar", "3 Pedir asilo"),
    ]

    await bot.post(load("interactive_list_reply"))  # picks "1 Pasaporte"
    answer = (await bot.graph.wait_sent(USER, 3))[-1]
    assert "Respuesta de prueba sobre el pasaporte." in body_of(answer)
    assert choices(answer) == [("topic:pasaporte-vigencia", "1 Pasaporte vencido"), ("menu:0", "0 Menú")]

    await bot.post(text("1"))  # typed numbers work as well as taps
    typed = (await bot.graph.wait_sent(USER, 4))[-1]
    assert "pasaporte vencido" in body_of(typed)

    await bot.settle()
    # the first message after a pause is marked read at once; the quick replies after it need no receipt
    assert bot.graph.reads == [first["entry"][0]["changes"][0]["value"]["messages"][0]["id"]]
    assert bot.metric("pregunta_messages_in_total", channel="whatsapp", lang="es") == 4
    assert bot.metric("pregunta_messages_out_total", channel="whatsapp", lang="es") == 4
    assert all(validate_message(m) is None for m in bot.graph.sent)
    metrics = (await bot.admin.get("/metrics")).text
    assert 'pregunta_messages_in_total{channel="whatsapp",lang="es"} 4.0' in metrics
    assert all(c.headers["authorization"] == f"Bearer {TOKEN}" for c in bot.graph.calls)


def answer_with_audio(path: Path) -> Reply:
    return Reply("Respuesta.", "es", Kind.TOPIC, (Option("0", "menu:0", "Menú"),), audio=path)


async def test_audio_goes_as_a_voice_note_uploaded_once_per_file_version(bot: Bot, tmp_path: Path) -> None:
    recording = tmp_path / "pasaporte.ogg"
    recording.write_bytes(b"OggS" + b"\0" * 64)
    assert await bot.channel.send(USER, answer_with_audio(recording))
    assert await bot.channel.send(USER, answer_with_audio(recording))
    sent = bot.graph.sent_to(USER)
    assert [kind_of(m) for m in sent] == ["audio", "button", "audio", "button"]  # the voice note first
    assert sent[0]["audio"] == {"id": "media-1", "voice": True} == sent[2]["audio"]
    [upload] = bot.graph.uploads  # uploaded once, its id reused
    assert upload.form == {"messaging_product": "whatsapp", "type": "audio/ogg"} and upload.file == recording.read_bytes()

    recording.write_bytes(b"OggS" + b"\1" * 80)  # re-recorded: a new version to upload
    assert await bot.channel.send(USER, answer_with_audio(recording))
    assert len(bot.graph.uploads) == 2 and bot.graph.sent_to(USER)[-2]["audio"]["id"] == "media-2"


async def test_audio_by_link_is_not_uploaded(bot: Bot, tmp_path: Path) -> None:
    bot.channel.audio_url = lambda path: f"https://audio.example.org/{path.name}"
    recording = tmp_path / "asilo.mp3"
    recording.write_bytes(b"ID3")
    assert await bot.channel.send(USER, answer_with_audio(recording))
    assert bot.graph.sent_to(USER)[0]["audio"] == {"link": "https://audio.example.org/asilo.mp3"}  # mp3: not a voice note
    assert bot.graph.uploads == []


async def test_missing_audio_costs_the_audio_not_the_text(bot: Bot, tmp_path: Path) -> None:
    assert await bot.channel.send(USER, answer_with_audio(tmp_path / "missing.ogg"))
    assert [kind_of(m) for m in bot.graph.sent_to(USER)] == ["button"]
    assert bot.metric("pregunta_errors_total", channel="whatsapp") == 1


# -- signatures, bodies, content types ---------------------------------------------------


BAD_SIGNATURES: list[str | bytes | None] = [None, "", "sha256=" + "0" * 64, "sha1=abc", "sha256=zz", "sha256=é".encode("latin-1"), "other-secret"]


async def test_unsigned_or_badly_signed_webhooks_are_refused(bot: Bot) -> None:
    refused = []
    for signature in BAD_SIGNATURES:
        data = text("hola")
        body = json.dumps(data).encode()
        header = sign(body, "another-secret") if signature == "other-secret" else signature
        assert (await bot.post(body, signature=header)).status_code == 403, signature
        refused.append(data["entry"][0]["changes"][0]["value"]["messages"][0]["id"])
    assert (await bot.post(text("hola"))).status_code == 200  # the same user, signed right
    await bot.settle()
    assert len(bot.graph.sent_to(USER)) == 1  # only the signed message was answered
    assert not set(refused) & set(bot.graph.reads)


async def test_malformed_json_is_a_400(bot: Bot) -> None:
    body = (DATA / "bad_truncated.json").read_bytes()
    assert (await bot.post(body)).status_code == 400
    await bot.settle()
    assert bot.graph.calls == []


async def test_oversized_body_is_refused_by_its_length(bot: Bot) -> None:
    body = b" " * (MAX_BODY + 1)
    response = await bot.post(body, signature=sign(body))
    assert response.status_code == 413


async def test_a_body_without_content_length_is_refused_without_reading_it(bot: Bot) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(64):  # 4 MB offered in 64 KB chunks, without a Content-Length
            sent += 1
            yield b" " * 65536

    headers = {"content-type": "application/json", "x-hub-signature-256": "sha256=" + "0" * 64}
    try:
        response = await bot.http.post("/webhooks/whatsapp", content=chunks(), headers=headers)
    except httpx.TransportError:  # the server may close before the client has written everything
        return
    assert response.status_code == 411


async def test_wrong_content_type_is_a_415(bot: Bot) -> None:
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "", "application/jsonx"]:
        assert (await bot.post(text("hola"), content_type=content_type)).status_code == 415, content_type
    await bot.settle()
    assert bot.graph.calls == []


async def test_json_with_a_charset_is_accepted(bot: Bot) -> None:
    assert (await bot.post(text("hola"), content_type="application/json; charset=utf-8")).status_code == 200
    await bot.graph.wait_sent(USER)


# -- what needs no answer ------------------------------------------------------------------


NOTHING_TO_ANSWER = [
    "status_sent",
    "status_read",
    "status_failed",
    "bad_not_an_envelope",
    "bad_object_page",
    "bad_entry_not_a_list",
    "bad_message_without_id",
    "bad_message_without_sender",
    "bad_sender_with_spaces",
    "bad_text_body_not_a_string",
    "other_phone_number_id",
    "group_message",
    "account_update",
    "system_user_changed_number",
]


async def test_statuses_and_unexpected_shapes_are_acknowledged_and_ignored(bot: Bot) -> None:
    for name in NOTHING_TO_ANSWER:
        assert (await bot.post(load(name))).status_code == 200, name  # Meta would retry anything else for days
    await bot.settle()
    assert bot.graph.calls == []


# -- receiving -------------------------------------------------------------------------


NON_TEXT = ["audio_voice", "image", "video", "document", "location", "sticker", "contacts", "reaction", "unsupported"]


async def test_non_text_gets_a_kind_reply_and_the_menu(bot: Bot) -> None:
    for n, name in enumerate(NON_TEXT):
        user = f"5025550{n:04d}"
        await bot.post(choose("lang:es", user=user))
        await bot.graph.wait_sent(user, 1)
        await bot.post(payload(name, user=user))
        reply = (await bot.graph.wait_sent(user, 2))[-1]
        assert kind_of(reply) == "list" and body_of(reply) == "Solo leo texto.", name
        assert [row_id for row_id, _ in choices(reply)][:1] == ["topic:pasaporte-requisitos"], name
    await bot.settle()
    assert bot.metric("pregunta_answers_total", kind=Kind.NON_TEXT.value) == len(NON_TEXT)


async def test_template_quick_reply_carries_our_payload(bot: Bot) -> None:
    await bot.post(choose("lang:es"))
    await bot.post(payload("button_template_reply"))  # payload "menu:0"
    reply = (await bot.graph.wait_sent(USER, 2))[-1]
    assert kind_of(reply) == "list" and body_of(reply) == "Elegí un tema:"


async def test_first_open_gets_the_greeting(bot: Bot) -> None:
    await bot.post(payload("request_welcome"))
    [reply] = await bot.graph.wait_sent(USER)
    assert "No soy una persona" in body_of(reply)


async def test_business_scoped_user_is_answered_by_recipient(bot: Bot) -> None:
    await bot.post(payload("text_bsuid_only"))
    [reply] = await bot.graph.wait_sent("GT.13491208655302741918")
    assert reply["recipient"] == "GT.13491208655302741918" and "to" not in reply


async def test_phone_number_wins_when_both_identifiers_come(bot: Bot) -> None:
    await bot.post(payload("text_phone_and_bsuid"))
    [reply] = await bot.graph.wait_sent(USER)
    assert reply["to"] == USER and "recipient" not in reply


async def test_one_delivery_with_two_users_answers_both(bot: Bot) -> None:
    await bot.post(payload("batch_two_users", user=None))
    await bot.graph.wait_sent("50255501111")
    await bot.graph.wait_sent("50255502222")


# -- idempotence ---------------------------------------------------------------------------


async def test_duplicate_delivery_is_answered_once(bot: Bot) -> None:
    once = text("hola")
    responses = await asyncio.gather(*(bot.post(once) for _ in range(3)))  # Meta re-delivering, even at once
    assert [r.status_code for r in responses] == [200, 200, 200]
    await bot.settle()
    assert (await bot.post(once)).status_code == 200
    await bot.post(text("1"))
    await bot.graph.wait_sent(USER, 2)
    await bot.settle()
    assert len(bot.graph.sent_to(USER)) == 2  # one for "hola", one for "1"


async def test_dedup_store_outlives_a_restart(graph: FakeGraph, tmp_path: Path) -> None:
    once = text("hola")  # the server's own SQLite store, the same database file both times
    async with serving(graph, tmp_path) as bot:
        await bot.post(once)
        await graph.wait_sent(USER, 1)
    async with serving(graph, tmp_path) as bot:
        await bot.post(once)  # re-delivered after the restart
        await bot.post(text("hola", user="50255509999"))
        await graph.wait_sent("50255509999")
        await bot.settle()
    assert len(graph.sent_to(USER)) == 1


async def test_a_failing_inbox_still_answers_without_it(bot: Bot) -> None:
    """The database refuses the message: answered at once without the inbox, and counted."""
    from bot.storage import StorageUnavailable

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise StorageUnavailable("disk full")

    assert bot.runtime.storage is not None
    bot.runtime.storage.put_messages = broken  # type: ignore[method-assign]
    await bot.post(text("hola"))
    await bot.graph.wait_sent(USER)
    assert bot.metric("pregunta_inbox_fallback_total", channel="whatsapp") == 1


async def test_memory_dedup_forgets_after_its_ttl_and_stays_bounded() -> None:
    now = [0.0]
    dedup = MemoryDedup(ttl=48 * 3600, limit=3, clock=lambda: now[0])
    assert await dedup.first_time("a") and not await dedup.first_time("a")
    now[0] = 47 * 3600
    assert not await dedup.first_time("a")
    now[0] = 48 * 3600 + 1
    assert await dedup.first_time("a")
    for message_id in "bcd":
        assert await dedup.first_time(message_id)
    assert len(dedup._seen) == 3 and await dedup.first_time("a")  # the oldest went first


async def test_remembered_dedup_adapts_a_store_function() -> None:
    seen: set[str] = set()

    async def remember(message_id: str) -> bool:
        new = message_id not in seen
        seen.add(message_id)
        return new

    dedup = RememberedDedup(remember)
    assert await dedup.first_time("wamid.1") and not await dedup.first_time("wamid.1")


# -- sending: retries, failures, slow users -------------------------------------------


async def test_throttled_or_failing_graph_is_retried_then_succeeds(bot: Bot) -> None:
    for n, kind in enumerate(["429", "130429", "131056", "500", "503"]):
        user = f"5025551{n:04d}"
        bot.graph.fail_next(2, kind)
        await bot.post(text("hola", user=user))
        await bot.graph.wait_sent(user)
        await bot.settle()
        assert bot.metric("pregunta_send_retries_total", channel="whatsapp") == 2 * (n + 1), kind
    assert bot.metric("pregunta_send_failures_total", channel="whatsapp") == 0


async def test_retries_stop_at_the_bound_and_the_failure_is_counted(bot: Bot) -> None:
    bot.graph.fail_next(FAST.attempts, "500")
    await bot.post(text("hola"))
    await bot.settle()
    assert bot.graph.sent_to(USER) == []
    assert bot.metric("pregunta_send_retries_total", channel="whatsapp") == FAST.attempts - 1
    assert bot.metric("pregunta_send_failures_total", channel="whatsapp") == 1
    await bot.post(text("hola"))  # the next reply goes out
    await bot.graph.wait_sent(USER)


async def test_permanent_errors_are_not_retried(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    kinds = ["131047", "131026", "190"]
    for n, kind in enumerate(kinds):
        user = f"5025552{n:04d}"
        bot.graph.fail_next(1, kind)
        await bot.post(text("hola", user=user))
        await bot.settle()
        attempts = [c for c in bot.graph.calls if c.endpoint == "messages" and not c.is_read and c.user == user]
        assert len(attempts) == 1, kind
    assert bot.metric("pregunta_send_retries_total", channel="whatsapp") == 0
    assert bot.metric("pregunta_send_failures_total", channel="whatsapp") == len(kinds)
    assert "outside the 24-hour window" in caplog.text
    assert "5025552" not in caplog.text  # logs carry pseudonyms, not phone numbers


async def test_graph_down_for_a_while_then_back(bot: Bot) -> None:
    bot.channel.graph.retry = RetryPolicy(attempts=200, base=0.001, cap=0.01)
    users = ["50255500001", "50255500002", "50255500003"]
    bot.graph.down()
    for user in users:
        await bot.post(text("hola", user=user))
    await bot.graph.wait_for(lambda g: sum(c.status == 503 for c in g.calls) >= 9)
    assert bot.graph.sent == []
    bot.graph.up()
    for user in users:
        await bot.graph.wait_sent(user)
    await bot.settle()
    assert bot.metric("pregunta_send_retries_total", channel="whatsapp") >= 3
    assert bot.metric("pregunta_send_failures_total", channel="whatsapp") == 0


async def test_graph_down_for_good_counts_failures_and_the_server_lives_on(bot: Bot) -> None:
    bot.graph.down()
    for user in ["50255500001", "50255500002"]:
        await bot.post(text("hola", user=user))
    await bot.settle()
    assert bot.metric("pregunta_send_failures_total", channel="whatsapp") == 2
    assert (await bot.admin.get("/healthz")).status_code == 200
    bot.graph.up()
    await bot.post(text("hola", user="50255500003"))
    await bot.graph.wait_sent("50255500003")


async def test_a_slow_user_does_not_block_others(bot: Bot) -> None:
    release = bot.graph.hold("50255500001")  # the Graph API hangs on this user's replies
    await bot.post(text("hola", user="50255500001"))
    await bot.post(text("hola", user="50255500002"))
    await bot.graph.wait_sent("50255500002")
    assert bot.graph.sent_to("50255500001") == []
    release.set()
    await bot.graph.wait_sent("50255500001")


async def test_replies_to_one_user_keep_their_order(bot: Bot) -> None:
    release = bot.graph.hold(USER)
    await bot.post(choose("lang:es"))
    await bot.post(text("0"))
    await bot.post(choose("topic:asilo-como-solicitar"))
    release.set()
    sent = await bot.graph.wait_sent(USER, 3)
    assert [kind_of(m) for m in sent] == ["list", "list", "button"]
    assert "asilo" in body_of(sent[2]).lower()


async def test_stop_waits_briefly_then_gives_up(graph: FakeGraph, tmp_path: Path) -> None:
    release = graph.hold(USER)
    started = time.monotonic()
    async with serving(graph, tmp_path) as bot:
        bot.channel.drain_seconds = 0.2
        await bot.post(text("hola"))
        await graph.wait_for(lambda g: bool(g.reads))  # the read receipt went; the reply hangs
    assert time.monotonic() - started < 5
    assert len(bot.channel.tasks) == 0
    release.set()


async def test_a_burst_of_1500_webhooks_is_all_acknowledged_then_all_answered(bot: Bot) -> None:
    """1,500 people write at once while Meta holds every call (replies and read receipts).

    The pending limit (2,000) counts messages waiting for their reply, not the read
    receipts beside them: each first message gets a receipt at once, and counting those
    deferred the last quarter of the burst with 503s (issue 15)."""
    gate = bot.graph.hold_all()
    users = [f"50230{i:06d}" for i in range(1500)]
    limits = httpx.Limits(max_connections=64)
    try:
        async with httpx.AsyncClient(base_url=bot.url, trust_env=False, limits=limits, timeout=60) as client:

            async def post(user: str) -> int:
                body = json.dumps(text("hola", user=user)).encode()
                headers = {"content-type": "application/json", "x-hub-signature-256": sign(body)}
                return (await client.post("/webhooks/whatsapp", content=body, headers=headers)).status_code

            statuses = await asyncio.gather(*(post(user) for user in users))
        assert statuses.count(200) == len(users), sorted(set(statuses))
        assert bot.runtime.storage is not None
        assert await bot.runtime.storage.pending() == len(users)  # all accepted into the inbox, none answered yet
    finally:
        gate.set()
    await bot.graph.wait_for(lambda g: len({m["to"] for m in g.sent}) == len(users), timeout=120)
    await bot.settle()
    assert bot.channel.pending == 0
    assert sorted(m["to"] for m in bot.graph.sent) == sorted(users)  # one reply each


async def test_overloaded_channel_without_inbox_defers_the_delivery(bot: Bot) -> None:
    bot.channel.max_pending = 0
    bot.channel.inbox = None  # the database is not there: the bounded in-memory path
    response = await bot.post(text("hola"))
    assert response.status_code == 503 and response.headers["retry-after"]
    assert bot.graph.calls == []


async def test_with_the_inbox_a_burst_is_stored_not_refused(bot: Bot) -> None:
    bot.channel.max_pending = 0  # the inbox is the buffer: what is stored is answered in turn
    response = await bot.post(text("hola"))
    assert response.status_code == 200
    await bot.graph.wait_sent(USER)


# -- the Graph client on its own -----------------------------------------------------


@contextlib.asynccontextmanager
async def dropping(first: int) -> AsyncIterator[str]:
    """A loopback server that closes the first `first` connections unanswered, then answers 200."""
    seen = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        seen += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
            await reader.readexactly(length)
            if seen > first:
                body = b'{"messages": [{"id": "wamid.OK"}]}'
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v22.0"
    finally:
        server.close()
        await server.wait_closed()


async def test_network_errors_are_retried() -> None:
    retries: list[int] = []
    async with dropping(2) as url:
        client = GraphClient(url, PHONE_ID, TOKEN, retry=FAST, on_retry=lambda: retries.append(1))
        await client.open()
        try:
            assert await client.send({"messaging_product": "whatsapp"}) == "wamid.OK"
        finally:
            await client.close()
    assert len(retries) == 2


async def test_unreachable_graph_gives_a_retryable_channel_error() -> None:
    client = GraphClient(f"http://127.0.0.1:{free_port()}/v22.0", PHONE_ID, TOKEN, retry=FAST)
    await client.open()
    try:
        with pytest.raises(GraphError) as caught:
            await client.send({"messaging_product": "whatsapp"})
    finally:
        await client.close()
    assert caught.value.retryable and "unreachable" in str(caught.value)


async def test_a_client_not_opened_refuses_to_send() -> None:
    client = GraphClient(f"http://127.0.0.1:{free_port()}/v22.0", PHONE_ID, TOKEN, retry=FAST)
    with pytest.raises(GraphError, match="not started"):
        await client.send({"messaging_product": "whatsapp"})


async def test_graph_error_maps_meta_error_shape_and_retry_after(graph: FakeGraph) -> None:
    graph.fail_next(1, "130429", retry_after=7)
    client = GraphClient(graph.base_url, PHONE_ID, TOKEN, retry=RetryPolicy(attempts=1))
    await client.open()
    try:
        with pytest.raises(GraphError) as caught:
            await client.send({"messaging_product": "whatsapp", "to": USER, "type": "text", "text": {"body": "hola"}})
    finally:
        await client.close()
    error = caught.value
    assert (error.status, error.code, error.retryable, error.retry_after) == (400, 130429, True, 7.0)
    assert "throughput" in str(error)
    assert RetryPolicy(ceiling=5).delay(0, hint=error.retry_after) is None  # past the ceiling: give up
    assert RetryPolicy(ceiling=60).delay(0, hint=error.retry_after) == 7.0


GRAPH_ERRORS = [  # (the fake's failure, retryable, words the operator reads)
    ("429", True, "request limit"),
    ("130429", True, "throughput limit"),
    ("131056", True, "too many messages to this person"),
    ("500", True, "unknown error"),
    ("503", True, "unavailable"),
    ("131047", False, "outside the 24-hour window"),
    ("131026", False, "undeliverable"),
    ("190", False, "WHATSAPP_TOKEN"),
]


@pytest.mark.parametrize(("kind", "retryable", "words"), GRAPH_ERRORS, ids=[k for k, _, _ in GRAPH_ERRORS])
async def test_graph_errors_from_the_table(graph: FakeGraph, kind: str, retryable: bool, words: str) -> None:
    graph.fail_next(1, kind)
    client = GraphClient(graph.base_url, PHONE_ID, TOKEN, retry=RetryPolicy(attempts=1))
    await client.open()
    try:
        with pytest.raises(GraphError) as caught:
            await client.send({"messaging_product": "whatsapp", "to": USER, "type": "text", "text": {"body": "hola"}})
    finally:
        await client.close()
    assert caught.value.retryable is retryable
    assert words in str(caught.value)


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base=1.0, cap=10.0)
    for retry, top in [(0, 1.0), (1, 2.0), (2, 4.0), (6, 10.0)]:
        delays = [policy.delay(retry) for _ in range(50)]
        assert all(top / 2 <= d <= top for d in delays) and len(set(delays)) > 1


# -- rendering within WhatsApp's limits ---------------------------------------------------


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> WhatsAppChannel:
    """A channel that is never started: rendering needs no network."""
    runtime = Runtime.build(make_settings("http://graph.invalid/v22.0", tmp_path_factory.mktemp("render")))
    return next(c for c in runtime.channels if isinstance(c, WhatsAppChannel))


def options(count: int, title: str = "Tema", **kw: Any) -> tuple[Option, ...]:
    return tuple(Option(str(i), f"topic:t{i}", f"{title} {i}", **kw) for i in range(1, count + 1))


@pytest.mark.parametrize(
    ("reply", "kinds"),
    [
        (Reply("Hola", "es", Kind.TOPIC), ["text"]),
        (Reply("x " * 4000, "es", Kind.TOPIC), ["text", "text"]),
        (Reply("Elegí", "es", Kind.MENU, options(9), is_menu=True), ["list"]),
        (Reply("Elegí", "es", Kind.MENU, options(2), is_menu=True), ["list"]),
        (Reply("Elegí", "es", Kind.TOPIC, options(3)), ["button"]),
        (Reply("Elegí", "es", Kind.TOPIC, options(4)), ["list"]),
        (Reply("Elegí", "es", Kind.TOPIC, options(10)), ["list"]),
        (Reply("Elegí", "es", Kind.TOPIC, options(11)), ["text"]),
        (Reply("Una respuesta larga. " * 100, "es", Kind.TOPIC, options(2)), ["text", "button"]),
        (Reply("", "es", Kind.TOPIC, options(2)), ["button"]),
        (Reply("Elegí", "es", Kind.TOPIC, options(5, "Un título de tema muy largo que no cabe")), ["list"]),
        (Reply("Elegí", "es", Kind.TOPIC, options(3, "Un título de tema muy largo")), ["button"]),
        (Reply("Elegí", "es", Kind.TOPIC, options(4, "Tema", description="d" * 100)), ["list"]),
    ],
    ids=[
        "plain", "long-text", "menu-9", "menu-2", "3-buttons", "4-list", "10-list", "11-text",
        "long-body", "empty-body", "long-row-titles", "long-button-titles", "long-descriptions",
    ],
)
def test_render_stays_within_the_documented_limits(channel: WhatsAppChannel, reply: Reply, kinds: list[str]) -> None:
    messages = channel.render(USER, reply)
    assert [kind_of(m) for m in messages] == kinds
    for message in messages:
        assert validate_message(message) is None, message
    if kinds[-1] == "text" and reply.options:
        assert "11 Tema 11" in body_of(messages[-1])  # numbered when there are too many for a list


def test_long_titles_are_shortened_and_shown_whole_in_the_description(channel: WhatsAppChannel) -> None:
    reply = Reply("Elegí", "es", Kind.TOPIC, (Option("1", "topic:a", "Trabajo temporal en Canadá y EE. UU."),) * 1 + options(3))
    [message] = channel.render(USER, reply)
    row = message["interactive"]["action"]["sections"][0]["rows"][0]
    assert row["title"] == "1 Trabajo temporal en…" and len(row["title"]) <= 24
    assert row["description"] == "Trabajo temporal en Canadá y EE. UU."


@pytest.mark.parametrize(
    ("text_in", "limit", "expected"),
    [
        ("Pasaporte", 24, "Pasaporte"),
        ("Pedir asilo en Guatemala hoy", 20, "Pedir asilo en…"),
        ("Niñez migrante no acompañada", 12, "Niñez migra…"),
        ("Niñez migrante no acompañada", 18, "Niñez migrante no…"),
        ("Café con pan dulce", 5, "Café…"),  # a combining accent is never cut from its letter
        ("👍🏽👍🏽👍🏽", 4, "👍🏽…"),  # nor a skin tone from its emoji
        ("K'iche'   tzijob'al", 30, "K'iche' tzijob'al"),
    ],
)
def test_shorten_cuts_between_words_and_whole_graphemes(text_in: str, limit: int, expected: str) -> None:
    assert shorten(text_in, limit) == expected
    assert len(shorten(text_in, limit)) <= limit


async def test_fake_graph_rejects_what_meta_rejects(graph: FakeGraph) -> None:
    rows = [{"id": f"r{i}", "title": f"Fila {i}"} for i in range(11)]
    eleven = {"messaging_product": "whatsapp", "to": USER, "type": "interactive",
              "interactive": {"type": "list", "body": {"text": "Elegí"}, "action": {"button": "Menú", "sections": [{"rows": rows}]}}}
    long_title = json.loads(json.dumps(eleven))
    long_title["interactive"]["action"]["sections"][0]["rows"] = [{"id": "r1", "title": "x" * 25}]
    async with httpx.AsyncClient(trust_env=False, verify=False, headers={"authorization": f"Bearer {TOKEN}"}) as http:
        for message, details in [(eleven, "row count"), (long_title, "row title length")]:
            response = await http.post(f"{graph.base_url}/{PHONE_ID}/messages", json=message)
            assert response.status_code == 400
            error = response.json()["error"]
            assert error["code"] == 131009 and error["type"] == "OAuthException" and "fbtrace_id" in error
            assert details in error["error_data"]["details"].lower()


# -- parsing, table of recorded payloads ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "user", "incoming"),
    [
        ("text", USER, Incoming(text="hola")),
        ("text_phone_and_bsuid", USER, Incoming(text="hola")),
        ("text_bsuid_only", "GT.13491208655302741918", Incoming(text="hola")),
        ("interactive_list_reply", USER, Incoming(payload="topic:pasaporte-requisitos")),
        ("interactive_button_reply", USER, Incoming(payload="lang:es")),
        ("button_template_reply", USER, Incoming(payload="menu:0")),
        ("audio_voice", USER, Incoming(non_text="voice")),
        ("image", USER, Incoming(non_text="photo")),
        ("video", USER, Incoming(non_text="video")),
        ("document", USER, Incoming(non_text="document")),
        ("location", USER, Incoming(non_text="location")),
        ("sticker", USER, Incoming(non_text="sticker")),
        ("contacts", USER, Incoming(non_text="contact")),
        ("reaction", USER, Incoming(non_text="reaction")),
        ("unsupported", USER, Incoming(non_text="unsupported")),
        ("request_welcome", USER, Incoming(text="")),
    ],
)
def test_parse_recorded_payloads(name: str, user: str, incoming: Incoming) -> None:
    parsed = parse_webhook(load(name), PHONE_ID)
    [message] = parsed.messages
    assert (message.user, message.incoming) == (user, incoming)
    assert message.message_id.startswith("wamid.") and not parsed.skipped


@pytest.mark.parametrize("name", NOTHING_TO_ANSWER)
def test_parse_finds_nothing_to_answer(name: str) -> None:
    parsed = parse_webhook(load(name), PHONE_ID)
    assert parsed.messages == []
    assert parsed.statuses or parsed.skipped  # acknowledged, and the log says why


def test_parse_keeps_good_messages_beside_a_bad_one() -> None:
    data = load("batch_two_users")
    del data["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    parsed = parse_webhook(data, PHONE_ID)
    assert [m.user for m in parsed.messages] == ["50255502222"] and len(parsed.skipped) == 1


def test_parse_counts_statuses_and_failed_ones() -> None:
    parsed = parse_webhook(load("status_failed"), PHONE_ID)
    assert (parsed.messages, parsed.statuses, parsed.failed_statuses) == ([], 1, ["131047"])


def test_button_payload_not_ours_is_read_as_text() -> None:
    data = payload("button_template_reply", button={"text": "Sí", "payload": "campaign-42"})
    assert parse_webhook(data, PHONE_ID).messages[0].incoming == Incoming(text="Sí")


# -- `pregunta serve` as a process -------------------------------------------------------------


async def test_pregunta_serve_answers_a_signed_webhook_and_stops_on_sigterm(graph: FakeGraph, tmp_path: Path) -> None:
    port, admin_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHATSAPP_", "TELEGRAM_", "PREGUNTA_"))}
    env.update(
        WHATSAPP_TOKEN=TOKEN,
        WHATSAPP_PHONE_NUMBER_ID=PHONE_ID,
        WHATSAPP_APP_SECRET=SECRET,
        WHATSAPP_VERIFY_TOKEN=VERIFY,
        WHATSAPP_API_BASE_URL=graph.base_url,
        PREGUNTA_PORT=str(port),
        PREGUNTA_ADMIN_PORT=str(admin_port),
        PREGUNTA_DB=str(tmp_path / "data" / "pregunta.sqlite3"),
        PREGUNTA_CONTENT=str(FIXTURE_CONTENT),
        PREGUNTA_LOG_LEVEL="INFO",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []

    async def drain() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            log.append(line.decode(errors="replace"))

    drainer = asyncio.create_task(drain())
    base = f"http://127.0.0.1:{port}"
    try:
        async with (
            httpx.AsyncClient(base_url=base, trust_env=False, verify=False) as http,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{admin_port}", trust_env=False) as admin,
        ):
            await _until_healthy(admin, process, log)
            assert (await http.get("/healthz")).status_code == 404  # not on the webhook port
            body = json.dumps(text("hola")).encode()
            headers = {"content-type": "application/json", "x-hub-signature-256": sign(body)}
            assert (await http.post("/webhooks/whatsapp", content=body, headers=headers)).status_code == 200
            [reply] = await graph.wait_sent(USER, timeout=15)
            assert "No soy una persona" in body_of(reply)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0, "".join(log)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await drainer
    assert "Traceback" not in "".join(log)


async def _until_healthy(http: httpx.AsyncClient, process: asyncio.subprocess.Process, log: list[str]) -> None:
    """Poll /healthz until the server answers (it binds, then loads, then listens)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.returncode is not None:
            pytest.fail(f"pregunta serve exited with {process.returncode}:\n{''.join(log)}")
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    pytest.fail("pregunta serve did not become healthy:\n" + "".join(log))


async def test_language_and_usage_log_outlive_a_restart(graph: FakeGraph, tmp_path: Path) -> None:
    import sqlite3

    async with serving(graph, tmp_path) as bot:
        await bot.post(text("hola"))
        await graph.wait_sent(USER, 1)
        await bot.settle()
        await bot.post(choose("lang:quc"))
        await graph.wait_sent(USER, 2)
        await bot.settle()
    async with serving(graph, tmp_path) as bot:
        await bot.post(choose("topic:pasaporte-requisitos"))
        sent = await graph.wait_sent(USER, 3)
        await bot.settle()
    assert "Traducción en revisión (quc)" in body_of(sent[-1])  # still K'iche' after the restart
    with sqlite3.connect(tmp_path / "pregunta.sqlite3") as db:
        kinds = [row[0] for row in db.execute("SELECT kind FROM events ORDER BY at, rowid")]
    assert kinds == ["language", "language", "number"]


async def test_stop_in_the_middle_of_a_burst_loses_no_logged_turn(graph: FakeGraph, tmp_path: Path) -> None:
    import sqlite3

    users = [f"5025550{i:04d}" for i in range(60)]
    async with serving(graph, tmp_path) as bot:
        await asyncio.gather(*(bot.post(text("hola", user=u)) for u in users))
        # leave at once: the channel finishes what it accepted, the log flushes on stop
    answered = {call.user for call in graph.calls if call.endpoint == "messages" and not call.is_read}
    with sqlite3.connect(tmp_path / "pregunta.sqlite3") as db:
        logged = db.execute("SELECT count(*) FROM events").fetchone()[0]
    assert logged == len(answered) == len(users)


async def test_a_recorded_answer_in_the_content_goes_as_a_voice_note(graph: FakeGraph, tmp_path: Path, content_with_audio: Path) -> None:
    async with serving(graph, tmp_path, pregunta_content=content_with_audio) as bot:
        await bot.post(text("hola"))
        await graph.wait_sent(USER, 1)
        await bot.settle()
        await bot.post(choose("lang:quc"))
        await graph.wait_sent(USER, 2)
        await bot.settle()
        await bot.post(choose("topic:asilo-como-solicitar"))
        sent = await graph.wait_sent(USER, 4)
        await bot.settle()
    assert [kind_of(m) for m in sent[2:4]] == ["audio", "button"]
    assert sent[2]["audio"]["voice"] is True
    assert graph.uploads[0].file == (content_with_audio / "kiche/audio/asilo-como-solicitar.ogg").read_bytes()


# -- read receipts only when the reply is not immediate ----------------------------------------


def message_id(data: dict[str, Any]) -> str:
    return str(data["entry"][0]["changes"][0]["value"]["messages"][0]["id"])


async def test_a_read_receipt_when_a_reply_waits_and_none_when_it_is_immediate(bot: Bot) -> None:
    from bot.channels.base import Presence

    bot.channel.presence = Presence(pause=30.0, delay=0.05)
    first = text("hola")
    await bot.post(first)
    await bot.graph.wait_sent(USER, 1)
    await bot.settle()
    assert bot.graph.reads == [message_id(first)]  # the first message after a pause: at once

    release = bot.graph.hold(USER)  # the Graph API is slow for this person from now on
    quick, waiting = choose("lang:es"), text("0")
    await bot.post(quick)  # its reply is ready at once (then its sending hangs)
    await bot.post(waiting)  # its turn waits behind the first reply: past the delay, a receipt
    await bot.graph.wait_for(lambda g: message_id(waiting) in g.reads)
    release.set()
    await bot.graph.wait_sent(USER, 3)
    await bot.settle()
    assert bot.graph.reads == [message_id(first), message_id(waiting)]


async def test_after_a_pause_every_first_message_is_marked_read(bot: Bot) -> None:
    from bot.channels.base import Presence

    bot.channel.presence = Presence(pause=0.0)  # every message comes "after a pause"
    sent = [text("hola"), choose("lang:es"), text("0")]
    for n, data in enumerate(sent, start=1):
        await bot.post(data)
        await bot.graph.wait_sent(USER, n)
    await bot.settle()
    assert sorted(bot.graph.reads) == sorted(message_id(d) for d in sent)


def test_the_list_button_label_comes_with_the_reply(channel: WhatsAppChannel) -> None:
    reply = Reply("Elegí", "quc", Kind.MENU, options(5), is_menu=True, list_button="Ri cholb'al taq na'oj")
    [message] = channel.render(USER, reply)
    button = message["interactive"]["action"]["button"]
    assert button.startswith("Ri cholb'al") and len(button) <= 20  # shortened to WhatsApp's 20 characters
    assert validate_message(message) is None

"""WhatsApp: the Cloud API webhook in, Graph API messages out.

The webhook answers Meta at once and works in the background, because Meta re-sends a
delivery that is not acknowledged quickly, and re-sends a refused one for days. So a
POST is refused only when it is not Meta's (403, bad signature) or not a webhook at all
(413, 415, 400); a signed JSON body of an unexpected shape is acknowledged and ignored.

With the server's durable inbox (`bot.inbox`, set as `channel.inbox`), every message is
stored before Meta gets its 200, and the inbox's worker hands it to `handle_claimed`
(in this process or another one); a redelivery is recognised by its row. Without an
inbox (a channel built alone), or when the database refuses the message within its
bounded wait, the message becomes a task of its own (`process`, deduplicated in memory),
as before: answered, but not durable (counted in pregunta_inbox_fallback_total).
Either way it is answered by `Conversations` and rendered as text, an interactive list or
reply buttons, and a voice note. Replies to one user go out in order; a slow or failing
Graph API holds only the replies waiting on it. A read receipt goes out only when the
reply is not immediate (`base.Presence`). The inbox keeps the sender's number (to answer)
and the message until the reply is sent, then forgets both.

The channel is the kit of `base` plus three parts of its own: the parser
(`whatsapp_payloads.parse_webhook`), the renderer (`render`) and the sender
(`whatsapp_graph.GraphClient`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.channels.base import (
    MAX_BODY,
    Background,
    Dedup,
    MemoryDedup,
    Presence,
    Refused,
    RetryPolicy,
    Watch,
    as_text,
    numbered,
    parse_json,
    read_body,
    split_text,
)
from bot.channels.http import SharedSession
from bot.channels.whatsapp_graph import OUTSIDE_WINDOW, GraphClient, GraphError
from bot.channels.whatsapp_payloads import (
    BODY_MAX,
    REPLY_BUTTONS_MAX,
    REPLY_ID_MAX,
    REPLY_TITLE_MAX,
    ROW_DESCRIPTION_MAX,
    ROW_ID_MAX,
    ROW_TITLE_MAX,
    ROWS_MAX,
    TEXT_MAX,
    Inbound,
    audio_message,
    buttons_message,
    list_message,
    list_row,
    parse_webhook,
    read_receipt,
    shorten,
    text_message,
)
from bot.conversation import Context, Conversations, Pending
from bot.locks import KeyedLocks
from bot.metrics import Metrics
from bot.privacy import pseudonym
from bot.replies import Incoming, Option, Reply
from bot.settings import Settings
from bot.storage import Claimed, NewMessage, StorageUnavailable, digest

if TYPE_CHECKING:
    from bot.inbox import Inbox, Ticket

__all__ = ["MAX_BODY", "PATH", "WhatsAppChannel"]

log = logging.getLogger(__name__)

PATH = "/webhooks/whatsapp"
_SIGNATURE = re.compile(r"sha256=[0-9a-fA-F]{64}")  # the only form of X-Hub-Signature-256 Meta sends
_WATCH_SECONDS = 30.0  # a stored message's receipt timer is kept this long for the process that answers it
_MEDIA_TTL = 25 * 24 * 3600.0  # Meta keeps an uploaded media id for 30 days
_AUDIO_TYPES = {".ogg": "audio/ogg", ".opus": "audio/ogg", ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac", ".amr": "audio/amr"}


class WhatsAppChannel:
    """The WhatsApp Cloud API channel: GET/POST /webhooks/whatsapp and the Graph API sender."""

    name = "whatsapp"

    def __init__(
        self,
        settings: Settings,
        conversations: Conversations,
        metrics: Metrics,
        *,
        http: SharedSession | None = None,
        dedup: Dedup | None = None,
        retry: RetryPolicy | None = None,
        presence: Presence | None = None,
        max_pending: int = 2000,
        drain_seconds: float = 5.0,
        audio_url: Callable[[Path], str | None] | None = None,
    ) -> None:
        if not settings.whatsapp_enabled:
            raise ValueError("WHATSAPP_TOKEN and WHATSAPP_PHONE_NUMBER_ID are needed")
        assert settings.whatsapp_token is not None and settings.whatsapp_phone_number_id is not None
        self.settings = settings
        self.conversations = conversations
        self.metrics = metrics
        self.dedup: Dedup = dedup if dedup is not None else MemoryDedup()
        self.inbox: Inbox | None = None  # set by the server before start: messages stored before the 200
        self._watching: dict[str, Watch] = {}  # stored here, not yet answered: their read receipt's timer
        self.presence = presence if presence is not None else Presence()
        self.max_pending = max_pending  # messages accepted and not yet answered (read receipts not counted)
        self.pending = 0
        self.drain_seconds = drain_seconds
        self.audio_url = audio_url  # a public URL for an audio file: sent by link instead of uploaded
        self.graph = GraphClient(
            settings.whatsapp_api_base_url,
            settings.whatsapp_phone_number_id,
            settings.whatsapp_token.get_secret_value(),
            http=http,
            retry=retry,
            on_retry=self.metrics.send_retries.labels(self.name).inc,
        )
        self.tasks = Background("WhatsApp", on_error=lambda exc: self.metrics.errors.labels(self.name).inc())
        self._secret = settings.whatsapp_app_secret.get_secret_value().encode() if settings.whatsapp_app_secret else None
        self._verify_token = settings.whatsapp_verify_token.get_secret_value() if settings.whatsapp_verify_token else None
        self._phone_id = settings.whatsapp_phone_number_id
        self._people: KeyedLocks[str] = KeyedLocks()  # replies to one person go out in order
        self._media: dict[str, tuple[int, int, str, float]] = {}  # path → (mtime_ns, size, media id, uploaded at)
        self._media_locks: KeyedLocks[str] = KeyedLocks()
        self._log_key = secrets.token_bytes(16)  # log pseudonyms, linkable within one run only
        self._messages_in: dict[str, Any] = {}  # counters by language, looked up once
        self._messages_out: dict[str, Any] = {}

    # -- lifecycle -------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self._verify, methods=["GET"]), Route(PATH, self._receive, methods=["POST"])]

    async def start(self) -> None:
        if self._secret is None:
            log.error("WHATSAPP_APP_SECRET is not set: every webhook will be refused (403)")
        if self._verify_token is None:
            log.warning("WHATSAPP_VERIFY_TOKEN is not set: Meta cannot verify the webhook URL")
        await self.graph.open()

    async def stop(self) -> None:
        """Give replies under way `drain_seconds` to finish, cancel the rest, close the client."""
        cancelled = await self.tasks.drain(self.drain_seconds)
        if cancelled:
            log.warning("WhatsApp stopped with %d task(s) unfinished: their replies are not sent", cancelled)
        await self.graph.close()

    # -- webhook ---------------------------------------------------------------------

    async def _verify(self, request: Request) -> Response:
        """Meta's subscription handshake: echo hub.challenge when hub.verify_token is ours."""
        params = request.query_params
        token = params.get("hub.verify_token", "")
        challenge = params.get("hub.challenge", "")
        expected = self._verify_token
        if (
            expected is not None
            and params.get("hub.mode") == "subscribe"
            and hmac.compare_digest(token.encode(), expected.encode())
            and 0 < len(challenge) <= 256
            and challenge.isprintable()
        ):
            return PlainTextResponse(challenge)
        log.warning("WhatsApp webhook verification refused (mode %r)", params.get("hub.mode", "")[:20])
        return PlainTextResponse("forbidden", status_code=403)

    async def _receive(self, request: Request) -> Response:
        """Check, acknowledge, and hand each message to a background task.

        What can be refused without the body is refused before reading it: no app secret,
        a signature header not of Meta's form, a missing or oversized Content-Length.
        """
        signature = request.headers.get("x-hub-signature-256", "").strip()
        if self._secret is None or not _SIGNATURE.fullmatch(signature):
            log.warning("WhatsApp webhook without a well-formed signature refused")
            return PlainTextResponse("forbidden", status_code=403, headers={"Connection": "close"})  # its body unread
        try:
            body = await read_body(request, limit=MAX_BODY, timeout=self.settings.pregunta_client_timeout)
        except Refused as refused:
            log.warning("WhatsApp webhook refused: %s", refused.reason)
            return refused.response()
        if not _signed(self._secret, body, signature):
            log.warning("WhatsApp webhook with a wrong signature refused")
            return PlainTextResponse("forbidden", status_code=403)
        try:
            data = parse_json(body)
        except Refused as refused:
            log.warning("WhatsApp webhook body is not JSON, or nests too deep (%d bytes)", len(body))
            self.metrics.errors.labels(self.name).inc()
            return refused.response()

        parsed = parse_webhook(data, self._phone_id)
        for reason in parsed.skipped:
            log.info("WhatsApp webhook: ignored %s", reason)
        if parsed.skipped and not parsed.messages and not parsed.statuses:
            self.metrics.errors.labels(self.name).inc()
        for codes in parsed.failed_statuses:
            log.info("WhatsApp reported a message not delivered (error %s)", codes)
        if self.inbox is not None and parsed.messages and await self._store(parsed.messages):
            return PlainTextResponse("ok")
        if self.pending + len(parsed.messages) > self.max_pending:
            log.warning("WhatsApp webhook deferred: %d messages already waiting for their reply", self.pending)
            return PlainTextResponse("busy", status_code=503, headers={"Retry-After": "30"})
        for item in parsed.messages:
            self.pending += 1
            self.tasks.spawn(self._counted(item))
        return PlainTextResponse("ok")

    async def _counted(self, item: Inbound) -> None:
        """`process`, counted in `pending` until it is done."""
        try:
            await self.process(item)
        finally:
            self.pending -= 1

    async def _store(self, items: list[Inbound]) -> bool:
        """Messages into the inbox before Meta's 200; False when the database did not take them in time."""
        assert self.inbox is not None
        now = time.time()
        messages = [
            NewMessage(self.name, digest(self.name, item.message_id), self.conversations.person(self.name, item.user),
                       item.user, _encode(item), now)
            for item in items
        ]  # fmt: skip
        try:
            new = await self.inbox.put(messages)
        except StorageUnavailable:
            self.metrics.inbox_fallback.labels(self.name).inc(len(items))
            return False  # answered without the inbox: not durable, but not delayed either
        loop = asyncio.get_running_loop()
        for item, fresh in zip(items, new, strict=True):
            if not fresh:
                log.info("WhatsApp re-delivered message from %s ignored", self._tag(item.user))
                continue
            # The receipt's clock starts now, while the message may wait behind the person's
            # previous one; whoever answers it stops the timer (another process: a late receipt).
            message_id = item.message_id
            self._watching[message_id] = self.presence.watch(item.user, lambda m=message_id: self._mark_read(m), self.tasks)  # type: ignore[misc]
            loop.call_later(_WATCH_SECONDS, self._forget_watch, message_id)
        return True

    def _forget_watch(self, message_id: str) -> None:
        watch = self._watching.pop(message_id, None)
        if watch is not None:
            watch.close()

    # -- processing ------------------------------------------------------------------

    async def process(self, item: Inbound) -> None:
        """One message without the inbox, from its parsed form to the reply sent: once only
        (deduplicated in memory), in order per person in this process."""
        try:
            new = await self.dedup.first_time(item.message_id)
        except Exception:  # a broken store must not silence the bot: better twice than never
            self.metrics.errors.labels(self.name).inc()
            log.exception("WhatsApp dedup store failed; answering anyway")
            new = True
        if not new:
            log.info("WhatsApp re-delivered message from %s ignored", self._tag(item.user))
            return
        await self._answer(item, None, None)

    async def handle_claimed(self, claimed: Claimed, context: Context, ticket: Ticket) -> None:
        """One message from the inbox (the worker's handler): answered, then saved with the done mark."""
        await self._answer(_decode(claimed.address, claimed.body), context, ticket)

    async def _answer(self, item: Inbound, context: Context | None, ticket: Ticket | None) -> None:
        """The turn, the reply sent, then the state saved (with the inbox's done mark).

        A read receipt goes out at once after a pause, or when the reply takes over a second.
        """
        message_id = item.message_id
        watch = self._watching.pop(message_id, None) or self.presence.watch(item.user, lambda: self._mark_read(message_id), self.tasks)
        try:
            async with self._people(item.user):
                pending = await self.conversations.begin(self.name, item.user, item.incoming, context)
                reply = pending.reply
                self._count_in(reply.lang if reply else "unknown")
                sent = True
                if reply is not None:
                    await watch.ready()
                    sent = await self.send(item.user, reply)
                await self.conversations.end(pending, _saver(ticket, given_up=not sent))
        finally:
            watch.close()

    async def _mark_read(self, message_id: str) -> None:
        try:
            await self.graph.send(read_receipt(message_id), attempts=1)
        except GraphError as exc:
            log.debug("read receipt not sent: %s", exc)

    async def send(self, user: str, reply: Reply) -> bool:
        """Send a reply: voice note first, then the text and its options. False when it did not all go out."""
        if reply.audio is not None:
            await self._send_audio(user, reply.audio)
        for payload in self.render(user, reply):
            try:
                await self.graph.send(payload)
            except GraphError as exc:
                self.metrics.send_failures.labels(self.name).inc()
                if exc.code == OUTSIDE_WINDOW:
                    log.warning("reply to %s not sent: outside the 24-hour window (131047)", self._tag(user))
                else:
                    log.error("reply to %s not sent: %s", self._tag(user), exc)
                return False
            self._count_out(reply.lang)
        return True

    def _count_in(self, lang: str) -> None:
        counter = self._messages_in.get(lang)
        if counter is None:
            counter = self._messages_in[lang] = self.metrics.messages_in.labels(self.name, lang)
        counter.inc()

    def _count_out(self, lang: str) -> None:
        counter = self._messages_out.get(lang)
        if counter is None:
            counter = self._messages_out[lang] = self.metrics.messages_out.labels(self.name, lang)
        counter.inc()

    # -- rendering -------------------------------------------------------------------

    def render(self, user: str, reply: Reply) -> list[dict[str, Any]]:
        """The Graph API messages for a reply, every field within WhatsApp's limits."""
        options = _unique(reply.options)
        if not options:
            return [text_message(user, part) for part in _parts(reply.text)]
        if len(options) > ROWS_MAX or any(len(o.payload) > min(ROW_ID_MAX, REPLY_ID_MAX) for o in options):
            return [text_message(user, part) for part in _parts(as_text(reply))]
        lead, body = _lead_and_body(reply.text or numbered(tuple(options)))
        messages = [text_message(user, part) for part in _parts(lead)] if lead else []
        if reply.is_menu or len(options) > REPLY_BUTTONS_MAX:
            rows = [list_row(o.payload, *_row_text(o)) for o in options]
            messages.append(list_message(user, body, reply.list_button, rows))
        else:
            buttons = [(o.payload, _label(o.key, o.title, REPLY_TITLE_MAX)) for o in options]
            messages.append(buttons_message(user, body, buttons))
        return messages

    # -- audio -----------------------------------------------------------------------

    async def _send_audio(self, user: str, path: Path) -> None:
        """The answer's recording as a voice note; a failure costs the audio, never the text."""
        voice = path.suffix.lower() in (".ogg", ".opus")
        try:
            link = self.audio_url(path) if self.audio_url else None
            if link:
                payload = audio_message(user, link=link, voice=voice)
            else:
                payload = audio_message(user, media_id=await self._media_id(path), voice=voice)
            await self.graph.send(payload)
        except (GraphError, OSError) as exc:
            self.metrics.errors.labels(self.name).inc()
            log.error("audio %s not sent to %s: %s", path.name, self._tag(user), exc)

    async def _media_id(self, path: Path) -> str:
        """Upload once per file version (path, mtime, size); reuse the id until it nears expiry."""
        key = str(path.resolve())
        async with self._media_locks(key):
            stat = await asyncio.to_thread(path.stat)
            cached = self._media.get(key)
            if cached and cached[:2] == (stat.st_mtime_ns, stat.st_size) and time.time() - cached[3] < _MEDIA_TTL:
                return cached[2]
            mime = _AUDIO_TYPES.get(path.suffix.lower(), "audio/mpeg")
            media_id = await self.graph.upload(path, mime)
            self._media[key] = (stat.st_mtime_ns, stat.st_size, media_id, time.time())
            return media_id

    def _tag(self, user: str) -> str:
        """A pseudonym for logs: the same user reads the same within a run, no phone number shows."""
        return "wa:" + pseudonym(self._log_key, "log", user)[:10]


# -- helpers -------------------------------------------------------------------------


def _saver(ticket: Ticket | None, *, given_up: bool) -> Callable[[Pending], Awaitable[None]] | None:
    if ticket is None:
        return None

    async def save(pending: Pending) -> None:
        await ticket.save(pending, given_up=given_up)

    return save


def _encode(item: Inbound) -> str:
    """What the inbox keeps of a message until it is answered (the address is kept apart)."""
    said = item.incoming
    return json.dumps({"id": item.message_id, "type": item.type, "text": said.text, "payload": said.payload,
                       "non_text": said.non_text}, ensure_ascii=False, separators=(",", ":"))  # fmt: skip


def _decode(address: str, body: str) -> Inbound:
    data = json.loads(body)
    said = Incoming(text=str(data.get("text") or ""), payload=data.get("payload"), non_text=data.get("non_text"))
    return Inbound(user=address, message_id=str(data.get("id") or ""), incoming=said, type=str(data.get("type") or "text"))


def _signed(secret: bytes, body: bytes, header: str) -> bool:
    """X-Hub-Signature-256 is "sha256=" + hex HMAC-SHA256 of the raw body; compared in constant time."""
    expected = b"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, header.strip().encode("latin-1", "replace"))


def _parts(text: str) -> list[str]:
    return [part for part in split_text(text, TEXT_MAX) if part.strip()]


def _lead_and_body(text: str) -> tuple[str, str]:
    """Split `text` so its last paragraphs fit an interactive body; the lead goes as plain text first."""
    if len(text) <= BODY_MAX:
        return "", text
    body = split_text(text, BODY_MAX)[-1]
    at = text.rfind(body)
    return (text[:at].rstrip(), body) if at > 0 else ("", shorten(text, BODY_MAX, keep_lines=True))


def _unique(options: tuple[Option, ...]) -> list[Option]:
    """Options with distinct payloads: WhatsApp refuses two rows or buttons with one id."""
    seen: set[str] = set()
    unique = []
    for option in options:
        if option.payload not in seen:
            seen.add(option.payload)
            unique.append(option)
    return unique


def _label(key: str, title: str, limit: int) -> str:
    """ "3 Pasaporte": the number people may type, then the title shortened to fit `limit`."""
    full = f"{key} {title}" if key else title
    if len(full) <= limit:
        return full
    return f"{key} {shorten(title, limit - len(key) - 1)}" if key else shorten(title, limit)


def _row_text(option: Option) -> tuple[str, str]:
    """A list row's title and description; a title cut short is shown whole in the description."""
    title = _label(option.key, option.title, ROW_TITLE_MAX)
    description = option.description
    if not description and title != f"{option.key} {option.title}".strip():
        description = option.title
    return title, shorten(description, ROW_DESCRIPTION_MAX) if description else ""

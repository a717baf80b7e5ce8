"""The Telegram channel: python-telegram-bot's Application, by long polling or webhook.

Turns Telegram updates into `Incoming` messages for `Conversations.handle` and renders
each `Reply`: HTML text split at 4,096 characters, options as inline buttons ("1 · Pasaporte",
so typed numbers still match), audio as a voice message. "typing…" is shown only when
the reply is not immediate (`base.Presence`). Sends follow the channels' `RetryPolicy`
(RetryAfter honoured up to its ceiling, network errors and 5xx backed off), then are
logged and counted; PTB's errors become `ChannelError` through one table. HTTP goes
through the process's aiohttp session (`telegram_request.AiohttpRequest`). A webhook
body is read within `base.MAX_BODY`.

Nothing accepted is lost: PTB's handlers only turn an update into an `_Item` (who, where,
what was said), and the items go into the server's durable inbox (`bot.inbox`) before the
webhook gets its 200, or, when polling, before the next getUpdates (which is what tells
Telegram they were received: our own loop, not PTB's Updater, which confirms updates
before its handlers run). The inbox's worker hands each to `handle_claimed`. Without an
inbox (a channel built alone) or when the database refuses them in time, items are
answered in the background, in order per chat (not durable; counted). Only worker 0 of
`serve --workers` polls. Knows nothing of matching or of the dialogue's states; never
logs the token, user ids or chat ids.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import hmac
import json
import logging
import re
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBDeprecationWarning

from bot.channels.base import (
    MAX_BODY,
    Background,
    Dedup,
    Presence,
    Refused,
    RetryPolicy,
    as_text,
    parse_json,
    read_body,
    translate,
)
from bot.channels.http import SharedSession
from bot.channels.telegram_format import (
    COMMAND_DESCRIPTIONS,
    COMMANDS,
    button_incoming,
    command_incoming,
    incoming,
    keyboard,
    render_html,
    split_message,
)
from bot.channels.telegram_request import AiohttpRequest
from bot.conversation import Context, Conversations, Pending
from bot.errors import ChannelError, SettingsError
from bot.locks import KeyedLocks
from bot.metrics import Metrics
from bot.replies import Incoming, Reply
from bot.settings import Settings
from bot.storage import Claimed, NewMessage, StorageUnavailable, digest

if TYPE_CHECKING:
    from bot.inbox import Inbox, Ticket

__all__ = ["TelegramChannel"]

log = logging.getLogger(__name__)

NAME = "telegram"
WEBHOOK_PATH = "/webhooks/telegram"
_ALLOWED_UPDATES = ["message", "callback_query"]  # edits, reactions, channel posts: never asked for
_TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

T = TypeVar("T")
_Context = ContextTypes.DEFAULT_TYPE


@dataclass(frozen=True)
class _Item:
    """One update to answer, as the inbox keeps it: only what answering needs."""

    update_id: int
    user_id: int
    chat_id: int
    said: Incoming
    thread: int | None = None  # a forum topic's thread
    reply_to: int | None = None  # in a group: the message the answer replies to
    query: str | None = None  # a button press to acknowledge (stops its spinner)

    def encode(self) -> str:
        data = asdict(self)
        data.pop("chat_id")  # kept apart, as the inbox's address
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def decode(cls, address: str, body: str) -> _Item:
        data = json.loads(body)
        said = Incoming(**data.pop("said"))
        return cls(chat_id=int(address), said=said, **data)


# The items PTB's handlers produce while `_accept` runs updates through them.
_collected: contextvars.ContextVar[list[_Item] | None] = contextvars.ContextVar("telegram_items", default=None)


def _retry_after(exc: RetryAfter) -> ChannelError:
    seconds = _seconds(exc)
    return ChannelError(f"flood control, retry after {seconds:g} s (429)", retryable=True, retry_after=seconds)


def _message(exc: TelegramError) -> str:
    return str(exc)  # the channel redacts the token before anything is logged


# Telegram's errors by what to do: wait, retry, or give up. The most specific class wins
# (BadRequest is a NetworkError in PTB, and is not worth retrying).
_ERRORS: dict[type[BaseException], Callable[[Any], ChannelError]] = {
    RetryAfter: _retry_after,
    Forbidden: lambda exc: ChannelError(f"the user blocked the bot or it cannot write to this chat: {_message(exc)}"),
    BadRequest: lambda exc: ChannelError(f"refused: {_message(exc)}"),
    InvalidToken: lambda exc: ChannelError(f"refused: {_message(exc)}"),
    ChatMigrated: lambda exc: ChannelError("refused: the group became a supergroup with a new chat id"),  # its text names the chat id
    Conflict: lambda exc: ChannelError(f"refused: {_message(exc)}"),
    TimedOut: lambda exc: ChannelError(f"network or server error: {_message(exc)}", retryable=True),
    NetworkError: lambda exc: ChannelError(f"network or server error: {_message(exc)}", retryable=True),  # 5xx too
    TelegramError: lambda exc: ChannelError(f"failed: {_message(exc)}"),
}


class TelegramChannel:
    """One bot token, served by long polling or by a webhook on the project's ASGI app."""

    name = NAME
    poll_timeout = 10.0  # seconds a getUpdates long poll waits for news

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
    ) -> None:
        token = settings.telegram_bot_token
        if token is None or not _TOKEN.match(token.get_secret_value()):
            raise SettingsError("TELEGRAM_BOT_TOKEN is malformed: expected <digits>:<secret>, as BotFather gives it")
        self._token = token.get_secret_value()
        self._settings = settings
        self._mode = settings.telegram_mode
        self._secret = b""
        if self._mode == "webhook":
            url = settings.telegram_webhook_url or ""
            if not url.startswith("https://"):
                raise SettingsError("TELEGRAM_WEBHOOK_URL must be an https:// URL in webhook mode")
            secret = settings.telegram_webhook_secret
            if secret is None or not _SECRET.match(secret.get_secret_value()):
                raise SettingsError("TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and - in webhook mode")
            self._secret = secret.get_secret_value().encode()
        self.conversations = conversations
        self.metrics = metrics
        self.retry = retry if retry is not None else RetryPolicy()
        self.presence = presence if presence is not None else Presence()
        self.dedup = dedup  # webhook deliveries by update id without the inbox; polling needs none (offsets)
        self.inbox: Inbox | None = None  # set by the server before start: updates stored before they are confirmed
        self.polls = True  # False in workers of `serve --workers` but the first: one poller per token
        self.drain_seconds = 5.0
        self.tasks = Background("Telegram", on_error=lambda exc: self.metrics.errors.labels(NAME).inc())
        self._chats: KeyedLocks[int] = KeyedLocks()  # without the inbox: one chat's replies in order
        self._poller: asyncio.Task[None] | None = None
        self._http = http if http is not None else SharedSession()
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._requests: tuple[AiohttpRequest, ...] = ()
        self._closing = asyncio.Event()
        self._redaction = _Redaction(self._token)

    # -- lifecycle ------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        if self._mode != "webhook":
            return []
        return [Route(WEBHOOK_PATH, self._webhook, methods=["POST"])]

    async def start(self) -> None:
        """Check the token (getMe), register the commands, then poll or set the webhook."""
        self._redaction.install()
        self._closing.clear()
        app = self._app = self._build()
        try:
            await app.initialize()
        except InvalidToken:
            raise SettingsError(f"TELEGRAM_BOT_TOKEN was refused by the Bot API at {self._where()}") from None
        except TelegramError as exc:
            raise ChannelError(f"cannot reach the Telegram Bot API at {self._where()}: {self._redact(str(exc))}") from None
        await self._set_commands(app)
        await app.start()
        try:
            if self._mode == "webhook":
                await app.bot.set_webhook(
                    self._settings.telegram_webhook_url or "",
                    allowed_updates=_ALLOWED_UPDATES,
                    secret_token=self._secret.decode(),
                )
            elif self.polls:
                await app.bot.delete_webhook()
                self._poller = asyncio.create_task(self._poll(app), name="telegram-poll")
        except TelegramError as exc:
            what = "setWebhook" if self._mode == "webhook" else "deleteWebhook before polling"
            raise ChannelError(f"Telegram refused {what}: {self._redact(str(exc))}") from None
        log.info("telegram bot @%s ready (%s)", app.bot.username, self._mode)

    async def stop(self) -> None:
        """Stop fetching, let updates in hand finish (retries give up at once), close clients."""
        self._closing.set()
        app = self._app
        if app is None:
            return
        try:
            if self._poller is not None:
                self._poller.cancel()  # updates of an unfinished getUpdates are not confirmed: sent again
                await asyncio.gather(self._poller, return_exceptions=True)
                self._poller = None
            await self.tasks.drain(self.drain_seconds)  # answers under way without the inbox, "typing…"
            if app.running:
                await app.stop()
            await app.shutdown()
        finally:
            self._app = None
            # Also after a failed start, when the Application never counted as initialized.
            for request in self._requests:
                await request.shutdown()
            self._redaction.remove()

    def _build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        # One aiohttp session for both (proxy variables ignored); the long poll gets
        # `poll_timeout` added to its read timeout by PTB.
        calls = AiohttpRequest(self._http)
        polls = AiohttpRequest(self._http, read_timeout=5.0)
        self._requests = (calls, polls)
        builder = (
            ApplicationBuilder()
            .token(self._token)
            .base_url(self._settings.telegram_base_url)
            .base_file_url(self._settings.telegram_base_file_url)
            .request(calls)
            .get_updates_request(polls)
            .job_queue(None)
            .updater(None)  # our own polling loop: updates stored before they are confirmed
        )
        app = builder.build()
        app.add_handler(CommandHandler(list(COMMANDS), self._on_command, filters=filters.UpdateType.MESSAGE))
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE, self._on_message))
        app.add_handler(CallbackQueryHandler(self._on_callback))
        app.add_error_handler(self._on_error)
        return app

    async def _set_commands(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        for language, descriptions in COMMAND_DESCRIPTIONS.items():
            commands = [BotCommand(command, descriptions[command]) for command in COMMANDS]
            try:
                await app.bot.set_my_commands(commands, language_code=language)
            except TelegramError as exc:  # the bot works without its command list
                log.warning("telegram setMyCommands (%s) failed: %s", language or "default", self._redact(str(exc)))

    # -- the webhook ----------------------------------------------------------------------

    async def _webhook(self, request: Request) -> Response:
        """Check the secret, read a bounded body, drop a re-delivery, queue the update, answer at once."""
        given = request.headers.get("x-telegram-bot-api-secret-token", "").encode()
        if not hmac.compare_digest(given, self._secret):
            log.warning("telegram webhook: request without the right secret token refused")
            return Response(status_code=403, headers={"Connection": "close"})  # its body unread
        app = self._app
        if app is None or not app.running:
            return Response(status_code=503)
        try:
            body = await read_body(request, limit=MAX_BODY, media_type=None, timeout=self._settings.pregunta_client_timeout)
            data = parse_json(body)
        except Refused as refused:
            log.warning("telegram webhook refused: %s", refused.reason)
            return refused.response()
        try:
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("not an update")
            update = Update.de_json(data, app.bot)
        except Exception:  # noqa: BLE001 - de_json of untrusted JSON may raise anything: a 400
            log.warning("telegram webhook: malformed update refused")
            return Response(status_code=400)
        if self.inbox is None and not await self._first_time(update.update_id):
            log.info("telegram webhook: re-delivered update ignored")
            return Response(status_code=200)
        await self._accept(app, [update])
        return Response(status_code=200)

    # -- updates in: polling, storing -------------------------------------------------------

    async def _poll(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """getUpdates in a loop; an update is confirmed (the next offset) only once it is stored."""
        offset: int | None = None
        pause = 0.0
        while not self._closing.is_set():
            try:
                updates = await app.bot.get_updates(
                    offset=offset, timeout=dt.timedelta(seconds=self.poll_timeout), allowed_updates=_ALLOWED_UPDATES
                )
                pause = 0.0
            except TelegramError as exc:
                self._polling_error(exc)
                pause = min(30.0, max(1.0, pause * 2))
                try:
                    await asyncio.wait_for(self._closing.wait(), pause)
                except TimeoutError:
                    pass
                continue
            if updates:
                await self._accept(app, list(updates))
                offset = updates[-1].update_id + 1

    async def _accept(self, app: Application[Any, Any, Any, Any, Any, Any], updates: list[Update]) -> None:
        """Run updates through PTB's handlers (which only collect `_Item`s), then store the items."""
        items: list[_Item] = []
        token = _collected.set(items)
        try:
            for update in updates:
                await app.process_update(update)
        finally:
            _collected.reset(token)
        if not items:
            return
        if self.inbox is not None and await self._store(items):
            return
        for item in items:
            self.tasks.spawn(self._direct(item))

    async def _store(self, items: list[_Item]) -> bool:
        assert self.inbox is not None
        now = time.time()
        messages = [
            NewMessage(NAME, digest(NAME, str(item.update_id)), self.conversations.person(NAME, str(item.user_id)),
                       str(item.chat_id), item.encode(), now)
            for item in items
        ]  # fmt: skip
        try:
            new = await self.inbox.put(messages)
        except StorageUnavailable:
            self.metrics.inbox_fallback.labels(NAME).inc(len(items))
            return False
        if not all(new):
            log.info("telegram: %d re-delivered update(s) ignored", new.count(False))
        return True

    def _take(self, message: Message | None, user_id: int, said: Incoming, update: Update, query: CallbackQuery | None = None) -> None:
        """What a handler does: the update as an `_Item`, collected for `_accept`."""
        chat_id = message.chat.id if message is not None else user_id
        thread = reply_to = None
        if message is not None and message.is_topic_message and message.message_thread_id:
            thread = message.message_thread_id
        if message is not None and query is None and message.chat.type != ChatType.PRIVATE:
            reply_to = message.message_id  # in a group, answer the person's message: clear whom the bot answers
        item = _Item(update.update_id, user_id, chat_id, said, thread, reply_to, query.id if query else None)
        collected = _collected.get()
        if collected is not None:
            collected.append(item)
        else:  # an update PTB processed outside `_accept`: answer it all the same
            self.tasks.spawn(self._direct(item))

    async def _first_time(self, update_id: int) -> bool:
        if self.dedup is None:
            return True
        try:
            return await self.dedup.first_time(str(update_id))
        except Exception:  # a broken store must not silence the bot: better twice than never
            self.metrics.errors.labels(NAME).inc()
            log.exception("telegram dedup store failed; answering anyway")
            return True

    # -- handlers ------------------------------------------------------------------------

    async def _on_command(self, update: Update, context: _Context) -> None:
        """/start, /menu, /idioma, /ayuda: the same as pressing the matching button."""
        message = update.message
        if message is None or message.from_user is None or message.chat is None or not isinstance(message.text, str):
            return  # nothing to answer, or nowhere to answer it (a forged update without a chat)
        self._take(message, message.from_user.id, command_incoming(message.text), update)

    async def _on_message(self, update: Update, context: _Context) -> None:
        """Text, or something the bot cannot read; in groups only when addressed."""
        message = update.message
        if message is None or message.from_user is None or message.from_user.is_bot or message.chat is None:
            return
        said = incoming(message, context.bot.id, context.bot.username)
        if said is not None:
            self._take(message, message.from_user.id, said, update)

    async def _on_callback(self, update: Update, context: _Context) -> None:
        """A button: treat it as the choice (acknowledged, so the spinner stops, when it is answered)."""
        query = update.callback_query
        if query is None:
            return
        message = query.message if isinstance(query.message, Message) else None
        self._take(message, query.from_user.id, button_incoming(query.data or ""), update, query)

    async def _on_error(self, update: object, context: _Context) -> None:
        """The one error handler: log it, count it; the next update goes on as usual."""
        self.metrics.errors.labels(NAME).inc()
        update_id = update.update_id if isinstance(update, Update) else None
        error = context.error
        log.error(
            "telegram update %s failed: %s",
            update_id,
            self._redact(repr(error)),
            exc_info=(type(error), error, error.__traceback__) if error else None,
        )

    def _polling_error(self, exc: TelegramError) -> None:
        self.metrics.errors.labels(NAME).inc()
        if isinstance(exc, Conflict):
            log.error("telegram polling: another process uses this token (webhook set or second poller)")
        else:
            log.warning("telegram polling failed, retrying: %s", self._redact(str(exc)))

    # -- one turn -------------------------------------------------------------------------

    async def handle_claimed(self, claimed: Claimed, context: Context, ticket: Ticket) -> None:
        """One update from the inbox (the worker's handler): answered, then saved with the done mark."""
        await self._answer(_Item.decode(claimed.address, claimed.body), context, ticket)

    async def _direct(self, item: _Item) -> None:
        """An update answered without the inbox: in order per chat; a failure logged and counted."""
        async with self._chats(item.chat_id):
            try:
                await self._answer(item, None, None)
            except Exception as error:  # the next update goes on as usual
                self.metrics.errors.labels(NAME).inc()
                log.error("telegram update %s failed: %s", item.update_id, self._redact(repr(error)), exc_info=error)

    async def _answer(self, item: _Item, context: Context | None, ticket: Ticket | None) -> None:
        app = self._app
        if app is None:
            raise ChannelError("the Telegram channel is not started")
        bot = app.bot
        if item.query is not None:
            query_id = item.query
            await self._attempt("answerCallbackQuery", lambda: bot.answer_callback_query(query_id), retry=False)
        chat_id = item.chat_id
        where: dict[str, Any] = {}
        if item.thread:
            where["message_thread_id"] = item.thread
        if item.reply_to:
            where["reply_parameters"] = ReplyParameters(item.reply_to, allow_sending_without_reply=True)
        thread = _thread(where)
        pending: Pending | None = None
        watch = self.presence.watch(chat_id, lambda: self._typing(bot, chat_id, thread), self.tasks)
        try:
            if ticket is None:
                reply = await self.conversations.handle(NAME, str(item.user_id), item.said)
            else:
                pending = await self.conversations.begin(NAME, str(item.user_id), item.said, context)
                reply = pending.reply
            self.metrics.messages_in.labels(NAME, reply.lang if reply else "-").inc()
            if reply is not None:
                await watch.ready(after_sign=True)  # "typing…" must not arrive after the answer
        finally:
            watch.close()
        sent = True
        if reply is not None:
            sent = await self._send(bot, chat_id, reply, where)
        if pending is not None and ticket is not None:
            saving = ticket

            async def save(done: Pending) -> None:
                await saving.save(done, given_up=not sent)

            await self.conversations.end(pending, save)

    async def _typing(self, bot: Bot, chat_id: int, thread: dict[str, Any]) -> None:
        await self._attempt("sendChatAction", lambda: bot.send_chat_action(chat_id, ChatAction.TYPING, **thread), retry=False)

    async def _send(self, bot: Bot, chat_id: int, reply: Reply, where: dict[str, Any]) -> bool:
        """The reply's parts in order, then its voice note; False when the text did not all go out."""
        text = reply.text if reply.text.strip() else as_text(reply)
        parts = split_message(text)
        markup = keyboard(reply.options)
        for number, part in enumerate(parts, start=1):
            last = number == len(parts)
            sent = await self._send_text(bot, chat_id, part, markup if last else None, where if number == 1 else _thread(where))
            if sent is None:
                return False  # the rest would read out of order; the person can ask again
            self.metrics.messages_out.labels(NAME, reply.lang).inc()
        if reply.audio is not None:
            await self._send_voice(bot, chat_id, reply.audio, reply.lang, _thread(where))
        return True

    async def _send_text(
        self, bot: Bot, chat_id: int, part: str, markup: InlineKeyboardMarkup | None, where: dict[str, Any]
    ) -> Message | None:
        no_preview = LinkPreviewOptions(is_disabled=True)

        def html() -> Awaitable[Message]:
            return bot.send_message(
                chat_id, render_html(part), parse_mode=ParseMode.HTML, reply_markup=markup,
                link_preview_options=no_preview, **where,
            )  # fmt: skip

        def plain() -> Awaitable[Message]:
            return bot.send_message(
                chat_id, part.replace("*", ""), reply_markup=markup, link_preview_options=no_preview, **where
            )

        try:
            return await self._attempt("sendMessage", html, raise_refusal=True)
        except ChannelError as error:
            if "parse" not in str(error).lower():
                self._failed("sendMessage", error)
                return None
            # Never expected (the text is escaped), but a reply must not be lost to markup.
            log.warning("telegram rejected the HTML of a reply, sending it plain: %s", error)
            return await self._attempt("sendMessage", plain)

    async def _send_voice(self, bot: Bot, chat_id: int, path: Path, lang: str, where: dict[str, Any]) -> None:
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            log.warning("telegram: audio %s not sent: %s", path.name, exc.strerror)
            self.metrics.errors.labels(NAME).inc()
            return
        voice = InputFile(data, filename=path.name)
        await self._attempt("sendChatAction", lambda: bot.send_chat_action(chat_id, ChatAction.UPLOAD_VOICE, **where), retry=False)
        if await self._attempt("sendVoice", lambda: bot.send_voice(chat_id, voice, **where)) is not None:
            self.metrics.messages_out.labels(NAME, lang).inc()

    # -- retries ------------------------------------------------------------------------

    async def _attempt(
        self, method: str, call: Callable[[], Awaitable[T]], *, retry: bool = True, raise_refusal: bool = False
    ) -> T | None:
        """Call the Bot API under the retry policy; None once given up (logged and counted).

        With `retry=False` one attempt only, and a failure is logged at debug level: a
        missed "typing…" or button acknowledgement is harmless. With `raise_refusal`, an
        error not worth retrying is raised for the caller to handle instead.
        """

        async def once() -> T:
            try:
                return await call()
            except TelegramError as exc:
                raise self._classify(exc) from exc

        try:
            return await self.retry.run(
                once,
                what=f"telegram {method}",
                attempts=None if retry else 1,
                on_retry=self.metrics.send_retries.labels(NAME).inc,
                stopping=self._closing,
            )
        except ChannelError as error:
            if not retry:
                log.debug("telegram %s failed: %s", method, error)
                return None
            if raise_refusal and not error.retryable:
                raise
            self._failed(method, error)
            return None

    def _failed(self, method: str, error: ChannelError) -> None:
        self.metrics.send_failures.labels(NAME).inc()
        self.metrics.errors.labels(NAME).inc()
        log.warning("telegram %s given up: %s", method, error)

    def _classify(self, exc: TelegramError) -> ChannelError:
        """Telegram's error, token redacted, as a ChannelError that says whether to retry."""
        error = translate(exc, _ERRORS) or ChannelError(f"failed: {exc}")
        redacted = ChannelError(self._redact(str(error)), retryable=error.retryable, retry_after=error.retry_after)
        return redacted

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>")

    def _where(self) -> str:
        return self._redact(self._settings.telegram_base_url)


class _Redaction(logging.Filter):
    """Takes the token out of log records of the loggers that print Bot API URLs.

    python-telegram-bot logs its base URL (token included) at DEBUG when a Bot is built;
    HTTP clients may log request URLs.
    """

    _LOGGERS = ("telegram.Bot", "telegram.ext.ExtBot", "httpx", "aiohttp.client")

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._token in message:
            record.msg, record.args = message.replace(self._token, "<token>"), None
        return True

    def install(self) -> None:
        for name in self._LOGGERS:
            logging.getLogger(name).addFilter(self)

    def remove(self) -> None:
        for name in self._LOGGERS:
            logging.getLogger(name).removeFilter(self)


def _thread(where: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in where.items() if k == "message_thread_id"}


def _seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after is an int or a timedelta depending on PTB_TIMEDELTA; either way, seconds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)

"""The Telegram channel: python-telegram-bot's Application, by long polling or webhook.

Turns Telegram updates into `Incoming` messages for `Conversations.handle` and renders
each `Reply`: HTML text split at 4,096 characters, options as inline buttons ("1 · Pasaporte",
so typed numbers still match), audio as a voice message. "typing…" is shown only when
the reply is not immediate (`base.Presence`). Sends follow the channels' `RetryPolicy`
(RetryAfter honoured up to its ceiling, network errors and 5xx backed off), then are
logged and counted; PTB's errors become `ChannelError` through one table. HTTP goes
through the process's aiohttp session (`telegram_request.AiohttpRequest`). A webhook
body is read within `base.MAX_BODY` and its update id deduplicated. Knows nothing of
matching or of the dialogue's states; never logs the token, user ids or chat ids.

Telegram delivers at least once: a webhook it thinks was not acknowledged comes again,
and a poller that stopped before confirming its offset gets the same updates after a
restart. Both ways, an update id already answered (`dedup`, kept in the database by
the server) is dropped before any handler runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import re
import warnings
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

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
    ApplicationHandlerStop,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
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
from bot.conversation import Conversations
from bot.errors import ChannelError, SettingsError
from bot.locks import KeyedLocks
from bot.metrics import Metrics
from bot.replies import Incoming, Reply
from bot.settings import Settings

__all__ = ["TelegramChannel"]

log = logging.getLogger(__name__)

NAME = "telegram"
WEBHOOK_PATH = "/webhooks/telegram"
_ALLOWED_UPDATES = ["message", "callback_query"]  # edits, reactions, channel posts: never asked for
_TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

T = TypeVar("T")
_Context = ContextTypes.DEFAULT_TYPE


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
        self.dedup = dedup  # update ids already seen: webhook re-deliveries, and polls after a restart
        self.tasks = Background("Telegram", on_error=lambda exc: self.metrics.errors.labels(NAME).inc())
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
            else:
                assert app.updater is not None
                await app.updater.start_polling(
                    timeout=dt.timedelta(seconds=self.poll_timeout),
                    allowed_updates=_ALLOWED_UPDATES,
                    error_callback=self._polling_error,
                )
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
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await self.tasks.drain(1.0)  # "typing…" calls still under way
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
            .concurrent_updates(_ChatByChat(512))
            .job_queue(None)
        )
        if self._mode == "webhook":
            builder = builder.updater(None)
        app = builder.build()
        if self._mode == "polling":  # the webhook route drops re-deliveries before they are queued
            app.add_handler(TypeHandler(Update, self._drop_seen), group=-1)
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
        except Exception:
            log.warning("telegram webhook: malformed update refused")
            return Response(status_code=400)
        if not await self._first_time(update.update_id):
            log.info("telegram webhook: re-delivered update ignored")
            return Response(status_code=200)
        await app.update_queue.put(update)
        return Response(status_code=200)

    async def _drop_seen(self, update: Update, context: _Context) -> None:
        """Polling: an update answered before a restart (its offset never confirmed) stops here."""
        if not await self._first_time(update.update_id):
            log.info("telegram: update delivered again after a restart ignored")
            raise ApplicationHandlerStop

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
        await self._converse(context.bot, message, message.from_user.id, command_incoming(message.text))

    async def _on_message(self, update: Update, context: _Context) -> None:
        """Text, or something the bot cannot read; in groups only when addressed."""
        message = update.message
        if message is None or message.from_user is None or message.from_user.is_bot or message.chat is None:
            return
        said = incoming(message, context.bot.id, context.bot.username)
        if said is not None:
            await self._converse(context.bot, message, message.from_user.id, said)

    async def _on_callback(self, update: Update, context: _Context) -> None:
        """A button: acknowledge it (so the spinner stops), then treat it as the choice."""
        query = update.callback_query
        if query is None:
            return
        await self._attempt("answerCallbackQuery", query.answer, retry=False)
        message = query.message if isinstance(query.message, Message) else None
        await self._converse(context.bot, message, query.from_user.id, button_incoming(query.data or ""), query=query)

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

    async def _converse(
        self, bot: Bot, message: Message | None, user_id: int, said: Incoming, query: CallbackQuery | None = None
    ) -> None:
        chat_id = message.chat.id if message is not None else user_id
        where: dict[str, Any] = {}
        if message is not None and message.is_topic_message and message.message_thread_id:
            where["message_thread_id"] = message.message_thread_id
        if message is not None and query is None and message.chat.type != ChatType.PRIVATE:
            # In a group, answer the person's message so it is clear whom the bot answers.
            where["reply_parameters"] = ReplyParameters(message.message_id, allow_sending_without_reply=True)
        thread = _thread(where)
        watch = self.presence.watch(chat_id, lambda: self._typing(bot, chat_id, thread), self.tasks)
        try:
            reply = await self.conversations.handle(NAME, str(user_id), said)
            self.metrics.messages_in.labels(NAME, reply.lang if reply else "-").inc()
            if reply is None:
                return
            await watch.ready(after_sign=True)  # "typing…" must not arrive after the answer
        finally:
            watch.close()
        await self._send(bot, chat_id, reply, where)

    async def _typing(self, bot: Bot, chat_id: int, thread: dict[str, Any]) -> None:
        await self._attempt("sendChatAction", lambda: bot.send_chat_action(chat_id, ChatAction.TYPING, **thread), retry=False)

    async def _send(self, bot: Bot, chat_id: int, reply: Reply, where: dict[str, Any]) -> None:
        text = reply.text if reply.text.strip() else as_text(reply)
        parts = split_message(text)
        markup = keyboard(reply.options)
        for number, part in enumerate(parts, start=1):
            last = number == len(parts)
            sent = await self._send_text(bot, chat_id, part, markup if last else None, where if number == 1 else _thread(where))
            if sent is None:
                return  # the rest would read out of order; the person can ask again
            self.metrics.messages_out.labels(NAME, reply.lang).inc()
        if reply.audio is not None:
            await self._send_voice(bot, chat_id, reply.audio, reply.lang, _thread(where))

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


class _ChatByChat(BaseUpdateProcessor):
    """Updates of one chat in arrival order, different chats at the same time.

    A person's replies keep their order, and someone sending fast (or a slow send to
    them) never holds up anyone else.
    """

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: KeyedLocks[Hashable] = KeyedLocks()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        user = update.effective_user if isinstance(update, Update) else None
        key = chat.id if chat else user.id if user else None
        if key is None:
            await coroutine
            return
        async with self._locks(key):
            await coroutine

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


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

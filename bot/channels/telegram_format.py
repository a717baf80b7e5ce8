"""Telegram's side of the wire: a `Reply` as HTML parts and inline buttons, a `Message` as `Incoming`.

Pure functions over python-telegram-bot's objects: no network, no settings. The channel
(`bot/channels/telegram.py`) calls them; tests call them directly.
"""

from __future__ import annotations

import re
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity
from telegram.constants import ChatType

from bot.channels.base import split_text
from bot.replies import Incoming, Option

__all__ = [
    "COMMANDS",
    "COMMAND_DESCRIPTIONS",
    "button_incoming",
    "callback_data",
    "command_incoming",
    "incoming",
    "keyboard",
    "render_html",
    "split_message",
]

MESSAGE_LIMIT = 4096  # characters of text after entity parsing, counted in UTF-16 units
CALLBACK_LIMIT = 64  # bytes of callback_data
_BOLD = re.compile(r"\*(?=\S)([^*\n]+?)(?<=\S)\*")

# What each command sends to the dialogue: the payload of the button that does the same.
COMMANDS = {
    "start": "menu:0",  # a newcomer gets the greeting and the languages, anyone else the menu
    "menu": "menu:0",
    "idioma": "intent:idioma",
    "ayuda": "intent:ayuda-humana",
}
_SPANISH = {
    "start": "Empezar",
    "menu": "Ver los temas",
    "idioma": "Cambiar de idioma",
    "ayuda": "Líneas de ayuda",
}
# Descriptions for setMyCommands by Telegram language_code. Telegram knows only ISO 639-1
# codes, so K'iche', Q'eqchi' and Mam cannot have a list of their own: their speakers'
# apps are set to Spanish or another language and get the default (None), in Spanish.
COMMAND_DESCRIPTIONS: dict[str | None, dict[str, str]] = {None: _SPANISH, "es": _SPANISH}

# Message contents the bot cannot read, in the order to test them (an animation also
# carries a document, a venue a location).
_NON_TEXT = (
    "voice", "audio", "video_note", "video", "animation", "photo", "sticker",
    "venue", "location", "contact", "document", "poll", "dice",
)  # fmt: skip


def render_html(text: str) -> str:
    """Content text as Telegram HTML: everything escaped, *bold* as <b>bold</b>."""
    return _BOLD.sub(r"<b>\1</b>", escape(text, quote=False))


def callback_data(option: Option) -> str:
    """The payload, or the typed key when the payload exceeds Telegram's 64 bytes."""
    return option.payload if len(option.payload.encode()) <= CALLBACK_LIMIT else option.key


def keyboard(options: tuple[Option, ...]) -> InlineKeyboardMarkup | None:
    """One button per row, labelled with the number a person could type instead."""
    if not options:
        return None
    rows = [[InlineKeyboardButton(f"{o.key} · {o.title}", callback_data=callback_data(o))] for o in options]
    return InlineKeyboardMarkup(rows)


def split_message(text: str) -> list[str]:
    """Split on paragraphs so no part exceeds Telegram's limit, which counts UTF-16 units."""
    limit = MESSAGE_LIMIT
    while True:
        parts = split_text(text, limit)
        if limit <= 512 or all(len(p.encode("utf-16-le")) // 2 <= MESSAGE_LIMIT for p in parts):
            return parts
        limit -= 256


def button_incoming(data: str) -> Incoming:
    """A pressed button; one whose payload did not fit carries its number instead."""
    return Incoming(text=data) if data.isdigit() else Incoming(payload=data)


def command_incoming(text: str) -> Incoming:
    """/start, /menu, /idioma, /ayuda (also as /menu@bot): the same as the matching button."""
    command = text.split()[0].lstrip("/").split("@")[0].lower() if text.strip() else ""
    return Incoming(payload=COMMANDS.get(command, "menu:0"))


def incoming(message: Message, bot_id: int, bot_username: str | None) -> Incoming | None:
    """What a message says to the bot, or None when it is not for the bot.

    A caption counts as text. In groups only messages that mention the bot or reply to
    it count, with the mention taken out.
    """
    if message.chat is None:  # only a forged update lacks one: there is nowhere to answer
        return None
    text = message.text or message.caption or ""
    if not isinstance(text, str):  # a forged update: Telegram always sends text as a string
        return None
    if message.chat.type != ChatType.PRIVATE:
        try:
            addressed, text = _addressed(message, text, bot_id, bot_username)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            return None  # malformed entities: not a message Telegram would send
        if not addressed:
            return None
    if text:
        return Incoming(text=text)
    for kind in _NON_TEXT:
        if getattr(message, kind, None):
            return Incoming(non_text=kind)
    return None  # service messages: someone joined, a pin, a new title


def _addressed(message: Message, text: str, bot_id: int, bot_username: str | None) -> tuple[bool, str]:
    mention = f"@{bot_username}".lower() if bot_username else None
    entities = message.parse_entities() if message.text else message.parse_caption_entities()
    found = False
    for entity, said in entities.items():
        if entity.type == MessageEntity.MENTION and mention and said.lower() == mention:
            found = True
            text = text.replace(said, " ")
        elif entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot_id:
            found = True
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        found = True
    return found, " ".join(text.split())

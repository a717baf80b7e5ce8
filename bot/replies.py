"""What the dialogue answers: plain data that each channel renders its own way.

Channels show `options` as buttons or list rows when they can, and always accept the
typed `key` too. Labels a channel draws around them (`list_button`) come with the reply,
in its language, so a channel never reads the content. `Option.payload` is what a button sends back: it names the choice
itself (a topic, a language), so an old button still means what it said.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = ["Incoming", "Kind", "Option", "Reply"]


class Kind(StrEnum):
    """What happened in a turn; the usage log and the metrics count these."""

    TOPIC = "topic"
    INTENT = "intent"
    NOT_SURE = "not_sure"
    CHOICES = "choices"  # a close call: the bot offered the likely topics to choose from
    EMERGENCY = "emergency"  # someone in danger: the emergency lines, never the text kept
    MENU = "menu"
    NUMBER = "number"
    LANGUAGE = "language"
    NON_TEXT = "non_text"
    RATE_LIMITED = "rate_limited"
    EMPTY = "empty"


@dataclass(frozen=True)
class Option:
    key: str  # what the user can type: "1", "0"
    payload: str  # what a button sends back: "topic:pasaporte-requisitos", "lang:quc", "menu"
    title: str  # ≤ 24 characters for topics (a WhatsApp list row)
    description: str = ""


@dataclass(frozen=True)
class Reply:
    text: str
    lang: str
    kind: Kind
    options: tuple[Option, ...] = ()
    audio: Path | None = None
    topic: str | None = None  # topic or intent id, for the usage log
    score: float | None = None
    query: str | None = None  # the user's text, kept only on NOT_SURE (scrubbed before storage)
    is_menu: bool = False  # options are the topic menu (WhatsApp shows a list)
    page: int = 0  # which page of the topic menu, when `is_menu`
    chose_lang: str | None = None  # a language chosen in this turn along with an answer
    list_button: str = "Menú"  # the label of the button that opens a list of options, in `lang`
    action: str | None = None  # what the service must do first: "consent", "subscribe" or "unsubscribe" (alerts)


@dataclass(frozen=True)
class Incoming:
    """One message from a user, as a channel understood it."""

    text: str = ""
    payload: str | None = None  # a button or list row pressed
    non_text: str | None = None  # "voice", "photo", "sticker", ... when there is no text
    at: float | None = None  # unix time it arrived; the dialogue has no clock of its own

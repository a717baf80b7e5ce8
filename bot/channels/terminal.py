"""The terminal chat: the same dialogue as the apps, for staff previewing content.

Reads stdin line by line until EOF, so it can be piped; options are printed by number.
Each run is a person of its own (a random id), so the report counts test sessions apart.
Staff paste or pipe whole test conversations, so the chat is never rate-limited
(`NoFloodGuard`), and when stdin is not a terminal each line read is echoed (`> hola`)
before its reply, so that the output reads as the conversation it was.
"""

from __future__ import annotations

import asyncio
import secrets
import unicodedata
from typing import TextIO

from bot.channels.base import as_text
from bot.conversation import Conversations, FloodGuard
from bot.replies import Incoming

__all__ = ["ECHO_LIMIT", "NoFloodGuard", "run_chat"]

ECHO_LIMIT = 300  # characters of an input line shown in the echo


class NoFloodGuard(FloodGuard):
    """A flood guard that never limits: the terminal has one person, previewing content."""

    def check(self, key: str, now: float) -> str:
        return "ok"

async def run_chat(
    conversations: Conversations, stdin: TextIO, stdout: TextIO, *, lang: str | None = None, user: str | None = None
) -> None:
    """Chat until EOF as `user` (default: a new random id for this run). With `lang`, the language is chosen up front."""
    user = user or f"terminal-{secrets.token_hex(8)}"
    interactive = stdin.isatty()
    if lang:
        reply = await conversations.handle("terminal", user, Incoming(payload=f"lang:{lang}"))
        if reply:
            _show(as_text(reply), reply.audio, stdout)
    elif interactive:
        stdout.write("Escribí «hola» para empezar. Ctrl-D para salir.\n")
    loop = asyncio.get_running_loop()
    while True:
        if interactive:
            stdout.write("> ")
            stdout.flush()
        line = await loop.run_in_executor(None, stdin.readline)
        if not line:
            break
        text = line.rstrip("\n")
        if not interactive:
            stdout.write(f"> {_echo(text)}\n")
        reply = await conversations.handle("terminal", user, Incoming(text=text))
        if reply is not None:
            _show(as_text(reply), reply.audio, stdout)
    if interactive:
        stdout.write("\n")


def _echo(text: str) -> str:
    """The line as typed, safe to print: control and direction characters shown as �, long lines cut."""
    shown = "".join("�" if unicodedata.category(ch) in ("Cc", "Cf") and ch != "\t" else ch for ch in text)
    return shown if len(shown) <= ECHO_LIMIT else shown[:ECHO_LIMIT] + "…"


def _show(reply_text: str, audio: object, stdout: TextIO) -> None:
    stdout.write(reply_text.replace("*", "") + "\n")
    if audio:
        stdout.write(f"[audio: {audio}]\n")
    stdout.write("\n")
    stdout.flush()

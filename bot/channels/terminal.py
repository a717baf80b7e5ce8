"""The terminal chat: the same dialogue as the apps, for staff previewing content.

Reads stdin line by line until EOF, so it can be piped; options are printed by number.
Each run is a person of its own (a random id), so the report counts test sessions apart.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TextIO

from bot.channels.base import as_text
from bot.conversation import Conversations
from bot.replies import Incoming

__all__ = ["run_chat"]


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
        reply = await conversations.handle("terminal", user, Incoming(text=line.rstrip("\n")))
        if reply is not None:
            _show(as_text(reply), reply.audio, stdout)
    if interactive:
        stdout.write("\n")


def _show(reply_text: str, audio: object, stdout: TextIO) -> None:
    stdout.write(reply_text.replace("*", "") + "\n")
    if audio:
        stdout.write(f"[audio: {audio}]\n")
    stdout.write("\n")
    stdout.flush()

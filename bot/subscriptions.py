"""Who asked for alerts ("avisos"): the only place a contact address is kept, and encrypted.

Sending an alert needs the chat id or phone number, so a subscription keeps it; nothing
else in the database does for longer than a reply takes. The address and its channel are
a Fernet token (the `cryptography` package) under PREGUNTA_SUBSCRIBERS_KEY, a key kept
apart from the database; the row is found by a keyed pseudonym of channel and user id
(`bot.privacy.pseudonym`, with its own label: no join with the usage log or the dialogue
state), so subscribing and unsubscribing never decrypt anything. Opting out deletes the
row. Several keys separated by commas rotate: the first encrypts, every one decrypts,
and `rekey` writes every token again under the first.

Without the key, subscribing is off (`subscribers_key` returns None): the server says so
at start and in /healthz, and the dialogue's confirmation becomes "not available".
Knows nothing of channels, alerts' content or sending.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.clock import local_day
from bot.errors import PreguntaError
from bot.privacy import pseudonym

if TYPE_CHECKING:
    from bot.settings import Settings
    from bot.storage import Storage

__all__ = ["CHANNELS", "OFF_REASON", "Subscriber", "Subscriptions", "UnreadableSubscription", "subscriber_counts", "subscribers_key"]

OFF_REASON = "PREGUNTA_SUBSCRIBERS_KEY is not set: subscribing to alerts is off"
CHANNELS = ("telegram", "whatsapp")  # where an alert can be sent: the terminal chat cannot subscribe

_JOIN_DAY = (
    "INSERT INTO subscription_days (day, channel, joined) SELECT ?, ?, 1 WHERE NOT EXISTS "
    "(SELECT 1 FROM subscriptions WHERE person = ?) "
    "ON CONFLICT (day, channel) DO UPDATE SET joined = subscription_days.joined + 1"
)
_UPSERT = (
    "INSERT INTO subscriptions (person, channel, lang, token, since) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (person) DO UPDATE SET lang = excluded.lang, token = excluded.token"
)
_LEAVE_DAY = (
    "INSERT INTO subscription_days (day, channel, {column}) SELECT ?, channel, 1 FROM subscriptions WHERE person = ? "
    "ON CONFLICT (day, channel) DO UPDATE SET {column} = subscription_days.{column} + 1"
)
_DELETE = "DELETE FROM subscriptions WHERE person = ?"


class UnreadableSubscription(PreguntaError):
    """A token the configured key(s) cannot open: the key changed without `alerts rekey`."""


def subscribers_key(settings: Settings) -> MultiFernet | None:
    """The Fernet keys of PREGUNTA_SUBSCRIBERS_KEY (validated by the settings), or None: subscribing off."""
    if settings.pregunta_subscribers_key is None:
        return None
    keys = settings.pregunta_subscribers_key.get_secret_value().split(",")
    return MultiFernet([Fernet(key.strip().encode("ascii")) for key in keys])


@dataclass(frozen=True)
class Subscriber:
    """One subscription as a sender reads it: the pseudonym, where and in which language to write."""

    person: str
    channel: str
    lang: str
    token: str

    def address(self, key: MultiFernet) -> str:
        """The chat id or phone number, decrypted now and never stored elsewhere."""
        try:
            data = json.loads(key.decrypt(self.token.encode("ascii")))
        except (InvalidToken, ValueError) as exc:
            raise UnreadableSubscription("a subscription cannot be decrypted with PREGUNTA_SUBSCRIBERS_KEY") from exc
        if data.get("c") != self.channel:
            raise UnreadableSubscription("a subscription's token names another channel than its row")
        return str(data["a"])


class Subscriptions:
    """The subscription table through the storage interface (SQLite or PostgreSQL)."""

    def __init__(self, storage: Storage, key: MultiFernet | None, pseudonym_key: bytes | None = None) -> None:
        self.storage = storage
        self._key = key  # None: subscribing is off; unsubscribing still works (it needs the pseudonym only)
        self._pseudonym_key = pseudonym_key

    @property
    def enabled(self) -> bool:
        return self._key is not None

    @property
    def key(self) -> MultiFernet:
        if self._key is None:
            raise PreguntaError(OFF_REASON)
        return self._key

    def person(self, channel: str, user_id: str) -> str:
        """The row's key: a keyed pseudonym with a label of its own (not the state's or the usage log's)."""
        if self._pseudonym_key is None:
            raise PreguntaError("subscriptions opened without the pseudonym key cannot look people up")
        return pseudonym(self._pseudonym_key, "subscriber", channel, str(user_id))

    def seal(self, channel: str, address: str) -> str:
        return self.key.encrypt(json.dumps({"c": channel, "a": str(address)}, separators=(",", ":")).encode()).decode("ascii")

    async def subscribe(self, channel: str, user_id: str, lang: str, *, now: float | None = None) -> None:
        """Subscribe (or, when already subscribed, keep the row and take the new language)."""
        now = time.time() if now is None else now
        person = self.person(channel, user_id)
        await self.storage.script(
            [
                (_JOIN_DAY, (local_day(now), channel, person)),
                (_UPSERT, (person, channel, lang, self.seal(channel, user_id), now)),
            ]
        )

    async def unsubscribe(self, channel: str, user_id: str, *, now: float | None = None) -> bool:
        """Delete the subscription at once; False when there was none."""
        return await self.drop(self.person(channel, user_id), now=now)

    async def drop(self, person: str, *, blocked: bool = False, now: float | None = None) -> bool:
        """Delete a subscription by its pseudonym (`blocked`: the platform said they blocked us)."""
        now = time.time() if now is None else now
        column = "blocked" if blocked else "stopped"
        gone = "gone-" + secrets.token_hex(12)  # the alerts they got stay counted, no longer linked to them
        counts = await self.storage.script(
            [
                (_LEAVE_DAY.format(column=column), (local_day(now), person)),
                (_DELETE, (person,)),
                ("UPDATE alert_deliveries SET person = ? WHERE person = ?", (gone, person)),
            ]
        )
        return counts[1] > 0

    async def set_language(self, channel: str, user_id: str, lang: str) -> None:
        """A subscriber who changes language gets alerts in the new one (no row: nothing happens)."""
        await self.storage.execute("UPDATE subscriptions SET lang = ? WHERE person = ? AND lang != ?", (lang, self.person(channel, user_id), lang))

    async def is_subscribed(self, channel: str, user_id: str) -> bool:
        rows = await self.storage.fetch("SELECT 1 FROM subscriptions WHERE person = ?", (self.person(channel, user_id),))
        return bool(rows)

    async def page(self, after: str, limit: int, channels: Sequence[str]) -> list[Subscriber]:
        """Subscriptions of `channels` after the pseudonym `after`, in pseudonym order (bounded memory)."""
        marks = ", ".join("?" for _ in channels)
        sql = (
            f"SELECT person, channel, lang, token FROM subscriptions WHERE person > ? AND channel IN ({marks}) "
            "ORDER BY person LIMIT ?"
        )
        rows = await self.storage.fetch(sql, (after, *channels, limit))
        return [Subscriber(str(p), str(c), str(lang), str(t)) for p, c, lang, t in rows]

    async def rekey(self, batch: int = 500) -> int:
        """Write every token again under the first key (after adding a new key in front); how many."""
        after, done = "", 0
        while True:
            rows = await self.storage.fetch("SELECT person, token FROM subscriptions WHERE person > ? ORDER BY person LIMIT ?", (after, batch))
            if not rows:
                return done
            statements = []
            for person, token in rows:
                try:
                    fresh = self.key.rotate(str(token).encode("ascii")).decode("ascii")
                except InvalidToken:
                    raise UnreadableSubscription(
                        "a subscription cannot be decrypted with any key of PREGUNTA_SUBSCRIBERS_KEY: keep the old key after the new one"
                    ) from None
                statements.append(("UPDATE subscriptions SET token = ? WHERE person = ? AND token = ?", (fresh, person, token)))
            await self.storage.script(statements)
            done += len(rows)
            after = str(rows[-1][0])


async def subscriber_counts(storage: Storage) -> dict[tuple[str, str], int]:
    """Subscriptions per (channel, language): no key needed."""
    rows = await storage.fetch("SELECT channel, lang, COUNT(*) FROM subscriptions GROUP BY channel, lang")
    return {(str(c), str(lang)): int(n) for c, lang, n in rows}

"""Daily counts: what a purge keeps forever, and what a report reads for any period.

A purge rolls the raw events older than the retention into `daily` (events by day,
channel, language, kind and topic; language choices, and how many were changes, under
kind 'language' with the chosen language as topic) and
`daily_users` (distinct users by day and channel: in all, per language, and among the
rate-limited), then deletes them. Reports read the same aggregates from the raw events of
recent days and from the rollups of purged days, so a period spanning both adds up.
Knows nothing of the queue that writes events, nor of how a report looks. The SQL is
the same on SQLite and PostgreSQL (`bot.storage` turns `?` into `$n`).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from bot.clock import today as local_today
from bot.storage import Storage

__all__ = ["ALL", "Count", "PurgeResult", "Users", "bounds", "counts", "not_sure_queries", "purge", "rolled_days", "users"]

ALL = "*"  # in `Users.lang` / `Users.kind`: every language / every kind

_FIRST = "0000-01-01"

# Language choices, each flagged when the same user had chosen another language before
# (within a month: the user key changes with the month). The window runs over every
# choice, so a choice made just before a period still counts as the one before. A
# choice is any turn with `chose_lang`: the language menu's answer, or a pending
# question answered right after the choice.
_CHANGES = """
SELECT day, channel, lang, 'language' AS kind, topic, COUNT(*) AS n FROM (
    SELECT day, channel, lang, chose_lang AS topic,
           LAG(chose_lang) OVER (PARTITION BY user_key ORDER BY at, id) AS before
    FROM events WHERE chose_lang IS NOT NULL
) AS choices WHERE day BETWEEN ? AND ? AND before IS NOT NULL AND before != topic
GROUP BY day, channel, lang, topic
"""
# Changes whose earlier choice is about to be purged while the later one stays: the
# purge credits them to the later choice's day in `daily` (with no events), since the
# raw window will no longer see the earlier choice.
_BOUNDARY_CHANGES = """
SELECT day, channel, lang, 'language' AS kind, topic, COUNT(*) AS n FROM (
    SELECT day, channel, lang, chose_lang AS topic,
           LAG(chose_lang) OVER (PARTITION BY user_key ORDER BY at, id) AS before,
           LAG(day) OVER (PARTITION BY user_key ORDER BY at, id) AS before_day
    FROM events WHERE chose_lang IS NOT NULL
) AS choices WHERE day >= ?1 AND before_day < ?1 AND before IS NOT NULL AND before != topic
GROUP BY day, channel, lang, topic
"""
_CHOICES = """
SELECT day, channel, lang, 'language' AS kind, chose_lang AS topic, COUNT(*) AS n FROM events
WHERE chose_lang IS NOT NULL AND day BETWEEN ? AND ? GROUP BY day, channel, lang, chose_lang
"""
_COUNTS = """
SELECT day, channel, lang, kind, COALESCE(topic, ''), COUNT(*) FROM events
WHERE day BETWEEN ? AND ? GROUP BY day, channel, lang, kind, COALESCE(topic, '')
"""
_USERS = """
SELECT day, channel, '*', '*', COUNT(DISTINCT user_key) FROM events
WHERE day BETWEEN ?1 AND ?2 GROUP BY day, channel
UNION ALL
SELECT day, channel, lang, '*', COUNT(DISTINCT user_key) FROM events
WHERE day BETWEEN ?1 AND ?2 GROUP BY day, channel, lang
UNION ALL
SELECT day, channel, '*', 'rate_limited', COUNT(DISTINCT user_key) FROM events
WHERE kind = 'rate_limited' AND day BETWEEN ?1 AND ?2 GROUP BY day, channel
"""


@dataclass(frozen=True)
class Count:
    """Events of one day, channel, language, kind and topic ('' for none)."""

    day: str
    channel: str
    lang: str
    kind: str
    topic: str
    events: int
    changes: int = 0  # language choices that changed the language (kind 'language' only)
    choices: int = 0  # languages chosen (kind 'language', topic the language), with or without an event of that kind


@dataclass(frozen=True)
class Users:
    """Distinct users of one day and channel, in all (ALL, ALL), per language, or rate-limited."""

    day: str
    channel: str
    lang: str
    kind: str
    users: int


@dataclass(frozen=True)
class PurgeResult:
    before: date  # events of days before this one were rolled up and deleted
    events: int
    days: int
    messages: int  # webhook message ids forgotten
    states: int  # dialogue states of users silent for longer than the retention


async def counts(db: Storage, since: date, until: date) -> list[Count]:
    """Events per day, channel, language, kind and topic: raw events and rollups added up."""
    bounds_ = (since.isoformat(), until.isoformat())
    total: dict[tuple[str, str, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in await db.fetch(_COUNTS, bounds_):
        total[row[:5]][0] += row[5]
    for row in await db.fetch(_CHANGES, bounds_):
        total[row[:5]][1] += row[5]
    for row in await db.fetch(_CHOICES, bounds_):
        total[row[:5]][2] += row[5]
    sql = "SELECT day, channel, lang, kind, topic, events, changes, choices FROM daily WHERE day BETWEEN ? AND ?"
    for row in await db.fetch(sql, bounds_):
        cell = total[row[:5]]
        cell[0] += row[5]
        cell[1] += row[6]
        cell[2] += row[7]
    return [Count(*key, *values) for key, values in sorted(total.items())]


async def users(db: Storage, since: date, until: date) -> list[Users]:
    """Distinct users per day and channel (in all, per language, rate-limited), raw and rolled up."""
    bounds_ = (since.isoformat(), until.isoformat())
    total: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for row in await db.fetch(_USERS, bounds_):
        total[row[:4]] += row[4]
    sql = "SELECT day, channel, lang, kind, users FROM daily_users WHERE day BETWEEN ? AND ?"
    for row in await db.fetch(sql, bounds_):
        total[row[:4]] += row[4]
    return [Users(*key, n) for key, n in sorted(total.items())]


async def not_sure_queries(db: Storage, since: date, until: date) -> list[tuple[str, str]]:
    """(scrubbed text, user key) of every not-sure turn still kept in the period."""
    sql = "SELECT query, user_key FROM events WHERE kind = 'not_sure' AND query != '' AND day BETWEEN ? AND ?"
    rows = await db.fetch(sql, (since.isoformat(), until.isoformat()))
    return [(str(query), str(key)) for query, key in rows]


async def bounds(db: Storage) -> tuple[date, date] | None:
    """The first and last day with any data, raw or rolled up; None for an empty database."""
    sql = """SELECT MIN(d), MAX(d) FROM (
        SELECT MIN(day) AS d FROM events UNION ALL SELECT MAX(day) FROM events
        UNION ALL SELECT MIN(day) FROM daily UNION ALL SELECT MAX(day) FROM daily) AS days"""
    rows = list(await db.fetch(sql))
    first, last = rows[0] if rows else (None, None)
    if first is None or last is None:
        return None
    return date.fromisoformat(first), date.fromisoformat(last)


async def rolled_days(db: Storage, since: date, until: date) -> tuple[date, date] | None:
    """The first and last purged day in the period: only counts are left for those."""
    sql = "SELECT MIN(day), MAX(day) FROM daily WHERE events > 0 AND day BETWEEN ? AND ?"
    rows = list(await db.fetch(sql, (since.isoformat(), until.isoformat())))
    first, last = rows[0] if rows else (None, None)
    if first is None or last is None:
        return None
    return date.fromisoformat(first), date.fromisoformat(last)


async def purge(
    db: Storage, retention_days: int, *, today: date | None = None, now: float | None = None, pause: float = 0.05
) -> PurgeResult:
    """Roll events older than `retention_days` into daily counts, then delete them; also forget
    answered webhook messages past two days and the state of people silent for longer than
    the retention.

    One day per transaction, `pause` seconds apart, so that replies never wait long behind
    housekeeping: a day's events are either raw or rolled up, never both. The one exception
    carries no event: a language change whose earlier choice is purged is credited, as a
    change, to the later choice's day.
    """
    before = (today or local_today()) - timedelta(days=retention_days)
    at = time.time() if now is None else now
    found = await db.fetch("SELECT day, COUNT(*) FROM events WHERE day < ? GROUP BY day ORDER BY day", (before.isoformat(),))
    events = 0
    for day, count in found:
        await db.script(_roll_day(str(day)))
        events += int(count)
        await asyncio.sleep(pause)
    forgotten = await db.forget(now=at, retention_days=retention_days)
    if events or forgotten.messages or forgotten.states:
        await db.compact()  # the deleted rows' old pages leave the WAL too
    return PurgeResult(before, events, len(found), forgotten.messages, forgotten.states)


def _roll_day(day: str) -> list[tuple[str, tuple[str, ...]]]:
    """The statements that move one day's raw events into the rollups."""
    span = (day, day)
    after = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    return [
        (
            f"""INSERT INTO daily (day, channel, lang, kind, topic, events)
            SELECT * FROM ({_COUNTS}) AS t WHERE true
            ON CONFLICT (day, channel, lang, kind, topic) DO UPDATE SET events = daily.events + excluded.events""",
            span,
        ),
        (
            f"""INSERT INTO daily (day, channel, lang, kind, topic, events, choices)
            SELECT day, channel, lang, kind, topic, 0, n FROM ({_CHOICES}) AS t WHERE true
            ON CONFLICT (day, channel, lang, kind, topic) DO UPDATE SET choices = daily.choices + excluded.choices""",
            span,
        ),
        (
            f"""INSERT INTO daily (day, channel, lang, kind, topic, events, changes)
            SELECT day, channel, lang, kind, topic, 0, n FROM ({_CHANGES}) AS t WHERE true
            ON CONFLICT (day, channel, lang, kind, topic) DO UPDATE SET changes = daily.changes + excluded.changes""",
            span,
        ),
        (
            f"""INSERT INTO daily (day, channel, lang, kind, topic, events, changes)
            SELECT day, channel, lang, kind, topic, 0, n FROM ({_BOUNDARY_CHANGES}) AS t WHERE true
            ON CONFLICT (day, channel, lang, kind, topic) DO UPDATE SET changes = daily.changes + excluded.changes""",
            (after,),
        ),
        (
            f"""INSERT INTO daily_users (day, channel, lang, kind, users)
            SELECT * FROM ({_USERS}) AS t WHERE true
            ON CONFLICT (day, channel, lang, kind) DO UPDATE SET users = daily_users.users + excluded.users""",
            span,
        ),
        ("DELETE FROM events WHERE day = ?", (day,)),
    ]

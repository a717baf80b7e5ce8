"""What the report shows, read from the database: counts and scrubbed questions only.

`build_report` reads the raw events and the daily rollups of a period into `ReportData`,
with the not-sure questions grouped (`bot.report.similar`). `bot.report.tables` turns
that into tables; `bot.report.html` draws the page. Knows nothing of the queue that
writes the events, of channels, nor of how the report looks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from bot import rollup
from bot.clock import GUATEMALA
from bot.errors import PreguntaError
from bot.report.similar import QueryGroup, group_queries
from bot.storage import Storage

__all__ = [
    "CATEGORIES",
    "CHANNELS",
    "NAVIGATION",
    "NON_TEXT",
    "QUESTIONS",
    "Labels",
    "Progress",
    "ReportData",
    "build_report",
    "category",
    "days",
    "is_question",
]

Progress = Callable[[str], None]

# What a turn was. Questions are what people asked (written, or a close call answered with
# choices); navigation is everything else they did: menus, numbers, languages, greetings.
# Percentages of answered / with choices / not sure are of questions, never of messages.
QUESTIONS = {
    "answered": "Respondidas",
    "choices": "Con opciones",
    "not_sure": "Sin respuesta segura",
    "emergency": "Emergencias",
}
NAVIGATION = {
    "chosen": "Temas elegidos del menú",
    "menu": "Menú y números",
    "language": "Idioma",
    "intent": "Saludos, gracias y otras",
    "other": "Sin texto, vacíos y avisos",
}
CATEGORIES = {**QUESTIONS, **NAVIGATION}
CHANNELS = {"telegram": "Telegram", "whatsapp": "WhatsApp", "terminal": "Terminal (pruebas)"}
_LANGUAGES = {"es": "Español", "quc": "K'iche'", "mam": "Mam", "kek": "Q'eqchi'"}
NON_TEXT = {
    "voice": "Nota de voz", "audio": "Audio", "photo": "Foto", "image": "Imagen", "video": "Video",
    "video_note": "Video corto", "sticker": "Sticker", "document": "Documento", "location": "Ubicación",
    "contact": "Contacto", "animation": "Animación", "reaction": "Reacción", "unsupported": "Otro",
}


@dataclass(frozen=True)
class Labels:
    """Names to show instead of ids: Spanish topic titles and language names, from the content."""

    topics: Mapping[str, str] = field(default_factory=dict)
    languages: Mapping[str, str] = field(default_factory=dict)  # in menu order

    def language(self, code: str) -> str:
        return self.languages.get(code) or _LANGUAGES.get(code, code)

    def topic(self, topic_id: str) -> str:
        return self.topics.get(topic_id, topic_id)


@dataclass(frozen=True)
class ReportData:
    since: date | None  # None: the database holds nothing at all
    until: date | None
    generated: datetime
    retention_days: int
    k: int
    counts: tuple[rollup.Count, ...]
    users: tuple[rollup.Users, ...]
    groups: tuple[QueryGroup, ...]  # not-sure groups written by ≥ k users
    hidden_groups: int  # groups written by fewer than k users, not shown
    not_sure_kept: int  # not-sure questions whose (scrubbed) text is still kept
    rolled: tuple[date, date] | None  # purged days in the period: counts only, no questions
    labels: Labels = Labels()
    # alerts: (day, channel, joined, stopped, blocked) of every day; subscriptions now per
    # (channel, lang); (alert, channel, lang, status, people) of every delivery
    subscription_days: tuple[tuple[str, str, int, int, int], ...] = ()
    subscribers_now: tuple[tuple[str, str, int], ...] = ()
    deliveries: tuple[tuple[str, str, str, str, int], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.counts


def category(kind: str, topic: str) -> str:
    """The key in CATEGORIES of a kind and topic as stored."""
    if kind in ("topic", "choices", "not_sure", "emergency"):
        return "answered" if kind == "topic" else kind
    if kind == "number" and topic not in ("", "menu"):
        return "chosen"
    if kind in ("menu", "number") or (kind == "intent" and topic == "menu"):
        return "menu"
    if kind in ("language", "intent"):
        return kind
    return "other"


def is_question(key: str) -> bool:
    """A category of questions (QUESTIONS), not of navigation."""
    return key in QUESTIONS


def days(since: date, until: date) -> list[str]:
    """Every day of the period, as YYYY-MM-DD."""
    return [(since + timedelta(days=i)).isoformat() for i in range((until - since).days + 1)]


async def build_report(
    db: Storage | None,
    *,
    since: date | None = None,
    until: date | None = None,
    retention_days: int,
    k: int,
    labels: Labels = Labels(),
    progress: Progress | None = None,
    now: datetime | None = None,
) -> ReportData:
    """Everything the report shows for the period (default: all the data there is); `db` None is an empty database."""
    say = progress or (lambda message: None)
    generated = now or datetime.now(GUATEMALA)
    known = await rollup.bounds(db) if db is not None else None
    if since is None:
        since = known[0] if known else None
    if until is None:
        until = known[1] if known else None
    if since is not None and until is not None and since > until:
        raise PreguntaError(f"--since {since} is after --until {until}")
    alerts = await _alerts(db) if db is not None else {}
    if db is None or since is None or until is None or known is None:
        return ReportData(since or until, until or since, generated, retention_days, k, (), (), (), 0, 0, None, labels, **alerts)
    say("leyendo conteos por día…")
    counts = await rollup.counts(db, since, until)
    say("contando personas distintas por día…")
    users = await rollup.users(db, since, until)
    say("leyendo preguntas sin respuesta segura…")
    queries = await rollup.not_sure_queries(db, since, until)
    rolled = await rollup.rolled_days(db, since, until)

    def grouping(done: int, total: int) -> None:
        say(f"agrupando preguntas parecidas: {done:,} de {total:,}")

    say(f"agrupando {len(queries):,} preguntas sin respuesta segura…")
    groups, hidden = group_queries(queries, k=k, progress=grouping)
    return ReportData(
        since, until, generated, retention_days, k, tuple(counts), tuple(users), tuple(groups), hidden,
        len(queries), rolled, labels, **alerts,
    )


async def _alerts(db: Storage) -> dict[str, Any]:
    """Subscribers over time and now, and what each alert did: counts only, no key needed."""
    days_ = await db.fetch("SELECT day, channel, joined, stopped, blocked FROM subscription_days ORDER BY day, channel")
    now = await db.fetch("SELECT channel, lang, COUNT(*) FROM subscriptions GROUP BY channel, lang ORDER BY channel, lang")
    sent = await db.fetch("SELECT alert, channel, lang, status, COUNT(*) FROM alert_deliveries GROUP BY alert, channel, lang, status")
    return {
        "subscription_days": tuple((str(d), str(c), int(j), int(s), int(b)) for d, c, j, s, b in days_),
        "subscribers_now": tuple((str(c), str(lang), int(n)) for c, lang, n in now),
        "deliveries": tuple((str(a), str(c), str(lang), "unknown" if st == "sending" else str(st), int(n)) for a, c, lang, st, n in sent),
    }



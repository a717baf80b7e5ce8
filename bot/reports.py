"""The report for the communications unit: what people asked, in which language and channel,
and what the bot could not answer, from counts and scrubbed questions only.

`build_report` reads the raw events and the daily rollups of a period into `ReportData`;
`tables` turns that into the tables which the HTML page (`bot.report_html`) and the CSV
files both show; `write_report` does all of it for `pregunta report`. Knows nothing of
the queue that writes the events, nor of channels.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import aiosqlite

from bot import rollup
from bot.clock import GUATEMALA
from bot.db import open_db
from bot.errors import PreguntaError
from bot.similar import QueryGroup, group_queries

__all__ = [
    "CATEGORIES",
    "Labels",
    "ReportData",
    "Table",
    "build_report",
    "category",
    "days",
    "tables",
    "write_csv",
    "write_report",
]

Progress = Callable[[str], None]
Cell = str | int | float
Row = tuple[Cell, ...]

# What a turn was, for "answered / not sure / menu share over time".
CATEGORIES = {
    "answered": "Respondidas",
    "not_sure": "Sin respuesta segura",
    "menu": "Menú",
    "other": "Otros",
}
_CHANNELS = {"telegram": "Telegram", "whatsapp": "WhatsApp", "terminal": "Terminal (pruebas)"}
_LANGUAGES = {"es": "Español", "quc": "K'iche'", "mam": "Mam", "kek": "Q'eqchi'"}
_NON_TEXT = {
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

    @property
    def empty(self) -> bool:
        return not self.counts


@dataclass(frozen=True)
class Table:
    """One table of the report: a section of the HTML page and one CSV file (`name`.csv)."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    note: str = ""


def category(kind: str, topic: str) -> str:
    """answered, not_sure, menu or other, for a kind and topic as stored."""
    if kind == "topic" or (kind == "number" and topic not in ("", "menu")):
        return "answered"
    if kind == "not_sure":
        return "not_sure"
    if kind in ("menu", "number") or (kind == "intent" and topic == "menu"):
        return "menu"
    return "other"


def days(since: date, until: date) -> list[str]:
    """Every day of the period, as YYYY-MM-DD."""
    return [(since + timedelta(days=i)).isoformat() for i in range((until - since).days + 1)]


async def build_report(
    db: aiosqlite.Connection | None,
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
    if db is None or since is None or until is None or known is None:
        return ReportData(since or until, until or since, generated, retention_days, k, (), (), (), 0, 0, None, labels)
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
        len(queries), rolled, labels,
    )


def tables(data: ReportData) -> list[Table]:
    """The report's tables, in the order the page shows them."""
    return [
        _summary(data),
        _per_day_users(data),
        _per_day_messages(data),
        _per_day_categories(data),
        _topics(data),
        _not_sure(data),
        _languages(data),
        _channels(data),
        _non_text(data),
    ]


def write_csv(found: list[Table], folder: Path) -> list[Path]:
    """One UTF-8 CSV per table (with a BOM, so spreadsheet programs read the accents)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in found:
        path = folder / f"{table.name}.csv"
        with path.open("w", newline="", encoding="utf-8-sig") as handle:
            out = csv.writer(handle)
            out.writerow(table.columns)
            out.writerows(table.rows)
        written.append(path)
    return written


async def write_report(
    db_path: Path,
    out: Path,
    *,
    csv_dir: Path | None = None,
    since: date | None = None,
    until: date | None = None,
    retention_days: int,
    k: int,
    labels: Labels = Labels(),
    progress: Progress | None = None,
) -> ReportData:
    """Build the report from the database at `db_path` (a missing file is an empty database) and write it."""
    from bot.report_html import render

    db = await open_db(db_path) if db_path.exists() else None
    try:
        data = await build_report(
            db, since=since, until=until, retention_days=retention_days, k=k, labels=labels, progress=progress
        )
    finally:
        if db is not None:
            await db.close()
    found = tables(data)
    if progress:
        progress("escribiendo el informe…")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data, found), encoding="utf-8")
    if csv_dir is not None:
        write_csv(found, csv_dir)
    return data


# -- the tables ---------------------------------------------------------------------------


def _languages_in(data: ReportData) -> list[str]:
    present = {c.lang for c in data.counts}
    ordered = [code for code in data.labels.languages if code in present]
    return ordered + sorted(present - set(ordered))


def _channels_in(data: ReportData) -> list[str]:
    present = {c.channel for c in data.counts}
    ordered = [name for name in _CHANNELS if name in present]
    return ordered + sorted(present - set(ordered))


def _per_day(data: ReportData) -> list[str]:
    return days(data.since, data.until) if data.since and data.until else []


def _conversations(data: ReportData) -> int:
    return sum(u.users for u in data.users if u.lang == rollup.ALL and u.kind == rollup.ALL)


def _summary(data: ReportData) -> Table:
    by_category: dict[str, int] = defaultdict(int)
    for c in data.counts:
        by_category[category(c.kind, c.topic)] += c.events
    messages = sum(by_category.values())
    choices = sum(c.events for c in data.counts if c.kind == "language" and c.topic)
    changes = sum(c.changes for c in data.counts)
    non_text = sum(c.events for c in data.counts if c.kind == "non_text")
    limited_users = sum(u.users for u in data.users if u.kind == "rate_limited")
    notices = sum(c.events for c in data.counts if c.kind == "rate_limited")
    rows: list[Row] = [
        ("Desde", data.since.isoformat() if data.since else ""),
        ("Hasta", data.until.isoformat() if data.until else ""),
        ("Días", len(_per_day(data))),
        ("Mensajes", messages),
        ("Conversaciones (personas distintas por día, sumadas)", _conversations(data)),
    ]
    rows += [(title, by_category[key]) for key, title in CATEGORIES.items()]
    rows += [
        ("Elecciones de idioma", choices),
        ("Cambios de idioma", changes),
        ("Mensajes que no eran texto", non_text),
        ("Personas frenadas por mandar demasiados mensajes (por día)", limited_users),
        ("Avisos de «más despacio» enviados", notices),
        ("Preguntas sin respuesta segura con texto guardado", data.not_sure_kept),
        (f"Grupos de preguntas mostrados (escritos por {data.k} personas o más)", len(data.groups)),
        (f"Grupos no mostrados (menos de {data.k} personas)", data.hidden_groups),
        ("Retención de eventos detallados (días)", data.retention_days),
        ("Mínimo de personas para mostrar una pregunta (k)", data.k),
    ]
    return Table("resumen", "Resumen", ("indicador", "valor"), tuple(rows))


def _per_day_users(data: ReportData) -> Table:
    channels, languages = _channels_in(data), _languages_in(data)
    cells: dict[tuple[str, str], int] = defaultdict(int)
    for u in data.users:
        if u.kind != rollup.ALL:
            continue
        if u.lang == rollup.ALL:
            cells[(u.day, "total")] += u.users
            cells[(u.day, "c:" + u.channel)] += u.users
        else:
            cells[(u.day, "l:" + u.lang)] += u.users
    keys = ["total"] + ["c:" + c for c in channels] + ["l:" + lang for lang in languages]
    rows: tuple[Row, ...] = tuple((day, *(cells[(day, key)] for key in keys)) for day in _per_day(data))
    columns = ("día", "total", *(_channel_name(c) for c in channels), *(data.labels.language(lang) for lang in languages))
    note = "Personas distintas que escribieron ese día. Quien escribe por dos canales cuenta en cada uno."
    return Table("conversaciones_por_dia", "Conversaciones por día", columns, rows, note)


def _per_day_messages(data: ReportData) -> Table:
    channels, languages = _channels_in(data), _languages_in(data)
    cells: dict[tuple[str, str], int] = defaultdict(int)
    for c in data.counts:
        cells[(c.day, "total")] += c.events
        cells[(c.day, "c:" + c.channel)] += c.events
        cells[(c.day, "l:" + c.lang)] += c.events
    keys = ["total"] + ["c:" + c for c in channels] + ["l:" + lang for lang in languages]
    rows: tuple[Row, ...] = tuple((day, *(cells[(day, key)] for key in keys)) for day in _per_day(data))
    columns = ("día", "total", *(_channel_name(c) for c in channels), *(data.labels.language(lang) for lang in languages))
    return Table("mensajes_por_dia", "Mensajes por día", columns, rows, "Mensajes que el bot respondió, por canal y por idioma.")


def _per_day_categories(data: ReportData) -> Table:
    cells: dict[tuple[str, str], int] = defaultdict(int)
    for c in data.counts:
        cells[(c.day, category(c.kind, c.topic))] += c.events
    rows: list[Row] = []
    for day in _per_day(data):
        values = [cells[(day, key)] for key in CATEGORIES]
        total = sum(values)
        shares = [round(100 * v / total, 1) if total else 0.0 for v in values[:3]]
        rows.append((day, total, *values, *shares))
    columns = (
        "día", "mensajes", *CATEGORIES.values(),
        "% respondidas", "% sin respuesta segura", "% menú",
    )
    note = (
        "Respondidas: el bot encontró el tema (por lo escrito o elegido del menú). Sin respuesta segura: "
        "ofreció opciones y ayuda. Menú: la persona pidió o recibió el menú. Otros: saludos, idioma, "
        "mensajes sin texto, avisos."
    )
    return Table("respuestas_por_dia", "Respondidas, sin respuesta segura y menú", columns, tuple(rows), note)


def _topics(data: ReportData) -> Table:
    written: dict[tuple[str, str], int] = defaultdict(int)
    chosen: dict[tuple[str, str], int] = defaultdict(int)
    for c in data.counts:
        if category(c.kind, c.topic) != "answered":
            continue
        (written if c.kind == "topic" else chosen)[(c.lang, c.topic)] += c.events
    order = {lang: i for i, lang in enumerate(_languages_in(data))}
    keys = sorted(set(written) | set(chosen), key=lambda key: (order.get(key[0], 99), -(written[key] + chosen[key]), key[1]))
    rows = tuple(
        (data.labels.language(lang), topic, data.labels.topic(topic), written[(lang, topic)], chosen[(lang, topic)],
         written[(lang, topic)] + chosen[(lang, topic)])
        for lang, topic in keys
    )
    columns = ("idioma", "tema", "título", "preguntas escritas", "elegidas del menú", "total")
    return Table("temas_por_idioma", "Temas más consultados, por idioma", columns, rows)


def _not_sure(data: ReportData) -> Table:
    rows = tuple((g.text, g.users, g.messages, g.variants) for g in data.groups)
    note = (
        f"Preguntas que el bot no supo responder, agrupadas cuando dicen casi lo mismo. Solo se muestran "
        f"las escritas por al menos {data.k} personas distintas; {data.hidden_groups:,} grupos más pequeños "
        "no se muestran. Los datos personales ya fueron reemplazados ([teléfono], [nombre]…)."
    )
    columns = ("pregunta (sin tildes ni mayúsculas)", "personas", "mensajes", "variantes")
    return Table("sin_respuesta", "Preguntas sin respuesta segura más frecuentes", columns, rows, note)


def _languages(data: ReportData) -> Table:
    messages: dict[str, int] = defaultdict(int)
    choices: dict[str, int] = defaultdict(int)
    changes: dict[str, int] = defaultdict(int)
    for c in data.counts:
        messages[c.lang] += c.events
        if c.kind == "language" and c.topic:
            choices[c.topic] += c.events
            changes[c.topic] += c.changes
    people: dict[str, int] = defaultdict(int)
    for u in data.users:
        if u.kind == rollup.ALL and u.lang != rollup.ALL:
            people[u.lang] += u.users
    languages = _languages_in(data) + sorted(set(choices) - set(_languages_in(data)))
    rows = tuple(
        (data.labels.language(lang), lang, messages[lang], people[lang], choices[lang], changes[lang]) for lang in languages
    )
    columns = ("idioma", "código", "mensajes", "conversaciones", "elecciones", "cambios hacia este idioma")
    note = "Un cambio es una elección de idioma de alguien que antes, ese mismo mes, había elegido otro."
    return Table("idiomas", "Idiomas elegidos y cambios", columns, rows, note)


def _channels(data: ReportData) -> Table:
    messages: dict[str, int] = defaultdict(int)
    answered: dict[str, int] = defaultdict(int)
    notices: dict[str, int] = defaultdict(int)
    for c in data.counts:
        messages[c.channel] += c.events
        if category(c.kind, c.topic) == "answered":
            answered[c.channel] += c.events
        if c.kind == "rate_limited":
            notices[c.channel] += c.events
    people: dict[str, int] = defaultdict(int)
    limited: dict[str, int] = defaultdict(int)
    for u in data.users:
        if u.lang == rollup.ALL and u.kind == rollup.ALL:
            people[u.channel] += u.users
        elif u.kind == "rate_limited":
            limited[u.channel] += u.users
    rows = tuple(
        (_channel_name(ch), messages[ch], people[ch], answered[ch], limited[ch], notices[ch]) for ch in _channels_in(data)
    )
    columns = ("canal", "mensajes", "conversaciones", "respondidas", "personas frenadas", "avisos «más despacio»")
    note = "Personas frenadas: mandaron muchos mensajes seguidos y recibieron un aviso (contadas una vez por día)."
    return Table("canales", "Canales", columns, rows, note)


def _non_text(data: ReportData) -> Table:
    found: dict[str, int] = defaultdict(int)
    for c in data.counts:
        if c.kind == "non_text":
            found[c.topic] += c.events
    rows = tuple((_NON_TEXT.get(t, t or "Otro"), t, n) for t, n in sorted(found.items(), key=lambda item: (-item[1], item[0])))
    return Table("no_texto", "Mensajes que no eran texto", ("tipo", "código", "mensajes"), rows)


def _channel_name(channel: str) -> str:
    return _CHANNELS.get(channel, channel)

"""From dialogue turns to the report: drive conversations, write the report, read its numbers back.

The expected numbers are counted from the replies the conversations returned, never
from the database, so the log, the rollups and the report are checked together.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot.clock import GUATEMALA
from bot.conversation import Conversations, FloodGuard, MemoryStates, Turn
from bot.errors import PreguntaError
from bot.matcher import Matcher
from bot.replies import Incoming, Kind, Reply
from bot.report.data import QUESTIONS, Labels, build_report, category
from bot.report.tables import tables
from bot.report.write import write_report
from bot.rollup import purge
from bot.storage import open_storage as open_db
from bot.usage import UsageLog
from tests.conftest import ROOT

K = 5


class Page(HTMLParser):
    """Tables by id (rows of cell texts), section ids, and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.sections: list[str] = []
        self.tags: Counter[str] = Counter()
        self.svgs = 0
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        found = dict(attrs)
        if tag == "table":
            self._table = found.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "section":
            self.sections.append(found.get("id") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def number(text: str) -> int:
    return int(text.replace(",", ""))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
async def log(db_path: Path) -> AsyncIterator[UsageLog]:
    usage = UsageLog(db_path)
    await usage.start()
    try:
        yield usage
    finally:
        await usage.close()


class Driven:
    """Every (channel, user, reply) of a scripted day of conversations."""

    def __init__(self, conversations: Conversations) -> None:
        self.conversations = conversations
        self.turns: list[tuple[str, str, Reply]] = []

    async def say(self, channel: str, user: str, *messages: str | Incoming) -> None:
        for message in messages:
            incoming = message if isinstance(message, Incoming) else Incoming(text=message)
            reply = await self.conversations.handle(channel, user, incoming)
            if reply is not None:
                self.turns.append((channel, user, reply))

    def kinds(self) -> Counter[Kind]:
        return Counter(reply.kind for _, _, reply in self.turns)


async def drive(matcher: Matcher, log: UsageLog) -> Driven:
    conversations = Conversations(matcher, MemoryStates(), pseudonym_key=b"test", usage=log, flood=FloodGuard(8, 600))
    driven = Driven(conversations)
    for i in range(6):  # six people on WhatsApp ask for something the content lacks
        await driven.say("whatsapp", f"5025550000{i}", "hola", "1", "se me vencio el pasaporte", "receta de pepián")
    await driven.say("telegram", "111", "hola", "2", "pasaporte", Incoming(payload="lang:es"), "como pido asilo")
    await driven.say(
        "telegram", "222", "hola", "1", Incoming(non_text="voice"), Incoming(non_text="photo"),
        "cuanto cuesta un viaje a la luna", "0",
    )
    await driven.say("whatsapp", "50255599999", "hola", "1", *["menu"] * 10)  # floods: 8, a notice, then silence
    return driven


async def test_report_numbers_match_the_turns_driven(fixture_matcher: Matcher, log: UsageLog, db_path: Path, tmp_path: Path) -> None:
    driven = await drive(fixture_matcher, log)
    await log.close()
    kinds = driven.kinds()
    assert kinds[Kind.NOT_SURE] == 7 and kinds[Kind.RATE_LIMITED] == 1 and kinds[Kind.NON_TEXT] == 2  # the script did what it meant

    out, folder = tmp_path / "report.html", tmp_path / "csv"
    labels = Labels(topics={"pasaporte-vigencia": "Pasaporte vencido"}, languages={"es": "Español", "quc": "K'iche'"})
    data = await write_report(db_path, out, csv_dir=folder, retention_days=180, k=K, labels=labels)
    today = datetime.now(GUATEMALA).date().isoformat()
    assert (data.since, data.until) == (date.fromisoformat(today), date.fromisoformat(today))

    # expected, from the replies
    messages = len(driven.turns)
    people = len({(channel, user) for channel, user, _ in driven.turns})
    per_channel = Counter(channel for channel, _, _ in driven.turns)
    per_lang = Counter(reply.lang for _, _, reply in driven.turns)
    per_category = Counter(category(reply.kind.value, reply.topic or "") for _, _, reply in driven.turns)
    topics = Counter(
        reply.topic for _, _, reply in driven.turns if category(reply.kind.value, reply.topic or "") in ("answered", "chosen")
    )
    questions = sum(per_category[key] for key in QUESTIONS)

    summary = {row["indicador"]: row["valor"] for row in read_csv(folder / "resumen.csv")}
    assert int(summary["Mensajes"]) == messages
    assert int(summary["Conversaciones (personas distintas por día, sumadas)"]) == people == 9
    assert int(summary["Preguntas"]) == questions == per_category["answered"] + 7
    assert int(summary["Respondidas"]) == per_category["answered"]
    assert int(summary["Sin respuesta segura"]) == per_category["not_sure"] == 7
    assert float(summary["% sin respuesta segura (de las preguntas)"]) == round(100 * 7 / questions, 1)
    assert int(summary["Menú y números"]) == per_category["menu"]
    assert int(summary["Temas elegidos del menú"]) == per_category["chosen"]
    assert int(summary["Navegación (menú, números, idioma, saludos, sin texto)"]) == messages - questions
    assert int(summary["Mensajes que no eran texto"]) == 2
    assert int(summary["Personas frenadas por mandar demasiados mensajes (por día)"]) == 1
    assert int(summary["Elecciones de idioma"]) == 10  # nine people chose, one of them twice
    assert int(summary["Cambios de idioma"]) == 1  # K'iche' → Spanish
    assert int(summary[f"Grupos no mostrados (menos de {K} personas)"]) == 1

    (day,) = read_csv(folder / "mensajes_por_dia.csv")
    assert day["día"] == today and int(day["total"]) == messages
    assert int(day["WhatsApp"]) == per_channel["whatsapp"] and int(day["Telegram"]) == per_channel["telegram"]
    assert int(day["Español"]) == per_lang["es"] and int(day["K'iche'"]) == per_lang["quc"]
    (conv,) = read_csv(folder / "conversaciones_por_dia.csv")
    assert (int(conv["total"]), int(conv["WhatsApp"]), int(conv["Telegram"])) == (9, 7, 2)
    by_lang = Counter(lang for lang, _ in {(reply.lang, (channel, user)) for channel, user, reply in driven.turns})
    assert int(conv["K'iche'"]) == by_lang["quc"] == 1 and int(conv["Español"]) == by_lang["es"] == 9  # 111 counts in both

    asked = {row["tema"]: int(row["total"]) for row in read_csv(folder / "temas_por_idioma.csv")}
    assert asked == dict(topics)
    titles = {row["tema"]: row["título"] for row in read_csv(folder / "temas_por_idioma.csv")}
    assert titles["pasaporte-vigencia"] == "Pasaporte vencido"

    (group,) = read_csv(folder / "sin_respuesta.csv")
    assert group["pregunta (sin tildes ni mayúsculas)"] == "receta de pepian"
    assert (int(group["personas"]), int(group["mensajes"])) == (6, 6)

    languages = {row["código"]: row for row in read_csv(folder / "idiomas.csv")}
    assert int(languages["quc"]["elecciones"]) == 1 and int(languages["es"]["cambios hacia este idioma"]) == 1
    channels = {row["canal"]: row for row in read_csv(folder / "canales.csv")}
    assert int(channels["WhatsApp"]["personas frenadas"]) == 1 and int(channels["Telegram"]["personas frenadas"]) == 0
    non_text = {row["código"]: int(row["mensajes"]) for row in read_csv(folder / "no_texto.csv")}
    assert non_text == {"voice": 1, "photo": 1}
    per_day = read_csv(folder / "respuestas_por_dia.csv")[0]
    assert float(per_day["% sin respuesta segura"]) == round(100 * 7 / questions, 1)  # of questions, not messages
    assert int(per_day["preguntas"]) + int(per_day["navegación"]) == messages

    # the HTML shows the same tables
    html = out.read_text(encoding="utf-8")
    page = parse(html)
    resumen = {row[0]: row[1] for row in page.tables["tabla-resumen"][1:]}
    assert number(resumen["Mensajes"]) == messages
    assert number(resumen["Conversaciones (personas distintas por día, sumadas)"]) == 9
    assert page.tables["tabla-sin_respuesta"][1][:3] == ["receta de pepian", "6", "6"]
    assert page.tables["tabla-temas_por_idioma"][1][:3] == ["Español", "pasaporte-vigencia", "Pasaporte vencido"]
    assert {"resumen", "como-leer", "actividad", "respuestas", "temas", "sin-respuesta", "idiomas", "canales", "no-texto"} <= set(page.sections)
    assert "Cómo leer este informe" in html and "180 días" in html and f"{K} personas distintas" in html


async def test_report_is_self_contained(fixture_matcher: Matcher, log: UsageLog, db_path: Path, tmp_path: Path) -> None:
    await drive(fixture_matcher, log)
    await log.close()
    out = tmp_path / "report.html"
    await write_report(db_path, out, retention_days=180, k=K)
    html = out.read_text(encoding="utf-8")
    page = parse(html)
    assert html.startswith("<!doctype html>") and '<html lang="es">' in html
    assert page.tags["script"] == 0 and page.tags["link"] == 0 and page.tags["img"] == 0 and page.tags["iframe"] == 0
    assert "http://" not in html and "https://" not in html and "@import" not in html and "url(" not in html
    assert page.tags["svg"] >= 2  # one day: the per-day charts are tables (see below), topics and languages are charts
    for start in [i for i in range(len(html)) if html.startswith("<svg", i)]:  # each chart is well-formed XML
        ElementTree.fromstring(html[start : html.index("</svg>", start) + 6])
    assert "5025550000" not in html and "50255599999" not in html


async def test_k_threshold_hides_groups_of_fewer_people(db_path: Path, log: UsageLog) -> None:
    def ask(user: str, text: str) -> None:
        log.record(Turn(1_790_000_000.0, "whatsapp", "es", Kind.NOT_SURE, None, 20.0, 1.0, user, text))

    for i in range(4):
        ask(f"four-{i}", "donde tramito la visa de canada")
    for i in range(5):
        ask(f"five-{i}", "Cuánto cuesta el permiso de trabajo?" if i % 2 else "cuanto cuesta el permiso de trabajo")
    for _ in range(9):
        ask("one-person", "necesito ayuda con mi caso de asilo")  # many messages, one person
    await log.close()
    db = await open_db(db_path)
    try:
        shown = await build_report(db, retention_days=180, k=5)
        everything = await build_report(db, retention_days=180, k=1)
    finally:
        await db.close()
    assert [(g.text, g.users, g.messages, g.variants) for g in shown.groups] == [
        ("cuanto cuesta el permiso de trabajo", 5, 5, 1)
    ]
    assert shown.hidden_groups == 2
    assert {g.text for g in everything.groups} == {
        "cuanto cuesta el permiso de trabajo", "donde tramito la visa de canada", "necesito ayuda con mi caso de asilo",
    }


async def test_purged_days_still_count(db_path: Path, log: UsageLog) -> None:
    """A report over a period half rolled up says the same as before the purge (but for the questions)."""
    base = datetime.now(GUATEMALA).replace(hour=12, minute=0, second=0, microsecond=0)
    for day in range(10):
        at = (base - timedelta(days=day)).timestamp()
        for user in range(day + 1):
            key = f"user-{user}"
            log.record(Turn(at, "whatsapp", "es", Kind.TOPIC, "pasaporte-vigencia", 90.0, 1.0, key, None))
            log.record(Turn(at + 1, "telegram", "quc", Kind.MENU, "menu", None, 1.0, key, None))
            log.record(Turn(at + 2, "whatsapp", "es", Kind.NOT_SURE, None, 20.0, 1.0, key, "receta de pepian"))
        log.record(Turn(at + 3, "telegram", "es", Kind.LANGUAGE, "quc", None, 1.0, "switcher", None))
        log.record(Turn(at + 4, "telegram", "quc", Kind.LANGUAGE, "es", None, 1.0, "switcher", None))
        log.record(Turn(at + 5, "telegram", "es", Kind.RATE_LIMITED, None, None, 1.0, "flooder", None))
    await log.close()
    db = await open_db(db_path)
    try:
        before = await build_report(db, retention_days=180, k=1)
        result = await purge(db, 4)
        after = await build_report(db, retention_days=4, k=1)
        assert list(await db.fetch("SELECT COUNT(DISTINCT day) FROM events")) == [(5,)]  # today and 4 before
    finally:
        await db.close()
    assert result.days == 5 and result.events == sum(3 * (d + 1) + 3 for d in range(5, 10))
    assert after.rolled is not None and (after.since, after.until) == (before.since, before.until)
    skip = {"resumen", "sin_respuesta"}
    assert [t for t in tables(after) if t.name not in skip] == [t for t in tables(before) if t.name not in skip]
    summary_before = {row[0]: row[1] for row in tables(before)[0].rows}
    summary_after = {row[0]: row[1] for row in tables(after)[0].rows}
    for key in ("Mensajes", "Conversaciones (personas distintas por día, sumadas)", "Cambios de idioma",
                "Personas frenadas por mandar demasiados mensajes (por día)"):
        assert summary_after[key] == summary_before[key]
    assert summary_before["Cambios de idioma"] == 19  # the switcher changes twice a day, but not on the first choice
    assert after.not_sure_kept == sum(d + 1 for d in range(5)) < before.not_sure_kept


async def test_empty_database_says_so(db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "vacio.html"
    with pytest.raises(PreguntaError, match="no existe"):
        await write_report(db_path, out, csv_dir=tmp_path / "csv", retention_days=180, k=K)
    assert not db_path.exists() and not out.exists()  # a report never creates the database
    db = await open_db(db_path)  # created, but no event yet
    await db.close()
    data = await write_report(db_path, out, retention_days=180, k=K)
    html = out.read_text(encoding="utf-8")
    assert data.empty and "No hay datos" in html and 'id="vacio"' in html and "Cómo leer este informe" in html
    data = await write_report(db_path, out, since=date(2026, 1, 1), until=date(2026, 1, 31), retention_days=180, k=K)
    assert data.empty and "No hay datos" in out.read_text(encoding="utf-8")
    assert "1 de enero de 2026" in out.read_text(encoding="utf-8")


async def test_long_periods_are_charted_by_week(db_path: Path, log: UsageLog, tmp_path: Path) -> None:
    for day in range(0, 120, 3):
        log.record(Turn(1_780_000_000.0 + day * 86400, "whatsapp", "es", Kind.TOPIC, "x", 90.0, 1.0, "u", None))
    await log.close()
    out = tmp_path / "r.html"
    data = await write_report(db_path, out, retention_days=180, k=K)
    html = out.read_text(encoding="utf-8")
    assert "Conversaciones por semana" in html
    assert data.since is not None and data.until is not None
    assert len(tables(data)[1].rows) == (data.until - data.since).days + 1  # the tables stay daily


# -- the command ----------------------------------------------------------------------------


def run(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PREGUNTA_DB": str(db)},
    )


async def test_report_and_purge_commands(db_path: Path, log: UsageLog, tmp_path: Path) -> None:
    old = datetime.now(GUATEMALA) - timedelta(days=30)
    for user in range(3):
        log.record(Turn(old.timestamp(), "whatsapp", "es", Kind.TOPIC, "pasaporte-vigencia", 90.0, 1.0, f"u{user}", None))
        log.record(Turn(datetime.now(GUATEMALA).timestamp(), "telegram", "es", Kind.MENU, "menu", None, 1.0, f"u{user}", None))
    await log.close()
    out, folder = tmp_path / "informe.html", tmp_path / "tablas"

    done = run("report", "--out", str(out), "--csv", str(folder), db=db_path)
    assert done.returncode == 0, done.stderr
    assert f"informe: {out}" in done.stdout and "leyendo conteos" in done.stderr
    assert {p.name for p in folder.iterdir()} >= {"resumen.csv", "mensajes_por_dia.csv", "sin_respuesta.csv"}
    first = {row["indicador"]: row["valor"] for row in read_csv(folder / "resumen.csv")}

    done = run("purge", "--days", "7", db=db_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("3 eventos de 1 días anteriores al")

    done = run("report", "--out", str(out), "--csv", str(folder), db=db_path)
    assert done.returncode == 0, done.stderr
    again = {row["indicador"]: row["valor"] for row in read_csv(folder / "resumen.csv")}
    assert again["Mensajes"] == first["Mensajes"] == "6"

    since = (datetime.now(GUATEMALA).date() - timedelta(days=2)).isoformat()
    done = run("report", "--since", since, "--out", str(out), "--csv", str(folder), db=db_path)
    assert done.returncode == 0, done.stderr
    assert {row["indicador"]: row["valor"] for row in read_csv(folder / "resumen.csv")}["Mensajes"] == "3"


def test_report_command_on_a_missing_database(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    done = run("report", "--out", str(out), db=tmp_path / "nada" / "pregunta.sqlite3")
    assert done.returncode == 1, done.stderr
    assert "pregunta: la base de datos" in done.stderr and "no existe" in done.stderr
    assert "Traceback" not in done.stderr and "no hay mensajes" not in done.stderr
    assert not out.exists() and not (tmp_path / "nada").exists()
    done = run("purge", db=tmp_path / "nada" / "pregunta.sqlite3")
    assert done.returncode == 0 and "nada que purgar" in done.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["report", "--since", "2026-13-01"], 2, "not a date"),
        (["report", "--k", "0"], 2, "not a positive whole number"),
        (["purge", "--days", "-3"], 2, "not a positive whole number"),
        (["report", "--since", "2026-02-01", "--until", "2026-01-01"], 1, "pregunta: --since 2026-02-01 is after --until 2026-01-01"),
    ],
    ids=["bad-date", "k-zero", "negative-days", "since-after-until"],
)
def test_command_errors_are_one_line(args: list[str], code: int, message: str, db_path: Path, tmp_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    sqlite_file = db_path
    import sqlite3

    sqlite3.connect(sqlite_file).close()
    done = run(*args, "--out", str(tmp_path / "r.html"), db=db_path) if args[0] == "report" else run(*args, db=db_path)
    assert done.returncode == code
    assert message in done.stderr and "Traceback" not in done.stderr


async def test_a_k5_report_never_shows_a_word_only_one_person_wrote(
    fixture_matcher: Matcher, log: UsageLog, db_path: Path, tmp_path: Path
) -> None:
    """Issue 15.5, end to end: real turns → usage log → report; no single person's token in the page or the CSV."""
    from tests.test_scrub import PROBES

    conversations = Conversations(fixture_matcher, MemoryStates(), pseudonym_key=b"k" * 32, usage=log, flood=FloodGuard(100, 600))
    driven = Driven(conversations)
    names = [("yeferson", "tzoc"), ("brayan", "batz"), ("yoselin", "ical"), ("wilmer", "quej"), ("dilia", "tiul"), ("ervin", "caal")]
    said: list[tuple[str, str]] = []  # (user, message)
    for i, (name, surname) in enumerate(names):
        user = f"5025551{i:04d}"
        messages = [
            f"me llamo {name} {surname} y quiero la receta de pepian",
            f"mi primo {surname} quiere la receta de pepian",  # a surname no phrase announces
            *[probe[1] for probe in PROBES[i::len(names)]],  # every probe, each by one person
        ]
        await driven.say("whatsapp", user, "hola", "1", *messages)
        said += [(user, message) for message in messages]
    await log.close()
    assert driven.kinds()[Kind.NOT_SURE] >= 2 * len(names)  # the script reached the not-sure path

    out, folder = tmp_path / "report.html", tmp_path / "csv"
    data = await write_report(db_path, out, csv_dir=folder, retention_days=180, k=K)
    assert len(data.groups) >= 2  # the two shared questions are shown

    writers: dict[str, set[str]] = {}
    for user, message in said:
        for word in re.findall(r"[\w@.'-]+", message.lower()):
            writers.setdefault(word.strip(".'-"), set()).add(user)
    lonely = {word for word, users in writers.items() if len(users) == 1 and len(word) > 2}
    shown = [row["pregunta (sin tildes ni mayúsculas)"] for row in read_csv(folder / "sin_respuesta.csv")]
    html_rows = [row[0] for row in parse(out.read_text(encoding="utf-8")).tables["tabla-sin_respuesta"][1:]]
    assert shown == html_rows and shown
    for text in shown:
        assert not set(text.split()) & lonely, text
    page = out.read_text(encoding="utf-8").lower() + "".join(p.read_text(encoding="utf-8-sig").lower() for p in folder.iterdir())
    for name, surname in names:
        assert not re.search(rf"\b({name}|{surname})\b", page), (name, surname)
    for _, _, secrets in PROBES:
        for secret in [s for s in secrets if len(s) >= 5]:  # "555" is also in a chart's numbers
            assert not re.search(rf"(?<![\w-]){re.escape(secret.lower())}(?![\w-])", page), secret


def test_the_report_modules_only_point_downwards() -> None:
    """Issue 14.3: the module that writes files imports the renderer, never the other way round."""
    import ast

    order = ["similar", "charts", "data", "tables", "html", "write"]  # each may import only those before it
    for position, name in enumerate(order):
        tree = ast.parse((ROOT / "bot" / "report" / f"{name}.py").read_text(encoding="utf-8"))
        imported = {
            node.module.removeprefix("bot.report.")
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bot.report.")
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "bot.report"
            for alias in node.names
        }
        assert imported <= set(order[:position]), (name, imported)
    assert not (ROOT / "bot" / "reports.py").exists() and not (ROOT / "bot" / "report_html.py").exists()


async def test_purge_and_report_say_the_same_on_both_backends(db_target: Path | str, tmp_path: Path) -> None:
    """`pregunta purge` and `pregunta report` on a SQLite file and on PostgreSQL: the same rows, the same tables."""
    usage = UsageLog(db_target)
    await usage.start()
    base = datetime.now(GUATEMALA).replace(hour=12, minute=0, second=0, microsecond=0)
    for day in range(8):
        at = (base - timedelta(days=day)).timestamp()
        for user in range(day + 1):
            usage.record(Turn(at, "whatsapp", "es", Kind.TOPIC, "pasaporte-vigencia", 90.0, 1.0, f"user-{user}", None))
            usage.record(Turn(at + 2, "whatsapp", "es", Kind.NOT_SURE, None, 20.0, 1.0, f"user-{user}", "receta de pepian"))
        usage.record(Turn(at + 3, "telegram", "es", Kind.LANGUAGE, "quc", None, 1.0, "switcher", None))
        usage.record(Turn(at + 4, "telegram", "quc", Kind.LANGUAGE, "es", None, 1.0, "switcher", None))
    await usage.close()
    out = tmp_path / "antes.html"
    before = await write_report(db_target, out, retention_days=180, k=1)
    env = {**os.environ, "PREGUNTA_DB": str(db_target), "PREGUNTA_PSEUDONYM_KEY": "k" * 32}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "purge", "--days", "3"], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "se borraron" in done.stdout and "4 días" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "bot", "report", "--out", str(tmp_path / "despues.html")],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    after = await write_report(db_target, tmp_path / "despues.html", retention_days=3, k=1)
    skip = {"resumen", "sin_respuesta"}
    assert [t for t in tables(after) if t.name not in skip] == [t for t in tables(before) if t.name not in skip]
    assert after.rolled is not None and after.not_sure_kept < before.not_sure_kept

"""What the report counts (issue 11, item 10): questions apart from navigation, choices and
emergencies on their own lines, a language chosen together with a pending question, one
day shown as tables."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from bot.clock import GUATEMALA
from bot.conversation import Conversations, MemoryStates, Turn
from bot.matcher import Matcher
from bot.replies import Incoming, Kind
from bot.report.data import build_report
from bot.report.tables import tables
from bot.report.write import write_report
from bot.storage import open_storage as open_db
from bot.usage import UsageLog
from tests.report.test_write import parse

K = 5
EMERGENCY_TEXT = "me están golpeando en la frontera ayuda"


@pytest.fixture
async def log(db_path: Path) -> AsyncIterator[UsageLog]:
    usage = UsageLog(db_path)
    await usage.start()
    try:
        yield usage
    finally:
        await usage.close()


def summary_of(folder: Path) -> dict[str, str]:
    with (folder / "resumen.csv").open(encoding="utf-8-sig", newline="") as handle:
        return {row["indicador"]: row["valor"] for row in csv.DictReader(handle)}


async def test_questions_are_counted_apart_from_navigation(log: UsageLog, db_path: Path, tmp_path: Path) -> None:
    now = datetime.now(GUATEMALA).timestamp()

    def turn(kind: Kind, topic: str | None = None, user: str = "u1", query: str | None = None) -> None:
        log.record(Turn(now, "whatsapp", "es", kind, topic, None, 1.0, user, query))

    for _ in range(2):
        turn(Kind.TOPIC, "pasaporte-requisitos")
    turn(Kind.CHOICES, None, query="pasaporte o visa")  # a close call: options offered
    turn(Kind.NOT_SURE, None, query="receta de pepian")
    turn(Kind.EMERGENCY, "emergencia", query=EMERGENCY_TEXT)  # the dialogue never keeps it; the log must not either
    for kind, topic in [(Kind.INTENT, "saludo"), (Kind.MENU, "menu"), (Kind.NUMBER, "menu"), (Kind.LANGUAGE, "es"),
                        (Kind.NUMBER, "pasaporte-vigencia"), (Kind.NON_TEXT, "voice"), (Kind.INTENT, "gracias")]:  # fmt: skip
        turn(kind, topic)
    await log.close()

    out, folder = tmp_path / "r.html", tmp_path / "csv"
    await write_report(db_path, out, csv_dir=folder, retention_days=180, k=K)
    summary = summary_of(folder)
    assert summary["Mensajes"] == "12" and summary["Preguntas"] == "5"
    assert (summary["Respondidas"], summary["Con opciones"], summary["Sin respuesta segura"], summary["Emergencias"]) == ("2", "1", "1", "1")
    assert summary["% respondidas (de las preguntas)"] == "40.0" and summary["% con opciones (de las preguntas)"] == "20.0"
    assert summary["Navegación (menú, números, idioma, saludos, sin texto)"] == "7"
    assert summary["Temas elegidos del menú"] == "1" and summary["Menú y números"] == "2"
    assert summary["Preguntas sin respuesta segura con texto guardado"] == "1"  # the choices turn keeps no text

    page = parse(out.read_text(encoding="utf-8"))
    cards = out.read_text(encoding="utf-8")
    assert 'id="cifra-con-opciones"><b>20 %</b>' in cards and 'id="cifra-emergencias"><b>1</b>' in cards
    assert 'id="cifra-respondidas"><b>40 %</b>' in cards
    assert page.tables["tabla-respuestas_por_dia"][0][:6] == [
        "día", "preguntas", "Respondidas", "Con opciones", "Sin respuesta segura", "Emergencias",
    ]  # fmt: skip
    everything = out.read_text(encoding="utf-8") + "".join(p.read_text(encoding="utf-8-sig") for p in folder.iterdir())
    everything += (db_path.read_bytes() + Path(f"{db_path}-wal").read_bytes() if Path(f"{db_path}-wal").exists() else db_path.read_bytes()).decode("utf-8", "replace")
    assert "golpeando" not in everything and "pasaporte o visa" not in everything


async def test_a_language_chosen_with_a_pending_question_counts_as_a_choice(
    fixture_matcher: Matcher, log: UsageLog, db_path: Path
) -> None:
    """Mam vanished from the chart: choosing the language answered the question asked before, and only that counted."""
    talk = Conversations(fixture_matcher, MemoryStates(), pseudonym_key=b"k" * 32, usage=log)
    kinds = []
    for user in ("a", "b", "c"):
        for message in ("como saco el pasaporte", "2"):  # a question before the language, then K'iche'
            reply = await talk.handle("whatsapp", user, Incoming(text=message))
            assert reply is not None
            kinds.append(reply.kind)
    reply = await talk.handle("whatsapp", "a", Incoming(payload="lang:es"))  # then a change, by the menu
    assert reply is not None and reply.kind is Kind.LANGUAGE
    await log.close()
    assert kinds == [Kind.LANGUAGE, Kind.TOPIC] * 3  # the choice's turn is the answer, not a language turn

    db = await open_db(db_path)
    try:
        data = await build_report(db, retention_days=180, k=K)
    finally:
        await db.close()
    languages = {row[1]: row for row in next(t for t in tables(data) if t.name == "idiomas").rows}
    assert languages["quc"][4] == 3 and languages["es"][4] == 1 and languages["es"][5] == 1  # elecciones, cambios
    summary = {row[0]: row[1] for row in tables(data)[0].rows}
    assert summary["Elecciones de idioma"] == 4 and summary["Cambios de idioma"] == 1
    assert summary["Respondidas"] == 3  # and the questions still count as answered


async def test_one_day_is_shown_as_tables_not_single_bar_charts(log: UsageLog, db_path: Path, tmp_path: Path) -> None:
    now = datetime.now(GUATEMALA).timestamp()
    for user in range(3):
        log.record(Turn(now, "whatsapp", "es", Kind.TOPIC, "pasaporte-requisitos", 90.0, 1.0, f"u{user}", None))
        log.record(Turn(now, "telegram", "es", Kind.NOT_SURE, None, 20.0, 1.0, f"u{user}", "receta de pepian"))
    await log.close()
    out = tmp_path / "r.html"
    await write_report(db_path, out, retention_days=180, k=K)
    html = out.read_text(encoding="utf-8")
    for section in ("actividad", "respuestas", "temas", "idiomas"):
        body = html[html.index(f'<section id="{section}">') : html.index("</section>", html.index(f'<section id="{section}">'))]
        assert "<svg" not in body, section
    page = parse(html)
    assert page.tables["tabla-conversaciones_por_dia"][1][1] == "6" and page.tables["tabla-mensajes_por_dia"][1][1] == "6"
    assert "Pasaporte" in html or "pasaporte-requisitos" in html


async def test_choices_with_a_question_survive_the_purge(log: UsageLog, db_path: Path) -> None:
    from datetime import timedelta

    from bot.rollup import purge

    old = (datetime.now(GUATEMALA) - timedelta(days=20)).timestamp()
    for user in ("a", "b"):
        log.record(Turn(old, "whatsapp", "mam", Kind.TOPIC, "pasaporte-requisitos", None, 1.0, user, None, chose_lang="mam"))
    log.record(Turn(old + 60, "whatsapp", "es", Kind.LANGUAGE, "es", None, 1.0, "a", None))  # a change from Mam
    log.record(Turn(datetime.now(GUATEMALA).timestamp(), "whatsapp", "es", Kind.MENU, "menu", None, 1.0, "a", None))
    await log.close()
    db = await open_db(db_path)
    try:
        before = await build_report(db, retention_days=180, k=K)
        await purge(db, 7)
        after = await build_report(db, retention_days=7, k=K)
    finally:
        await db.close()
    for data in (before, after):
        languages = {row[1]: row for row in next(t for t in tables(data) if t.name == "idiomas").rows}
        assert (languages["mam"][4], languages["es"][4], languages["es"][5]) == (2, 1, 1)
        assert {row[0]: row[1] for row in tables(data)[0].rows}["Respondidas"] == 2

"""`pregunta content status`: topic × language, totals and entries to re-check."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest

from bot import content_status
from bot.content import Content, load_content
from bot.content_status import Cell, months_before
from tests.conftest import FIXTURE_CONTENT
from tests.oggopus import voice_note
from tests.test_cli import run

DAY = date(2026, 11, 28)


@pytest.mark.parametrize(
    "day, months, expected",
    [
        (date(2026, 11, 28), 6, date(2026, 5, 28)),
        (date(2026, 8, 31), 6, date(2026, 2, 28)),  # no 31 February: the month's last day
        (date(2028, 8, 31), 6, date(2028, 2, 29)),
        (date(2026, 3, 15), 6, date(2025, 9, 15)),  # across the year
        (date(2026, 1, 1), 12, date(2025, 1, 1)),
    ],
)
def test_months_before(day: date, months: int, expected: date) -> None:
    assert months_before(day, months) == expected


def test_matrix_totals_and_stale_entries(fixture_content: Content) -> None:
    status = content_status.build(fixture_content, DAY)
    assert status.languages == (("es", "Español"), ("quc", "K'iche'"))
    cells = {row.topic: [str(c) for c in row.cells] for row in status.rows}
    assert list(cells) == ["pasaporte-requisitos", "pasaporte-vigencia", "asilo-como-solicitar"]  # menu order
    assert cells == {
        "pasaporte-requisitos": ["reviewed", "draft"],
        "pasaporte-vigencia": ["reviewed", "missing"],
        "asilo-como-solicitar": ["reviewed", "reviewed"],
    }
    totals = status.totals()
    assert dict(totals["quc"]) == {"reviewed": 1, "draft": 1, "missing": 1, "audio": 0}
    assert totals["es"]["reviewed"] == 3
    assert status.cutoff == date(2026, 5, 28)
    assert [(s.lang, s.topic, s.verified) for s in status.stale] == [
        ("es", "asilo-como-solicitar", date(2026, 1, 1)),
        ("es", "pasaporte-requisitos", date(2026, 1, 1)),
        ("es", "pasaporte-vigencia", date(2026, 1, 1)),
    ]


def test_nothing_stale_within_six_months(fixture_content: Content) -> None:
    status = content_status.build(fixture_content, date(2026, 7, 1))  # cutoff 2026-01-01: not older
    assert status.stale == ()
    assert "Verificar de nuevo" not in content_status.table(status)


def test_nothing_to_verify_when_every_entry_is_verified_and_recent(content_copy: Path) -> None:
    for path in (content_copy / "kiche/topics").glob("*.yaml"):  # translations with answers of their own
        path.write_text(path.read_text() + "verified: 2026-06-01\n")
    emergency = content_copy / "es/emergency.yaml"
    emergency.write_text(emergency.read_text() + "verified: 2026-06-01\n")
    status = content_status.build(load_content(content_copy), date(2026, 7, 1))
    assert status.stale == () and status.unverified == ()
    assert "Nada que verificar: todo verified desde el 2026-01-01." in content_status.table(status)


def test_entries_never_verified_are_listed(fixture_content: Content) -> None:
    """`written` is not `verified`: an entry that gives facts and was never checked is listed,
    Spanish topics and the emergency entry always, a translation once it has its own answer."""
    status = content_status.build(fixture_content, DAY)
    kiche = FIXTURE_CONTENT / "kiche" / "topics"
    assert [(u.lang, u.topic, u.path) for u in status.unverified] == [
        ("quc", "pasaporte-requisitos", kiche / "pasaporte-requisitos.yaml"),
        ("quc", "asilo-como-solicitar", kiche / "asilo-como-solicitar.yaml"),
        ("es", "emergencia", FIXTURE_CONTENT / "es" / "emergency.yaml"),
    ]
    assert status.emergency is not None and [str(c) for c in status.emergency.cells] == ["reviewed", "missing"]
    assert status.emergency.unverified == ("es",) and status.emergency.recheck
    text = content_status.table(status)
    assert "Nunca verificadas (verified vacío: nadie comprobó todavía sus datos contra la fuente):" in text
    assert any(line.split()[:3] == ["es", "emergencia", "written"] for line in text.splitlines())
    assert "Teléfonos sin verificar" in text and "110, 911" in text


def test_written_is_shown_and_a_written_date_never_counts_as_verified(content_copy: Path) -> None:
    path = content_copy / "es/topics/pasaporte-vigencia.yaml"
    path.write_text(path.read_text().replace("verified: 2026-01-01", "written: 2026-11-01"))
    status = content_status.build(load_content(content_copy), DAY)
    assert ("es", "pasaporte-vigencia", date(2026, 11, 1)) in [(u.lang, u.topic, u.written) for u in status.unverified]
    row = next(r for r in status.rows if r.topic == "pasaporte-vigencia")
    assert row.written == date(2026, 11, 1) and row.verified is None and row.unverified == ("es",) and row.recheck


def test_audio_is_shown(content_copy: Path) -> None:
    topic = content_copy / "kiche" / "topics" / "asilo-como-solicitar.yaml"
    topic.write_text(topic.read_text(encoding="utf-8") + "audio: audio/asilo.ogg\n", encoding="utf-8")
    (content_copy / "kiche" / "audio").mkdir()
    (content_copy / "kiche" / "audio" / "asilo.ogg").write_bytes(voice_note())
    status = content_status.build(load_content(content_copy), DAY)
    assert status.rows[2].cells[1] == Cell("reviewed", audio=True)
    assert status.totals()["quc"]["audio"] == 1
    assert "reviewed+audio" in content_status.table(status)


def test_table_is_fixed_width(fixture_content: Content) -> None:
    lines = content_status.table(content_status.build(fixture_content, DAY)).splitlines()
    header = next(line for line in lines if line.startswith("tema"))
    row = next(line for line in lines if line.startswith("pasaporte-vigencia"))
    assert header.index("quc") == row.index("missing")  # columns line up
    assert any(line.split() == ["total", "missing", "0", "1"] for line in lines)


def test_bundled_content_is_all_draft_in_mayan_languages(content: Content) -> None:
    totals = content_status.build(content, DAY).totals()
    assert totals["es"]["reviewed"] == len(content.spanish.topics)
    for code in ("quc", "kek", "mam"):
        assert totals[code]["draft"] == len(content.spanish.topics) and totals[code]["reviewed"] == 0 and totals[code]["missing"] == 0


# -- the command, as staff run it -----------------------------------------------------------


def test_cli_table() -> None:
    done = run("content", "status", "--content", str(FIXTURE_CONTENT), "--as-of", "2026-11-28")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "Traducciones al 2026-11-28 (es Español · quc K'iche')"
    assert any(line.split() == ["pasaporte-requisitos", "reviewed", "draft"] for line in out)
    assert any(line.split() == ["total", "draft", "0", "1"] for line in out)
    assert any("2026-01-01" in line and "pasaporte-vigencia" in line for line in out)


def test_cli_csv(tmp_path: Path) -> None:
    target = tmp_path / "status.csv"
    done = run("content", "status", "--content", str(FIXTURE_CONTENT), "--as-of", "2026-03-01", "--csv", str(target))
    assert done.returncode == 0, done.stderr
    assert "Traducciones al 2026-03-01" in done.stdout  # the table is still shown
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    common = {"es": "reviewed", "written": "", "verified": "2026-01-01"}
    assert rows == [
        {**common, "topic": "pasaporte-requisitos", "quc": "draft", "unverified": "quc", "recheck": "yes"},
        {**common, "topic": "pasaporte-vigencia", "quc": "missing", "unverified": "", "recheck": "no"},
        {**common, "topic": "asilo-como-solicitar", "quc": "reviewed", "unverified": "quc", "recheck": "yes"},
        {**common, "topic": "emergencia", "quc": "missing", "verified": "", "unverified": "es", "recheck": "yes"},
    ]


def test_cli_csv_on_stdout() -> None:
    done = run("content", "status", "--content", str(FIXTURE_CONTENT), "--as-of", "2026-11-28", "--csv", "-")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [row["recheck"] for row in rows] == ["yes", "yes", "yes", "yes"]
    assert list(rows[0]) == ["topic", "es", "quc", "written", "verified", "unverified", "recheck"]


def test_cli_on_broken_content_lists_the_problems_and_exits_1(content_copy: Path) -> None:
    path = content_copy / "es/topics/asilo-como-solicitar.yaml"
    path.write_text(path.read_text().replace("title: Pedir asilo", "title Pedir asilo"))
    done = run("content", "status", "--content", str(content_copy))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"{path}:2: error de sintaxis YAML: falta «:»")
    assert lines[1].startswith("pregunta: 1 problema(s) en el contenido: el estado se muestra cuando el contenido carga sin errores")
    assert done.stdout == "" and "Traceback" not in done.stderr


def test_cli_bundled_content_and_bad_day() -> None:
    done = run("content", "status")
    assert done.returncode == 0, done.stderr
    assert "total draft" in done.stdout
    bad = run("content", "status", "--as-of", "ayer")
    assert bad.returncode == 2 and "--as-of" in bad.stderr and "Traceback" not in bad.stderr

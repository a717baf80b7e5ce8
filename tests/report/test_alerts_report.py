"""The report's alert sections: subscribers over time and now, what each alert did, with no
count of 1 to k-1 people shown, in the HTML and the CSV."""

from __future__ import annotations

import csv
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

from bot.report.tables import suppress
from bot.report.write import write_report
from bot.storage import open_storage
from bot.subscriptions import Subscriptions
from tests.report.test_write import Page

K = 5
DAY_1, DAY_2 = 1_780_000_000.0, 1_780_086_400.0  # 2026-05-28 and 2026-05-29 in Guatemala


def test_small_cells_are_hidden_and_a_lone_one_takes_a_neighbour_with_it() -> None:
    assert suppress([12, 0, 3], K) == ["oculto", 0, "menos de 5"]  # 12 - total would give the 3 back
    assert suppress([12, 2, 1, 0], K) == [12, "menos de 5", "menos de 5", 0]
    assert suppress([7, 9], K) == [7, 9]


async def test_the_report_shows_subscribers_and_alerts_without_small_counts(db_path: Path, tmp_path: Path) -> None:
    db = await open_storage(db_path)
    try:
        subs = Subscriptions(db, MultiFernet([Fernet(Fernet.generate_key())]), b"p" * 32)
        for n in range(12):
            await subs.subscribe("telegram", str(9_000_000_000 + n), "es", now=DAY_1)
        for n in range(2):
            await subs.subscribe("whatsapp", f"502555{n:05d}", "quc", now=DAY_1)
        await subs.unsubscribe("telegram", str(9_000_000_000), now=DAY_2)
        await subs.drop(subs.person("telegram", str(9_000_000_001)), blocked=True, now=DAY_2)
        rows: list[tuple[str, str, str, str, str, str, float, str | None]] = [("citas", f"p{n}", "telegram", "es", "sent", "r", DAY_2, None) for n in range(10)]
        rows += [("citas", "q1", "whatsapp", "quc", "failed", "r", DAY_2, "131047"), ("citas", "q2", "telegram", "es", "unsubscribed", "r", DAY_2, "403")]
        await db.script([("INSERT INTO alert_deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row) for row in rows])
        await db.write_events([(DAY_1, "2026-05-28", "telegram", "es", "topic", "pasaporte-vigencia", 90.0, 3.0, "u1", None, None),
                               (DAY_2, "2026-05-29", "telegram", "es", "topic", "pasaporte-vigencia", 90.0, 3.0, "u1", None, None)])  # fmt: skip
    finally:
        await db.close()
    out, folder = tmp_path / "report.html", tmp_path / "csv"
    await write_report(db_path, out, csv_dir=folder, retention_days=180, k=K)
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    assert "avisos" in page.sections
    over_time = page.tables["tabla-suscripciones_por_dia"]
    assert over_time[1:] == [["2026-05-28", "14", "14", "0", "0"], ["2026-05-29", "12", "0", "menos de 5", "menos de 5"]]
    assert page.tables["tabla-avisos"][1:] == [["citas", "10", "menos de 5", "menos de 5", "0"]]
    now = page.tables["tabla-suscripciones_ahora"]
    assert now[1:] == [["Telegram", "oculto", "0"], ["WhatsApp", "0", "menos de 5"]]  # 10 would give the 2 back
    with (folder / "avisos.csv").open(encoding="utf-8-sig") as handle:
        assert list(csv.reader(handle))[1] == ["citas", "10", "menos de 5", "menos de 5", "0"]
    assert "9000000000" not in out.read_text(encoding="utf-8")

"""`pregunta report` on disk: the HTML page and the CSV files, written from the database.

The one module of the report that touches files. It imports the page renderer
(`bot.report.html`), never the other way round.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from bot.errors import PreguntaError
from bot.report.data import Labels, Progress, ReportData, build_report
from bot.report.html import render
from bot.report.tables import Table, tables
from bot.storage import describe, exists, open_storage

__all__ = ["write_csv", "write_report"]


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
    db_path: Path | str,
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
    """Build the report from the database at `db_path` (a SQLite file or a PostgreSQL URL) and write it;
    a missing file is an error, not an empty report."""
    if not exists(db_path):
        raise PreguntaError(
            f"la base de datos {describe(db_path)} no existe: revisá PREGUNTA_DB (el bot la crea al recibir el primer mensaje)"
        )
    db = await open_storage(db_path, wait=30.0)
    try:
        data = await build_report(
            db, since=since, until=until, retention_days=retention_days, k=k, labels=labels, progress=progress
        )
    finally:
        await db.close()
    found = tables(data)
    if progress:
        progress("escribiendo el informe…")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data, found), encoding="utf-8")
    if csv_dir is not None:
        write_csv(found, csv_dir)
    return data

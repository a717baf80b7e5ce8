"""The report as one self-contained HTML page in Spanish, for people who are not analysts.

Everything is inside the file: CSS in a <style>, charts as inline SVG (`bot.report.charts`),
no script, no font or image from the internet, so it opens from an email attachment.
Long daily tables fold away in <details>, which needs no script either. Knows only
`ReportData` and the tables of `bot.report.tables`; returns text and writes no file.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from html import escape

from babel.dates import format_date, format_datetime

from bot.report import charts
from bot.report.data import QUESTIONS, ReportData
from bot.report.tables import Table

__all__ = ["render"]

_TOP_TOPICS = 10
_WHEN = "d 'de' MMMM 'de' y, HH:mm"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:860px;margin:0 auto;padding:1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:2px solid #0072B2;padding-bottom:.2rem}
h3{font-size:1.05rem;margin-top:1.4rem}
.periodo{color:#555;margin-top:0}.nota{color:#555;font-size:.92rem}
.cifras{display:flex;flex-wrap:wrap;gap:.6rem;padding:0;list-style:none}
.cifras li{border:1px solid #ccd;border-radius:6px;padding:.5rem .8rem;min-width:9rem}
.cifras b{display:block;font-size:1.4rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.vacio{border:2px solid #E69F00;border-radius:6px;padding:1rem;background:#fff8e6}
details{margin:.5rem 0}summary{cursor:pointer;color:#0072B2}
footer{margin-top:3rem;color:#555;font-size:.85rem;border-top:1px solid #ddd;padding-top:.5rem}
@media print{details{display:block}summary{display:none}}
"""


def render(data: ReportData, found: list[Table]) -> str:
    """The whole page."""
    by_name = {table.name: table for table in found}
    period = _period(data)
    parts = [
        '<!doctype html>\n<html lang="es">\n<head>\n<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>Informe de uso de Preguntá: {escape(period)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n",
        "<header><h1>Informe de uso de Preguntá</h1>\n",
        f'<p class="periodo" id="periodo">{escape(period)}. Generado el '
        f"{escape(format_datetime(data.generated, _WHEN, locale='es'))}.</p></header>\n",
    ]
    if data.empty:
        parts.append(_empty(data))
    else:
        parts.append(_summary(data, by_name["resumen"]))
    parts.append(_how_to_read(data))
    if not data.empty:
        parts += [
            _activity(data, by_name["conversaciones_por_dia"], by_name["mensajes_por_dia"]),
            _answers(data, by_name["respuestas_por_dia"]),
            _topics(data, by_name["temas_por_idioma"]),
            _not_sure(data, by_name["sin_respuesta"]),
            _languages(by_name["idiomas"]),
            _section("canales", "Canales y personas frenadas", _table(by_name["canales"])),
            _section("no-texto", "Mensajes que no eran texto", _table(by_name["no_texto"]) if by_name["no_texto"].rows else "<p>Ninguno.</p>"),
        ]
    if data.subscription_days or data.subscribers_now or data.deliveries:
        parts.append(_alerts(data, by_name))
    parts.append(_footer(data))
    parts.append("</body>\n</html>\n")
    return "".join(parts)


# -- sections -------------------------------------------------------------------------------


def _period(data: ReportData) -> str:
    if data.since is None or data.until is None:
        return "Sin datos"
    return f"Del {_long(data.since)} al {_long(data.until)}"


def _empty(data: ReportData) -> str:
    where = "en este período" if data.since else "todavía"
    return (
        '<section id="vacio" class="vacio"><h2>No hay datos</h2>'
        f"<p>La base de datos no tiene mensajes registrados {where}. No es un error: el bot no ha recibido "
        "mensajes en esas fechas, o el registro de uso todavía no se ha activado. Probá con otras fechas "
        "(<code>--since</code>, <code>--until</code>).</p></section>\n"
    )


def _summary(data: ReportData, table: Table) -> str:
    values = {str(row[0]): row[1] for row in table.rows}

    def share(key: str) -> str:
        return f"{float(values[f'% {QUESTIONS[key].lower()} (de las preguntas)']):.0f} %"

    cards = [
        ("Mensajes", _n(values["Mensajes"]), "mensajes"),
        ("Conversaciones", _n(values["Conversaciones (personas distintas por día, sumadas)"]), "conversaciones"),
        ("Preguntas", _n(values["Preguntas"]), "preguntas"),
        ("Respondidas", share("answered"), "respondidas"),
        ("Con opciones", share("choices"), "con-opciones"),
        ("Sin respuesta segura", share("not_sure"), "sin-respuesta"),
        ("Emergencias", _n(values[QUESTIONS["emergency"]]), "emergencias"),
        ("No eran texto", _n(values["Mensajes que no eran texto"]), "no-texto"),
    ]
    items = "".join(f'<li id="cifra-{key}"><b>{escape(value)}</b>{escape(label)}</li>' for label, value, key in cards)
    rolled = ""
    if data.rolled:
        rolled = (
            f'<p class="nota">Del {_long(data.rolled[0])} al {_long(data.rolled[1])} los mensajes detallados ya se '
            f"borraron (se guardan {data.retention_days} días): esos días cuentan en los totales, pero sus "
            "preguntas sin respuesta ya no están.</p>"
        )
    body = f'<ul class="cifras">{items}</ul>{rolled}<details><summary>Todas las cifras</summary>{_table(table)}</details>'
    return _section("resumen", "Resumen", body)


def _how_to_read(data: ReportData) -> str:
    body = (
        "<ul>"
        "<li><b>Mensaje</b>: cada mensaje que una persona mandó y el bot respondió, por Telegram, WhatsApp o la "
        "terminal de pruebas.</li>"
        "<li><b>Conversación</b>: una persona distinta en un día. Quien escribe tres días cuenta tres veces. "
        "No se puede saber quién es: el bot guarda una clave seudónima, que no se puede convertir de vuelta en "
        "el número y que cambia cada mes; nunca el número de teléfono, el nombre ni el usuario.</li>"
        "<li><b>Pregunta</b>: un mensaje en el que la persona quería saber algo. Lo demás es <b>navegación</b> "
        "(pedir el menú, elegir un número o un idioma, saludar, mandar una foto) y no cuenta en los porcentajes.</li>"
        "<li><b>Respondida</b>: el bot encontró el tema. <b>Con opciones</b>: dudó entre temas parecidos y ofreció "
        "elegir. <b>Sin respuesta segura</b>: no encontró el tema y ofreció el menú y las líneas de ayuda; esas "
        "preguntas muestran qué información falta. <b>Emergencias</b>: alguien pidió ayuda urgente y recibió "
        "las líneas de emergencia; se cuentan, pero su texto nunca se guarda.</li>"
        f"<li>Las preguntas sin respuesta se muestran solo si <b>{data.k} personas distintas o más</b> escribieron "
        "algo parecido, para que nadie pueda ser reconocido por su mensaje. Teléfonos, DPI, pasaportes, "
        "correos, usuarios, direcciones, fechas, montos y nombres se reemplazan antes de guardar nada, y de "
        "cada grupo solo se muestran las palabras que escribieron esas personas; lo demás dice […].</li>"
        f"<li>Los mensajes detallados se guardan <b>{data.retention_days} días</b>; después solo quedan conteos "
        "por día, que siguen sumando en este informe.</li>"
        "<li>Los días son días de Guatemala. Cada tabla se puede abrir en una hoja de cálculo con "
        "<code>pregunta report --csv CARPETA</code>.</li>"
        "</ul>"
    )
    return _section("como-leer", "Cómo leer este informe", body)


def _activity(data: ReportData, people: Table, messages: Table) -> str:
    labels, buckets = _buckets(data)
    if len(labels) < 2:  # one column per chart says nothing a table does not
        body = "".join(f"<h3>{escape(t.title)}</h3>{_note(t)}{_table(t)}" for t in (people, messages))
        return _section("actividad", "Conversaciones y mensajes", body)
    conv = _bucketed(people, buckets, len(labels))
    msgs = _bucketed(messages, buckets, len(labels))
    unit = _unit(data)
    split = 2 + len({c.channel for c in data.counts})
    parts = [
        f"<h3>Conversaciones por {unit}</h3>",
        charts.columns(labels, [("Conversaciones", conv[0])], title=f"Conversaciones por {unit}"),
        f"<h3>Mensajes por {unit}, por canal</h3>",
        charts.columns(labels, list(zip(messages.columns[2:split], msgs[1 : split - 1], strict=True)), title=f"Mensajes por {unit}, por canal"),
        f"<h3>Mensajes por {unit}, por idioma</h3>",
        charts.columns(labels, list(zip(messages.columns[split:], msgs[split - 1 :], strict=True)), title=f"Mensajes por {unit}, por idioma"),
        _folded(people),
        _folded(messages),
    ]
    return _section("actividad", "Conversaciones y mensajes", "".join(parts))


def _answers(data: ReportData, table: Table) -> str:
    labels, buckets = _buckets(data)
    if len(labels) < 2:
        return _section("respuestas", table.title, _note(table) + _table(table))
    values = _bucketed(table, buckets, len(labels))
    series = list(zip(QUESTIONS.values(), values[1 : 1 + len(QUESTIONS)], strict=True))
    chart = charts.columns(labels, series, title="Parte de las preguntas de cada tipo", percent=True)
    return _section("respuestas", table.title, chart + _note(table) + _folded(table))


def _topics(data: ReportData, table: Table) -> str:
    per_language: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for language, _topic, title, _written, _chosen, total in table.rows:
        if len(per_language[str(language)]) < _TOP_TOPICS:
            per_language[str(language)].append((str(title), float(total)))
    body: list[str] = []
    for language, items in per_language.items():
        body.append(f"<h3>{escape(language)}</h3>")
        if len(items) < 2:  # a single bar says nothing
            body.append("".join(f"<p>{escape(title)}: {_n(total)}</p>" for title, total in items))
        else:
            body.append(charts.hbars(items, title=f"Temas más consultados en {language}"))
    if not body:
        body.append("<p>Ningún tema respondido en este período.</p>")
    body.append(_folded(table, "Ver todos los temas"))
    return _section("temas", "Temas más consultados, por idioma", "".join(body))


def _not_sure(data: ReportData, table: Table) -> str:
    if table.rows:
        inner = _table(table)
    elif data.not_sure_kept:
        inner = f"<p>Ninguna pregunta sin respuesta fue escrita por {data.k} personas distintas o más.</p>"
    else:
        inner = "<p>No hay preguntas sin respuesta guardadas en este período.</p>"
    return _section("sin-respuesta", table.title, _note(table) + inner)


def _languages(table: Table) -> str:
    choices = [(str(row[0]), float(row[4])) for row in table.rows if row[4]]
    chart = charts.hbars(choices, title="Elecciones de idioma") if len(choices) >= 2 else ""
    return _section("idiomas", table.title, chart + _note(table) + _table(table))


def _alerts(data: ReportData, by_name: dict[str, Table]) -> str:
    """Subscriptions to the alerts over time and now, and what each alert did."""
    over_time, now, sent = by_name["suscripciones_por_dia"], by_name["suscripciones_ahora"], by_name["avisos"]
    totals = [row[1] for row in over_time.rows]
    body: list[str] = []
    if len(totals) >= 2 and all(isinstance(t, int) for t in totals):
        labels = [format_date(date.fromisoformat(str(row[0])), "d MMM", locale="es") for row in over_time.rows]
        body.append(charts.columns(labels, [("Suscritas", [float(t) for t in totals])], title="Personas suscritas a los avisos"))
    body += [_note(over_time), _folded(over_time), f"<h3>{escape(now.title)}</h3>", _table(now) if now.rows else "<p>Nadie suscrito.</p>"]
    body += [f"<h3>{escape(sent.title)}</h3>", _note(sent), _table(sent) if sent.rows else "<p>Todavía no se mandó ningún aviso.</p>"]
    return _section("avisos", "Avisos: suscripciones y envíos", "".join(body))


def _footer(data: ReportData) -> str:
    return (
        f"<footer><p>Período: {escape(_period(data))}. Retención vigente: {data.retention_days} días de mensajes "
        f"detallados, conteos diarios sin límite. Umbral de privacidad: {data.k} personas. "
        "Preguntá: información para personas migrantes.</p></footer>\n"
    )


# -- pieces -----------------------------------------------------------------------------------


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}"><h2>{escape(title)}</h2>\n{body}\n</section>\n'


def _note(table: Table) -> str:
    return f'<p class="nota">{escape(table.note)}</p>' if table.note else ""


def _folded(table: Table, summary: str | None = None) -> str:
    return f"<details><summary>{escape(summary or 'Ver la tabla: ' + table.title.lower())}</summary>{_table(table)}</details>"


def _table(table: Table) -> str:
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in table.columns)
    rows = []
    for row in table.rows:
        cells = "".join(
            f'<td class="n">{_n(v)}</td>' if isinstance(v, (int, float)) else f"<td>{escape(str(v))}</td>" for v in row
        )
        rows.append(f"<tr>{cells}</tr>")
    return f'<table id="tabla-{table.name}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _n(value: object) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    if isinstance(value, (int, float)):
        return f"{int(value):,}"
    return escape(str(value))


def _long(day: date) -> str:
    return format_date(day, format="long", locale="es")


def _unit(data: ReportData) -> str:
    span = (data.until - data.since).days + 1 if data.since and data.until else 0
    return "día" if span <= 62 else "semana" if span <= 730 else "mes"


def _buckets(data: ReportData) -> tuple[list[str], dict[str, int]]:
    """Chart columns: days for two months or less, weeks up to two years, then months."""
    assert data.since is not None and data.until is not None
    unit = _unit(data)
    labels: list[str] = []
    where: dict[str, int] = {}
    day = data.since
    while day <= data.until:
        if unit == "día":
            start, label = day, format_date(day, "d MMM", locale="es")
        elif unit == "semana":
            start = day - timedelta(days=day.weekday())
            label = format_date(start, "d MMM", locale="es")
        else:
            start = day.replace(day=1)
            label = format_date(start, "MMM y", locale="es")
        if not labels or labels[-1] != label:
            labels.append(label)
        where[day.isoformat()] = len(labels) - 1
        day += timedelta(days=1)
    return labels, where


def _bucketed(table: Table, where: dict[str, int], size: int) -> list[list[float]]:
    """The numeric columns after the day of a per-day table, summed per chart column."""
    width = len(table.columns) - 1
    sums = [[0.0] * size for _ in range(width)]
    for row in table.rows:
        at = where.get(str(row[0]))
        if at is None:
            continue
        for i, value in enumerate(row[1:]):
            if isinstance(value, (int, float)):
                sums[i][at] += value
    return sums


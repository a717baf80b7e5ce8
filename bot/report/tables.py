"""The report's tables: the same rows feed the HTML page and the CSV files.

Each table is one section of the page and one CSV file (`name`.csv), with Spanish column
names staff can read in a spreadsheet. Knows `ReportData`, nothing of HTML or files.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from bot import rollup
from bot.report.data import CHANNELS, NAVIGATION, NON_TEXT, QUESTIONS, ReportData, category, days

__all__ = ["Cell", "Row", "Table", "hidden", "suppress", "tables"]

Cell = str | int | float
Row = tuple[Cell, ...]


@dataclass(frozen=True)
class Table:
    """One table of the report: a section of the HTML page and one CSV file (`name`.csv)."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    note: str = ""



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
        _subscribers(data),
        _subscribers_now(data),
        _alerts(data),
    ]



# -- the tables ---------------------------------------------------------------------------


def _languages_in(data: ReportData) -> list[str]:
    present = {c.lang for c in data.counts}
    ordered = [code for code in data.labels.languages if code in present]
    return ordered + sorted(present - set(ordered))


def _channels_in(data: ReportData) -> list[str]:
    present = {c.channel for c in data.counts}
    ordered = [name for name in CHANNELS if name in present]
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
    questions = sum(by_category[key] for key in QUESTIONS)
    choices = sum(c.choices for c in data.counts if c.kind == "language")
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
        ("Preguntas", questions),
    ]
    rows += [(title, by_category[key]) for key, title in QUESTIONS.items()]
    rows += [(f"% {title.lower()} (de las preguntas)", _share(by_category[key], questions)) for key, title in QUESTIONS.items()]
    rows.append(("Navegación (menú, números, idioma, saludos, sin texto)", messages - questions))
    rows += [(title, by_category[key]) for key, title in NAVIGATION.items()]
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


def _share(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


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
        asked = [cells[(day, key)] for key in QUESTIONS]
        questions = sum(asked)
        navigation = sum(cells[(day, key)] for key in NAVIGATION)
        shares = [_share(n, questions) for n in asked[:3]]
        rows.append((day, questions, *asked, *shares, navigation))
    columns = (
        "día", "preguntas", *QUESTIONS.values(),
        "% respondidas", "% con opciones", "% sin respuesta segura", "navegación",
    )  # fmt: skip
    note = (
        "Preguntas: lo que la gente escribió para saber algo. Respondidas: el bot encontró el tema. Con opciones: "
        "dudó entre temas parecidos y ofreció elegir. Sin respuesta segura: no encontró el tema y ofreció el menú "
        "y las líneas de ayuda. Emergencias: alguien pidió ayuda urgente; se cuentan, nunca se guarda su texto. "
        "Los porcentajes son de las preguntas. Navegación: menú, números, idioma, saludos y mensajes sin texto."
    )
    return Table("respuestas_por_dia", "Preguntas: respondidas, con opciones y sin respuesta segura", columns, tuple(rows), note)


def _topics(data: ReportData) -> Table:
    written: dict[tuple[str, str], int] = defaultdict(int)
    chosen: dict[tuple[str, str], int] = defaultdict(int)
    for c in data.counts:
        kind = category(c.kind, c.topic)
        if kind in ("answered", "chosen"):
            (written if kind == "answered" else chosen)[(c.lang, c.topic)] += c.events
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
        f"no se muestran. Cada grupo muestra solo las palabras que al menos {data.k} de esas personas "
        "escribieron; donde escribieron cosas distintas dice […]. Los datos personales ya fueron "
        "reemplazados ([teléfono], [nombre]…)."
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
            choices[c.topic] += c.choices
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
    note = (
        "Una elección cuenta también cuando la persona había hecho una pregunta antes de elegir y el bot la "
        "respondió en ese momento. Un cambio es una elección de alguien que antes, ese mismo mes, había elegido otro."
    )
    return Table("idiomas", "Idiomas elegidos y cambios", columns, rows, note)


def _channels(data: ReportData) -> Table:
    messages: dict[str, int] = defaultdict(int)
    questions: dict[str, int] = defaultdict(int)
    answered: dict[str, int] = defaultdict(int)
    notices: dict[str, int] = defaultdict(int)
    for c in data.counts:
        messages[c.channel] += c.events
        kind = category(c.kind, c.topic)
        if kind in QUESTIONS:
            questions[c.channel] += c.events
        if kind == "answered":
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
        (_channel_name(ch), messages[ch], people[ch], questions[ch], answered[ch], limited[ch], notices[ch])
        for ch in _channels_in(data)
    )
    columns = (
        "canal", "mensajes", "conversaciones", "preguntas", "respondidas", "personas frenadas", "avisos «más despacio»",
    )  # fmt: skip
    note = "Personas frenadas: mandaron muchos mensajes seguidos y recibieron un aviso (contadas una vez por día)."
    return Table("canales", "Canales", columns, rows, note)


def _non_text(data: ReportData) -> Table:
    found: dict[str, int] = defaultdict(int)
    for c in data.counts:
        if c.kind == "non_text":
            found[c.topic] += c.events
    rows = tuple((NON_TEXT.get(t, t or "Otro"), t, n) for t, n in sorted(found.items(), key=lambda item: (-item[1], item[0])))
    return Table("no_texto", "Mensajes que no eran texto", ("tipo", "código", "mensajes"), rows)


# -- alerts: counts of people, never one that could point at someone ------------------------


def hidden(value: int, k: int) -> Cell:
    """A count of people as shown: 0 and k or more as they are, 1 to k-1 as "menos de k"."""
    return value if value == 0 or value >= k else f"menos de {k}"


def suppress(values: list[int], k: int) -> list[Cell]:
    """Small cells hidden, and when only one is, the smallest other non-zero one too: a total or
    a neighbouring day must not give a hidden cell back by subtraction."""
    shown: list[Cell] = [hidden(v, k) for v in values]
    small = [i for i, v in enumerate(values) if 0 < v < k]
    if len(small) == 1:
        others = sorted((v, i) for i, v in enumerate(values) if v >= k)
        if others:
            shown[others[0][1]] = "oculto"
    return shown


_STATUS = {"sent": "enviados", "failed": "fallidos", "unsubscribed": "dados de baja (bloquearon el bot)", "unknown": "sin confirmar"}


def _subscribers(data: ReportData) -> Table:
    """People subscribed at the end of each day of the period, and who joined, stopped or blocked us."""
    per_day: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for day, _channel, joined, stopped, blocked in data.subscription_days:
        cells = per_day[day]
        cells[0] += joined
        cells[1] += stopped
        cells[2] += blocked
    first = data.since.isoformat() if data.since else None
    total = sum(j - s - b for day, (j, s, b) in per_day.items() if first is not None and day < first)
    rows: list[Row] = []
    for day in _per_day(data):
        joined, stopped, blocked = per_day.get(day, [0, 0, 0])
        total += joined - stopped - blocked
        rows.append((day, hidden(total, data.k), *suppress([joined, stopped, blocked], data.k)))
    note = (
        "Personas suscritas a los avisos al final de cada día, y cuántas se suscribieron, pidieron la baja o "
        f"fueron dadas de baja porque bloquearon el bot. Una cifra entre 1 y {data.k - 1} dice «menos de {data.k}» "
        "(y, si es la única de su fila, la más chica de las demás dice «oculto»): con tan pocas personas, "
        "quien sabe quién se suscribió podría reconocerlas."
    )
    columns = ("día", "suscritas", "se suscribieron", "pidieron la baja", "bloquearon el bot")
    return Table("suscripciones_por_dia", "Suscripciones a los avisos", columns, tuple(rows), note)


def _subscribers_now(data: ReportData) -> Table:
    order = list(data.labels.languages)
    languages = sorted({lang for _, lang, _ in data.subscribers_now}, key=lambda code: (order.index(code) if code in order else 99, code))
    channels = sorted({c for c, _, _ in data.subscribers_now})
    counts = {(c, lang): n for c, lang, n in data.subscribers_now}
    values = [counts.get((c, lang), 0) for c in channels for lang in languages]
    shown = suppress(values, data.k)
    rows = tuple(
        (_channel_name(c), *shown[i * len(languages) : (i + 1) * len(languages)]) for i, c in enumerate(channels)
    )
    columns = ("canal", *(data.labels.language(lang) for lang in languages))
    return Table("suscripciones_ahora", "Suscripciones hoy, por canal e idioma", columns, rows, "Las mismas reglas de privacidad que arriba.")


def _alerts(data: ReportData) -> Table:
    per_alert: dict[str, Counter[str]] = defaultdict(Counter)
    for alert, _channel, _lang, status, people in data.deliveries:
        per_alert[alert][status] += people
    rows = tuple((alert, *suppress([found[s] for s in _STATUS], data.k)) for alert, found in sorted(per_alert.items()))
    note = (
        "Qué hizo cada aviso, en personas: enviados; fallidos (la plataforma no lo entregó: el siguiente envío lo "
        "intenta otra vez); dados de baja (bloquearon el bot o ya no tienen la cuenta); sin confirmar (salía cuando "
        "el envío se interrumpió: no se manda otra vez, para que nadie lo reciba dos veces). Sin desglose por idioma "
        f"ni canal, y cifras de 1 a {data.k - 1} ocultas, para que nadie pueda ser reconocido."
    )
    return Table("avisos", "Avisos enviados", ("aviso", *_STATUS.values()), rows, note)


def _channel_name(channel: str) -> str:
    return CHANNELS.get(channel, channel)

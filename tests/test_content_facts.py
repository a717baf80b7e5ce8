"""The facts the bundled content states, pinned where a wrong answer can hurt someone.

Each test names the risk it guards against (an ambulance number that does not answer,
a detained person told no number exists, a parent told paying a coyote is a crime);
`facts.md` in the shared folder is the source for every fact asserted here. Matching is
being reworked, so the matcher tests say what must NOT happen rather than exact ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from bot.content import UI_KEYS, Content
from bot.matcher import Matcher

# The brief's phone lines (content-brief.md, facts.md §4): nothing else may be shown.
PHONE_LINES = {"110", "122", "123", "125", "911", "1511", "1546", "1555", "1572", "1574"}
IGM_LINE = "4214-9091"  # uncertain since 2022: always shown with "verificá que siga activa en igm.gob.gt"

# Where each line's source is named in a topic's `source` (one of the markers must be there).
LINE_SOURCES = {
    "110": ("pgn.gob.gt",),
    "122": ("CONRED",),
    "123": ("CONRED",),
    "125": ("CONRED",),
    "911": ("911",),
    "1511": ("La Red 106.1",),
    "1546": ("pgn.gob.gt",),
    "1555": ("pdh.org.gt",),
    "1572": ("Soy502", "AGN"),
    "1574": ("Soy502",),
    IGM_LINE: ("Emisoras Unidas",),
}

AMBULANCE = "122 o 123 (Bomberos) o 125 (Cruz Roja)"  # said the same way everywhere
WARNED = (
    "campana-preguntar-apuntar-verificar",
    "ofertas-trabajo-extranjero",
    "trabajo-temporal-programas",
    "formularios-gratuitos",
    "trafico-de-migrantes",
    "trata-de-personas",
)
_NUMBER = re.compile(r"(?<![\w$.,/-])(\d{3,4})(?![\w-]|[.,:]\d)")
_LONG_NUMBER = re.compile(r"\b\d{4}-\d{4}\b")


def _texts(content: Content) -> Iterator[tuple[str, str]]:
    """Every Spanish text a user can be shown, with where it comes from."""
    es = content.spanish
    for topic in es.topics.values():
        yield topic.id, topic.answer or ""
        if topic.warning:
            yield f"{topic.id}.warning", topic.warning
    assert es.emergency is not None
    yield "emergencia", es.emergency.answer or ""
    for index, situation in enumerate(es.emergency.situations):
        yield f"emergencia.situations[{index}]", situation.line
    for key in UI_KEYS:
        yield f"ui.{key}", content.ui("es", key)


def _answer(content: Content, topic_id: str) -> str:
    return content.spanish.topics[topic_id].answer or ""


def _lines(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


# -- phone lines: only the brief's, each said where it works --------------------------------


def test_only_the_briefs_phone_lines_are_shown(content: Content) -> None:
    for where, text in _texts(content):
        for number in _NUMBER.findall(text):
            if 1900 <= int(number) <= 2099:  # a year (Decreto 5-2022 is excluded by the pattern)
                continue
            assert number in PHONE_LINES, (where, number)
        for found in _LONG_NUMBER.finditer(text):
            if re.search(r"(Acuerdo|Decreto)[\w ]*$", text[: found.start()]):  # Acuerdo Ministerial 1753-2019
                continue
            assert found.group() == IGM_LINE, (where, found.group())


def test_igm_line_always_says_to_check_it_is_still_active(content: Content) -> None:
    shown = 0
    for where, text in _texts(content):
        for line in _lines(text, IGM_LINE):
            shown += 1
            assert "igm.gob.gt" in line and "siga activa" in line, (where, line)
    assert shown >= 3  # the complaints topic, the forms topic and the help lines


def test_each_line_in_an_answer_has_its_source(content: Content) -> None:
    entries = [(t.id, t.answer or "", t.source or "") for t in content.spanish.topics.values()]
    emergency = content.spanish.emergency
    assert emergency is not None
    situations = "\n".join(s.line for s in emergency.situations)
    entries.append(("emergencia", f"{emergency.answer}\n{situations}", emergency.source or ""))
    for entry_id, text, source in entries:
        for number, markers in LINE_SOURCES.items():
            if re.search(rf"(?<![\d-]){re.escape(number)}(?![\d-])", text):
                assert any(marker in source for marker in markers), (entry_id, number, source)


def test_110_is_never_given_without_saying_where_it_works(content: Content) -> None:
    # 110 is the Guatemalan police: on the route in Mexico or in the US it does not answer
    for where, text in _texts(content):
        if re.search(r"\b110\b", text):
            assert "Guatemala" in text and "911" in text, where
        if "911" in text:
            assert "México" in text and "Estados Unidos" in text, where


def test_ambulances_are_not_the_police(content: Content) -> None:
    health = _answer(content, "salud-en-la-ruta")
    emergency = content.spanish.emergency
    assert emergency is not None and emergency.answer
    for text in (health, emergency.answer):
        assert AMBULANCE in text  # the same numbers, said the same way, in both
        ambulance_line = next(line for line in text.splitlines() if AMBULANCE in line)
        assert "110" not in ambulance_line and "mbulancia" in ambulance_line
        assert any("911" in line and "México" in line and "Estados Unidos" in line for line in text.splitlines())
        assert "tenga o no papeles" in text  # the Red Cross helps whatever one's papers
    assert not re.search(r"\b110\b", health)
    assert "el 110 no funciona" in emergency.answer


def test_emergency_situations_use_the_right_line(content: Content) -> None:
    emergency = content.spanish.emergency
    assert emergency is not None
    lines = {s.line for s in emergency.situations}
    assert any("1546" in line and "Alba-Keneth" in line for line in lines)
    assert any("1572" in line and "Isabel-Claudina" in line for line in lines)
    extortion = next(s for s in emergency.situations if "1574" in s.line)
    assert "amenaza" not in extortion.keywords  # a death threat is no extortion: 1572, not the extortion line


# -- the answers the audit found wrong -------------------------------------------------------


def test_a_detained_person_is_told_where_the_consulate_phone_is(content: Content) -> None:
    consulates = _answer(content, "consulados-asistencia")
    assert "teléfono" in consulates and "minex.gob.gt" in consulates
    assert "detienen" in consulates
    for where, text in _texts(content):
        assert not re.search(r"no hay (un )?(número|teléfono)", text, re.IGNORECASE), where


def test_consulates_abroad_need_an_appointment(content: Content) -> None:
    where_answer = _answer(content, "pasaporte-donde")
    assert "Hace falta cita" in where_answer
    for where, text in _texts(content):
        for sentence in re.split(r"(?<=[.;])\s", text):
            if "sin cita" in sentence and ("consulado" in sentence or "Estados Unidos" in sentence):
                assert "anuncia" in sentence, (where, sentence)  # walk-in days only as each consulate announces them


def test_paying_a_coyote_does_not_make_the_family_criminals(content: Content) -> None:
    smuggling = _answer(content, "trafico-de-migrantes")
    assert "5-2022" in smuggling
    assert "no te hace delincuente, ni a vos ni a tu familia" in smuggling
    assert "la ley castiga al coyote" in smuggling
    penalty = next(line for line in smuggling.splitlines() if "5-2022" in line)
    assert "coyote" in penalty  # the prison term is the smuggler's
    for where, text in _texts(content):
        if "cárcel" in text or "5-2022" in text:
            assert "no te hace delincuente" in text, where


def test_paying_after_checking_is_never_implied_for_job_offers(content: Content) -> None:
    offers = content.spanish.topics["ofertas-trabajo-extranjero"]
    answer = offers.answer or ""
    assert "ni antes ni después" in answer and "no pueden cobrarte" in answer
    assert "1572" in answer and "Ministerio Público" in answer  # a fake offer is a crime: the MP
    for text in (answer, offers.warning or ""):
        assert not re.search(r"antes de (dar )?(pagar|pisto)", text), text


def test_corrected_facts(content: Content) -> None:
    assert "Certificación de Competencias (SCC) del Ministerio de Educación" in _answer(content, "educacion-y-certificacion")
    extension = _answer(content, "pasaporte-vigencia")
    assert "cita en igm.gob.gt" in extension and "consulado" in extension
    assert "en 2021" in next(line for line in _answer(content, "visa-requisitos").splitlines() if "Ecuador" in line)
    returning = _answer(content, "retorno-y-recepcion")
    assert "colocarte en un empleo" in returning and "ofrece empleo" not in returning
    assert "El Ceibo" not in returning  # its status is uncertain: not named as a reception centre


@pytest.mark.parametrize(
    "topic_id, fact",
    [
        ("migrantes-desaparecidos", "Alerta Isabel-Claudina"),
        ("retorno-y-recepcion", "retorno voluntario asistido"),
        ("ninez-migrante", "Centros de Formación Quédate"),
        ("educacion-y-certificacion", "Centros de Formación Quédate"),
        ("migrantes-en-transito", "albergue"),
        ("asilo-como-solicitar", "no te pueden devolver"),
        ("migrantes-en-transito", "no te pueden devolver"),
        ("denuncia-funcionarios", "reserva de tu identidad"),
        ("pasaporte-requisitos", "certificación de pago"),
        ("pasaporte-menores", "aunque sea a El Salvador, Honduras o Nicaragua"),
        ("consulados-asistencia", "Búsqueda de Raíces"),
    ],
)
def test_missing_facts_have_a_home(content: Content, topic_id: str, fact: str) -> None:
    assert fact in _answer(content, topic_id)


def test_passport_fees_are_in_dollars(content: Content) -> None:
    # the quetzal amount moves with the exchange rate: never a fixed Q price
    assert "el monto cambia con el tipo de cambio" in _answer(content, "pasaporte-requisitos")
    for where, text in _texts(content):
        assert not re.search(r"\bQ\s?\d", text), where


# -- dates, warnings, notices, length ----------------------------------------------------------


def test_verified_is_not_the_writing_date(content: Content) -> None:
    for pack in content.languages.values():
        entries = [*pack.topics.values(), *([pack.emergency] if pack.emergency else [])]
        for entry in entries:
            if entry.verified is not None:
                assert entry.written is not None and entry.verified != entry.written, (pack.code, entry)
    for topic in content.spanish.topics.values():
        assert topic.written is not None, topic.id
        assert topic.verified is None, topic.id  # nobody has checked these against the live sources yet


def test_scam_and_smuggling_topics_carry_a_one_line_warning(content: Content) -> None:
    for topic_id in WARNED:
        warning = content.spanish.topics[topic_id].warning
        assert warning and warning.startswith("⚠️ ") and "\n" not in warning, topic_id


def test_mayan_notice_promises_no_translation(content: Content) -> None:
    for lang in content.languages:
        notice = content.ui(lang, "translation_pending").lower()
        assert "pronto" not in notice and "viene" not in notice, lang
        assert "no está traducida" in notice and notice.endswith("en español:"), lang


def test_answers_fit_a_phone_screen(content: Content) -> None:
    for topic in content.spanish.topics.values():
        answer = topic.answer or ""
        assert len(answer) <= 650, (topic.id, len(answer))  # about 500: split a longer topic
        assert answer.count("📞") + answer.count("⚠️") <= 1, topic.id  # one emoji at most
    emergency = content.spanish.emergency
    assert emergency is not None and len(emergency.answer or "") <= 400


# -- synonyms: a variant replaces the word everywhere ----------------------------------------------


def test_a_fee_is_not_a_bribe(content: Content, matcher: Matcher) -> None:
    assert "cuota" not in content.spanish.synonyms.get("soborno", ())
    for text in ("cuanto es la cuota del pasaporte", "la cuota de la visa"):
        assert matcher.match(text, "es").id != "denuncia-funcionarios", text


def test_detained_abroad_is_not_a_returnee_question(content: Content, matcher: Matcher) -> None:
    assert "la migra" not in content.spanish.synonyms.get("migracion", ())  # US/Mexican enforcement, not the IGM
    assert matcher.match("me agarro la migra en texas", "es").id != "retorno-y-recepcion"

"""The loader: the bundled content is valid, and every kind of broken file is reported
with file, line and field, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.content import INTENTS, Content, load_content
from bot.errors import ContentError
from bot.normalize import words

BRIEF_TOPICS = {
    "campana-preguntar-apuntar-verificar", "ofertas-trabajo-extranjero", "trabajo-temporal-programas",
    "formularios-gratuitos", "pasaporte-requisitos", "pasaporte-menores", "pasaporte-vigencia",
    "pasaporte-donde", "dpi-en-el-exterior", "visa-requisitos", "residencia-en-guatemala",
    "ingreso-a-guatemala", "asilo-como-solicitar", "denuncia-funcionarios", "trata-de-personas",
    "trafico-de-migrantes", "ninez-migrante", "retorno-y-recepcion", "educacion-y-certificacion",
    "migrantes-desaparecidos", "consulados-asistencia", "remesas", "salud-en-la-ruta",
}


def test_bundled_content_covers_the_brief(content: Content) -> None:
    # the brief's ids stay; topics may be added (people in transit), never renamed
    assert set(content.spanish.topics) >= BRIEF_TOPICS
    assert set(content.spanish.intents) == set(INTENTS)
    assert list(content.languages) == ["es", "quc", "kek", "mam"]
    assert set(content.menu) == set(content.spanish.topics)
    assert content.spanish.emergency is not None and content.spanish.emergency.answer


def test_bundled_titles_fit_a_whatsapp_row(content: Content) -> None:
    for pack in content.languages.values():
        for topic in pack.topics.values():
            assert len(topic.title) <= 24, topic.id


def test_bundled_phone_list_is_the_briefs(content: Content) -> None:
    # content-brief.md "Phone lines" and facts.md §4; nobody has called them yet
    brief = {"4214-9091", "110", "1574", "1572", "1546", "1555", "1511", "122", "123", "125", "911"}
    assert {line.number for line in content.phones} == brief
    assert all(line.who and line.source and line.verified is None for line in content.phones)


def test_no_example_belongs_to_two_entries(content: Content) -> None:
    # The learned part of the matcher trains on examples: the same message (as the
    # matcher reads it) under two topics, or under a topic and "emergency" or "out of
    # scope", would teach it two answers for one question. A Mayan language is matched
    # with the Spanish content too, so each is checked together with Spanish.
    for code, pack in content.languages.items():
        entries = []
        for each in [content.spanish] if pack is content.spanish else [content.spanish, pack]:
            entries += [(topic.id, topic.examples) for topic in each.topics.values()]
            entries.append(("emergencia", each.emergency.examples if each.emergency else []))
            entries.append(("fuera de tema", list(each.out_of_scope)))
        owner: dict[str, str] = {}
        clashes = []
        for entry, texts in entries:
            for text in texts:
                key = " ".join(words(text))
                if owner.setdefault(key, entry) != entry:
                    clashes.append((text, owner[key], entry))
        assert not clashes, (code, clashes)


def _problems(root: Path) -> list[str]:
    with pytest.raises(ContentError) as caught:
        load_content(root)
    return [str(issue) for issue in caught.value.issues]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_unknown_field_is_named_with_its_line(content_copy: Path) -> None:
    path = content_copy / "es/topics/asilo-como-solicitar.yaml"
    _edit(path, "source:", "sorce:")
    problems = _problems(content_copy)
    assert f"{path}:7 sorce: campo desconocido (¿está bien escrito?)" in problems
    assert len(problems) == 1  # no cascade: the broken topic is still known to the others


def test_missing_required_spanish_field(content_copy: Path) -> None:
    path = content_copy / "es/topics/asilo-como-solicitar.yaml"
    _edit(path, 'source: "prueba"\n', "")
    assert _problems(content_copy) == [f"{path}:1 source: falta este campo (obligatorio en español)"]


def test_title_too_long(content_copy: Path) -> None:
    path = content_copy / "es/topics/asilo-como-solicitar.yaml"
    _edit(path, "title: Pedir asilo", "title: Cómo pedir asilo en Guatemala hoy")
    assert f"{path}:2 title: demasiado largo: máximo 24 caracteres" in _problems(content_copy)


def test_answer_too_long(content_copy: Path) -> None:
    path = content_copy / "es/topics/asilo-como-solicitar.yaml"
    _edit(path, 'answer: "Respuesta de prueba sobre el asilo."', "answer: " + "a" * 4097)
    assert f"{path}:5 answer: demasiado largo: máximo 4096 caracteres" in _problems(content_copy)


def test_related_id_that_does_not_exist(content_copy: Path) -> None:
    path = content_copy / "es/topics/asilo-como-solicitar.yaml"
    _edit(path, "related: [pasaporte-requisitos]", "related:\n  - pasaporte-requisitos\n  - pasaporte-perdido")
    assert f"{path}:8 related[1]: el tema «pasaporte-perdido» no existe" in _problems(content_copy)


def test_duplicate_id(content_copy: Path) -> None:
    copy = content_copy / "es/topics/asilo-2.yaml"
    copy.write_text((content_copy / "es/topics/asilo-como-solicitar.yaml").read_text())
    problems = _problems(content_copy)
    assert f"{copy}:1 id: el id «asilo-como-solicitar» no coincide con el nombre del archivo «asilo-2»" in problems
    assert any("está repetido" in p for p in problems)


def test_yaml_syntax_error_names_the_line(content_copy: Path) -> None:
    path = content_copy / "es/topics/pasaporte-vigencia.yaml"
    _edit(path, "title: Pasaporte vencido", "title: [Pasaporte vencido")
    problems = _problems(content_copy)
    assert any(p.startswith(f"{path}:") and "error de sintaxis YAML" in p for p in problems)


def test_topic_missing_in_spanish(content_copy: Path) -> None:
    (content_copy / "es/topics/asilo-como-solicitar.yaml").unlink()
    problems = _problems(content_copy)
    assert any("menu.yaml:3" in p and "asilo-como-solicitar" in p for p in problems)
    assert any("kiche/topics/asilo-como-solicitar.yaml" in p and "no existe en español" in p for p in problems)


def test_missing_ui_string_and_intent(content_copy: Path) -> None:
    _edit(content_copy / "es/ui.yaml", 'bye: "¡Adiós!"\n', "")
    _edit(content_copy / "es/intents.yaml", "despedida: {keywords: [adios, hasta luego]}\n", "")
    problems = _problems(content_copy)
    assert any("es/ui.yaml" in p and " bye: " in p for p in problems)
    assert any("es/intents.yaml" in p and "despedida" in p for p in problems)


def test_all_errors_at_once(content_copy: Path) -> None:
    _edit(content_copy / "es/topics/asilo-como-solicitar.yaml", "title: Pedir asilo", "title: " + "x" * 30)
    _edit(content_copy / "es/topics/pasaporte-vigencia.yaml", "verified: 2026-01-01", "verified: ayer")
    _edit(content_copy / "kiche/topics/pasaporte-requisitos.yaml", "translation: draft", "translation: lista")
    problems = _problems(content_copy)
    assert len(problems) == 3
    assert any("verified: debe ser una fecha AAAA-MM-DD" in p for p in problems)
    assert any("translation: debe ser uno de: 'draft' or 'reviewed'" in p for p in problems)


def test_reviewed_translation_needs_a_reviewer(content_copy: Path) -> None:
    _edit(content_copy / "kiche/topics/asilo-como-solicitar.yaml", 'reviewed_by: "Fixture reviewer"\n', "")
    assert any("reviewed_by" in p for p in _problems(content_copy))


def test_binary_and_empty_files(content_copy: Path) -> None:
    (content_copy / "es/topics/pasaporte-vigencia.yaml").write_bytes(b"\xff\xfe\x00garbage")
    (content_copy / "es/topics/vacio.yaml").write_text("")
    problems = _problems(content_copy)
    assert any("no está en UTF-8" in p for p in problems)
    assert any("vacio.yaml" in p and "el archivo está vacío" in p for p in problems)


def test_missing_folder() -> None:
    with pytest.raises(ContentError, match="no existe la carpeta"):
        load_content(Path("/nonexistent/content"))


def test_ui_falls_back_to_spanish_string_by_string(fixture_content: Content) -> None:
    assert fixture_content.ui("quc", "translation_pending") == "Traducción en revisión (quc); en español:"
    assert fixture_content.ui("quc", "bye") == "¡Adiós!"


# -- phone numbers: only those of content/phones.yaml ----------------------------------------


def test_a_phone_number_not_on_the_list_is_refused_everywhere(content_copy: Path) -> None:
    topic = content_copy / "es/topics/asilo-como-solicitar.yaml"
    _edit(topic, 'answer: "Respuesta de prueba sobre el asilo."', "answer: |\n  Pedí asilo.\n  Llamá al 📞 2222-3333 o al 110.\n")
    ui = content_copy / "kiche/ui.yaml"
    ui.write_text(ui.read_text() + 'bye: "Chjonte. Llamá al 1234."\n')
    emergency = content_copy / "es/emergency.yaml"
    _edit(emergency, 'line: "Línea de prueba para niños: 1546."', 'line: "Línea de prueba para niños: +502 2444-5555."')
    problems = _problems(content_copy)
    phones = content_copy / "phones.yaml"
    assert problems == [
        (f"{topic}:7 answer: el teléfono «2222-3333» no está en la lista de teléfonos permitidos ({phones}): "
        "si es una línea oficial, agregala allí con quién atiende y su fuente; si no, quitala"),
        (f"{emergency}:7 situations[0].line: el teléfono «+502 2444-5555» no está en la lista de teléfonos permitidos "
        f"({phones}): si es una línea oficial, agregala allí con quién atiende y su fuente; si no, quitala"),
        (f"{ui}:3 bye: el teléfono «1234» no está en la lista de teléfonos permitidos ({phones}): si es una línea "
        "oficial, agregala allí con quién atiende y su fuente; si no, quitala (si no es un teléfono, escribilo "
        "sin «llamá», «línea», «número» o «📞» delante)"),
    ]


def test_a_listed_number_may_be_written_any_way(content_copy: Path) -> None:
    phones = content_copy / "phones.yaml"
    phones.write_text(phones.read_text() + '- number: "4214-9091"\n  who: "IGM (prueba)"\n  source: "prueba"\n')
    _edit(
        content_copy / "es/topics/asilo-como-solicitar.yaml",
        'answer: "Respuesta de prueba sobre el asilo."',
        'answer: "Denunciá al 📞 4214 9091 o al +502 4214-9091; Decreto 5-2022, art. 7; US$50 desde 2022."',
    )
    assert load_content(content_copy).spanish.topics["asilo-como-solicitar"].answer


def test_the_phone_list_itself_is_checked(content_copy: Path) -> None:
    phones = content_copy / "phones.yaml"
    phones.write_text(
        phones.read_text()
        + '- number: "llamar"\n  who: "x"\n  source: "y"\n'
        + '- number: 110\n  who: "repetido"\n  source: "y"\n'
        + '- number: "1511"\n  source: "y"\n'
    )
    problems = _problems(content_copy)
    assert f"{phones}:12 [3].number: un teléfono: solo números, espacios, guiones y «+» al principio" in problems
    assert f"{phones}:15 [4].number: «110» ya está en la lista (elemento 1)" in problems
    assert f"{phones}:18 [5].who: falta este campo" in problems
    assert len(problems) == 3


def test_the_phone_list_is_required(content_copy: Path) -> None:
    (content_copy / "phones.yaml").unlink()
    assert _problems(content_copy) == [
        (f"{content_copy / 'phones.yaml'}: falta la lista de teléfonos permitidos: una lista de «- number: …» "
        "con who, source y verified")
    ]


# -- every problem in one pass ------------------------------------------------------------


def test_a_wrong_field_does_not_hide_the_other_problems_of_its_file(content_copy: Path) -> None:
    path = content_copy / "es/topics/asilo-como-solicitar.yaml"
    _edit(path, "title: Pedir asilo", "title: " + "x" * 30)
    _edit(path, "related: [pasaporte-requisitos]", "related: [pasaporte-requisitos, pasaporte-perdido]")
    _edit(path, 'answer: "Respuesta de prueba sobre el asilo."', 'answer: "Llamá al 1234."')
    assert _problems(content_copy) == [
        f"{path}:2 title: demasiado largo: máximo 24 caracteres",
        f"{path}:6 related[1]: el tema «pasaporte-perdido» no existe",
        (f"{path}:5 answer: el teléfono «1234» no está en la lista de teléfonos permitidos ({content_copy / 'phones.yaml'}): "
        "si es una línea oficial, agregala allí con quién atiende y su fuente; si no, quitala "
        "(si no es un teléfono, escribilo sin «llamá», «línea», «número» o «📞» delante)"),
    ]


def test_a_wrong_ui_string_is_not_also_missing(content_copy: Path) -> None:
    _edit(content_copy / "es/ui.yaml", 'menu_option: "Menú"', 'menu_option: "' + "M" * 30 + '"')
    assert _problems(content_copy) == [f"{content_copy / 'es/ui.yaml'}:6 menu_option: demasiado largo: máximo 24 caracteres"]


def test_a_wrong_intent_is_not_also_missing(content_copy: Path) -> None:
    path = content_copy / "es/intents.yaml"
    _edit(path, "despedida: {keywords: [adios, hasta luego]}", "despedida: {keywords: []}")
    assert _problems(content_copy) == [f"{path}:3 despedida.keywords: no puede estar vacío"]


# -- YAML slips: one error, in Spanish, on the right line ------------------------------------

SLIPS = [
    pytest.param("title: Pasaporte vencido", "title Pasaporte vencido", 2, "falta «:» después del nombre del campo", id="missing-colon"),
    pytest.param("title: Pasaporte vencido", "title:Pasaporte vencido", 2, "con un espacio", id="no-space-after-colon"),
    pytest.param("title: Pasaporte vencido", "title: Pasaporte: vencido", 2, "¿falta un espacio después de «:» o hay «:» dentro de un texto? Poné el texto entre comillas", id="colon-in-text"),
    pytest.param("title: Pasaporte vencido", "title: Pasaporte vencido\n\tverified: 2026-01-01", 3, "hay un tabulador (tecla Tab)", id="tab"),
    pytest.param("title: Pasaporte vencido", "title: [Pasaporte vencido", 2, "la lista entre corchetes «[…]» (o las llaves «{…}») que empieza en esta línea no se cierra", id="open-bracket"),
    pytest.param("title: Pasaporte vencido", "title: Pasaporte vencido\nrelated: [asilo-como-solicitar,", 3, "que empieza en esta línea no se cierra", id="open-bracket-eof"),
    pytest.param("title: Pasaporte vencido", 'title: "Pasaporte vencido', 2, "las comillas que se abren en esta línea no se cierran en ella", id="open-quote"),
    pytest.param("title: Pasaporte vencido", "title: *Pasaporte* vencido", 2, "un texto que empieza con «*» (como *negrita*) va entre comillas", id="bold-unquoted"),
    pytest.param("title: Pasaporte vencido", "title: *vencido", 2, "no se permiten anclas ni referencias de YAML", id="undefined-alias"),
    pytest.param("title: Pasaporte vencido", "title: Pasaporte vencido\n title: Otro", 3, "error de sintaxis YAML:", id="indent-key"),
    pytest.param("verified: 2026-01-01", "verified: 2026-01-01\ntitle: Otro", 9, "«title» aparece dos veces (también en la línea 2): dejá uno solo", id="duplicate-key"),
    pytest.param("keywords: [pasaporte vencido, vencio, vigencia, extension, tramite]", "keywords:\n  - vencio\n - vigencia", 5, "la sangría de esta línea no coincide", id="list-indent"),
    pytest.param('answer: "Respuesta de prueba sobre el pasaporte vencido."', "answer: | Respuesta\n  de prueba", 5, "después de «|» o «>» no va texto", id="block-indicator"),
]


@pytest.mark.parametrize("old, new, line, message", SLIPS)
def test_a_yaml_slip_is_one_error_in_spanish_on_its_line(content_copy: Path, old: str, new: str, line: int, message: str) -> None:
    # pasaporte-vigencia is named by the menu and by two other topics: none of them complains
    path = content_copy / "es/topics/pasaporte-vigencia.yaml"
    _edit(path, old, new)
    problems = _problems(content_copy)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{line}: "), problems
    assert message in problems[0]
    assert "mapping" not in problems[0] and "expected" not in problems[0]  # no PyYAML English


@pytest.mark.parametrize("name", ["menu.yaml", "es/ui.yaml", "es/intents.yaml", "es/emergency.yaml", "es/language.yaml", "kiche/topics/asilo-como-solicitar.yaml", "phones.yaml"])
def test_a_file_that_does_not_parse_causes_no_other_error(content_copy: Path, name: str) -> None:
    path = content_copy / name
    path.write_text("\t" + path.read_text())
    problems = _problems(content_copy)
    assert problems == [
        (f"{path}:1: error de sintaxis YAML: hay un tabulador (tecla Tab): YAML solo acepta espacios para sangrar. "
        "Cambialo por espacios")
    ]


# -- anchors and aliases (issue 15.9) --------------------------------------------------------

BOMB = """\
id: pasaporte-vigencia
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_an_alias_bomb_is_refused_before_it_expands(content_copy: Path) -> None:
    import tracemalloc

    path = content_copy / "es/topics/pasaporte-vigencia.yaml"
    path.write_text(BOMB)
    assert len(BOMB.encode()) < 500  # 9**9 strings once expanded
    tracemalloc.start()
    try:
        problems = _problems(content_copy)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problems == [
        (f"{path}:2: no se permiten anclas ni referencias de YAML («&nombre», «*nombre»): escribí cada texto "
        "completo. Si es un texto que empieza con «&» o «*» (como *negrita*), ponelo entre comillas")
    ]
    assert peak < 20_000_000  # bytes: nothing was expanded


def test_a_lone_anchor_is_refused_too(content_copy: Path) -> None:
    path = content_copy / "es/topics/pasaporte-vigencia.yaml"
    _edit(path, "title: Pasaporte vencido", "title: &t Pasaporte vencido")
    assert _problems(content_copy)[0].startswith(f"{path}:2: no se permiten anclas")


# -- warnings: content that loads but will not work as meant ---------------------------------


def _warnings(root: Path) -> list[str]:
    from bot.content_lint import content_warnings

    return [str(issue) for issue in content_warnings(load_content(root))]  # loads: warnings never stop it


def test_a_one_word_keyword_in_two_topics_says_what_a_plain_query_gets(content_copy: Path) -> None:
    asilo = content_copy / "es/topics/asilo-como-solicitar.yaml"
    _edit(asilo, "keywords: [asilo, refugio", "keywords: [asilo, pasaporte, refugio")
    requisitos = content_copy / "es/topics/pasaporte-requisitos.yaml"
    from bot.matcher import Matcher

    found = Matcher(load_content(content_copy)).match("pasaporte", "es")
    assert found.verdict == "choices" and {"pasaporte-requisitos", "asilo-como-solicitar"} <= set(found.offered)
    warnings = _warnings(content_copy)
    assert warnings[0].startswith(
        f"{requisitos}:3 keywords[0]: «pasaporte» es palabra clave de 2 temas (pasaporte-requisitos, asilo-como-solicitar): "
        f"quien escriba solo «pasaporte» recibirá {'tres' if len(found.offered) == 3 else 'dos'} opciones («Pasaporte» o «Pedir asilo»"
    )
    assert warnings[0].endswith("en vez de la respuesta. Dejala en un solo tema, o usala dentro de una frase en los demás")
    assert warnings[1].startswith(f"{requisitos}:3 keywords[4]: «tramite» es palabra clave de 2 temas (pasaporte-requisitos, pasaporte-vigencia)")


def test_the_warning_says_what_a_shared_word_gets(content_copy: Path) -> None:
    # "menor" alone in two K'iche' topics, while Spanish uses it only inside phrases
    for name in ("asilo-como-solicitar", "pasaporte-requisitos"):
        _edit(content_copy / f"kiche/topics/{name}.yaml", "keywords: [", "keywords: [menor, ")
        _edit(content_copy / f"es/topics/{name}.yaml", "keywords: [", "keywords: [menor de edad, ")
    from bot.matcher import Matcher

    found = Matcher(load_content(content_copy)).match("menor", "quc")
    assert found.id is None  # never one of the two picked
    path = content_copy / "kiche/topics/pasaporte-requisitos.yaml"
    warned = [w for w in _warnings(content_copy) if w.startswith(f"{path}:4 keywords[0]: «menor» es palabra clave de 2 temas")]
    if {"pasaporte-requisitos", "asilo-como-solicitar"} <= set(found.offered):
        assert warned == []  # a broad Mayan word whose topics are all offered: as meant
    else:
        assert len(warned) == 1 and ("«no estoy seguro»" in warned[0] if found.verdict == "not_sure" else "opciones (" in warned[0])


def test_list_items_folded_into_one_are_flagged(content_copy: Path) -> None:
    path = content_copy / "es/topics/asilo-como-solicitar.yaml"
    # the second item is indented one space too far: YAML folds it into "asilo - asilado"
    _edit(path, "keywords: [asilo, refugio, refugiado, proteccion internacional]", "keywords:\n  - asilo\n   - asilado\n  - refugio")
    _edit(path, "examples: [como pido asilo en guatemala]", "examples:\n  - como pido asilo\n   -donde pido refugio")
    assert load_content(content_copy).spanish.topics["asilo-como-solicitar"].keywords == ["asilo - asilado", "refugio"]
    warnings = _warnings(content_copy)
    assert f"{path}:4 keywords[0]: «asilo - asilado» parece dos elementos de la lista juntados en uno: una línea con «- » " \
        "un espacio más adentro que las demás se pega a la de arriba. Poné cada «- » en la misma columna" in warnings
    assert any(w.startswith(f"{path}:8 examples[0]: «como pido asilo -donde pido refugio» parece dos elementos") for w in warnings)


def test_a_keyword_far_longer_than_any_real_one_is_flagged(content_copy: Path) -> None:
    path = content_copy / "es/topics/asilo-como-solicitar.yaml"
    long = "como pido asilo en guatemala si vengo de honduras con mis hijos y no tengo papeles"
    _edit(path, "proteccion internacional]", f"proteccion internacional, {long}]")
    assert f"{path}:3 keywords[4]: palabra clave demasiado larga ({len(long)} caracteres): ¿se juntaron varias líneas? " \
        "Una palabra clave es una palabra o una frase corta; las preguntas enteras van en examples" in _warnings(content_copy)


def test_bundled_content_passes_the_checks(content: Content) -> None:
    from bot.content_lint import content_warnings

    # warnings may exist (Mayan drafts share words on purpose); none of them is a folded list item
    assert not any("juntados en uno" in str(w) or "demasiado larga" in str(w) for w in content_warnings(content))


# -- alerts ---------------------------------------------------------------------------------

ALERT_FILE = "es/alerts/citas-de-pasaporte-en-venta.yaml"


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("topics: [pasaporte-requisitos, pasaporte-vigencia]", "topics: [pasaporte-requisitos, visa]", "6 topics[1]: el tema «visa» no existe"),
        ("topics: [pasaporte-requisitos, pasaporte-vigencia]", "topics: []", "6 topics: nombrá al menos un tema"),
        ("expires: 2099-12-31", "expires: 2025-12-31", "8 expires: vence (2025-12-31) antes de publicarse (2026-01-01)"),
        ("expires: 2099-12-31", "expires: pronto", "8 expires: debe ser una fecha AAAA-MM-DD"),
        ('source: "prueba"\n', "", "1 source: falta este campo (obligatorio en español)"),
        ("verificá en igm.gob.gt.", "llamá al 2222-3333.", "5 text: el teléfono «2222-3333» no está en la lista de teléfonos permitidos"),
        ("id: citas-de-pasaporte-en-venta", "id: otra-cosa", "1 id: el id «otra-cosa» no coincide con el nombre del archivo"),
        ("topics:", "temas:", "6 temas: campo desconocido"),
    ],
    ids=["unknown-topic", "no-topic", "expires-first", "bad-date", "no-source", "phone-not-allowed", "id-mismatch", "unknown-field"],
)
def test_an_alert_is_checked_like_a_topic(content_copy: Path, old: str, new: str, problem: str) -> None:
    path = content_copy / ALERT_FILE
    _edit(path, old, new)
    problems = _problems(content_copy)
    assert any(p.startswith(f"{path}:") and problem in p for p in problems), problems


def test_a_translated_alert_names_a_spanish_one_and_takes_its_dates(content_copy: Path) -> None:
    path = content_copy / "kiche/alerts/citas-de-pasaporte-en-venta.yaml"
    _edit(path, "translation: draft\n", "translation: reviewed\nexpires: 2030-01-01\n")
    stray = content_copy / "kiche/alerts/no-existe.yaml"
    stray.write_text("id: no-existe\ntranslation: draft\ntext: x\n")
    problems = _problems(content_copy)
    assert f"{path}:2 reviewed_by: una traducción revisada lleva reviewed_by y reviewed_on" in problems
    assert any(p.startswith(f"{path}:3 expires: en los idiomas mayas este campo se toma del aviso en español") for p in problems)
    assert f"{stray}:1 id: este aviso no existe en español (content/es/alerts/)" in problems


def test_the_alerts_index_is_by_topic_newest_first(fixture_content: Content) -> None:
    assert fixture_content.alerts_by_topic["pasaporte-requisitos"] == ("citas-de-pasaporte-en-venta", "ofertas-vencidas")
    from datetime import date

    assert fixture_content.alerts_on("pasaporte-requisitos", date(2026, 6, 1)) == ["citas-de-pasaporte-en-venta"]
    assert fixture_content.alerts_on("pasaporte-requisitos", date(2025, 6, 1)) == ["ofertas-vencidas"]
    assert fixture_content.alerts_on("asilo-como-solicitar", date(2025, 6, 1)) == []

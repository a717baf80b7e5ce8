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
    assert BRIEF_TOPICS <= set(content.spanish.topics)
    assert set(content.spanish.intents) == set(INTENTS)
    assert list(content.languages) == ["es", "quc", "kek", "mam"]
    assert set(content.menu) == set(content.spanish.topics)
    assert content.spanish.emergency is not None and content.spanish.emergency.answer


def test_bundled_titles_fit_a_whatsapp_row(content: Content) -> None:
    for pack in content.languages.values():
        for topic in pack.topics.values():
            assert len(topic.title) <= 24, topic.id


def test_bundled_answers_use_only_the_briefs_phone_lines(content: Content) -> None:
    import re

    allowed = {"4214-9091", "110", "1574", "1572", "1546", "1555", "1511"}
    for topic in content.spanish.topics.values():
        for number in re.findall(r"📞\s*([\d-]+)", topic.answer or ""):
            assert number in allowed, (topic.id, number)


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

"""The translators' round trip: export a PO catalogue, edit it as Poedit or Weblate would,
import it back into the YAML files."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from bot.content import load_content, spanish_hash
from bot.content_lint import content_warnings
from bot.errors import PreguntaError
from bot.translations import export_catalog, import_catalog, units, write_catalog
from tests.conftest import BUNDLED_CONTENT
from tests.test_cli import run

NOW = datetime(2027, 1, 10, 15, 40, tzinfo=UTC)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _export(root: Path, target: Path, lang: str = "quc") -> Path:
    write_catalog(export_catalog(load_content(root), lang, now=NOW), target)
    return target


# -- export ------------------------------------------------------------------------------------


def test_export_has_every_text_with_its_context_source_and_state(content_copy: Path, tmp_path: Path) -> None:
    with open(_export(content_copy, tmp_path / "quc.po"), "rb") as stream:
        catalog = read_po(stream)
    assert catalog.locale_identifier == "quc"
    messages = {m.context: m for m in catalog if m.id}
    assert list(messages)[:9] == [
        "pasaporte-requisitos.title", "pasaporte-requisitos.answer",
        "pasaporte-vigencia.title", "pasaporte-vigencia.answer",
        "asilo-como-solicitar.title", "asilo-como-solicitar.answer",
        "emergency.title", "emergency.answer", "emergency.situations[0].line",
    ]
    assert {c for c in messages if c.startswith("ui.")} >= {"ui.greeting", "ui.language_hint", "ui.translation_pending"}
    draft = messages["pasaporte-requisitos.answer"]
    assert (draft.id, draft.string, draft.fuzzy) == ("Respuesta de prueba sobre el pasaporte.", "Borrador en K'iche' de prueba.", True)
    assert "source: prueba" in draft.auto_comments
    reviewed = messages["asilo-como-solicitar.answer"]
    assert (reviewed.string, reviewed.fuzzy) == ("Texto revisado en K'iche' de prueba.", False)
    assert reviewed.user_comments == ["reviewed-by: Fixture reviewer (2026-01-02)"]
    missing = messages["pasaporte-vigencia.title"]
    assert (missing.id, missing.string, missing.fuzzy) == ("Pasaporte vencido", "", False)
    assert messages["ui.translation_pending"].fuzzy  # ui.yaml is a draft
    assert messages["emergency.situations[0].line"].id == "Línea de prueba para niños: 1546."
    assert "no traduzcas lo que va entre llaves: {language}" in messages["ui.language_hint"].auto_comments


def test_a_draft_title_that_is_still_the_spanish_one_is_not_a_translation(content_copy: Path) -> None:
    topic = content_copy / "kiche/topics/pasaporte-requisitos.yaml"
    topic.write_text(topic.read_text().replace("title: Pasaporte (quc)", "title: Pasaporte"))
    by_context = {u.context: u for u in units(load_content(content_copy), "quc")}
    assert by_context["pasaporte-requisitos.title"].translation is None


def test_export_refuses_spanish_and_unknown_languages(fixture_content: object) -> None:
    for lang in ("es", "xx"):
        with pytest.raises(PreguntaError, match="no hay traducción"):
            export_catalog(fixture_content, lang)  # type: ignore[arg-type]


# -- the round trip ------------------------------------------------------------------------------


def test_round_trip_without_changes_changes_nothing(content_copy: Path, tmp_path: Path) -> None:
    before = _files(content_copy)
    report = import_catalog(load_content(content_copy), _export(content_copy, tmp_path / "quc.po"))
    assert (report.changed, report.marked, report.stale, report.failed, report.written) == ([], [], [], [], [])
    assert report.unchanged == 5  # two draft texts, two reviewed ones, ui.translation_pending
    assert _files(content_copy) == before


def test_round_trip_of_the_bundled_content_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "content"
    shutil.copytree(BUNDLED_CONTENT, root)
    before = _files(root)
    for lang in ("quc", "kek", "mam"):
        report = import_catalog(load_content(root), _export(root, tmp_path / f"{lang}.po", lang))
        assert (report.changed, report.marked, report.failed, report.written) == ([], [], [], [])
    assert _files(root) == before


# A catalogue as Poedit saves it after a translator's session: its own header fields and
# wrapping, translator comments, a previous msgid (#|), an obsolete entry (#~), mistakes.
POEDIT = r'''# Preguntá: textos para traducir al K'iche' (quc).
# Ana López <ana@example.org>, 2027.
#
msgid ""
msgstr ""
"Project-Id-Version: Preguntá e3de82ebcde3\n"
"Report-Msgid-Bugs-To: \n"
"POT-Creation-Date: 2027-01-10 15:40+0000\n"
"PO-Revision-Date: 2027-01-15 10:02-0600\n"
"Last-Translator: Ana López <ana@example.org>\n"
"Language-Team: K'iche' (quiché)\n"
"Language: quc\n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Content-Transfer-Encoding: 8bit\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"
"X-Generator: Poedit 3.4.2\n"

#. source: prueba
#. máximo 24 caracteres
#: es/topics/pasaporte-requisitos.yaml
#, fuzzy
msgctxt "pasaporte-requisitos.title"
msgid "Pasaporte"
msgstr "Pasaporte (quc)"

# Falta que la revise una hablante de Totonicapán.
#. source: prueba
#. máximo 4096 caracteres
#: es/topics/pasaporte-requisitos.yaml
#, fuzzy
msgctxt "pasaporte-requisitos.answer"
msgid "Respuesta de prueba sobre el pasaporte."
msgstr ""
"Borrador nuevo en K'iche': una respuesta más larga, que Poedit parte en "
"varias líneas cuando pasa de setenta y nueve columnas al guardar.\n"
"Segunda línea."

# reviewed-by: Ana López (2027-01-15)
#. source: prueba
#: es/topics/pasaporte-vigencia.yaml
msgctxt "pasaporte-vigencia.title"
msgid "Pasaporte vencido"
msgstr "Wuj xk'is uq'ij"

# reviewed-by: Ana López (2027-01-15)
#. source: prueba
#: es/topics/pasaporte-vigencia.yaml
msgctxt "pasaporte-vigencia.answer"
msgid "Respuesta de prueba sobre el pasaporte vencido."
msgstr "Tzij chrij ri wuj xk'is uq'ij."

# reviewed-by: Fixture reviewer (2026-01-02)
msgctxt "asilo-como-solicitar.answer"
msgid "Respuesta vieja sobre el asilo."
msgstr "Texto nuevo para un español que ya cambió."

#, fuzzy
msgctxt "emergency.answer"
msgid "Respuesta de prueba de emergencia: 110 en Guatemala, 911 en México."
msgstr "Tob'anik: 110 pa Guatemala, 911 pa México."

msgctxt "emergency.situations[0].line"
msgid "Línea de prueba para niños: 1546."
msgstr "Ak'alab': 📞 2222-3333."

#, fuzzy
msgctxt "ui.greeting"
msgid "Hola, soy el asistente de prueba. No soy una persona."
msgstr "¿La utz awach? Soy el asistente de prueba. No soy una persona."

#, fuzzy
#| msgid "¡Chao!"
msgctxt "ui.bye"
msgid "¡Adiós!"
msgstr "¡Chjonte!"

#, python-brace-format
msgctxt "ui.language_hint"
msgid "Parece {language}."
msgstr "Parece ri idioma."

#. máximo 24 caracteres
msgctxt "ui.menu_option"
msgid "Menú"
msgstr "Cholb'al ri taq tzij k'o chi upam"

msgctxt "pasaporte-perdido.title"
msgid "Pasaporte perdido"
msgstr "Wuj xsach"

#~ msgctxt "pasaporte-viejo.title"
#~ msgid "Pasaporte viejo"
#~ msgstr "Wuj ojer"
'''


def test_import_of_a_catalogue_edited_in_poedit(content_copy: Path, tmp_path: Path) -> None:
    draft = content_copy / "kiche/topics/pasaporte-requisitos.yaml"
    draft.write_text("# BORRADOR: comentario de la persona que edita\n" + draft.read_text() + "# al final\n")
    before = _files(content_copy)
    po = tmp_path / "quc.po"
    po.write_text(POEDIT, encoding="utf-8")

    report = import_catalog(load_content(content_copy), po)

    assert sorted(report.changed) == sorted([
        "pasaporte-requisitos.answer: texto nuevo (borrador)",
        "pasaporte-vigencia.title: texto nuevo (revisado)",
        "pasaporte-vigencia.answer: texto nuevo (revisado)",
        "emergency.answer: texto nuevo (borrador)",
        "ui.greeting: texto nuevo (borrador)",
        "ui.bye: texto nuevo (borrador)",
    ])
    assert sorted(report.marked) == [
        "emergency.yaml: sin marca → draft",
        "pasaporte-vigencia: sin marca → reviewed (Ana López, 2027-01-15)",
    ]
    assert report.stale == ["asilo-como-solicitar.answer"]
    assert len(report.failed) == 4
    failed = "\n".join(report.failed)
    assert "emergency.situations[0].line: el teléfono «2222-3333» no está en la lista de teléfonos permitidos" in failed
    assert "ui.language_hint: falta {language} (va igual que en español)" in failed
    assert "ui.menu_option: demasiado largo: 33 caracteres, máximo 24" in failed
    assert "pasaporte-perdido.title: contexto desconocido" in failed
    assert report.obsolete == 1 and report.unchanged == 1  # pasaporte-requisitos.title

    # only the files with changes were written; everything else is byte for byte the same
    after = _files(content_copy)
    changed = {name for name in after if before.get(name) != after[name]}
    assert changed == {
        "kiche/topics/pasaporte-requisitos.yaml", "kiche/topics/pasaporte-vigencia.yaml",
        "kiche/emergency.yaml", "kiche/ui.yaml",
    }
    # the edited file keeps its comments and every line the import had no reason to touch
    text = draft.read_text()
    assert text.startswith("# BORRADOR: comentario de la persona que edita\nid: pasaporte-requisitos\ntitle: Pasaporte (quc)\n")
    assert text.endswith("# al final\n")
    assert "answer: |\n  Borrador nuevo en K'iche': una respuesta más larga, que Poedit parte en varias líneas" in text

    content = load_content(content_copy)  # the result loads
    kiche = content.languages["quc"]
    vigencia = kiche.topics["pasaporte-vigencia"]
    assert (vigencia.title, vigencia.translation, vigencia.reviewed_by, vigencia.reviewed_on) == (
        "Wuj xk'is uq'ij", "reviewed", "Ana López", date(2027, 1, 15))
    assert vigencia.translated_from == {
        "title": spanish_hash("Pasaporte vencido"), "answer": spanish_hash("Respuesta de prueba sobre el pasaporte vencido.")}
    assert content.answer("quc", "pasaporte-vigencia") == (vigencia, True)  # reviewed: served in K'iche'
    requisitos = kiche.topics["pasaporte-requisitos"]
    assert requisitos.translation == "draft" and requisitos.answer.endswith("Segunda línea.")
    assert kiche.topics["asilo-como-solicitar"].answer == "Texto revisado en K'iche' de prueba."  # stale: untouched
    assert kiche.emergency is not None and kiche.emergency.translation == "draft"
    assert kiche.ui.bye == "¡Chjonte!" and kiche.ui.translation == "draft" and kiche.ui.language_hint is None

    # and the next export/import round trip changes nothing more
    again = _files(content_copy)
    report = import_catalog(content, _export(content_copy, tmp_path / "again.po"))
    assert (report.changed, report.marked, report.written) == ([], [], [])
    assert _files(content_copy) == again


# A catalogue as Weblate writes it: wrapped at 77, reviewed as a whole (no comments),
# the review named by whoever imports it.
WEBLATE = r'''# K'iche' translation for Preguntá.
msgid ""
msgstr ""
"Project-Id-Version: Preguntá e3de82ebcde3\n"
"POT-Creation-Date: 2027-01-10 15:40+0000\n"
"PO-Revision-Date: 2027-02-01 09:00+0000\n"
"Last-Translator: Weblate Admin <admin@example.org>\n"
"Language-Team: K'iche' <https://hosted.weblate.org/projects/pregunta/content/"
"quc/>\n"
"Language: quc\n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Content-Transfer-Encoding: 8bit\n"
"Plural-Forms: nplurals=2; plural=n != 1;\n"
"X-Generator: Weblate 5.9\n"

#. source: prueba
#: es/topics/pasaporte-requisitos.yaml
msgctxt "pasaporte-requisitos.title"
msgid "Pasaporte"
msgstr "Pasaporte (quc)"

#. source: prueba
#: es/topics/pasaporte-requisitos.yaml
msgctxt "pasaporte-requisitos.answer"
msgid "Respuesta de prueba sobre el pasaporte."
msgstr ""
"Tzij chrij ri wuj: a long reviewed answer that Weblate wraps at seventy-seven "
"columns when it writes the file back."
'''


def test_import_of_a_catalogue_reviewed_as_a_whole_in_weblate(content_copy: Path, tmp_path: Path) -> None:
    po = tmp_path / "quc.po"
    po.write_text(WEBLATE, encoding="utf-8")
    content = load_content(content_copy)
    # without a named reviewer, not-fuzzy is not enough to be reviewed
    plain = import_catalog(content, po)
    assert plain.marked == [] and plain.changed == ["pasaporte-requisitos.answer: texto nuevo (borrador)"]
    assert load_content(content_copy).languages["quc"].topics["pasaporte-requisitos"].translation == "draft"
    report = import_catalog(load_content(content_copy), po, reviewed_by="Equipo K'iche', Weblate")
    assert report.marked == ["pasaporte-requisitos: draft → reviewed (Equipo K'iche', Weblate, 2027-02-01)"]
    topic = load_content(content_copy).languages["quc"].topics["pasaporte-requisitos"]
    assert (topic.translation, topic.reviewed_by, topic.reviewed_on) == ("reviewed", "Equipo K'iche', Weblate", date(2027, 2, 1))


def test_spanish_changed_after_translation_is_fuzzy_again(content_copy: Path, tmp_path: Path) -> None:
    po = tmp_path / "quc.po"
    po.write_text(WEBLATE, encoding="utf-8")
    import_catalog(load_content(content_copy), po, reviewed_by="Ana López")
    spanish = content_copy / "es/topics/pasaporte-requisitos.yaml"
    spanish.write_text(spanish.read_text().replace("Respuesta de prueba sobre el pasaporte.", "Respuesta nueva: US$50 por 5 años."))
    content = load_content(content_copy)
    warnings = [str(w) for w in content_warnings(content)]
    assert any("kiche/topics/pasaporte-requisitos.yaml" in w and "el texto en español cambió después de esta traducción revisada" in w for w in warnings)
    with open(_export(content_copy, tmp_path / "again.po"), "rb") as stream:
        messages = {m.context: m for m in read_po(stream) if m.id}
    answer = messages["pasaporte-requisitos.answer"]
    assert answer.id == "Respuesta nueva: US$50 por 5 años." and answer.fuzzy and answer.user_comments == []
    assert not messages["pasaporte-requisitos.title"].fuzzy  # its Spanish did not change
    # the old catalogue's answer is now stale: its msgid is the old Spanish
    assert import_catalog(content, po).stale == ["pasaporte-requisitos.answer"]


def test_a_catalogue_of_another_language_is_refused(content_copy: Path, tmp_path: Path) -> None:
    po = tmp_path / "kek.po"
    po.write_text(WEBLATE.replace("Language: quc", "Language: kek"), encoding="utf-8")
    with pytest.raises(PreguntaError, match="idioma «kek» desconocido"):
        import_catalog(load_content(content_copy), po)
    with pytest.raises(PreguntaError, match="el catálogo es de «kek», no de «quc»"):
        import_catalog(load_content(content_copy), po, lang="quc")
    broken = tmp_path / "broken.po"
    broken.write_text("hola, esto no es un catálogo\n", encoding="utf-8")
    with pytest.raises(PreguntaError, match="no es un catálogo PO válido"):
        import_catalog(load_content(content_copy), broken, lang="quc")


# -- the commands ----------------------------------------------------------------------------


def test_cli_export_and_import(content_copy: Path, tmp_path: Path) -> None:
    po = tmp_path / "out" / "quc.po"
    done = run("content", "export", "--lang", "quc", "--format", "po", "--out", str(po), "--content", str(content_copy))
    assert done.returncode == 0, done.stderr
    assert po.is_file() and f"catálogo: {po}" in done.stdout
    before = _files(content_copy)
    done = run("content", "import", str(po), "--content", str(content_copy))
    assert done.returncode == 0, done.stderr
    assert "sin cambios" in done.stdout and _files(content_copy) == before

    edited = tmp_path / "edited.po"
    edited.write_text(POEDIT, encoding="utf-8")
    done = run("content", "import", str(edited), "--content", str(content_copy))
    assert done.returncode == 1  # some entries failed: said, and the rest imported
    assert "No importados (4):" in done.stdout and "Desactualizados (1)" in done.stdout
    assert "pasaporte-vigencia: sin marca → reviewed (Ana López, 2027-01-15)" in done.stdout
    assert (content_copy / "kiche/topics/pasaporte-vigencia.yaml").is_file()
    assert "Traceback" not in done.stderr


def test_a_situation_line_brings_its_situation_along(content_copy: Path, tmp_path: Path) -> None:
    po = tmp_path / "quc.po"
    po.write_text(
        WEBLATE.split("#. source")[0]
        + 'msgctxt "emergency.situations[0].line"\nmsgid "Línea de prueba para niños: 1546."\nmsgstr "Ak\'alab\': 1546."\n',
        encoding="utf-8",
    )
    report = import_catalog(load_content(content_copy), po)
    assert report.changed == ["emergency.situations[0].line: texto nuevo (borrador)"] and report.failed == []
    emergency = load_content(content_copy).languages["quc"].emergency
    assert emergency is not None and emergency.translation == "draft"
    assert [(s.keywords, s.line) for s in emergency.situations] == [(["niño", "hijo"], "Ak'alab': 1546.")]

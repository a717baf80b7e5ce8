"""The translators' round trip: content → gettext PO catalogue → content.

Translators work in Poedit or Weblate, not in our YAML. `export_catalog` writes one PO
catalogue per language with Babel: each text people read is one entry whose msgid is
the Spanish text and whose msgctxt names where it goes:

    <topic id>.title / .answer / .warning
    ui.<key>
    emergency.title / emergency.answer / emergency.situations[<i>].line

The Spanish entry's `source` is an extracted comment (`#.`), the current translation is
the msgstr, and the entry is `fuzzy` while it is a draft or when the Spanish changed
after it was translated (`translated_from` keeps a fingerprint of the Spanish per field).

`import_catalog` writes translations back into the language's YAML files, editing only
the values that change (bot.yaml_edit), and reports what changed, what is stale (the
msgid is no longer the current Spanish: the catalogue is older than the content) and
what failed (unknown context, a `{placeholder}` lost, too long, a phone number not on
content/phones.yaml). An entry becomes `translation: reviewed` only when all its texts
in the catalogue are not fuzzy and name their reviewer: a translator comment
`# reviewed-by: Name` (optionally `(YYYY-MM-DD)`), or `reviewed_by=` given by the person
who imports a catalogue reviewed as a whole (a Weblate review round). The header's
Last-Translator is not a review: tools fill it with whoever saved last.

Knows the content model and PO files; nothing of matching, channels or the command line.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import PoFileError, read_po, write_po

from bot.content import (
    UI_KEYS,
    Content,
    Emergency,
    LanguagePack,
    Situation,
    Topic,
    UIFile,
    check_content,
    spanish_hash,
)
from bot.errors import PreguntaError
from bot.phones import PhoneBook
from bot.yaml_edit import Edit, YamlEditError, apply_edits

__all__ = ["ImportReport", "Unit", "export_catalog", "import_catalog", "read_catalog", "units", "write_catalog"]

_REVIEWED_BY = re.compile(
    r"^\s*(?:reviewed[- ]by|revisado[- ]por|revisada[- ]por)\s*:\s*(?P<name>.+?)\s*"
    r"(?:[(,]\s*(?P<day>\d{4}-\d{2}-\d{2})\s*\)?)?\s*$",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
_HEADER = """\
Preguntá: textos para traducir al {name} ({code}).
msgid: el texto en español. msgctxt: dónde va (tema.campo,
ui.texto, emergency.campo). Traducí con los mismos datos y
teléfonos; lo que va entre llaves, como {{language}}, queda igual.
fuzzy (en Poedit: «necesita trabajo») = borrador.
Cuando una persona hablante revisó un texto: quitá fuzzy y
agregá el comentario «reviewed-by: Nombre Apellido».
Después: pregunta content import este-archivo.po"""


@dataclass(frozen=True)
class Unit:
    """One text to translate: where it goes, the Spanish, and the current translation."""

    context: str  # msgctxt: "remesas.answer", "ui.greeting", "emergency.situations[0].line"
    entry: str  # what carries the `translation:` mark: a topic id, "ui" or "emergency"
    loc: tuple[str | int, ...]  # where the text goes in the language's file
    spanish: str
    translation: str | None  # None: nothing translated yet
    source: str | None  # the Spanish entry's source, for the translator
    spanish_path: Path
    path: Path  # the language's file (may not exist yet)
    fuzzy: bool
    reviewer: str | None  # for a reviewed entry: "Name (YYYY-MM-DD)"
    max_length: int | None


@dataclass
class ImportReport:
    """What `import_catalog` did, for the person running it."""

    lang: str
    changed: list[str] = field(default_factory=list)  # "remesas.answer: nuevo texto (borrador)"
    marked: list[str] = field(default_factory=list)  # "remesas: draft → reviewed (Ana, 2027-01-15)"
    stale: list[str] = field(default_factory=list)  # contexts whose msgid is not the current Spanish
    failed: list[str] = field(default_factory=list)  # "remesas.title: …why"
    unchanged: int = 0
    untranslated: int = 0
    obsolete: int = 0
    written: list[Path] = field(default_factory=list)


# -- the texts of a language -----------------------------------------------------------


def units(content: Content, lang: str) -> list[Unit]:
    """Every text of `lang` to translate, in menu order, then the emergency entry and the UI."""
    es = content.spanish
    pack = content.languages[lang]
    out: list[Unit] = []
    ids = list(content.menu) + sorted(set(es.topics) - set(content.menu))
    for topic_id in ids:
        spanish = es.topics[topic_id]
        mine = pack.topics.get(topic_id)
        for name in ("title", "answer", "warning"):
            text = getattr(spanish, name)
            if text:
                out.append(
                    _unit(
                        f"{topic_id}.{name}", topic_id, (name,), text, mine, getattr(mine, name, None), name,
                        spanish.source, es.folder / "topics" / f"{topic_id}.yaml",
                        pack.folder / "topics" / f"{topic_id}.yaml", _max(Topic, name),
                    )
                )
    if es.emergency is not None:
        mine_e = pack.emergency
        path = pack.folder / "emergency.yaml"
        for name in ("title", "answer"):
            text = getattr(es.emergency, name)
            if text:
                out.append(
                    _unit(
                        f"emergency.{name}", "emergency", (name,), text, mine_e, getattr(mine_e, name, None), name,
                        es.emergency.source, es.folder / "emergency.yaml", path, _max(Emergency, name),
                    )
                )
        for index, situation in enumerate(es.emergency.situations):
            current = mine_e.situations[index].line if mine_e and index < len(mine_e.situations) else None
            name = f"situations[{index}].line"
            out.append(
                _unit(
                    f"emergency.{name}", "emergency", ("situations", index, "line"), situation.line, mine_e, current,
                    name, es.emergency.source, es.folder / "emergency.yaml", path, _max(Situation, "line"),
                )
            )
    for key in UI_KEYS:
        text = getattr(es.ui, key)
        if text:
            mine_ui = pack.ui if (pack.folder / "ui.yaml").is_file() else None
            out.append(
                _unit(
                    f"ui.{key}", "ui", (key,), text, mine_ui, getattr(pack.ui, key), key, None,
                    es.folder / "ui.yaml", pack.folder / "ui.yaml", _max(UIFile, key),
                )
            )
    return out


def _unit(
    context: str,
    entry_id: str,
    loc: tuple[str | int, ...],
    spanish: str,
    entry: Any,
    current: str | None,
    name: str,
    source: str | None,
    spanish_path: Path,
    path: Path,
    max_length: int | None,
) -> Unit:
    reviewed = entry is not None and entry.translation == "reviewed"
    if current is not None and current.strip() == spanish.strip() and not reviewed:
        current = None  # a draft that still holds the Spanish (titles are required) is not a translation
    changed = bool(entry is not None and entry.translated_from.get(name, spanish_hash(spanish)) != spanish_hash(spanish))
    fuzzy = current is not None and (not reviewed or changed)
    reviewer = None
    if current is not None and reviewed and not fuzzy and entry.reviewed_by:
        reviewer = entry.reviewed_by + (f" ({entry.reviewed_on.isoformat()})" if entry.reviewed_on else "")
    return Unit(context, entry_id, loc, spanish.strip(), current, source, spanish_path, path, fuzzy, reviewer, max_length)


def _max(model: Any, name: str) -> int | None:
    info = model.model_fields.get(name)
    for item in getattr(info, "metadata", ()):
        if hasattr(item, "max_length"):
            return int(item.max_length)
    return None


# -- export ----------------------------------------------------------------------------


def export_catalog(content: Content, lang: str, *, now: datetime | None = None) -> Catalog:
    """The PO catalogue of `lang`: every Spanish text, its translation, fuzzy while a draft."""
    if lang == "es" or lang not in content.languages:
        known = ", ".join(code for code in content.languages if code != "es")
        raise PreguntaError(f"no hay traducción «{lang}» que exportar; los idiomas son: {known}")
    pack = content.languages[lang]
    now = now or datetime.now(UTC)
    catalog = Catalog(
        locale=lang,
        header_comment="\n".join(f"# {line}".rstrip() for line in _HEADER.format(name=pack.name, code=lang).split("\n")),
        project="Preguntá",
        version=content.version,
        language_team=f"{pack.name} ({pack.name_es})",
        charset="utf-8",
        creation_date=now,
        revision_date=now,
        fuzzy=False,
    )
    catalog.msgid_bugs_address = ""  # Babel's constructor turns "" into its placeholders
    catalog.last_translator = ""
    root = content.root
    for unit in units(content, lang):
        notes = []
        if unit.source:
            notes.append(f"source: {unit.source}")
        if unit.max_length:
            notes.append(f"máximo {unit.max_length} caracteres")
        if _PLACEHOLDER.search(unit.spanish):
            notes.append("no traduzcas lo que va entre llaves: " + ", ".join(sorted(set(_PLACEHOLDER.findall(unit.spanish)))))
        catalog.add(
            unit.spanish,
            string=unit.translation or "",
            context=unit.context,
            locations=[(_relative(unit.spanish_path, root), None)],  # type: ignore[list-item]  # no line: Babel writes the file alone
            flags=("fuzzy",) if unit.fuzzy else (),
            auto_comments=notes,
            user_comments=[f"reviewed-by: {unit.reviewer}"] if unit.reviewer else [],
        )
    return catalog


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def write_catalog(catalog: Catalog, path: Path) -> None:
    """Write `catalog` as a PO file (UTF-8, lines wrapped at 76 like gettext's tools)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _atomic(path) as stream:
        write_po(stream, catalog, width=76, omit_header=False)


def read_catalog(path: Path) -> Catalog:
    """A PO file as Poedit, Weblate or msgmerge write it; PreguntaError when it is not one."""
    try:
        with open(path, "rb") as stream:
            return read_po(stream, abort_invalid=True)
    except OSError as exc:
        raise PreguntaError(f"no se pudo leer {path}: {exc.strerror}") from None
    except (PoFileError, UnicodeDecodeError, ValueError) as exc:  # one line for staff
        raise PreguntaError(f"{path} no es un catálogo PO válido: {exc}") from None


# -- import ----------------------------------------------------------------------------


@dataclass
class _Accepted:
    unit: Unit
    text: str
    reviewer: str | None
    day: date | None


def import_catalog(
    content: Content,
    po_path: Path,
    *,
    lang: str | None = None,
    reviewed_by: str | None = None,
    today: date | None = None,
) -> ImportReport:
    """Write the translations of the PO file into `content`'s YAML files; report everything.

    The files change only where a text or a mark changes. When the result would not load
    (a problem the checks here did not foresee), every file is put back as it was and
    PreguntaError lists the problems.
    """
    catalog = read_catalog(po_path)
    header_lang = (catalog.locale_identifier or "").replace("_", "-") or None
    lang = lang or header_lang
    if lang is None:
        raise PreguntaError(f"{po_path}: el catálogo no dice su idioma (cabecera Language); usá --lang")
    if header_lang and lang != header_lang:
        raise PreguntaError(f"{po_path}: el catálogo es de «{header_lang}», no de «{lang}»")
    if lang == "es" or lang not in content.languages:
        raise PreguntaError(f"{po_path}: idioma «{lang}» desconocido; los idiomas son: {', '.join(content.languages)}")
    report = ImportReport(lang, obsolete=len(catalog.obsolete))
    revised = _revision_day(catalog)
    today = today or date.today()
    book = PhoneBook((line.number for line in content.phones), where=content.root / "phones.yaml")
    by_context = {unit.context: unit for unit in units(content, lang)}

    accepted: dict[str, list[_Accepted]] = {}
    for message in catalog:
        if not message.id:
            continue  # the header
        context = message.context or ""
        unit = by_context.get(context)
        if unit is None:
            report.failed.append(f"{context or '(sin msgctxt)'}: contexto desconocido (¿un tema o texto que ya no existe?)")
            continue
        if message.pluralizable or not isinstance(message.id, str):
            report.failed.append(f"{context}: tiene formas de plural; estos textos no las usan")
            continue
        text = _clean(message.string)
        if message.id.strip() != unit.spanish:
            if text:
                report.stale.append(context)
            continue
        if not text:
            report.untranslated += 1
            continue
        problem = _problem(unit, text, book)
        if problem:
            report.failed.append(f"{context}: {problem}")
            continue
        reviewer, day = _reviewer(message, reviewed_by)
        if message.fuzzy:
            reviewer = None
        accepted.setdefault(unit.entry, []).append(_Accepted(unit, text, reviewer, day or revised or today))

    plans = _plans(content, lang, accepted, report, today)
    _write(content, plans, report)
    return report


def _clean(text: Any) -> str:
    if not isinstance(text, str):
        return ""
    return text.replace("\r\n", "\n").strip()


def _problem(unit: Unit, text: str, book: PhoneBook) -> str | None:
    wanted = sorted(set(_PLACEHOLDER.findall(unit.spanish)))
    found = sorted(set(_PLACEHOLDER.findall(text)))
    if wanted != found:
        missing = [p for p in wanted if p not in found]
        extra = [p for p in found if p not in wanted]
        parts = []
        if missing:
            parts.append(f"falta {', '.join(missing)} (va igual que en español)")
        if extra:
            parts.append(f"sobra {', '.join(extra)} (no está en el español)")
        return "; ".join(parts)
    if unit.max_length and len(text) > unit.max_length:
        return f"demasiado largo: {len(text)} caracteres, máximo {unit.max_length}"
    if unit.max_length and unit.max_length <= 24 and "\n" in text:
        return "va en una sola línea"
    unknown = book.unknown(text)
    if unknown:
        return book.message(unknown[0])
    return None


def _reviewer(message: Message, default: str | None) -> tuple[str | None, date | None]:
    for comment in message.user_comments:
        match = _REVIEWED_BY.match(comment)
        if match:
            day = date.fromisoformat(match["day"]) if match["day"] else None
            return match["name"].strip(), day
    return default, None


def _revision_day(catalog: Catalog) -> date | None:
    """The day a tool last saved the catalogue, when that is after it was exported."""
    revised = catalog.revision_date
    created = catalog.creation_date
    if isinstance(revised, datetime) and isinstance(created, datetime) and revised > created:
        return revised.date()
    return None


@dataclass
class _Plan:
    path: Path
    entry: str
    edits: list[Edit]
    create: str | None = None  # the text of a file that does not exist yet
    changed: list[str] = field(default_factory=list)  # report lines, added once the file is written
    marked: list[str] = field(default_factory=list)


def _plans(content: Content, lang: str, accepted: dict[str, list[_Accepted]], report: ImportReport, today: date) -> list[_Plan]:
    pack = content.languages[lang]
    plans = []
    for entry_id, items in accepted.items():
        entry = _entry(pack, entry_id)
        path = items[0].unit.path
        edits: list[Edit] = []
        translated_from = dict(entry.translated_from) if entry is not None else {}
        changed_any = False
        changed: list[str] = []
        marked: list[str] = []
        for item in items:
            unit = item.unit
            name = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in unit.loc).replace(".[", "[")
            current = _current(entry, unit.loc)
            if current is None or current.strip() != item.text:
                edits.append(_edit_for(unit, item.text, entry, content))
                translated_from[name] = spanish_hash(unit.spanish)
                changed_any = True
                state = "revisado" if item.reviewer else "borrador"
                changed.append(f"{unit.context}: texto nuevo ({state})")
            else:
                report.unchanged += 1
                if item.reviewer and name in translated_from and translated_from[name] != spanish_hash(unit.spanish):
                    translated_from[name] = spanish_hash(unit.spanish)  # re-reviewed after the Spanish changed
        reviewers = sorted({item.reviewer for item in items if item.reviewer})
        all_reviewed = all(item.reviewer for item in items)
        old = entry.translation if entry is not None else None
        new = old
        if all_reviewed:
            new = "reviewed"
        elif changed_any:
            new = "draft"
        marks: list[Edit] = []
        if new != old:
            marks.append(Edit(("translation",), new, after=("title", "id")))
        if all_reviewed:  # this catalogue names who reviewed every text of the entry
            who = "; ".join(reviewers)
            day = max(item.day for item in items if item.day) if any(item.day for item in items) else today
            keep_day = entry is not None and old == "reviewed" and entry.reviewed_by == who and not changed_any
            if entry is None or entry.reviewed_by != who:
                marks.append(Edit(("reviewed_by",), who, after=("translation", "title", "id")))
            if not keep_day and (entry is None or entry.reviewed_on != day):
                marks.append(Edit(("reviewed_on",), day, after=("reviewed_by", "translation", "title", "id")))
            if new != old or entry is None or entry.reviewed_by != who:
                marked.append(f"{_label(entry_id)}: {old or 'sin marca'} → reviewed ({who}, {day.isoformat()})")
        elif new != old:
            marked.append(f"{_label(entry_id)}: {old or 'sin marca'} → {new}")
        if entry is None or translated_from != entry.translated_from:
            marks.append(Edit(("translated_from",), translated_from, after=("reviewed_on", "reviewed_by", "translation", "title", "id")))
        if not edits and not marks:
            continue
        create = None
        if not path.exists():
            create = _new_file(content, lang, entry_id)
        plans.append(_Plan(path, entry_id, marks + edits, create, changed, marked))
    return plans


def _label(entry_id: str) -> str:
    return {"ui": "ui.yaml", "emergency": "emergency.yaml"}.get(entry_id, entry_id)


def _entry(pack: LanguagePack, entry_id: str) -> Any:
    if entry_id == "ui":
        return pack.ui if (pack.folder / "ui.yaml").is_file() else None
    if entry_id == "emergency":
        return pack.emergency
    return pack.topics.get(entry_id)


def _current(entry: Any, loc: tuple[str | int, ...]) -> str | None:
    value: Any = entry
    for part in loc:
        if value is None:
            return None
        if isinstance(part, int):
            value = value[part] if part < len(value) else None
        else:
            value = getattr(value, part, None)
    return value if isinstance(value, str) else None


def _edit_for(unit: Unit, text: str, entry: Any, content: Content) -> Edit:
    """The edit that puts `text` in place; a missing emergency situation is added whole."""
    if unit.loc[0] == "situations":
        index = int(unit.loc[1])
        mine = list(entry.situations) if entry is not None else []
        if index >= len(mine):
            spanish = content.spanish.emergency
            assert spanish is not None
            situations = [{"keywords": list(s.keywords), "line": s.line} for s in mine]
            for extra in spanish.situations[len(mine) : index + 1]:
                situations.append({"keywords": list(extra.keywords), "line": extra.line})
            situations[index]["line"] = text
            return Edit(("situations",), situations, after=("answer", "examples", "keywords", "translated_from", "translation"))
        return Edit(unit.loc, text)
    marks = ("translated_from", "reviewed_on", "reviewed_by", "translation")
    after = {
        "title": ("id",),
        "answer": ("examples", "keywords", *marks, "title"),
        "warning": ("answer", "examples", "keywords", *marks, "title"),
    }
    return Edit(unit.loc, text, after=after.get(str(unit.loc[0]), ()))


def _new_file(content: Content, lang: str, entry_id: str) -> str:
    pack = content.languages[lang]
    head = f"# Traducción al {pack.name} importada con `pregunta content import`.\n"
    if entry_id == "ui":
        return head + "translation: draft\n"
    if entry_id == "emergency":
        return head + "translation: draft\n"
    spanish = content.spanish.topics[entry_id]
    return head + f"id: {entry_id}\ntitle: {_yaml_text(spanish.title)}\ntranslation: draft\n"


def _yaml_text(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _write(content: Content, plans: list[_Plan], report: ImportReport) -> None:
    """Apply the plans; if the content would no longer load, put every file back."""
    if not plans:
        return
    before = {str(issue) for issue in check_content(content.root)[1]}
    originals: dict[Path, bytes | None] = {}
    try:
        for plan in plans:
            original = plan.path.read_bytes() if plan.path.exists() else None
            text = original.decode("utf-8") if original is not None else (plan.create or "")
            try:
                new_text = apply_edits(text, plan.edits)
            except YamlEditError as exc:
                report.failed.append(f"{_label(plan.entry)}: no se pudo escribir sin tocar el resto del archivo ({exc})")
                continue
            if new_text.encode("utf-8") == original:
                continue
            originals[plan.path] = original
            with _atomic(plan.path, text=True) as stream:
                stream.write(new_text)
            report.written.append(plan.path)
            report.changed += plan.changed
            report.marked += plan.marked
        after = [issue for issue in check_content(content.root)[1] if str(issue) not in before]
    except BaseException:
        _restore(originals)
        raise
    if after:
        _restore(originals)
        report.written.clear()
        report.changed.clear()
        report.marked.clear()
        raise PreguntaError(
            "la importación dejaría el contenido con problemas; no se cambió nada:\n"
            + "\n".join(str(issue) for issue in after)
        )


def _restore(originals: dict[Path, bytes | None]) -> None:
    for path, original in originals.items():
        if original is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(original)


class _atomic:
    """Write a file through a temporary one in the same folder, then rename it in place."""

    def __init__(self, path: Path, *, text: bool = False) -> None:
        self.path = Path(path)
        self.text = text

    def __enter__(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        mode = "w" if self.text else "wb"
        self.stream = os.fdopen(fd, mode, encoding="utf-8", newline="") if self.text else os.fdopen(fd, mode)
        return self.stream

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self.stream.close()
        if kind is None:
            if self.path.exists():
                os.chmod(self.tmp, self.path.stat().st_mode & 0o777)
            else:
                os.chmod(self.tmp, 0o644)
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


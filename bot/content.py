"""Load and validate the content folder that campaign staff edit.

Every problem is collected, not just the first, and each names the file, the line and
the field, so a person with a text editor can fix it. Nothing here knows about
matching or channels.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot import audio as _audio
from bot.content_yaml import YamlProblem, parse_yaml
from bot.errors import ContentError, ContentIssue
from bot.phones import PhoneBook

__all__ = [
    "ALERT_TEXT_MAX",
    "ALERT_TITLE_MAX",
    "EMERGENCY",
    "INTENTS",
    "UI_KEYS",
    "Alert",
    "Content",
    "Emergency",
    "LanguagePack",
    "PhoneLine",
    "Situation",
    "Topic",
    "check_content",
    "load_content",
    "read_content_file",
    "spanish_hash",
]

EMERGENCY = "emergencia"  # the id of the emergency entry (content/<lang>/emergency.yaml)
INTENTS = ("saludo", "gracias", "despedida", "menu", "idioma", "ayuda-humana", "entendido", "avisos", "baja")
UI_KEYS = (
    "greeting",
    "choose_language",
    "language_chosen",
    "menu",
    "more_topics",
    "menu_option",
    "related",
    "not_sure",
    "help_option",
    "help_lines",
    "greeting_again",
    "thanks",
    "bye",
    "non_text",
    "slow_down",
    "empty",
    "personal_data",
    "translation_pending",
    "language_hint",
    "draft_notice",
    "choices",
    "choice",
    "valid_numbers",
    "valid_number",
    "ack",
    "repeat",
    "full_answer",
    "language_auto",
    "alerts_consent",
    "alerts_accept",
    "alerts_subscribed",
    "alerts_unsubscribed",
    "alerts_off",
    "alerts_failed",
    "alert_line",
    "alerts_footer",
)
_LANGUAGE_ORDER = ("es", "quc", "kek", "mam")
_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
PHONES_FILE = "phones.yaml"  # in the content root: the only phone numbers texts may give
_MAX_TITLE = 24
_MAX_ANSWER = 4096
ALERT_TITLE_MAX = 160  # the one line shown under an answer ("⚠️ Aviso: …")
ALERT_TEXT_MAX = 700  # what subscribers receive: a WhatsApp template's body holds 1,024 in all

Translation = Literal["draft", "reviewed"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _Reviewable(_Strict):
    translation: Translation | None = None
    reviewed_by: str | None = None
    reviewed_on: date | None = None
    # field → spanish_hash() of the Spanish text this translation was made from; written by
    # `pregunta content import`, so an export can mark the entry fuzzy when the Spanish changes
    translated_from: dict[str, str] = {}


def spanish_hash(text: str) -> str:
    """A short fingerprint of a Spanish source text (`translated_from` keeps it per field)."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:10]


class LanguageFile(_Strict):
    code: str = Field(pattern=r"^[a-z]{2,3}$")
    name: str = Field(min_length=1, max_length=_MAX_TITLE)
    name_es: str = Field(min_length=1, max_length=_MAX_TITLE)
    names: list[str] = []


class UIFile(_Reviewable):
    greeting: str | None = None
    choose_language: str | None = None
    language_chosen: str | None = None
    menu: str | None = None
    more_topics: str | None = Field(default=None, max_length=_MAX_TITLE)
    menu_option: str | None = Field(default=None, max_length=_MAX_TITLE)
    related: str | None = None
    not_sure: str | None = None
    help_option: str | None = Field(default=None, max_length=_MAX_TITLE)
    help_lines: str | None = None
    greeting_again: str | None = None
    thanks: str | None = None
    bye: str | None = None
    non_text: str | None = None
    slow_down: str | None = None
    empty: str | None = None
    personal_data: str | None = None
    translation_pending: str | None = None
    language_hint: str | None = None
    draft_notice: str | None = None
    choices: str | None = None
    choice: str | None = None
    valid_numbers: str | None = None
    valid_number: str | None = None
    ack: str | None = None
    repeat: str | None = None
    no_more: str | None = None  # optional (added later): content without it says "repeat"
    full_answer: str | None = Field(default=None, max_length=_MAX_TITLE)
    language_auto: str | None = None
    alerts_consent: str | None = None
    alerts_accept: str | None = Field(default=None, max_length=_MAX_TITLE)
    alerts_subscribed: str | None = None
    alerts_unsubscribed: str | None = None
    alerts_off: str | None = None
    alerts_failed: str | None = None
    alert_line: str | None = None
    alerts_footer: str | None = None


def _numbers_as_words(cls: type, values: object) -> object:
    """`- 1555` in YAML is a number; as a keyword it is what people type."""
    if isinstance(values, list):
        return [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in values]
    return values


def _no_blank(cls: type, values: list[str]) -> list[str]:
    if any(not str(value).strip() for value in values):
        raise ValueError("empty entry in the list")
    return values


class Intent(_Reviewable):
    keywords: list[str] = Field(min_length=1)


class Topic(_Reviewable):
    """One answerable topic. In Mayan folders only `id`, `title` and `keywords` are needed."""

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")  # as _ID
    title: str = Field(min_length=1, max_length=_MAX_TITLE)
    keywords: list[str] = []
    examples: list[str] = []
    answer: str | None = Field(default=None, min_length=1, max_length=_MAX_ANSWER)
    related: list[str] = []
    warning: str | None = Field(default=None, min_length=1, max_length=200)  # one line put first when offered
    source: str | None = None
    written: date | None = None  # when the text was written from its sources
    verified: date | None = None  # when a person last checked the facts against the source
    audio: str | None = None

    _numbers_are_words = field_validator("keywords", "examples", mode="before")(_numbers_as_words)
    _no_blank_entries = field_validator("keywords", "examples")(_no_blank)


class Situation(_Strict):
    """A kind of emergency and the one line that fits it (1546 for a child in danger)."""

    keywords: list[str] = Field(min_length=1)
    line: str = Field(min_length=1, max_length=300)


class Emergency(_Reviewable):
    """The emergency entry: checked before any topic, answered with the emergency lines.

    `keywords` are the cries and danger words, `examples` whole danger messages (the
    learned part of the matcher trains on them); the answer says where each number
    works, then the line of each situation the message shows.
    """

    title: str = Field(default="Emergencia", min_length=1, max_length=_MAX_TITLE)
    keywords: list[str] = []
    examples: list[str] = []
    answer: str | None = Field(default=None, min_length=1, max_length=_MAX_ANSWER)
    situations: list[Situation] = []
    source: str | None = None
    written: date | None = None
    verified: date | None = None

    _numbers_are_words = field_validator("keywords", "examples", mode="before")(_numbers_as_words)
    _no_blank_entries = field_validator("keywords", "examples")(_no_blank)


class Alert(_Reviewable):
    """A warning about a swindle going round (content/<lang>/alerts/<id>.yaml).

    Shown as one line under the answer of each of its `topics` until `expires`, and sent
    to subscribers with `pregunta alerts send`. In Spanish every field but `verified` is
    needed; a Mayan file gives only its own `title` and `text` (the dates and topics are
    the Spanish file's), and is used once reviewed, as topics are.
    """

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")  # as _ID
    title: str | None = Field(default=None, min_length=1, max_length=ALERT_TITLE_MAX)
    text: str | None = Field(default=None, min_length=1, max_length=ALERT_TEXT_MAX)
    topics: list[str] = []
    published: date | None = None  # shown and sent from this day on
    expires: date | None = None  # last day it is shown or sent
    source: str | None = None  # who warned, and when
    verified: date | None = None  # when a person checked it against the source

    def live(self, day: date) -> bool:
        """Shown on `day`: published by then and not expired (both days included)."""
        return self.published is not None and self.expires is not None and self.published <= day <= self.expires


class PhoneLine(_Strict):
    """One phone line the bot may give (content/phones.yaml): who answers it, and the source."""

    number: str = Field(pattern=r"^\+?[0-9][0-9 ()-]{1,18}[0-9]$")
    who: str = Field(min_length=1)
    source: str = Field(min_length=1)
    verified: date | None = None  # when a person last called or checked the line against the source

    @field_validator("number", mode="before")
    @classmethod
    def _number_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class OutOfScope(_Strict):
    """Everyday messages that are none of our topics: the learned part of the matcher
    trains on them so that it can say "not sure" instead of picking the nearest topic."""

    examples: list[str] = []

    _numbers_are_words = field_validator("examples", mode="before")(_numbers_as_words)
    _no_blank_entries = field_validator("examples")(_no_blank)


@dataclass(frozen=True)
class LanguagePack:
    """Everything one language folder says."""

    code: str
    folder: Path
    name: str
    name_es: str
    names: tuple[str, ...]
    ui: UIFile
    ui_translation: Translation | None
    intents: dict[str, Intent]
    topics: dict[str, Topic]
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)  # word → its variants
    emergency: Emergency | None = None
    out_of_scope: tuple[str, ...] = ()  # examples of messages that are no topic of ours
    alerts: dict[str, Alert] = field(default_factory=dict)


@dataclass(frozen=True)
class Content:
    """A validated content folder. Immutable: a reload builds a new one."""

    root: Path
    languages: dict[str, LanguagePack]  # in menu order: Spanish first
    menu: tuple[str, ...]
    version: str
    loaded_at: float
    load_seconds: float
    serve_drafts: frozenset[str] = field(default_factory=frozenset)
    phones: tuple[PhoneLine, ...] = ()  # content/phones.yaml: the only numbers texts may give
    alerts_by_topic: dict[str, tuple[str, ...]] = field(default_factory=dict)  # topic → alert ids, newest first

    @property
    def spanish(self) -> LanguagePack:
        return self.languages["es"]

    def ui(self, lang: str, key: str) -> str:
        """A UI string in `lang`, falling back to Spanish string by string."""
        pack = self.languages.get(lang)
        value: str | None = getattr(pack.ui, key) if pack else None
        if value:
            return value
        spanish: str = getattr(self.spanish.ui, key)
        return spanish

    def title(self, lang: str, topic_id: str) -> str:
        pack = self.languages.get(lang)
        topic = pack.topics.get(topic_id) if pack else None
        if topic and self._servable(lang, topic):
            return topic.title
        return self.spanish.topics[topic_id].title

    def answer(self, lang: str, topic_id: str) -> tuple[Topic, bool]:
        """The topic to answer from, and whether it is in `lang` (False: Spanish fallback)."""
        pack = self.languages.get(lang)
        topic = pack.topics.get(topic_id) if pack else None
        if topic and topic.answer and self._servable(lang, topic):
            return topic, True
        return self.spanish.topics[topic_id], lang == "es"

    def audio(self, lang: str, topic_id: str) -> Path | None:
        """The recording of a topic in `lang`, when it names one and the entry may be served
        (reviewed, Spanish, or a `serve_drafts` language): a draft recording waits like a draft text."""
        pack = self.languages.get(lang)
        topic = pack.topics.get(topic_id) if pack else None
        if pack and topic and topic.audio and self._servable(lang, topic):
            return pack.folder / topic.audio
        return None

    def emergency(self, lang: str) -> tuple[Emergency, bool]:
        """The emergency entry to answer from, and whether it is in `lang` (False: Spanish fallback)."""
        pack = self.languages.get(lang)
        entry = pack.emergency if pack else None
        if entry and entry.answer and self._servable(lang, entry):
            return entry, True
        spanish = self.spanish.emergency
        assert spanish is not None  # the loader refuses Spanish content without it
        return spanish, lang == "es"

    def alert(self, lang: str, alert_id: str) -> tuple[Alert, str, str]:
        """An alert's (Spanish entry, title, text) in `lang`: its reviewed translation, else
        Spanish, text by text. The Spanish entry holds the dates and topics."""
        spanish = self.spanish.alerts[alert_id]
        pack = self.languages.get(lang)
        own = pack.alerts.get(alert_id) if pack and lang != "es" else None
        title, text = spanish.title or "", spanish.text or ""
        if own is not None and own.text and self._servable(lang, own):
            title, text = own.title or title, own.text
        return spanish, title, text

    def alerts_on(self, topic_id: str, day: date) -> list[str]:
        """Ids of the alerts shown under `topic_id` on `day`, newest first."""
        alerts = self.spanish.alerts
        return [a for a in self.alerts_by_topic.get(topic_id, ()) if alerts[a].live(day)]

    def _servable(self, lang: str, entry: _Reviewable) -> bool:
        if lang == "es" or entry.translation == "reviewed":
            return True
        return lang in self.serve_drafts


# -- loading -------------------------------------------------------------------------

_MESSAGES = {
    "missing": "falta este campo",
    "extra_forbidden": "campo desconocido (¿está bien escrito?)",
    "string_too_long": "demasiado largo: máximo {max_length} caracteres",
    "string_too_short": "no puede estar vacío",
    "too_short": "no puede estar vacío",
    "string_type": "debe ser texto",
    "list_type": "debe ser una lista (líneas que empiezan con «- »)",
    "date_from_datetime_parsing": "debe ser una fecha AAAA-MM-DD",
    "date_type": "debe ser una fecha AAAA-MM-DD",
    "date_parsing": "debe ser una fecha AAAA-MM-DD",
    "string_pattern_mismatch": "solo letras minúsculas sin tilde, números y guiones",
    "literal_error": "debe ser uno de: {expected}",
    "model_type": "debe ser una lista de campos «nombre: valor»",
    "dict_type": "debe ser una lista de campos «nombre: valor»",
}
_PATTERN_MESSAGES = {"number": "un teléfono: solo números, espacios, guiones y «+» al principio"}

Loc = tuple[str | int, ...]


def _message(error: Any) -> str:
    if error["type"] == "string_pattern_mismatch" and error["loc"] and error["loc"][-1] in _PATTERN_MESSAGES:
        return _PATTERN_MESSAGES[str(error["loc"][-1])]
    template = _MESSAGES.get(error["type"])
    if template is None:
        return str(error["msg"])
    return template.format(**(error.get("ctx") or {}))


class _Reader:
    """Reads content files and collects every problem, each reported once.

    A problem later checks would only repeat is not added: a file that does not parse
    still counts as existing (its id, the file stem, is in `broken_ids`), and a field
    already reported (`flagged`) is not reported again as missing.
    """

    def __init__(self) -> None:
        self.issues: list[ContentIssue] = []
        self.digest = hashlib.sha256()
        self.lines: dict[Path, dict[Loc, int]] = {}
        self.blocks: dict[Path, dict[Loc, int]] = {}  # where each `|` text starts
        self.broken_ids: set[str] = set()  # topics whose file does not parse: they exist for the others
        self.unreadable: set[Path] = set()  # files that do not parse (or do not decode)
        self.flagged: dict[Path, set[str]] = defaultdict(set)  # top-level fields already reported

    def read(self, path: Path) -> tuple[Any, dict[Loc, int]]:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.add(path, None, "", f"no se pudo leer el archivo: {exc.strerror}")
            self.unreadable.add(path)
            return None, {}
        self.digest.update(str(path).encode() + b"\0" + raw)
        try:
            located = parse_yaml(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self.add(path, None, "", "el archivo no está en UTF-8")
            self.unreadable.add(path)
            return None, {}
        except YamlProblem as exc:
            self.add(path, exc.line, "", exc.message)
            self.unreadable.add(path)
            return None, {}
        self.lines[path] = located.lines
        self.blocks[path] = located.blocks
        return located.data, located.lines

    def mapping(self, path: Path, wrong_shape: str) -> tuple[dict[Any, Any], dict[Loc, int]]:
        """An optional file holding a YAML mapping; {} when it is absent or not a mapping."""
        if not path.is_file():
            return {}, {}
        data, lines = self.read(path)
        if data is not None and not isinstance(data, dict):
            self.add(path, 1, "", wrong_shape)
        return (data if isinstance(data, dict) else {}), lines

    def add(self, path: Path, line: int | None, field_name: str, message: str) -> None:
        self.issues.append(ContentIssue(path, line, field_name, message))

    def reported(self, path: Path, *loc: str | int) -> bool:
        """Whether `path` (or its field loc[0]) already has a problem that a later check would repeat."""
        return path in self.unreadable or (bool(loc) and str(loc[0]) in self.flagged.get(path, ()))

    def at(self, path: Path, field_name: str, message: str, *loc: str | int) -> None:
        """Add a follow-up issue at the line of `loc` (or of the field), unless already reported."""
        loc = loc or ((field_name,) if field_name else ())
        if self.reported(path, *loc):
            return
        lines = self.lines.get(path, {})
        line = _line_for(loc, lines) if lines else None
        self.add(path, line, field_name, message)

    def validate(
        self,
        model: type[_Strict],
        path: Path,
        data: Any,
        lines: dict[Loc, int],
        *,
        prefix: Loc = (),
        fallback: dict[str, Any] | None = None,
    ) -> Any:
        """The model, or the model without its wrong fields when `fallback` fills what is required.

        Every wrong field is reported; the partial model still takes part in the checks
        across files (a `related` id, a phone number), so one pass lists every problem.
        """
        if path in self.unreadable:
            return None  # its one problem is listed already
        if data is None:
            data = {}
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
        bad: set[str] = set()
        for error in errors:
            loc = tuple(error["loc"])
            full = (*prefix, *loc)
            self.add(path, _line_for(full, lines), _dotted(full), _message(error))
            if loc:
                bad.add(str(loc[0]))
                self.flagged[path].add(str(full[0]))
            if error["type"] == "extra_forbidden" and loc and isinstance(data, dict):
                # "sorce:" is "source:" misspelt: do not also say that source is missing
                for near in difflib.get_close_matches(str(loc[0]), list(model.model_fields), n=1, cutoff=0.6):
                    if near not in data:
                        self.flagged[path].add(str((*prefix, near)[0]))
                        bad.add(near)
        if prefix:
            self.flagged[path].add(str(prefix[0]))
        if not isinstance(data, dict):
            return None
        kept = {key: value for key, value in data.items() if str(key) not in bad}
        for name, info in model.model_fields.items():
            if info.is_required() and name not in kept:
                if fallback is None or name not in fallback:
                    return None
                kept[name] = fallback[name]
        try:
            return model.model_validate(kept)
        except ValidationError:
            return None


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _yaml_files(folder: Path) -> Iterator[Path]:
    yield from sorted(p for p in folder.glob("*.yaml") if p.is_file())


def read_content_file(path: Path) -> tuple[Any, dict[Loc, int]]:
    """One content file's data and the line of each key (None, {} when it does not parse).

    For tools that point at a line after the content loaded (`content check`'s warnings).
    """
    return _Reader().read(path)


def load_content(root: Path, *, serve_drafts: frozenset[str] | set[str] = frozenset()) -> Content:
    """Load and check `root`; raise ContentError listing every problem found."""
    content, issues = check_content(root, serve_drafts=serve_drafts)
    if issues:
        raise ContentError(issues)
    return content


def check_content(
    root: Path, *, serve_drafts: frozenset[str] | set[str] = frozenset()
) -> tuple[Content, list[ContentIssue]]:
    """Every problem of `root`, and the content as far as it could be read.

    With problems the content is partial (a wrong field left out, a broken file or a
    language missing, maybe Spanish): good for pointing at more things staff can fix,
    never for serving. `load_content` is the one to serve from.
    """
    started = time.perf_counter()
    root = Path(root)
    reader = _Reader()
    if not root.is_dir():
        missing = ContentIssue(root, None, "", "no existe la carpeta de contenido")
        return Content(root, {}, (), "", time.time(), 0.0), [missing]

    menu_path = root / "menu.yaml"
    menu: list[str] = []
    if menu_path.is_file():
        data, lines = reader.read(menu_path)
        if data is not None and (not isinstance(data, list) or not all(isinstance(x, str) for x in data)):
            reader.add(menu_path, 1, "", "debe ser una lista de ids de temas")
            reader.unreadable.add(menu_path)
        elif data:
            menu = data
            for index, topic_id in enumerate(menu):
                if menu.index(topic_id) != index:
                    reader.add(menu_path, lines.get((index,)), f"[{index}]", f"«{topic_id}» está repetido")
    else:
        reader.add(menu_path, None, "", "falta el archivo con el orden del menú")
        reader.unreadable.add(menu_path)

    phones, book = _load_phones(root / PHONES_FILE, reader)

    packs: dict[str, LanguagePack] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        pack = _load_language(folder, reader)
        if pack is None:
            continue
        if pack.code in packs:
            reader.add(folder / "language.yaml", None, "code", f"el código «{pack.code}» ya lo usa {packs[pack.code].folder}")
            continue
        packs[pack.code] = pack

    if "es" not in packs:
        if not reader.reported(root / "es" / "language.yaml", "code"):
            reader.add(root / "es", None, "", "falta la carpeta del español (code: es)")
    else:
        _check_spanish(packs["es"], menu, menu_path, reader)
        for pack in packs.values():
            _check_against_spanish(pack, packs["es"], reader)
    for pack in packs.values():
        _check_audio(pack, reader)
        if book is not None:
            _check_phones(pack, book, reader)

    if "es" in packs:
        for pack in packs.values():
            _check_alerts(pack, packs["es"], reader)
    ordered = {code: packs[code] for code in _LANGUAGE_ORDER if code in packs}
    ordered.update({code: packs[code] for code in sorted(packs) if code not in ordered})
    content = Content(
        root=root,
        languages=ordered,
        menu=tuple(menu),
        version=reader.digest.hexdigest()[:12],
        loaded_at=time.time(),
        load_seconds=time.perf_counter() - started,
        serve_drafts=frozenset(serve_drafts),
        phones=phones,
        alerts_by_topic=_alerts_by_topic(packs["es"]) if "es" in packs else {},
    )
    return content, reader.issues


def _load_phones(path: Path, reader: _Reader) -> tuple[tuple[PhoneLine, ...], PhoneBook | None]:
    """content/phones.yaml; no book (no phone checks) when it is missing or does not parse."""
    if not path.is_file():
        reader.add(
            path,
            None,
            "",
            "falta la lista de teléfonos permitidos: una lista de «- number: …» con who, source y verified",
        )
        return (), None
    data, lines = reader.read(path)
    if path in reader.unreadable:
        return (), None
    if not isinstance(data, list):
        reader.add(path, 1, "", "debe ser una lista de teléfonos: «- number: 110», con who y source debajo")
        return (), None
    phones: list[PhoneLine] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(data):
        line = reader.validate(PhoneLine, path, item, lines, prefix=(index,))
        if line is None:
            continue
        key = "".join(ch for ch in line.number if ch.isdigit())
        if key in seen:
            reader.at(path, f"[{index}].number", f"«{line.number}» ya está en la lista (elemento {seen[key] + 1})", index, "number")
            continue
        seen[key] = index
        phones.append(line)
    return tuple(phones), PhoneBook((p.number for p in phones), where=path)


def _load_language(folder: Path, reader: _Reader) -> LanguagePack | None:
    language_path = folder / "language.yaml"
    if not language_path.is_file():
        reader.add(language_path, None, "", "falta el archivo del idioma")
        return None
    language = reader.validate(LanguageFile, language_path, *reader.read(language_path))

    ui_path = folder / "ui.yaml"
    ui = UIFile()
    if ui_path.is_file():
        ui = reader.validate(UIFile, ui_path, *reader.read(ui_path), fallback={}) or ui
    elif language and language.code == "es":
        reader.add(ui_path, None, "", "falta el archivo de textos de la interfaz")

    intents: dict[str, Intent] = {}
    intents_path = folder / "intents.yaml"
    data, lines = reader.mapping(intents_path, "debe ser una lista de intenciones «id: …»")
    for intent_id, value in data.items():
        key = str(intent_id)
        if key not in INTENTS:
            reader.add(intents_path, lines.get((key,)), key, f"intención desconocida; las válidas son: {', '.join(INTENTS)}")
            continue
        intent = reader.validate(Intent, intents_path, value, lines, prefix=(key,))
        if intent:
            intents[key] = intent

    synonyms: dict[str, tuple[str, ...]] = {}
    synonyms_path = folder / "synonyms.yaml"
    data, lines = reader.mapping(synonyms_path, "debe ser una lista de «palabra: [variantes]»")
    for word, variants in data.items():
        if not isinstance(variants, list) or not all(isinstance(v, str | int) for v in variants):
            reader.add(synonyms_path, lines.get((str(word),)), str(word), "debe ser una lista de variantes: [a, b, c]")
            continue
        synonyms[str(word)] = tuple(str(v) for v in variants)

    emergency: Emergency | None = None
    emergency_path = folder / "emergency.yaml"
    if emergency_path.is_file():
        emergency = reader.validate(Emergency, emergency_path, *reader.read(emergency_path), fallback={})

    out_of_scope: OutOfScope | None = None
    out_of_scope_path = folder / "out_of_scope.yaml"
    if out_of_scope_path.is_file():
        out_of_scope = reader.validate(OutOfScope, out_of_scope_path, *reader.read(out_of_scope_path), fallback={})

    topics: dict[str, Topic] = {}
    for path in _yaml_files(folder / "topics"):
        data, lines = reader.read(path)
        if path in reader.unreadable:
            reader.broken_ids.add(path.stem)  # it exists: the menu and other topics may name it
            continue
        if data is None:
            reader.add(path, None, "", "el archivo está vacío")
            reader.broken_ids.add(path.stem)
            continue
        fallback = {"id": path.stem, "title": path.stem} if _ID.fullmatch(path.stem) else None
        topic = reader.validate(Topic, path, data, lines, fallback=fallback)
        if topic is None:
            reader.broken_ids.add(str(data.get("id", path.stem)) if isinstance(data, dict) else path.stem)
            reader.broken_ids.add(path.stem)
            continue
        if topic.id != path.stem:
            reader.add(path, lines.get(("id",)), "id", f"el id «{topic.id}» no coincide con el nombre del archivo «{path.stem}»")
        if topic.id in topics:
            reader.add(path, lines.get(("id",)), "id", f"el id «{topic.id}» está repetido")
            continue
        topics[topic.id] = topic

    alerts: dict[str, Alert] = {}
    for path in _yaml_files(folder / "alerts"):
        data, lines = reader.read(path)
        if path in reader.unreadable:
            continue
        if data is None:
            reader.add(path, None, "", "el archivo está vacío")
            continue
        fallback = {"id": path.stem} if _ID.fullmatch(path.stem) else None
        alert = reader.validate(Alert, path, data, lines, fallback=fallback)
        if alert is None:
            continue
        if alert.id != path.stem:
            reader.add(path, lines.get(("id",)), "id", f"el id «{alert.id}» no coincide con el nombre del archivo «{path.stem}»")
            continue
        alerts[alert.id] = alert

    if language is None:
        return None
    return LanguagePack(
        code=language.code,
        folder=folder,
        name=language.name,
        name_es=language.name_es,
        names=tuple(language.names),
        ui=ui,
        ui_translation=ui.translation,
        intents=intents,
        topics=topics,
        synonyms=synonyms,
        emergency=emergency,
        out_of_scope=tuple(out_of_scope.examples) if out_of_scope else (),
        alerts=alerts,
    )


def _topic_path(pack: LanguagePack, topic_id: str) -> Path:
    return pack.folder / "topics" / f"{topic_id}.yaml"


def _check_spanish(es: LanguagePack, menu: list[str], menu_path: Path, reader: _Reader) -> None:
    ui_path = es.folder / "ui.yaml"
    for key in UI_KEYS:
        if not getattr(es.ui, key):
            reader.at(ui_path, key, "falta este texto en español (los demás idiomas lo usan de respaldo)")
    intents_path = es.folder / "intents.yaml"
    for intent_id in INTENTS:
        if intent_id not in es.intents:
            reader.at(intents_path, intent_id, "falta esta intención en español")
    for topic_id in menu:
        if topic_id not in es.topics and topic_id not in reader.broken_ids:
            reader.at(menu_path, "", f"el menú nombra «{topic_id}», que no tiene archivo en content/es/topics/", menu.index(topic_id))
    emergency_path = es.folder / "emergency.yaml"
    if es.emergency is None:
        if not emergency_path.is_file():
            reader.add(emergency_path, None, "", "falta la entrada de emergencia en español")
        # else: its own errors are listed already
    else:
        for name in ("answer", "source"):
            if getattr(es.emergency, name) is None:
                reader.at(emergency_path, name, "falta este campo (obligatorio en español)")
        if not es.emergency.keywords:
            reader.at(emergency_path, "keywords", "hace falta al menos una palabra clave")
    for topic in es.topics.values():
        path = _topic_path(es, topic.id)
        for name in ("answer", "source"):
            if getattr(topic, name) is None:
                reader.at(path, name, "falta este campo (obligatorio en español)")
        if not topic.keywords:
            reader.at(path, "keywords", "hace falta al menos una palabra clave")
        if topic.id not in menu and not reader.reported(menu_path):
            reader.at(path, "id", "este tema no está en content/menu.yaml: nadie lo vería en el menú")


def _check_against_spanish(pack: LanguagePack, es: LanguagePack, reader: _Reader) -> None:
    for topic in pack.topics.values():
        path = _topic_path(pack, topic.id)
        if pack.code != "es":
            if topic.id not in es.topics and topic.id not in reader.broken_ids:
                reader.at(path, "id", "este tema no existe en español")
            if topic.translation is None:
                reader.at(path, "translation", "indicá draft o reviewed")
        if topic.translation == "reviewed" and not (topic.reviewed_by and topic.reviewed_on):
            reader.at(path, "reviewed_by", "una traducción revisada lleva reviewed_by y reviewed_on", "translation")
        for index, related in enumerate(topic.related):
            if related not in es.topics and related not in reader.broken_ids:
                reader.at(path, f"related[{index}]", f"el tema «{related}» no existe", "related", index)


_FROM_SPANISH = ("topics", "published", "expires")  # a translated alert takes these from the Spanish file


def _check_alerts(pack: LanguagePack, es: LanguagePack, reader: _Reader) -> None:
    """Spanish alerts are whole (text, topics that exist, dates in order, a source); a
    translation names a Spanish alert, says draft or reviewed, and adds only its texts."""
    for alert in pack.alerts.values():
        path = pack.folder / "alerts" / f"{alert.id}.yaml"
        if pack.code == "es":
            for name in ("title", "text", "source", "published", "expires"):
                if getattr(alert, name) is None:
                    reader.at(path, name, "falta este campo (obligatorio en español)")
            if not alert.topics:
                reader.at(path, "topics", "nombrá al menos un tema: el aviso sale debajo de sus respuestas")
            for index, topic_id in enumerate(alert.topics):
                if topic_id not in es.topics and topic_id not in reader.broken_ids:
                    reader.at(path, f"topics[{index}]", f"el tema «{topic_id}» no existe", "topics", index)
            if alert.published and alert.expires and alert.expires < alert.published:
                reader.at(path, "expires", f"vence ({alert.expires}) antes de publicarse ({alert.published})")
            continue
        if alert.id not in es.alerts:
            reader.at(path, "id", "este aviso no existe en español (content/es/alerts/)")
        if alert.translation is None:
            reader.at(path, "translation", "indicá draft o reviewed")
        if alert.translation == "reviewed" and not (alert.reviewed_by and alert.reviewed_on):
            reader.at(path, "reviewed_by", "una traducción revisada lleva reviewed_by y reviewed_on", "translation")
        for name in _FROM_SPANISH:
            if getattr(alert, name):
                reader.at(path, name, "en los idiomas mayas este campo se toma del aviso en español: quitalo de aquí")


def _alerts_by_topic(es: LanguagePack) -> dict[str, tuple[str, ...]]:
    """Each topic's alerts, the most recently published first (the index the dialogue reads)."""
    found: dict[str, list[Alert]] = defaultdict(list)
    for alert in es.alerts.values():
        for topic_id in alert.topics:
            found[topic_id].append(alert)
    ordered = {t: sorted(a, key=lambda x: (x.published or date.min, x.id), reverse=True) for t, a in found.items()}
    return {t: tuple(a.id for a in alerts) for t, alerts in ordered.items()}


def _check_audio(pack: LanguagePack, reader: _Reader) -> None:
    """Each recorded answer exists inside its language folder and is a playable voice note."""
    folder = pack.folder.resolve()
    for topic in pack.topics.values():
        if topic.audio is None:
            continue
        path = _topic_path(pack, topic.id)
        target = (pack.folder / topic.audio).resolve()
        if Path(topic.audio).is_absolute() or not target.is_relative_to(folder):
            reader.at(path, "audio", f"debe ser un archivo dentro de {pack.folder}, por ejemplo audio/{topic.id}.ogg")
            continue
        wrong = _audio.problem(pack.folder / topic.audio)
        if wrong:
            reader.at(path, "audio", f"{pack.folder / topic.audio}: {wrong}")


def _check_phones(pack: LanguagePack, book: PhoneBook, reader: _Reader) -> None:
    """Every text people read gives only the numbers of content/phones.yaml."""

    def check(path: Path, text: str | None, *loc: str | int) -> None:
        if not text:
            return
        lines = reader.lines.get(path, {})
        block = reader.blocks.get(path, {}).get(loc)
        for issue in book.issues(text, path, _dotted(loc), _line_for(loc, lines), block_start=block):
            reader.issues.append(issue)

    for topic in pack.topics.values():
        path = _topic_path(pack, topic.id)
        for name in ("title", "answer", "warning"):
            check(path, getattr(topic, name), name)
    ui_path = pack.folder / "ui.yaml"
    for key in UI_KEYS:
        check(ui_path, getattr(pack.ui, key), key)
    for alert in pack.alerts.values():
        path = pack.folder / "alerts" / f"{alert.id}.yaml"
        check(path, alert.title, "title")
        check(path, alert.text, "text")
    if pack.emergency is not None:
        path = pack.folder / "emergency.yaml"
        check(path, pack.emergency.title, "title")
        check(path, pack.emergency.answer, "answer")
        for index, situation in enumerate(pack.emergency.situations):
            check(path, situation.line, "situations", index, "line")

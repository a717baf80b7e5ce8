"""Warnings for content that loads but will not work the way its writer meant.

Errors stop the content (`load_content`); these do not, so the server's hot reload never
depends on them. `pregunta content check` prints them after the errors:

- a one-word keyword in two or more topics: the matcher is asked what a message of just
  that word gets, and the warning says it ("no estoy seguro", or two options instead of
  the answer);
- a keyword or example that looks like two list items run together ("asilo - asilado":
  a line indented one space too far is folded by YAML into the line above), or a keyword
  far longer than any real keyword;
- a reviewed translation made from a Spanish text that has changed since.

Knows the content and asks the matcher; knows nothing of channels or the command line.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bot.content import Content, LanguagePack, read_content_file, spanish_hash
from bot.errors import ContentIssue
from bot.matcher import Matcher
from bot.normalize import words

__all__ = ["MAX_KEYWORD_CHARS", "MAX_KEYWORD_WORDS", "content_warnings"]

MAX_KEYWORD_WORDS = 8  # the longest real keywords have 7 ("que no me engañen en el viaje")
MAX_KEYWORD_CHARS = 60  # … and 36 characters ("documento personal de identificación")
_MERGED = re.compile(r"(?:^|\s)-(?:\s|$)|\s-\S")  # "asilo - asilado", "asilo -asilado", "- asilo"


def content_warnings(content: Content, *, matcher: Matcher | None = None, partial: bool = False) -> list[ContentIssue]:
    """Every warning for `content`. With `partial` (content that had errors) the checks that
    need the matcher are left out: they would describe content that will not be served."""
    lines = _Lines()
    out: list[ContentIssue] = []
    for pack in content.languages.values():
        out += _shape_warnings(pack, lines)
    if partial or "es" not in content.languages:
        return out
    matcher = matcher or Matcher(content)
    for pack in content.languages.values():
        out += _shared_keywords(content, pack, matcher, lines)
        out += _stale_translations(content, pack, lines)
    return out


class _Lines:
    """The line of a key in a content file, read again only when a warning needs it."""

    def __init__(self) -> None:
        self._files: dict[Path, dict[tuple[str | int, ...], int]] = {}

    def __call__(self, path: Path, *loc: str | int) -> int | None:
        if path not in self._files:
            self._files[path] = read_content_file(path)[1] if path.is_file() else {}
        lines = self._files[path]
        for end in range(len(loc), -1, -1):
            if loc[:end] in lines:
                return lines[loc[:end]]
        return None


def _topic_path(pack: LanguagePack, topic_id: str) -> Path:
    return pack.folder / "topics" / f"{topic_id}.yaml"


def _lists(pack: LanguagePack) -> Iterable[tuple[Path, str, list[str]]]:
    """Every list of words staff write: (file, field, items)."""
    for topic in pack.topics.values():
        path = _topic_path(pack, topic.id)
        yield path, "keywords", list(topic.keywords)
        yield path, "examples", list(topic.examples)
    if pack.emergency is not None:
        path = pack.folder / "emergency.yaml"
        yield path, "keywords", list(pack.emergency.keywords)
        yield path, "examples", list(pack.emergency.examples)
        for index, situation in enumerate(pack.emergency.situations):
            yield path, f"situations[{index}].keywords", list(situation.keywords)
    for intent_id, intent in pack.intents.items():
        yield pack.folder / "intents.yaml", f"{intent_id}.keywords", list(intent.keywords)


def _loc(field: str, index: int) -> tuple[str | int, ...]:
    """"situations[0].keywords", 3 → ("situations", 0, "keywords", 3)."""
    out: list[str | int] = []
    for part in re.split(r"\.|(?=\[)", field):
        if part.startswith("["):
            out.append(int(part[1:-1]))
        elif part:
            out.append(part)
    return (*out, index)


def _shape_warnings(pack: LanguagePack, lines: _Lines) -> list[ContentIssue]:
    out = []
    for path, field, items in _lists(pack):
        for index, item in enumerate(items):
            where = f"{field}[{index}]"
            line = lines(path, *_loc(field, index))
            if _MERGED.search(item):
                out.append(
                    ContentIssue(
                        path,
                        line,
                        where,
                        f"«{item}» parece dos elementos de la lista juntados en uno: una línea con «- » un "
                        "espacio más adentro que las demás se pega a la de arriba. Poné cada «- » en la misma columna",
                    )
                )
            elif field.endswith("keywords") and (len(words(item)) > MAX_KEYWORD_WORDS or len(item) > MAX_KEYWORD_CHARS):
                out.append(
                    ContentIssue(
                        path,
                        line,
                        where,
                        f"palabra clave demasiado larga ({len(item)} caracteres): ¿se juntaron varias líneas? "
                        "Una palabra clave es una palabra o una frase corta; las preguntas enteras van en examples",
                    )
                )
    return out


def _shared_keywords(content: Content, pack: LanguagePack, matcher: Matcher, lines: _Lines) -> list[ContentIssue]:
    """One warning per one-word keyword that two or more topics of this language share."""
    owners: dict[str, dict[str, tuple[str, int]]] = defaultdict(dict)  # word → topic → (keyword, index)
    order = {topic_id: index for index, topic_id in enumerate(content.menu)}
    for topic in sorted(pack.topics.values(), key=lambda t: (order.get(t.id, len(order)), t.id)):
        for index, keyword in enumerate(topic.keywords):
            folded = words(keyword)
            if len(folded) == 1:
                owners[folded[0]].setdefault(topic.id, (keyword, index))
    out = []
    for topics in owners.values():
        if len(topics) < 2:
            continue
        first_id, (keyword, index) = next(iter(topics.items()))
        found = matcher.match(keyword, pack.code)
        if found.verdict in ("answer", "emergency", "ack"):
            continue  # a plain query still gets one answer
        if pack.code != "es" and set(topics) <= set(found.offered):
            continue  # a Mayan word for a broad idea (wuj "paper", pwaq "money"): every topic it names is offered
        if found.verdict == "not_sure":
            effect = "recibirá «no estoy seguro» en vez de la respuesta"
        else:
            shown = " o ".join(f"«{_title(content, pack, cid)}»" for cid in found.offered)
            count = {2: "dos", 3: "tres"}.get(len(found.offered), str(len(found.offered)))
            effect = f"recibirá {count} opciones ({shown}) en vez de la respuesta" if len(found.offered) > 1 else (
                f"recibirá una opción ({shown}) en vez de la respuesta"
            )
        out.append(
            ContentIssue(
                _topic_path(pack, first_id),
                lines(_topic_path(pack, first_id), "keywords", index),
                f"keywords[{index}]",
                f"«{keyword}» es palabra clave de {len(topics)} temas ({', '.join(topics)}): quien escriba solo "
                f"«{keyword}» {effect}. Dejala en un solo tema, o usala dentro de una frase en los demás",
            )
        )
    return out


def _title(content: Content, pack: LanguagePack, topic_id: str) -> str:
    try:
        return content.title(pack.code, topic_id)
    except KeyError:
        return topic_id


def _stale_translations(content: Content, pack: LanguagePack, lines: _Lines) -> list[ContentIssue]:
    """Reviewed entries whose Spanish text changed after they were translated."""
    if pack.code == "es":
        return []
    es = content.spanish
    out = []

    def check(path: Path, entry: Any, source: Any, fields: Iterable[str]) -> None:
        if entry is None or source is None or entry.translation != "reviewed":
            return
        for name in fields:
            made_from = entry.translated_from.get(name)
            spanish = _field(source, name)
            if made_from and spanish and made_from != spanish_hash(spanish):
                out.append(
                    ContentIssue(
                        path,
                        lines(path, *_loc(name, 0)[:-1]),
                        name,
                        "el texto en español cambió después de esta traducción revisada: "
                        "pedí que la revisen de nuevo (pregunta content export)",
                    )
                )

    for topic in pack.topics.values():
        check(_topic_path(pack, topic.id), topic, es.topics.get(topic.id), ("title", "answer", "warning"))
    check(pack.folder / "emergency.yaml", pack.emergency, es.emergency, _emergency_fields(es))
    check(pack.folder / "ui.yaml", pack.ui if pack.ui.translation else None, es.ui, sorted(pack.ui.translated_from))
    return out


def _emergency_fields(es: LanguagePack) -> list[str]:
    if es.emergency is None:
        return []
    return ["title", "answer", *(f"situations[{i}].line" for i in range(len(es.emergency.situations)))]


def _field(entry: Any, name: str) -> str | None:
    """A text field by its dotted name ("answer", "situations[1].line")."""
    value: Any = entry
    for part in _loc(name, 0)[:-1]:
        if isinstance(part, int):
            value = value[part] if part < len(value) else None
        else:
            value = getattr(value, part, None)
        if value is None:
            return None
    return value if isinstance(value, str) else None

"""Read one content YAML file the way campaign staff need: safely, and with plain errors.

Three things PyYAML does not do for us:

- **No anchors or aliases.** `&a` / `*a` let a 430-byte file expand into gigabytes (the
  "billion laughs"). Staff never need them, so the event stream is checked before any
  node is built and the first anchor or alias is refused with a Spanish message.
- **Duplicate keys are an error.** PyYAML keeps the last `title:` silently.
- **Errors in Spanish, on the right line.** PyYAML's problems ("mapping values are not
  allowed here") are translated by a table into what to do, and the line is the one the
  mistake is on (for a missing ':' PyYAML points at the line after).

Knows nothing of topics or languages: it returns the data and where each key is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["Located", "YamlProblem", "parse_yaml"]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path_ = tuple[str | int, ...]


class YamlProblem(Exception):
    """The file cannot be read as YAML; `line` (1-based) and `message` (Spanish) say why."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Located:
    """A parsed file: its data, the line of every key and item, and where literal blocks start."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    # a `|` block's first text line: a problem inside the text can name its exact line
    blocks: dict[Path_, int] = field(default_factory=dict)


def parse_yaml(text: str) -> Located:
    """Parse `text`; raise YamlProblem for syntax slips, anchors, aliases and repeated keys."""
    try:
        for event in yaml.parse(text, Loader=_LOADER) if ("&" in text or "*" in text) else ():
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise YamlProblem(event.start_mark.line + 1 if event.start_mark else None, _ANCHORS)
        loader = _LOADER(text)
        try:
            node = loader.get_single_node()
            located = Located(None)
            if node is not None:
                _walk(node, (), located)
                located = Located(loader.construct_document(node), located.lines, located.blocks)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise _translate(exc, text) from None
    except yaml.YAMLError as exc:  # no mark: rare (a reader error on odd characters)
        raise YamlProblem(None, f"error de sintaxis YAML: {exc}") from None
    return located


_ANCHORS = (
    "no se permiten anclas ni referencias de YAML («&nombre», «*nombre»): escribí cada texto completo. "
    "Si es un texto que empieza con «&» o «*» (como *negrita*), ponelo entre comillas"
)


def _walk(node: yaml.Node, path: Path_, located: Located) -> None:
    located.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            if name in seen:
                raise YamlProblem(line, f"«{name}» aparece dos veces (también en la línea {seen[name]}): dejá uno solo")
            seen[name] = line
            child = (*path, name)
            _walk(value, child, located)
            located.lines[child] = line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), located)
    elif isinstance(node, yaml.ScalarNode) and node.style == "|":
        located.blocks[path] = node.start_mark.line + 2


# -- PyYAML's problems in plain Spanish ------------------------------------------------
# (substring of the problem, of the context, or "" for any; use the context's line?; message)
# PyYAML's pure-Python parser and libyaml word some problems differently: both are here.

_QUOTE_IT = "Poné el texto entre comillas"
_TABLE: tuple[tuple[str, str, bool, str], ...] = (
    ("tab character", "", False, "hay un tabulador (tecla Tab): YAML solo acepta espacios para sangrar. Cambialo por espacios"),
    (
        "mapping values are not allowed",
        "",
        False,
        ("hay «:» donde no se espera: ¿falta un espacio después de «:» o hay «:» dentro de un texto? "
        f"{_QUOTE_IT} (title: \"Nota: algo\"). Si es un campo, alineá su sangría con la de los demás"),
    ),
    (
        "could not find expected ':'",
        "",
        True,
        ("falta «:» después del nombre del campo (con un espacio: «title: Pasaporte»); si esta línea es "
        "la continuación de un texto, poné el texto entre comillas o usá «|»"),
    ),
    (
        "expected <block end>",
        "",
        False,
        ("la sangría de esta línea no coincide con la de arriba: cada campo y cada «- » de una lista "
        "empiezan en la misma columna que los demás. ¿O quedó texto después de unas comillas de cierre?"),
    ),
    (
        "did not find expected key",
        "",
        False,
        ("la sangría de esta línea no coincide con la de arriba: cada campo y cada «- » de una lista "
        "empiezan en la misma columna que los demás. ¿O quedó texto después de unas comillas de cierre?"),
    ),
    (
        "did not find expected '-'",
        "",
        False,
        "la sangría de esta línea no coincide con la de la lista: cada elemento empieza con «- » en la misma columna",
    ),
    (
        "',' or ']'",
        "",
        True,
        ("la lista entre corchetes «[…]» que empieza aquí no se cierra bien: falta «]», o un elemento "
        "tiene «,» «:» o «#» y va entre comillas"),
    ),
    (
        "',' or '}'",
        "",
        True,
        ("las llaves «{…}» que empiezan aquí no se cierran bien: falta «}», o un valor tiene «,» «:» o «#» "
        "y va entre comillas"),
    ),
    ("undefined alias", "", False, "un texto que empieza con «*» (como *negrita*) va entre comillas: «\"*Pasaporte*\"»"),
    ("", "scanning an alias", False, "un texto que empieza con «*» (como *negrita*) va entre comillas: «\"*Pasaporte*\"»"),
    ("", "scanning an anchor", False, "un texto que empieza con «&» va entre comillas: «\"& …\"»"),
    (
        "unknown escape character",
        "",
        False,
        "dentro de comillas dobles, «\\» tiene un significado especial: usá comillas simples ('…') o escribí «\\\\»",
    ),
    ("end of stream", "quoted scalar", True, "las comillas que se abren aquí no se cierran"),
    ("", "quoted scalar", True, "las comillas que se abren aquí no se cierran antes del final de la línea o del archivo"),
    (
        "",
        "block scalar",
        False,
        "después de «|» o «>» no va texto en la misma línea: empezá el texto en la línea siguiente, con sangría",
    ),
    ("", "single document", False, "el archivo tiene más de un documento («---»): dejá uno solo"),
    ("", "document start", False, "el archivo tiene más de un documento («---»): dejá uno solo"),
)


_OPEN_QUOTE = re.compile(r'^\s*(?:-\s+|[^\s#"\'][^:#]*:\s+)"(?:[^"\\]|\\.)*$')


def _unclosed_quote(text: str, before: int) -> int | None:
    """The first line (1-based) up to `before` whose value opens a double quote it does not close.

    A double-quoted text may go on over several lines in YAML, so PyYAML complains only
    where the next quote finally closes it, lines later; staff need the line they opened it.
    """
    for number, line in enumerate(text.splitlines()[:before], start=1):
        if _OPEN_QUOTE.match(line):
            return number
    return None


_OPEN_BRACKET = re.compile(r"^\s*(?:-\s+|[^\s#\"'][^:#]*:\s+)[\[{]")


def _unclosed_bracket(text: str, before: int) -> int | None:
    """The last line (1-based) up to `before` that opens a `[` or `{` list it does not close."""
    found = None
    for number, line in enumerate(text.splitlines()[: before + 1], start=1):
        if _OPEN_BRACKET.match(line) and line.count("[") + line.count("{") > line.count("]") + line.count("}"):
            found = number
    return found


def _translate(exc: yaml.MarkedYAMLError, text: str) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    if mark is not None:
        opened = _unclosed_quote(text, mark.line)
        if opened is not None:
            return YamlProblem(opened, "error de sintaxis YAML: las comillas que se abren en esta línea no se cierran en ella")
    problem = exc.problem or ""
    if mark is not None and any(part in problem for part in ("expected node content", "',' or ']'", "',' or '}'")):
        opened = _unclosed_bracket(text, mark.line)
        if opened is not None:
            return YamlProblem(
                opened,
                "error de sintaxis YAML: la lista entre corchetes «[…]» (o las llaves «{…}») que empieza en esta "
                "línea no se cierra: falta «]», o un elemento tiene «,» «:» o «#» y va entre comillas",
            )
    context = exc.context or ""
    if "cannot start any token" in problem:
        char = _char_at(text, exc.problem_mark)
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        if char == "\t":
            return YamlProblem(line, "error de sintaxis YAML: " + _TABLE[0][3])
        shown = f"«{char}»" if char and char.strip() else "ese carácter"
        return YamlProblem(line, f"error de sintaxis YAML: un texto no puede empezar con {shown}: {_QUOTE_IT.lower()}")
    for in_problem, in_context, use_context, message in _TABLE:
        if (not in_problem or in_problem in problem) and (not in_context or in_context in context):
            mark = (exc.context_mark or exc.problem_mark) if use_context else (exc.problem_mark or exc.context_mark)
            return YamlProblem(mark.line + 1 if mark else None, f"error de sintaxis YAML: {message}")
    mark = exc.problem_mark or exc.context_mark
    detail = "; ".join(part for part in (context, problem) if part)
    return YamlProblem(
        mark.line + 1 if mark else None,
        f"error de sintaxis YAML ({detail}): revisá comillas, «:» y la sangría de esta línea",
    )


def _char_at(text: str, mark: Any) -> str:
    if mark is None or not 0 <= mark.index < len(text):
        return ""
    return text[mark.index]

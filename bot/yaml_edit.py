"""Change a few values in a YAML file staff also edit by hand, touching nothing else.

Comments, key order, quoting and blank lines are the staff's own; a tool that rewrote
the whole file would drown a one-word change in a diff. So the file is composed once
to find where each value is, and only those characters are replaced: a value keeps its
quoting style when the new text allows it, a new key goes after the key it belongs
with. The result is parsed again and compared with what was asked; if anything differs
the edit is refused (`YamlEditError`) rather than written.

Knows YAML text, nothing of topics or translations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import yaml

__all__ = ["Edit", "YamlEditError", "apply_edits"]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Loc = tuple[str | int, ...]


class YamlEditError(Exception):
    """The edit could not be made safely; the file is left as it was."""


@dataclass(frozen=True)
class Edit:
    """Set the value at `loc` (("answer",), ("situations", 0, "line")).

    A missing top-level key is inserted after the first of `after` that exists (else at
    the end). A missing nested value is not created here: set its parent whole instead.
    """

    loc: Loc
    value: Any
    after: Sequence[str] = ()


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """`text` with every edit made; raises YamlEditError when one cannot be made exactly."""
    for edit in edits:
        text = _apply(text, edit)
    try:
        check = yaml.load(text, Loader=_LOADER) if text.strip() else None
    except yaml.YAMLError as exc:
        raise YamlEditError(f"the edited file would not parse: {exc}") from None
    for edit in edits:
        if _normal(_get(check, edit.loc)) != _normal(edit.value):
            raise YamlEditError(f"{'.'.join(map(str, edit.loc))}: the edited file does not read back as written")
    return text


def _normal(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _get(data: Any, loc: Loc) -> Any:
    for part in loc:
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                return None
            data = data[part]
        else:
            if not isinstance(data, dict):
                return None
            data = data.get(part)
    return data


def _apply(text: str, edit: Edit) -> str:
    try:
        root = yaml.compose(text, Loader=_LOADER) if text.strip() else None
    except yaml.YAMLError as exc:
        raise YamlEditError(f"the file does not parse: {exc}") from None
    if root is None:
        return _render_key(str(edit.loc[0]), edit.value, 0) + "\n" if len(edit.loc) == 1 else _fail(edit)
    parent: yaml.Node = root
    for depth, part in enumerate(edit.loc):
        last = depth == len(edit.loc) - 1
        if isinstance(part, int):
            if not isinstance(parent, yaml.SequenceNode) or part >= len(parent.value):
                return _fail(edit)
            node = parent.value[part]
            if last:
                return _replace(text, None, node, edit.value)
            parent = node
            continue
        if not isinstance(parent, yaml.MappingNode):
            return _fail(edit)
        found = next(((k, v) for k, v in parent.value if str(k.value) == part), None)
        if found is None:
            if depth == 0 and last:
                return _insert(text, root, edit)
            return _fail(edit)
        key, value = found
        if last:
            return _replace(text, key, value, edit.value)
        parent = value
    return _fail(edit)


def _fail(edit: Edit) -> str:
    raise YamlEditError(f"{'.'.join(map(str, edit.loc))}: no such place in the file")


def _replace(text: str, key: yaml.Node | None, node: yaml.Node, value: Any) -> str:
    start, end = node.start_mark.index, node.end_mark.index
    end = start + len(text[start:end].rstrip())  # the blank lines after a block or a list stay
    column = _column(text, (key or node).start_mark.index)
    style = node.style if isinstance(node, yaml.ScalarNode) else None
    rendered = _render_value(value, column, style=style)
    empty = isinstance(node, yaml.ScalarNode) and start == end  # "verified:" with nothing after
    if key is not None and (empty or rendered.startswith("\n")):
        colon = text.index(":", key.end_mark.index)
        return text[: colon + 1] + ("" if rendered.startswith("\n") else " ") + rendered + text[end:]
    if rendered.startswith("\n"):
        raise YamlEditError("a list item cannot become a block here: set its parent whole")
    return text[:start] + rendered + text[end:]


def _insert(text: str, root: yaml.Node, edit: Edit) -> str:
    assert isinstance(root, yaml.MappingNode)
    keys = {str(k.value): v for k, v in root.value}
    anchor = next((keys[name] for name in edit.after if name in keys), None)
    line = _render_key(str(edit.loc[0]), edit.value, 0)
    if anchor is None:
        return text + ("" if text.endswith("\n") else "\n") + line + "\n"
    # after the anchor's last character of content, at the end of that line (its comment stays)
    end = len(text[: anchor.end_mark.index].rstrip())
    newline = text.find("\n", end)
    position = len(text) if newline == -1 else newline
    return text[:position] + "\n" + line + text[position:]


def _column(text: str, index: int) -> int:
    return index - (text.rfind("\n", 0, index) + 1)


def _render_key(name: str, value: Any, column: int) -> str:
    rendered = _render_value(value, column, style=None)
    return f"{' ' * column}{name}:" + (rendered if rendered.startswith("\n") else " " + rendered)


def _flow_ok(value: Any) -> bool:
    """Short lists of short words and maps of short texts fit on one line."""
    if isinstance(value, dict):
        return all(isinstance(v, str) and "\n" not in v for v in value.values())
    if isinstance(value, list):
        return all(isinstance(v, str) and "\n" not in v for v in value) and len(json.dumps(value, ensure_ascii=False)) < 80
    return True


def _render_value(value: Any, column: int, *, style: str | None) -> str:
    """A value as it goes after `key:`; block lists and `|` texts start with a newline."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        if _flow_ok(value):
            return "{" + ", ".join(f"{_key(k)}: {_quoted(str(v))}" for k, v in value.items()) + "}"
        lines = [_render_key(_key(k), v, column + 2) for k, v in value.items()]
        return "\n" + "\n".join(lines)
    if isinstance(value, list):
        if _flow_ok(value):
            return "[" + ", ".join(_scalar(str(v), None) for v in value) + "]"
        out = []
        for item in value:
            if isinstance(item, dict):
                first, *rest = list(item.items())
                out.append(" " * (column + 2) + "- " + _render_key(_key(first[0]), first[1], column + 4).lstrip())
                out += [_render_key(_key(k), v, column + 4) for k, v in rest]
            else:
                out.append(" " * (column + 2) + "- " + _render_value(item, column + 4, style=None).lstrip())
        return "\n" + "\n".join(out)
    return _text(str(value), column, style)


def _key(name: Any) -> str:
    text = str(name)
    return text if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", text) else _quoted(text)


def _text(value: str, column: int, style: str | None) -> str:
    value = value.strip("\n")
    if "\n" in value or style in ("|", ">"):
        indent = " " * (column + 2)
        body = "\n".join(indent + line if line.strip() else "" for line in value.split("\n"))
        return "|\n" + body
    return _scalar(value, style)


def _scalar(value: str, style: str | None) -> str:
    """In the style the value had; a new value plain only when it is one word (`reviewed`),
    so that a later edit by hand (a ':' added to a text) cannot break the file."""
    if style == "'" and "\n" not in value:
        return "'" + value.replace("'", "''") + "'"
    if style == "" and _plain_ok(value):
        return value
    if style is None and re.fullmatch(r"[\w-]+", value) and _plain_ok(value):
        return value
    return _quoted(value)


def _quoted(value: str) -> str:
    """A double-quoted YAML string (JSON's escapes are YAML's)."""
    return json.dumps(value, ensure_ascii=False)


def _plain_ok(value: str) -> bool:
    if not value or value != value.strip() or not value.isprintable():
        return False
    try:
        return bool(yaml.load(f"k: {value}\n", Loader=_LOADER) == {"k": value})
    except yaml.YAMLError:
        return False

"""Checking a layout: validate it against ``schemas/layout.schema.json`` and, when it is wrong, say so
with the file and the line of the TOML key at fault (``my.toml:5: bad layout: fields.respnse: unknown key``).

tomllib gives no positions for keys, so :func:`find_line` finds them in the text: it follows table
headers, arrays of tables, dotted keys and one-line inline tables, and answers the line of the key
the error points at (or of the nearest enclosing key).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Mapping, Sequence

from .errors import ConfigError


@cache
def _validator():
    import jsonschema

    from .manifest import load_schema

    return jsonschema.Draft202012Validator(load_schema("layout"))


def check(data: Mapping[str, Any], source: str, text: str | None) -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        path, message = _explain(errors[0])
        fail(source, text, path, message)


def _explain(error: Any) -> tuple[list[Any], str]:
    """The path to the part at fault and a message a person can act on."""
    path = list(error.absolute_path)
    dotted = ".".join(map(str, path)) or "the layout"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            known = ", ".join(sorted(allowed)) if allowed else "none"
            return path + [extra[0]], f"{'.'.join(map(str, path + [extra[0]]))}: unknown key (allowed here: {known})"
    if "propertyNames" in error.relative_schema_path:
        key_path = path + [error.instance]
        return key_path, f"{'.'.join(map(str, key_path))}: this key is reserved (kodolly sets file, line and index)"
    if error.validator == "oneOf" and error.context:
        if isinstance(error.instance, dict):
            form = next((k for k in ("path", "const", "join", "first") if k in error.instance), None)
            if form is not None:
                for sub in error.context:
                    if sub.schema.get("required") == [form] and sub.validator != "required":
                        inner_path, inner = _explain(sub)
                        return path + inner_path[len(path):], inner
            return path, f"{dotted}: a field is a path string or a table with one of path, const, join, first"
        if isinstance(error.instance, str):
            return path, f"{dotted}: {error.instance!r} is not a field path (dotted keys; ../ or / at the start only)"
        return path, f"{dotted}: a field is a path string or a table with one of path, const, join, first"
    if error.validator == "pattern" and path and path[0] in ("name", "aliases"):
        return path, f"{dotted}: {error.instance!r} is not a converter name (lower-case letters, digits, '-', '_', '.')"
    if error.validator == "pattern" and path and path[0] == "records":
        return path, f"records: {error.instance!r} is not a record path like '[]', 'data_info[]' or '[].contents[].QA[]'"
    return path, f"{dotted}: {error.message}"


def fail(source: str, text: str | None, path: list[Any], message: str) -> None:
    line = find_line(text, path) if text is not None else None
    where = f"{source}:{line}" if line else source
    raise ConfigError(f"{where}: bad layout: {message}")


_KEY_PART = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+))\s*')
_INLINE_KEY = re.compile(r'[{,]\s*(?:"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+))\s*=')


def _split_key(text: str) -> list[str] | None:
    parts, pos = [], 0
    while True:
        match = _KEY_PART.match(text, pos)
        if not match:
            return None
        parts.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
        if pos == len(text):
            return parts
        if text[pos] != ".":
            return None
        pos += 1


def find_line(text: str, path: Sequence[Any]) -> int | None:
    """The 1-based line of the TOML key that ``path`` (keys and array indices) points at, or the
    nearest enclosing one. Handles tables, arrays of tables, dotted keys and one-line inline tables."""
    target = [str(p) for p in path]
    header: list[str] = []
    arrays: dict[tuple[str, ...], int] = {}
    best_line, best_len = None, -1

    def consider(candidate: list[str], line_no: int) -> None:
        nonlocal best_line, best_len
        n = 0
        while n < len(candidate) and n < len(target) and candidate[n] == target[n]:
            n += 1
        if n == len(candidate) and n > best_len:
            best_line, best_len = line_no, n

    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            keys = _split_key(line[2:].split("]]", 1)[0])
            if keys is not None:
                idx = arrays.get(tuple(keys), 0)
                arrays[tuple(keys)] = idx + 1
                header = keys + [str(idx)]
                consider(header, line_no)
            continue
        if line.startswith("["):
            keys = _split_key(line[1:].split("]", 1)[0])
            if keys is not None:
                header = keys
                consider(header, line_no)
            continue
        key_text, sep, value = line.partition("=")
        if not sep:
            continue
        keys = _split_key(key_text)
        if keys is None:
            continue
        full = header + keys
        consider(full, line_no)
        for match in _INLINE_KEY.finditer(value):
            consider(full + [next(g for g in match.groups() if g is not None)], line_no)
    return best_line

"""Text that is JSON (tool-call arguments, tool results): its string values, each replaceable.

A tool's arguments are a JSON document inside a string, and so are many tool results. Masking
them as plain text would let a finding straddle a quote or an escape (``"O\\"Brien"``), analyse
``\\u00e9`` instead of ``é``, and put back an escaped value where a plain one was masked. Read as
JSON instead, every string value is analysed decoded and masked on its own, and the document is
written back as valid JSON (with ``ensure_ascii=False``: the placeholders and the restored values
are plain text). Object keys are names chosen by the tool's schema, not data: they are kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class JsonString:
    """One string value inside a JSON document: where it is, its text, how to replace it."""

    path: str  # ``.city``, ``.stops[2].name``: appended to the document's own location
    text: str
    set: Callable[[str], None]


def json_strings(text: str, write: Callable[[str], None]) -> list[JsonString] | None:
    """The string values of ``text`` when it is a JSON object or array, else None (plain text).

    Replacing a value re-serialises the whole document through ``write``; only values that are
    masked are replaced, so a document without findings is forwarded byte for byte.
    """
    if not text or text.lstrip()[:1] not in ("{", "["):
        return None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # not JSON after all, or nested past the interpreter's stack
        return None
    if not isinstance(document, dict | list):
        return None

    def setter(container: Any, key: Any) -> Callable[[str], None]:
        def replace(value: str) -> None:
            container[key] = value
            write(json.dumps(document, ensure_ascii=False))

        return replace

    found: list[JsonString] = []
    stack: list[tuple[str, Any]] = [("", document)]  # iterative: no depth can exhaust the stack
    while stack:
        path, node = stack.pop()
        pairs = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in pairs:
            at = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"
            if isinstance(value, str):
                found.append(JsonString(at, value, setter(node, key)))
            elif isinstance(value, dict | list):
                stack.append((at, value))
    return found

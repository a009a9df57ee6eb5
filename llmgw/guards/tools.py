"""Which tools a request may offer, and which tool calls an answer may make.

An allow-list is a list of tool names, each a shell-style pattern (``search_*`` for every tool an
MCP server prefixes ``search_``; ``*`` for any). A key and a route each have one (``keys[].tools``,
``POST /admin/keys`` ``tools``, ``routes.<name>.tools``); a tool must pass both. A request that
offers a tool either list refuses is refused before anything else runs (403 ``tool_not_allowed``):
a model must never learn of a tool its caller may not use.

An answer may only call a tool the request offered. A call to any other name (a model making up
a tool, or an upstream that is not what it claims) is refused, not stripped: the client never
receives it, and an agent loop acting on the rest of the turn without it could do worse than stop
(502 ``tool_not_offered``, an upstream fault). Streamed, the name arrives in a call's first delta, so the
refusal comes before any of its arguments. Neither decision reads the request context: the stage
(``llmgw.stages.tools``) adapts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

ANY = ("*",)


def allows(patterns: Iterable[str], name: str) -> bool:
    """Whether ``name`` matches one of the allow-list's patterns (case-sensitive, as tool names are)."""
    return any(p == "*" or p == name or fnmatchcase(name, p) for p in patterns)


def restricted(patterns: Iterable[str]) -> bool:
    """Whether the list refuses anything at all (``["*"]`` does not)."""
    return "*" not in patterns


def offered(body: dict[str, Any]) -> list[tuple[str, str]]:
    """Every tool the request offers or forces, as ``(where, name)``: ``tools[].function.name``,
    legacy ``functions[].name``, and the name a ``tool_choice`` / ``function_call`` forces."""
    found: list[tuple[str, str]] = []
    for i, tool in enumerate(body.get("tools") or ()):
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            found.append((f"tools[{i}].function.name", function["name"]))
    functions = body.get("functions")
    if isinstance(functions, list):
        for i, function in enumerate(functions):
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                found.append((f"functions[{i}].name", function["name"]))
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if isinstance(name, str):
            found.append(("tool_choice.function.name", name))
    legacy = body.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        found.append(("function_call.name", legacy["name"]))
    return found


@dataclass
class CallCheck:
    """The tool calls of one answer, checked against the names the request offered.

    ``feed`` takes one streamed delta's tool calls (or a whole message's): a call's name may come in
    pieces, so a partial name is only checked to be the start of an offered one; it must be whole
    once its arguments begin or the choice ends. Work is constant per delta.
    """

    offered: frozenset[str]
    names: dict[tuple[int, int], str] = field(default_factory=dict)  # (choice, call) -> name so far
    decided: set[tuple[int, int]] = field(default_factory=set)

    def feed(self, choice: int, calls: Iterable[dict[str, Any]], ending: bool = False) -> list[tuple[str, bool]]:
        """The decisions this delta completes, as ``(name, allowed)``: each call is decided once."""
        out: list[tuple[str, bool]] = []
        for position, call in enumerate(calls):
            key = (choice, call.get("index", position) if isinstance(call.get("index"), int) else position)
            function = call.get("function") or {}
            piece = function.get("name")
            if isinstance(piece, str) and key not in self.decided:
                self.names[key] = self.names.get(key, "") + piece
            name = self.names.get(key)
            if name is None or key in self.decided:
                continue
            whole = ending or bool(function.get("arguments"))
            longer = any(o != name and o.startswith(name) for o in self.offered)
            if whole or not longer:  # decided unless the name may still grow into an offered one
                self.decided.add(key)
                out.append((name, name in self.offered))
        return out

    def end(self, choice: int) -> list[tuple[str, bool]]:
        """A choice ended: its calls not decided yet are decided on the names they have."""
        out = []
        for key, name in self.names.items():
            if key[0] == choice and key not in self.decided:
                self.decided.add(key)
                out.append((name, name in self.offered))
        return out

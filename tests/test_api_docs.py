"""docs/api.md stays complete: every error code the code can raise and every route the app serves.

As ``tests/test_config.py`` does for config keys: a new ``code="..."`` or a new endpoint fails
here until docs/api.md mentions it. Fast: the app is built, never started.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from llmgw.app import create_app
from llmgw.config import parse_config
from llmgw.errors import UpstreamKind

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _is_dict_get(node: ast.AST) -> bool:
    func = node.func if isinstance(node, ast.Call) else None
    return isinstance(func, ast.Attribute) and func.attr == "get" and isinstance(func.value, ast.Dict)


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def raised_error_codes(source: str) -> set[str]:
    """The error codes in one module: ``code="..."`` arguments and ``code = ...`` assignments (class
    defaults, computed codes such as the web framework's). Upstream kinds are checked row by row in
    :func:`test_every_upstream_kind_has_its_row`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            found |= {kw.value.value for kw in node.keywords if kw.arg == "code" and _is_str(kw.value)}
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if not any(isinstance(t, ast.Name) and t.id == "code" for t in targets):
                continue
            value = node.value
            if _is_str(value):  # a class's default code
                found.add(value.value)  # type: ignore[attr-defined]
            elif _is_dict_get(value):  # {404: "not_found", ...}.get(status, "http_error")
                found |= _strings(value)
    return found


def test_the_code_scanner_finds_each_form() -> None:
    source = (
        'raise InvalidRequest("x", code="alpha")\n'
        'class E(GatewayError):\n    code = "beta"\n'
        'code = {404: "gamma"}.get(status, "delta")\n'
        'code = str(err.get("Code") or "")\n'  # a provider's own error code read into a local: not ours
    )
    assert raised_error_codes(source) == {"alpha", "beta", "gamma", "delta"}


def test_every_error_code_is_documented() -> None:
    documented = set(re.findall(r"`([a-z_]+)`", API_DOC.read_text()))
    missing = sorted(
        f"{code} ({path.relative_to(ROOT)})"
        for path in (ROOT / "llmgw").rglob("*.py")
        if "evals" not in path.parts  # the eval harness's codes are its own report's, not HTTP errors
        for code in raised_error_codes(path.read_text())
        if code not in documented
    )
    assert not missing, f"error codes raised but missing from docs/api.md: {', '.join(missing)}"


def error_table() -> list[tuple[str, str, set[str]]]:
    """docs/api.md's error table: ``(status, type, codes)`` per row."""
    rows = []
    for line in API_DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"\d{3}|any|stream event", cells[0]):
            rows.append((cells[0], cells[1].strip("`"), set(re.findall(r"`([a-z_]+)`", cells[2]))))
    return rows


def test_every_upstream_kind_has_its_row() -> None:
    """Each :class:`UpstreamKind` is a row with its own status, type and code, so the table says
    what the client gets for every way a provider can fail."""
    rows = error_table()
    assert len(rows) > 30, rows  # the table was read
    missing = [
        f"{kind.status} {kind.type} {kind.code} ({kind.value})"
        for kind in UpstreamKind
        if not any(
            status == str(kind.status) and type_ == kind.type and kind.code in codes for status, type_, codes in rows
        )
    ]
    assert not missing, f"upstream kinds without their row in docs/api.md's error table: {', '.join(missing)}"


def _normalised(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_every_route_is_documented(tmp_path: Path) -> None:
    app = create_app(parse_config({"storage": {"url": f"sqlite:///{tmp_path}/docs.db"}}, env={}))
    served = {
        f"{method} {_normalised(route.path)}"
        for route in app.routes
        for method in getattr(route, "methods", ())
        if method not in ("HEAD", "OPTIONS")
    }
    documented = {
        f"{method} {_normalised(path)}"
        for method, path in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s?]*)", API_DOC.read_text())
    }
    assert len(served) > 20, served  # the app's routes were read
    missing = sorted(served - documented)
    assert not missing, f"routes served but missing from docs/api.md: {', '.join(missing)}"

"""One prompt template: its file format, variable checking and sandboxed rendering.

A template is a YAML file under ``prompts/`` (its path without ``.yaml`` is its id)::

    description: Answer a support question
    variables:
      product: {type: string, example: Acme Router}
      question: {type: string, example: How do I reset it?, max_length: 2000}
      tone: {type: string, enum: [friendly, formal], default: friendly}
    task: chat
    model: gpt-4o-mini
    tags: [support]
    combine: prepend          # prepend | replace | fill_user
    messages:
      - role: system
        content: "You support {{ product }}. Be {{ tone }}. {% include 'partials/rules.j2' %}"
      - role: user
        content: "{{ question }}"

Rendering uses jinja2's immutable sandbox with ``StrictUndefined``; includes and imports are
resolved from the same git version before rendering, so a render touches neither git nor disk.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from jinja2 import DictLoader, StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmgw.errors import InvalidRequest, TemplateProblem

log = logging.getLogger("llmgw.templates")

VarType = Literal["string", "integer", "number", "boolean", "array", "object"]
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


class Variable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: VarType = "string"
    description: str = ""
    default: Any = None
    required: bool | None = None
    example: Any = None
    enum: list[Any] | None = None
    max_length: int | None = Field(None, gt=0)

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else self.default is None


class MessageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant"]
    content: str


class TemplateFile(BaseModel):
    """The file format (documented in docs/prompts.md)."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    variables: dict[str, Variable] = {}
    task: str | None = None
    model: str | None = None
    tags: list[str] = []
    combine: Literal["prepend", "replace", "fill_user"] = "prepend"
    messages: list[MessageSpec] = Field(min_length=1)


def check_variables(spec: dict[str, Variable], given: dict[str, Any], param: str) -> dict[str, Any]:
    """Defaults filled in, types and enums checked; 400 naming the variable otherwise."""
    unknown = sorted(set(given) - set(spec) - {"user_input"})
    if unknown:
        raise InvalidRequest(
            f"unknown template variable {unknown[0]!r} (declared: {', '.join(sorted(spec)) or 'none'})",
            param=f"{param}.{unknown[0]}",
            code="unknown_variable",
        )
    values: dict[str, Any] = {}
    for name, var in spec.items():
        where = f"{param}.{name}"
        if name not in given or given[name] is None:
            if var.is_required:
                raise InvalidRequest(f"missing template variable {name!r}", param=where, code="missing_variable")
            values[name] = var.default
            continue
        value = given[name]
        ok = isinstance(value, _PY_TYPES[var.type]) and not (var.type != "boolean" and isinstance(value, bool))
        if not ok:
            raise InvalidRequest(
                f"template variable {name!r} must be {var.type}, got {type(value).__name__}",
                param=where,
                code="invalid_variable",
            )
        if var.enum is not None and value not in var.enum:
            raise InvalidRequest(
                f"template variable {name!r} must be one of {var.enum}", param=where, code="invalid_variable"
            )
        if var.max_length is not None and hasattr(value, "__len__") and len(value) > var.max_length:
            raise InvalidRequest(
                f"template variable {name!r} is longer than {var.max_length}",
                param=where,
                code="invalid_variable",
            )
        values[name] = value
    if "user_input" in given:
        values["user_input"] = given["user_input"]
    return values


@dataclass(slots=True)
class CompiledTemplate:
    """A template at one version, compiled once and rendered many times."""

    id: str
    commit: str
    blob: str
    spec: TemplateFile
    compiled: Sequence[tuple[str, Any]] = field(default_factory=list)
    max_chars: int = 100_000

    def render(self, variables: dict[str, Any], param: str = "llmgw.prompt.variables") -> list[dict[str, str]]:
        values = check_variables(self.spec.variables, variables, param)
        out: list[dict[str, str]] = []
        total = 0
        for role, template in self.compiled:
            try:
                content = template.render(values).strip()
            except SecurityError as exc:
                log.warning("sandbox violation in template %s@%s: %s", self.id, self.commit, exc)
                raise TemplateProblem(
                    f"template {self.id}@{self.commit[:12]} tried an unsafe operation: {exc}",
                    code="template_security_violation",
                ) from None
            except UndefinedError as exc:
                raise TemplateProblem(f"template {self.id}@{self.commit[:12]}: {exc}") from None
            except TemplateError as exc:
                raise TemplateProblem(f"template {self.id}@{self.commit[:12]} failed: {exc}") from None
            total += len(content)
            if total > self.max_chars:
                raise InvalidRequest(
                    f"rendered prompt exceeds {self.max_chars} characters",
                    param=param,
                    code="prompt_too_large",
                )
            out.append({"role": role, "content": content})
        return out


def parse_file(text: str, template_id: str) -> TemplateFile:
    try:
        data = yaml.safe_load(text)
        return TemplateFile.model_validate(data)
    except yaml.YAMLError as exc:
        raise TemplateProblem(f"template {template_id}: invalid YAML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TemplateProblem(f"template {template_id}: {where}: {first['msg']}") from None


def referenced_templates(env: ImmutableSandboxedEnvironment, source: str, template_id: str) -> list[str]:
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template {template_id}: syntax error line {exc.lineno}: {exc.message}") from None
    return [name for name in meta.find_referenced_templates(ast) if name is not None]


def new_environment(sources: dict[str, str]) -> ImmutableSandboxedEnvironment:
    """A sandbox whose includes can only reach the given sources (one git version)."""
    return ImmutableSandboxedEnvironment(
        loader=DictLoader(sources),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        auto_reload=False,
    )

"""The gateway options of one request, decoded once: the ``llmgw`` body object over ``x-llmgw-*`` headers.

The parse stage reads them (:func:`read_options`) and checks every one it knows here
(:func:`decode_options`), so a stage reads typed values and never validates a raw dict again: a
bad option is a 400 naming the field (``param: llmgw.retrieval.k``) before any stage has run.
Options llmgw does not know are left out (a client may send ``x-llmgw-*`` headers of its own).

============================  ==========================================================
option                        meaning
============================  ==========================================================
``route``                     the route (``routes.<name>``), ``default`` when absent
``prompt``                    a template: ``"id@version"`` or ``{"id", "version", "variables"}``
``prompt_variables``          template variables (``prompt.variables`` wins over these)
``task``                      the task routing chooses for (instead of the classifier's guess)
``cache``                     ``force``, ``off``, ``refresh`` or ``no-store``
``retrieval``                 ``false``, a collection name, or ``{collection, k, filters, min_score, mode}``
============================  ==========================================================
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from llmgw.errors import InvalidRequest, clip
from llmgw.retrieval.collection import NAME
from llmgw.schemas import NestedTooDeep, decode_json

HEADER_PREFIX = "x-llmgw-"

CacheOption = Literal["force", "off", "refresh", "no-store"]
CACHE_OPTIONS: tuple[CacheOption, ...] = ("force", "off", "refresh", "no-store")
RetrievalMode = Literal["hybrid", "dense", "bm25"]
RETRIEVAL_FIELDS = ("collection", "filters", "k", "min_score", "mode")
#: a filter's value: one scalar, or a list of them (any of)
FilterValue = str | int | float | bool | list[str | int | float | bool]


class RetrievalOption(msgspec.Struct, frozen=True, omit_defaults=True):
    """The request's refinement of its route's retrieval (``llmgw.stages.retrieval_plan``)."""

    off: bool = False  # ``"retrieval": false``: this request retrieves nothing
    collection: str | None = None
    k: int | None = None
    filters: dict[str, FilterValue] | None = None
    min_score: float | None = None
    mode: RetrievalMode | None = None


class PromptOption(msgspec.Struct, frozen=True):
    """A template named by the request: its id (``id@version`` too), a version (a git ref; None:
    the configured default or the experiment's arm) and the variables given beside it."""

    id: str
    version: str | None = None
    variables: dict[str, Any] = msgspec.field(default_factory=dict)


class GatewayOptions(msgspec.Struct, frozen=True):
    route: str = "default"
    prompt: PromptOption | None = None
    prompt_variables: dict[str, Any] = msgspec.field(default_factory=dict)
    task: str | None = None
    cache: CacheOption | None = None
    retrieval: RetrievalOption | None = None


def read_options(body: dict[str, Any], headers: dict[str, str], max_depth: int) -> GatewayOptions:
    """The request's options: ``x-llmgw-*`` headers, overridden by the body's ``llmgw`` object
    (taken out of the body: it is not sent upstream)."""
    return decode_options(raw_options(body, headers, max_depth))


def raw_options(body: dict[str, Any], headers: dict[str, str], max_depth: int) -> dict[str, Any]:
    """Options from ``x-llmgw-*`` headers, overridden by the body's ``llmgw`` object.

    Header names map to option names with dashes as underscores; a header value that is a JSON
    object or array is decoded, anything else is taken as a string (so a route named ``123`` or
    ``true`` stays a string). A header that is not valid JSON stays a string too, but one nested
    deeper than ``max_depth`` is refused like such a body.
    """
    options: dict[str, Any] = {}
    for name, value in headers.items():
        if name.startswith(HEADER_PREFIX):
            key = name[len(HEADER_PREFIX) :].replace("-", "_")
            options[key] = value
            if value[:1] in "{[":
                try:
                    options[key] = decode_json(value, max_depth, what=f"header {name}", param=str(name))
                except NestedTooDeep:
                    raise
                except InvalidRequest:
                    pass  # not JSON after all: the string stands
    from_body = body.pop("llmgw", None)
    if from_body is not None:
        if not isinstance(from_body, dict):
            raise InvalidRequest("'llmgw' must be an object", param="llmgw")
        options.update(from_body)
    return options


def decode_options(raw: dict[str, Any]) -> GatewayOptions:
    """Every known option checked and typed; unknown ones are left out."""
    task = raw.get("task")
    if task is not None and (not isinstance(task, str) or not task):
        raise InvalidRequest("llmgw.task must be a task name", param="llmgw.task")
    cache = raw.get("cache")
    if cache is not None and cache not in CACHE_OPTIONS:
        raise InvalidRequest(f"llmgw.cache must be one of {', '.join(CACHE_OPTIONS)}", param="llmgw.cache")
    extra = raw.get("prompt_variables") or {}
    if not isinstance(extra, dict):
        raise InvalidRequest("prompt variables must be an object", param="llmgw.prompt.variables")
    return GatewayOptions(
        route=str(raw.get("route") or "default"),
        prompt=_prompt(raw.get("prompt")),
        prompt_variables=extra,
        task=task,
        cache=cache,
        retrieval=_retrieval(raw.get("retrieval")),
    )


def _prompt(option: Any) -> PromptOption | None:
    if option is None:
        return None
    if isinstance(option, str):  # "id@version": split by ``Address.parse``, as an id with an @ is
        return PromptOption(option)
    if not isinstance(option, dict):
        raise InvalidRequest("llmgw.prompt must be an object or 'id@version'", param="llmgw.prompt")
    template_id = option.get("id")
    version = option.get("version")
    if not isinstance(template_id, str) or not template_id:
        raise InvalidRequest("llmgw.prompt.id must be a template id", param="llmgw.prompt.id")
    if version is not None and not isinstance(version, str):
        raise InvalidRequest("llmgw.prompt.version must be a string", param="llmgw.prompt.version")
    pinned = template_id.rpartition("@")
    if version is not None and pinned[1] and pinned[0] and pinned[2] != version:
        # two versions named: serving either would be a guess at which one the client meant
        raise InvalidRequest(
            f"llmgw.prompt names version {clip(pinned[2])} in its id and {clip(version)} in its version",
            param="llmgw.prompt.version",
        )
    variables = option.get("variables") or {}
    if not isinstance(variables, dict):
        raise InvalidRequest("prompt variables must be an object", param="llmgw.prompt.variables")
    return PromptOption(template_id, version, variables)


def _retrieval(option: Any) -> RetrievalOption | None:
    """A route's retrieval refined: another collection, ``k`` within 1–50, filters, a floor, a mode."""
    if option is None:
        return None
    if option is False:
        return RetrievalOption(off=True)
    if isinstance(option, str):
        option = {"collection": option}
    if not isinstance(option, dict):
        raise InvalidRequest("llmgw.retrieval must be an object or a collection name", param="llmgw.retrieval")
    unknown = sorted(set(option) - set(RETRIEVAL_FIELDS))
    if unknown:
        raise InvalidRequest(
            f"unknown field llmgw.retrieval.{unknown[0]} (known: {', '.join(RETRIEVAL_FIELDS)})",
            param=f"llmgw.retrieval.{unknown[0]}",
        )
    k = option.get("k")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 50):
        raise InvalidRequest("llmgw.retrieval.k must be an integer from 1 to 50", param="llmgw.retrieval.k")
    floor = option.get("min_score")
    if floor is not None and (not isinstance(floor, int | float) or isinstance(floor, bool) or floor < 0):
        raise InvalidRequest("llmgw.retrieval.min_score must be a number ≥ 0", param="llmgw.retrieval.min_score")
    filters = option.get("filters")
    if filters is not None:
        ok = isinstance(filters, dict) and all(
            isinstance(v, str | int | float | bool)
            or (isinstance(v, list) and all(isinstance(x, str | int | float | bool) for x in v))
            for v in filters.values()
        )
        if not ok:
            raise InvalidRequest(
                "llmgw.retrieval.filters must map fields to a value or a list of values",
                param="llmgw.retrieval.filters",
            )
    mode = option.get("mode")
    if mode is not None and mode not in ("hybrid", "dense", "bm25"):
        raise InvalidRequest("llmgw.retrieval.mode must be hybrid, dense or bm25", param="llmgw.retrieval.mode")
    name = option.get("collection") or None  # an empty name: the route's collection
    if name is not None and (not isinstance(name, str) or not NAME.match(name)):
        raise InvalidRequest(f"invalid collection name {clip(name)}", param="llmgw.retrieval.collection")
    return RetrievalOption(
        collection=name,
        k=k,
        filters=filters,
        min_score=float(floor) if floor is not None else None,
        mode=mode,
    )

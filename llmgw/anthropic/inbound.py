"""A ``POST /v1/messages`` body as the chat body the pipeline runs.

Checked here, with errors naming the Messages API's own fields (``messages[1].content[0].type``),
so the internal body rarely fails the chat validation that follows. What maps:

=====================================  ================================================
Messages                               internal (Chat Completions)
=====================================  ================================================
``system`` (string or text blocks)     a first ``system`` message (blocks stay parts)
``text`` block                         a ``text`` part (``cache_control`` kept)
``image`` block (base64 or url)        an ``image_url`` part (a ``data:`` URL for base64)
assistant ``tool_use`` block           ``tool_calls[]`` with ``arguments`` = JSON of ``input``
user ``tool_result`` block             a ``role: tool`` message before the user's text
``tool_result`` ``is_error: true``     ``is_error: true`` on that ``tool`` message
``thinking`` blocks of an assistant      ``thinking_blocks`` on that assistant message, as sent
                                       (an ``anthropic`` upstream needs them back, signature
                                       intact, in a tool loop; other upstreams never see them)
``tools`` (custom tools)               ``function`` tools (``input_schema`` → ``parameters``)
``tool_choice`` auto/any/tool/none     ``auto``/``required``/named function/``none``
``disable_parallel_tool_use``          ``parallel_tool_calls: false``
``max_tokens`` (required)              ``max_tokens``
``stop_sequences``                     ``stop``
``output_config.format`` (JSON schema)  ``response_format`` ``json_schema`` (``effort`` passed on)
``metadata.user_id``                   ``user``
``service_tier`` auto/standard_only     ``service_tier`` ``auto``/``default`` (OpenAI's standard tier)
other top-level fields (``top_k``…)    passed through as unknown fields (``server.unknown_fields``);
                                       a Chat Completions field (``n``, ``user``…) is refused
=====================================  ================================================

A later stage's error names a field of the internal body (``messages[3].content``, counting the
``system`` message and the ``tool`` messages a turn was split into); :func:`client_path` says
where the client wrote it (``messages[2].content[1].content``), so a refusal points at the
client's own request.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from llmgw.errors import InvalidRequest, clip
from llmgw.messages import THINKING
from llmgw.schemas import CHAT_FIELDS, validation_error


class MessagesMetadata(msgspec.Struct, forbid_unknown_fields=False):
    user_id: str | None = None


class InMessage(msgspec.Struct, forbid_unknown_fields=False):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class MessagesRequest(msgspec.Struct, forbid_unknown_fields=False):
    """The fields of a Messages request that are translated; any other is passed through."""

    model: Annotated[str, msgspec.Meta(min_length=1)]
    messages: list[InMessage]  # may be empty when a template provides them, as for chat
    max_tokens: Annotated[int, msgspec.Meta(ge=1)]
    system: str | list[dict[str, Any]] | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: MessagesMetadata | None = None
    output_config: dict[str, Any] | None = None
    #: a Messages field that a Chat Completions field shares the name of: translated, not refused
    service_tier: Literal["auto", "standard_only"] | None = None
    llmgw: dict[str, Any] | None = None


class CountTokensRequest(MessagesRequest, forbid_unknown_fields=False):
    """A ``/v1/messages/count_tokens`` body: a Messages request that needs no ``max_tokens``."""

    max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None  # type: ignore[assignment]


MESSAGES_FIELDS = frozenset(MessagesRequest.__struct_fields__)
#: Anthropic's ``service_tier`` as chat's: ``standard_only`` is what OpenAI calls ``default``
#: (``llmgw.anthropic.outbound`` maps it back for an Anthropic upstream)
SERVICE_TIERS = {"auto": "auto", "standard_only": "default"}


def refuse(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_request")


def to_internal(body: dict[str, Any], unknown_fields: str = "pass") -> dict[str, Any]:
    """The chat body for a Messages request body (a 400 naming the field when it is malformed).

    Top-level fields it does not know pass through as chat's unknown fields do, unless
    ``unknown_fields`` (``server.unknown_fields``) is ``reject``: then the first is a 400
    ``unknown_parameter`` naming it.
    """
    extra = sorted(set(body) - MESSAGES_FIELDS)
    chat_only = [name for name in extra if name in CHAT_FIELDS]
    if chat_only:  # passed through, it would mean something to the pipeline (n, user, response_format...)
        raise InvalidRequest(f"{clip(chat_only[0])} is a Chat Completions parameter, not a Messages one",
                             param=chat_only[0], code="unknown_parameter")  # fmt: skip
    if unknown_fields == "reject" and extra:
        raise InvalidRequest(f"unknown parameter {clip(extra[0])} (server.unknown_fields is 'reject')",
                             param=extra[0][:80], code="unknown_parameter")  # fmt: skip
    try:
        request = msgspec.convert(body, MessagesRequest)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, "invalid request") from None
    messages = [turn for turn, _ in _turns(body, request)]
    internal: dict[str, Any] = {"model": request.model, "messages": messages, "max_tokens": request.max_tokens}
    if request.stop_sequences is not None:
        internal["stop"] = request.stop_sequences
    for name in ("stream", "temperature", "top_p", "llmgw"):
        if body.get(name) is not None:
            internal[name] = body[name]
    if request.tools:
        internal["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(request.tools)]
    if request.tool_choice is not None:
        internal.update(_tool_choice(request.tool_choice))
    if request.metadata is not None and request.metadata.user_id is not None:
        internal["user"] = request.metadata.user_id
    if request.output_config is not None:
        internal.update(_output_config(request.output_config))
    if request.service_tier is not None:
        internal["service_tier"] = SERVICE_TIERS[request.service_tier]
    for name, value in body.items():  # top_k, thinking, container...: as chat treats unknown fields
        if name not in MESSAGES_FIELDS:
            internal[name] = value
    return internal


def _system(system: str | list[Any]) -> str | list[dict[str, Any]]:
    if isinstance(system, str):
        return system
    return [_text_part(block, f"system[{i}]") for i, block in enumerate(system)]


def _text_part(block: Any, where: str) -> dict[str, Any]:
    if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
        raise refuse('expected a text block: {"type": "text", "text": "..."}', where)
    part: dict[str, Any] = {"type": "text", "text": block["text"]}
    if "cache_control" in block:
        part["cache_control"] = block["cache_control"]
    return part


def _image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        source = {}
    kind = source.get("type")
    if kind == "base64" and isinstance(source.get("media_type"), str) and isinstance(source.get("data"), str):
        url = f"data:{source['media_type']};base64,{source['data']}"
    elif kind == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise refuse("an image's source must be {type: base64, media_type, data} or {type: url, url}",
                     f"{where}.source")  # fmt: skip
    part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if "cache_control" in block:
        part["cache_control"] = block["cache_control"]
    return part


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the client wrote one internal message: ``base`` the turn (or the ``tool_result`` block,
    or ``system``), ``content`` its content; ``parts`` each internal content part's block (None when
    the internal content is a string) and whether the part's own fields (``.text``) are the
    block's; ``calls`` each tool call's ``tool_use`` block."""

    base: str
    content: str
    parts: tuple[tuple[str, bool], ...] | None = None
    calls: tuple[str, ...] = ()
    renames: tuple[tuple[str, str], ...] = ()
    thoughts: tuple[str, ...] = ()  # each of ``thinking_blocks``' block


def _turns(body: dict[str, Any], request: MessagesRequest) -> list[tuple[dict[str, Any], Origin]]:
    """The internal messages, each with where the client wrote it."""
    turns: list[tuple[dict[str, Any], Origin]] = []
    if request.system:
        system = _system(body["system"])
        parts = None if isinstance(system, str) else tuple((f"system[{i}]", True) for i in range(len(system)))
        turns.append(({"role": "system", "content": system}, Origin("system", "system", parts)))
    for i, message in enumerate(body["messages"]):
        turns.extend(_message(message, f"messages[{i}]"))
    return turns


def _message(message: dict[str, Any], where: str) -> list[tuple[dict[str, Any], Origin]]:
    """One Messages turn as one or more chat messages (a user turn's tool results come first)."""
    role, content = message["role"], message["content"]
    if isinstance(content, str):
        return [({"role": role, "content": content}, Origin(where, f"{where}.content"))]
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[tuple[dict[str, Any], Origin]] = []
    at_parts: list[tuple[str, bool]] = []
    at_calls: list[str] = []
    thoughts: list[dict[str, Any]] = []
    at_thoughts: list[str] = []
    for j, block in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = block.get("type")
        if kind == "text":
            parts.append(_text_part(block, at))
            at_parts.append((at, True))
        elif kind == "image" and role == "user":
            parts.append(_image_part(block, at))
            at_parts.append((at, False))
        elif kind == "tool_use" and role == "assistant":
            calls.append(_tool_call(block, at))
            at_calls.append(at)
        elif kind == "tool_result" and role == "user":
            results.append(_tool_result(block, at))
        elif kind in ("thinking", "redacted_thinking") and role == "assistant":
            thoughts.append(dict(block))  # the model's reasoning, signed: sent back unmodified or not at all
            at_thoughts.append(at)
        else:
            raise refuse(f"content block type {clip(kind)} is not supported in a {role} message", f"{at}.type")
    out = results
    if role == "assistant":
        text = _flatten(parts)
        turn: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
        if calls:
            turn["tool_calls"] = calls
        if thoughts:
            turn[THINKING] = thoughts
        kept = tuple(at_parts) if isinstance(text, list) else None
        out.append((turn, Origin(where, f"{where}.content", kept, tuple(at_calls), thoughts=tuple(at_thoughts))))
    elif parts or not results:
        out.append(({"role": "user", "content": parts}, Origin(where, f"{where}.content", tuple(at_parts))))
    return out


def _flatten(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """An assistant's text blocks as one string (chat's usual form) unless one carries cache_control."""
    if any("cache_control" in part for part in parts):
        return parts
    return "".join(part["text"] for part in parts)


def _tool_call(block: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
        raise refuse("a tool_use block needs a string id and name", where)
    if block.get("input") is not None and not isinstance(block["input"], dict):
        # as Anthropic refuses it; passed on, it became arguments no model wrote ({"_arguments": ...})
        raise refuse("a tool_use block's input must be an object", f"{where}.input")
    arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
    return {"id": block["id"], "type": "function", "function": {"name": block["name"], "arguments": arguments}}


def _tool_result(block: dict[str, Any], where: str) -> tuple[dict[str, Any], Origin]:
    if not isinstance(block.get("tool_use_id"), str):
        raise refuse("a tool_result block needs a string tool_use_id", f"{where}.tool_use_id")
    content = block.get("content")
    if content is None:
        content = ""
    elif isinstance(content, list):
        content = [_text_part(part, f"{where}.content[{k}]") for k, part in enumerate(content)]
    elif not isinstance(content, str):
        raise refuse("a tool_result's content must be a string or text blocks", f"{where}.content")
    at = f"{where}.content"
    parts = tuple((f"{at}[{k}]", True) for k in range(len(content))) if isinstance(content, list) else None
    if "cache_control" in block:
        if not isinstance(content, list):
            content, parts = [{"type": "text", "text": content}], ((at, False),)
        if content:
            content[-1] = {**content[-1], "cache_control": block["cache_control"]}
    out: dict[str, Any] = {"role": "tool", "tool_call_id": block["tool_use_id"], "content": content}
    failed = block.get("is_error")
    if failed is not None and not isinstance(failed, bool):
        raise refuse("a tool_result's is_error must be a boolean", f"{where}.is_error")
    if failed:
        out["is_error"] = True  # llmgw.messages.with_tool_errors_as_text says it where no API has the flag
    renames = (("tool_call_id", ".tool_use_id"), ("is_error", ".is_error"))
    return out, Origin(where, at, parts, renames=renames)


def _tool(tool: dict[str, Any], where: str) -> dict[str, Any]:
    if tool.get("type", "custom") != "custom":
        raise refuse(f"tool type {clip(tool.get('type'))} is not supported: only custom tools", f"{where}.type")
    if not isinstance(tool.get("name"), str):
        raise refuse("a tool needs a name", f"{where}.name")
    function: dict[str, Any] = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object"}}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    out: dict[str, Any] = {"type": "function", "function": function}
    if "cache_control" in tool:
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: dict[str, Any]) -> dict[str, Any]:
    kind = choice.get("type")
    out: dict[str, Any]
    if kind == "auto":
        out = {"tool_choice": "auto"}
    elif kind == "any":
        out = {"tool_choice": "required"}
    elif kind == "none":
        out = {"tool_choice": "none"}
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out = {"tool_choice": {"type": "function", "function": {"name": choice["name"]}}}
    else:
        raise refuse("tool_choice must be {type: auto | any | none} or {type: tool, name}", "tool_choice")
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out


def _output_config(config: dict[str, Any]) -> dict[str, Any]:
    """``output_config.format`` as ``response_format``; the rest of it (``effort``) passes on as it is."""
    out: dict[str, Any] = {}
    rest = {k: v for k, v in config.items() if k != "format"}
    fmt = config.get("format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
            raise refuse("output_config.format must be {type: json_schema, schema}", "output_config.format")
        out["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}
    if rest:
        out["output_config"] = rest
    return out


# --- errors: the internal body's field names as the client's ------------------------------------

_MESSAGE = re.compile(r"messages\[(\d+)\](.*)", re.DOTALL)
_INDEX = re.compile(r"\[(\d+)\](.*)", re.DOTALL)
_CALL = re.compile(r"\.tool_calls\[(\d+)\](.*)", re.DOTALL)
_THOUGHT = re.compile(r"\.thinking_blocks\[(\d+)\](.*)", re.DOTALL)
_CALL_FIELDS = ((".function.arguments", ".input"), (".function.name", ".name"), (".id", ".id"))
#: top-level internal fields and the Messages field each came from (the rest of the path kept)
_TOP = (
    (re.compile(r"tools\[(\d+)\]\.function\.parameters"), r"tools[\1].input_schema"),
    (re.compile(r"tools\[(\d+)\]\.function\.(name|description)"), r"tools[\1].\2"),
    (re.compile(r"tools\[(\d+)\]\.(?:function|type)$"), r"tools[\1]"),
    (re.compile(r"tool_choice\.function\.name"), "tool_choice.name"),
    (re.compile(r"tool_choice(?:\..*)?$", re.DOTALL), "tool_choice"),
    (re.compile(r"parallel_tool_calls$"), "tool_choice.disable_parallel_tool_use"),
    (re.compile(r"stop(?=$|\[)"), "stop_sequences"),
    (re.compile(r"user$"), "metadata.user_id"),
    (re.compile(r"response_format(?:\..*)?$", re.DOTALL), "output_config.format"),
)


def client_path(body: dict[str, Any], param: str) -> str:
    """Where the client wrote what ``to_internal(body)`` holds at ``param``.

    ``messages[3].content`` of the internal body is, for a request with a ``system`` prompt whose
    last turn holds a ``tool_result`` then a text block, the client's ``messages[2].content[1]``:
    an error naming the internal field would point at another turn, or at none. A path that does
    not name a translated field is returned as it is.
    """
    found = _MESSAGE.fullmatch(param)
    if found is None:
        for pattern, replacement in _TOP:
            if pattern.match(param):
                return pattern.sub(replacement, param, count=1)
        return param
    try:
        turns = _turns(body, msgspec.convert(body, MessagesRequest))
    except (msgspec.ValidationError, InvalidRequest):  # not a body to_internal took: nothing to map
        return param
    i, rest = int(found.group(1)), found.group(2)
    return _inside(turns[i][1], rest) if i < len(turns) else param


def _inside(origin: Origin, rest: str) -> str:
    """The client's path for ``rest`` (``.content[1].text``, ``.tool_calls[0].function.arguments``…)
    inside the internal message that ``origin`` describes."""
    if rest.startswith(".content"):
        after = rest.removeprefix(".content")
        if origin.parts is None:  # string content: what follows is a path inside its JSON
            return origin.content + after
        index = _INDEX.match(after)
        if index is None or int(index.group(1)) >= len(origin.parts):
            return origin.content
        block, own_fields = origin.parts[int(index.group(1))]
        inner = index.group(2)
        return block + inner if own_fields and inner.startswith(".text") else block
    thought = _THOUGHT.match(rest)
    if thought is not None and int(thought.group(1)) < len(origin.thoughts):
        return origin.thoughts[int(thought.group(1))] + thought.group(2)
    call = _CALL.match(rest)
    if call is not None and int(call.group(1)) < len(origin.calls):
        block, inner = origin.calls[int(call.group(1))], call.group(2)
        for internal, field in _CALL_FIELDS:
            if inner.startswith(internal):
                return block + field + inner.removeprefix(internal)
        return block
    for name, field in origin.renames:
        if rest == f".{name}":
            return origin.base + field
    return origin.base

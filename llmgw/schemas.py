"""Validation of OpenAI request bodies.

The body is decoded once into plain dicts (which is what is forwarded upstream) and checked
against these msgspec types, so errors name the offending parameter (``messages[1].role``).
Unknown top-level fields follow ``server.unknown_fields``: ``pass`` forwards them to the
provider untouched (Bedrock receives them as ``additionalModelRequestFields``), ``reject``
answers 400 ``unknown_parameter``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from llmgw.errors import InvalidRequest, PayloadTooLarge, clip

# PostgreSQL refuses NUL in text: a string that is stored as is must not hold one. Combine with
# the column's bound: ``Annotated[str, NoNul, msgspec.Meta(max_length=200)]``.
NoNul = msgspec.Meta(pattern=r"^[^\x00]*$")


Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class Message(msgspec.Struct, forbid_unknown_fields=False):
    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(msgspec.Struct, forbid_unknown_fields=False):
    include_usage: bool = False


class FunctionDef(msgspec.Struct, forbid_unknown_fields=False):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(msgspec.Struct, forbid_unknown_fields=False):
    type: Literal["function"]
    function: FunctionDef


class ResponseFormat(msgspec.Struct, forbid_unknown_fields=False):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


Unit = Annotated[float, msgspec.Meta(ge=0, le=2)]
Penalty = Annotated[float, msgspec.Meta(ge=-2, le=2)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]


class ChatRequest(msgspec.Struct, forbid_unknown_fields=False):
    model: Annotated[str, msgspec.Meta(min_length=1)]
    messages: list[Message]  # may be empty when a template provides them; checked after templating
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=128)] | None = None
    temperature: Unit | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    max_tokens: PositiveInt | None = None
    max_completion_tokens: PositiveInt | None = None
    stop: str | list[str] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    seed: int | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    # OpenAI's newer chat fields (also what /v1/responses translates reasoning, text.verbosity and
    # its identifiers to): known, so that server.unknown_fields: reject lets them through
    reasoning_effort: str | None = None
    verbosity: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    #: the gateway's options; any JSON here, so that ``llmgw.options`` refuses a non-object with its own error
    llmgw: Any = None


class EmbeddingsRequest(msgspec.Struct, forbid_unknown_fields=False):
    model: Annotated[str, msgspec.Meta(min_length=1)]
    input: str | list[str | int | list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: PositiveInt | None = None
    user: str | None = None
    llmgw: Any = None  # as ChatRequest's


CHAT_FIELDS = frozenset(ChatRequest.__struct_fields__)
EMBEDDINGS_FIELDS = frozenset(EmbeddingsRequest.__struct_fields__)
_AT = re.compile(r" - at `\$\.?(.*)`$")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def param_of(message: str) -> tuple[str, str | None]:
    match = _AT.search(message)
    if not match:
        return message, None
    return message[: match.start()], match.group(1) or None


class NestedTooDeep(InvalidRequest):
    """JSON nested deeper than ``server.max_json_depth``."""

    code = "invalid_json"


def nesting_depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether arrays and objects nest deeper than ``max_depth`` (a scalar is depth 0).

    Walked level by level rather than recursively, so that no depth can exhaust the stack.
    """
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            return True
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            below.extend(child for child in children if isinstance(child, dict | list))
        level = below
    return False


def decode_json(raw: bytes | str, max_depth: int, what: str = "request body", param: str | None = None) -> Any:
    """Decode JSON a client sent; every way it can be malformed is a 400 ``invalid_json``.

    Besides syntax errors that covers invalid UTF-8 (msgspec raises ``UnicodeDecodeError``, not a
    ``DecodeError``) and nesting deeper than ``max_depth`` (``server.max_json_depth``): a value
    nested a thousand levels deep exhausts the interpreter's stack in the decoder, and anything
    that walks it later (guards, templates, the provider's encoder) would do the same.
    """
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"{what} is not valid JSON: {exc}", code="invalid_json", param=param) from None
    except UnicodeDecodeError:
        raise InvalidRequest(f"{what} is not valid UTF-8", code="invalid_json", param=param) from None
    except RecursionError:
        value = None
        too_deep = True
    else:
        too_deep = nesting_depth_exceeds(value, max_depth)
    if too_deep:
        raise NestedTooDeep(f"{what} nests arrays and objects deeper than {max_depth} levels", param=param)
    return value


def decode_body(raw: bytes, max_bytes: int, max_depth: int) -> dict[str, Any]:
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"request body is {len(raw)} bytes; the limit is {max_bytes}")
    if not raw:
        raise InvalidRequest("request body is empty; expected a JSON object", code="invalid_json")
    body = decode_json(raw, max_depth)
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
    return body


def validate(body: dict[str, Any], kind: type[msgspec.Struct], known: frozenset[str], unknown_fields: str) -> Any:
    """Check types and ranges; return the typed view (the dict stays what is forwarded)."""
    if unknown_fields == "reject":
        extra = sorted(set(body) - known)
        if extra:
            raise InvalidRequest(
                f"unknown parameter {clip(extra[0])} (server.unknown_fields is 'reject')",
                param=extra[0][:80],
                code="unknown_parameter",
            )
    try:
        return msgspec.convert(body, kind)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, "invalid request") from None


def validation_error(exc: msgspec.ValidationError, what: str) -> InvalidRequest:
    """msgspec's complaint as a 400 naming the parameter (``... at 'messages[0].role'``)."""
    message, param = param_of(str(exc))
    missing = _MISSING.search(message)
    if missing:  # "Object missing required field `max_tokens`" names no location of its own
        param = f"{param}.{missing.group(1)}" if param else missing.group(1)
    message = message.replace(f"matching regex {NoNul.pattern!r}", "without NUL bytes")
    if param:
        message = f"{message} at '{param}'"
    return InvalidRequest(f"{what}: {message}", param=param, code="invalid_value")

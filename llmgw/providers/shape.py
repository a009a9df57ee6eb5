"""What llmgw relies on in an OpenAI-shaped answer, checked where an upstream's JSON is decoded.

The stages read answers as objects (``choices[i].message.content``, ``delta.tool_calls[j].function``).
An upstream that sends another shape (an array for a body, choices that are not objects, a number
for content) is its fault: it is refused here as ``upstream_protocol_error`` (502), with a request
row like any upstream failure, instead of surfacing as a 500 from deep inside a stage. Usage is
read by :func:`llmgw.usage.read_usage`, for every provider. The work is constant per chunk.
"""

from __future__ import annotations

from typing import Any

from llmgw.usage import malformed


def completion(body: Any) -> dict[str, Any]:
    """A non-streamed answer, checked."""
    if not isinstance(body, dict):
        raise malformed(f"the body is a JSON {_kind(body)}, not an object")
    choices = body.get("choices")
    if not isinstance(choices, list):
        raise malformed("choices is not a list")
    if not choices:  # no answer at all: passed on, it would read as a complete empty one
        raise malformed("choices is empty")
    for i, choice in enumerate(choices):
        _choice(choice, "message", f"choices[{i}]")
    return body


def chunk(data: Any) -> dict[str, Any]:
    """One chunk of a stream, checked (a usage-only chunk may leave ``choices`` out)."""
    if not isinstance(data, dict):
        raise malformed(f"a stream chunk is a JSON {_kind(data)}, not an object")
    choices = data.get("choices")
    if choices is not None:
        if not isinstance(choices, list):
            raise malformed("a stream chunk's choices is not a list")
        for i, choice in enumerate(choices):
            _choice(choice, "delta", f"choices[{i}]")
            if choice.get("delta") is None:  # left out or null by some servers; clients read it always
                choice["delta"] = {}
    return data


def _choice(choice: Any, part: str, where: str) -> None:
    if not isinstance(choice, dict):
        raise malformed(f"{where} is not an object")
    index = choice.get("index", 0)
    if isinstance(index, bool) or not isinstance(index, int):
        raise malformed(f"{where}.index is not an integer")
    message = choice.get(part)
    if message is None:
        if part == "message":  # an answer's choice without one is no answer (a delta may be left out)
            raise malformed(f"{where}.message is missing")
        return
    if not isinstance(message, dict):
        raise malformed(f"{where}.{part} is not an object")
    content = message.get("content")
    # a message may hold content parts; a stream's delta carries text only
    if content is not None and not isinstance(content, str | list if part == "message" else str):
        raise malformed(f"{where}.{part}.content is a JSON {_kind(content)}")
    calls = message.get("tool_calls")
    if calls is None:
        return
    if not isinstance(calls, list):
        raise malformed(f"{where}.{part}.tool_calls is not a list")
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(function or {}, dict):
            raise malformed(f"{where}.{part}.tool_calls[{j}] is not a tool call object")
        if function is not None and not isinstance(function.get("arguments", ""), str | None):
            raise malformed(f"{where}.{part}.tool_calls[{j}].function.arguments is not a string")


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )

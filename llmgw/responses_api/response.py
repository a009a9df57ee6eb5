"""The internal chat completion as a Responses API ``response`` object.

The first choice becomes the ``output`` items (a ``message`` with ``output_text`` or ``refusal``
content, then one ``function_call`` item per tool call); ``finish_reason`` becomes the status
(``length`` and ``content_filter`` are ``incomplete`` with the matching reason); ``usage`` is
renamed to ``input_tokens``/``output_tokens`` with their details. What the client asked for
(instructions, tools, text format, ...) is echoed back as OpenAI does. The cache stores the
internal completion, so a hit renders here like any answer.
"""

from __future__ import annotations

import time
from typing import Any

#: request fields the response object echoes, with their value when the request left them out
ECHOED: dict[str, Any] = {
    "instructions": None, "max_output_tokens": None, "metadata": {}, "parallel_tool_calls": True,
    "temperature": None, "tool_choice": "auto", "tools": [], "top_p": None, "user": None,
    "safety_identifier": None, "prompt_cache_key": None, "max_tool_calls": None, "truncation": "disabled",
}  # fmt: skip
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def response_id(request_id: str) -> str:
    return f"resp_{request_id}"


def base_response(request: dict[str, Any], request_id: str, model: str | None, created: float) -> dict[str, Any]:
    """The response object without output or usage: what ``response.created`` carries."""
    response: dict[str, Any] = {
        "id": response_id(request_id), "object": "response", "created_at": created, "status": "in_progress",
        "model": model or request.get("model"), "output": [], "error": None, "incomplete_details": None,
        "previous_response_id": None, "store": False, "background": False, "usage": None,
        "text": {"format": (request.get("text") or {}).get("format") or {"type": "text"}},
        "reasoning": {"effort": (request.get("reasoning") or {}).get("effort"),
                      "summary": (request.get("reasoning") or {}).get("summary")},
    }  # fmt: skip
    verbosity = (request.get("text") or {}).get("verbosity")
    if verbosity is not None:  # echoed as the rest of ``text`` is (it reached the upstream as ``verbosity``)
        response["text"]["verbosity"] = verbosity
    for name, default in ECHOED.items():
        value = request.get(name)
        response[name] = default if value is None else value
    return response


def status_of(finish_reason: str | None) -> tuple[str, dict[str, str] | None]:
    reason = INCOMPLETE.get(finish_reason or "")
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def usage_of(usage: dict[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    cached, written = int(details.get("cached_tokens") or 0), int(details.get("cache_write_tokens") or 0)
    reasoning = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return {
        "input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
        "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }  # fmt: skip


def message_item(request_id: str, text: str | None, refusal: str | None, status: str = "completed") -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text:
        content.append(output_text(text))
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"type": "message", "id": f"msg_{request_id}", "status": status, "role": "assistant", "content": content}


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(request_id: str, index: int, call: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    function = call.get("function") or {}
    return {"type": "function_call", "id": f"fc_{request_id}_{index}", "call_id": call.get("id") or f"call_{index}",
            "name": function.get("name") or "", "arguments": function.get("arguments") or "",
            "status": status}  # fmt: skip


def to_response(completion: dict[str, Any], request: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The ``response`` object for a non-streamed answer."""
    response = base_response(request, request_id, completion.get("model"), completion.get("created") or time.time())
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    status, incomplete = status_of(choice.get("finish_reason"))
    output = []
    text, refusal = message.get("content"), message.get("refusal")
    if text or refusal:
        output.append(message_item(request_id, text, refusal))
    for i, call in enumerate(message.get("tool_calls") or ()):
        output.append(function_call_item(request_id, i, call))
    usage = usage_of(completion.get("usage"))
    response.update(status=status, incomplete_details=incomplete, output=output, usage=usage, completed_at=time.time())
    if "llmgw" in completion:  # retrieval's sources, as on chat
        response["llmgw"] = completion["llmgw"]
    return response

"""The reverse translation, for an OpenAI-compatible upstream configured ``responses: native``.

Such an upstream is called on its own ``/responses`` endpoint (some models are served only
there). Every stage still runs: the provider receives the internal chat body as every provider
does (templated, masked, guarded) and translates it to a Responses request here, and the
upstream's ``response`` object or events back into the internal completion or chunks, which
the output guards, PII restoration, the cache and the audit log read as usual.

What is *not* done is a byte-for-byte pass-through of the client's own Responses body: masking
and input guards rewrite the internal body, and output guards must read the answer as it
streams, so forwarding the raw body would skip them. Responses-only features the internal
shape cannot carry (hosted tools, reasoning items, ``previous_response_id``) therefore do not
reach a native upstream either. ``store`` is always sent as false: the upstream keeps nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llmgw.errors import InvalidRequest, UpstreamError, UpstreamKind, upstream_failure
from llmgw.messages import text_of
from llmgw.usage import malformed

#: chat fields carried to a Responses request under the same name
SAME_NAME = ("model", "temperature", "top_p", "metadata", "user", "parallel_tool_calls", "safety_identifier",
             "prompt_cache_key", "service_tier", "stream")  # fmt: skip
#: chat fields a Responses upstream has no use for (usage is always in ``response.completed``)
DROPPED = frozenset({"messages", "stream_options", "max_tokens", "max_completion_tokens", "tools",
                     "tool_choice", "response_format", "reasoning_effort", "verbosity", "store", "n", "stop",
                     "logprobs", "top_logprobs", "seed", "logit_bias", "presence_penalty", "frequency_penalty",
                     "llmgw"})  # fmt: skip
FUNCTION = "function_call"
#: the statuses of a response that holds no complete answer (besides ``failed``)
UNFINISHED = frozenset({"queued", "in_progress", "cancelled"})
FINISH = {"max_output_tokens": "length", "content_filter": "content_filter"}


def responses_body(body: dict[str, Any]) -> dict[str, Any]:
    """The internal chat body as a Responses request."""
    if (body.get("n") or 1) > 1:
        raise InvalidRequest("n > 1 is not supported by this model's upstream (it speaks the Responses API)",
                             param="n", code="unsupported_parameter")  # fmt: skip
    if body.get("stop"):
        raise InvalidRequest("stop sequences are not supported by this model's upstream (it speaks the "
                             "Responses API)", param="stop", code="unsupported_parameter")  # fmt: skip
    out: dict[str, Any] = {name: body[name] for name in SAME_NAME if body.get(name) is not None}
    out["input"] = [item for message in body.get("messages") or () for item in input_items(message)]
    out["store"] = False
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        out["max_output_tokens"] = limit
    if body.get("tools"):
        out["tools"] = [{"type": "function", **(tool.get("function") or {})} for tool in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        out["tool_choice"] = {"type": "function", "name": (choice.get("function") or {}).get("name")}
    elif choice is not None:
        out["tool_choice"] = choice
    text: dict[str, Any] = {}
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        text["format"] = {"type": "json_schema", **(fmt.get("json_schema") or {})}
    elif isinstance(fmt, dict):
        text["format"] = {"type": fmt.get("type")}
    if body.get("verbosity") is not None:
        text["verbosity"] = body["verbosity"]
    if text:
        out["text"] = text
    if body.get("reasoning_effort") is not None:
        out["reasoning"] = {"effort": body["reasoning_effort"]}
    for name, value in body.items():  # vendor extensions pass as they do to a chat upstream
        if name not in DROPPED and name not in out:
            out[name] = value
    return out


def input_items(message: dict[str, Any]) -> list[dict[str, Any]]:
    role, content = message.get("role"), message.get("content")
    if role == "tool":
        return [{"type": "function_call_output", "call_id": message.get("tool_call_id"), "output": text_of(content)}]
    items: list[dict[str, Any]] = []
    if role == "assistant":
        if content:
            items.append({"type": "message", "role": "assistant", "content": text_of(content)})
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            items.append({"type": "function_call", "call_id": call.get("id"), "name": function.get("name"),
                          "arguments": function.get("arguments") or ""})  # fmt: skip
        return items
    if isinstance(content, list):
        content = [input_part(part) for part in content]
    return [{"type": "message", "role": role, "content": content if content is not None else ""}]


def input_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url") or {}
        return {"type": "input_image", "image_url": image.get("url"), "detail": image.get("detail", "auto")}
    if kind == "file":
        return {"type": "input_file", **(part.get("file") or {})}
    return {"type": "input_text", "text": part.get("text") or ""}


# --- answers ------------------------------------------------------------------------------------


def fields(value: Any, what: str) -> dict[str, Any]:
    """An object of the upstream's answer (``{}`` for null or left out): anything else is malformed,
    refused as ``upstream_protocol_error`` rather than failing deep inside as a 500."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise malformed(f"{what} is not an object")
    return value


def failure_of(response: dict[str, Any], where: str = "upstream error") -> UpstreamError | None:
    """The failure a Responses ``response`` object reports (``status: "failed"``, its ``error``),
    even in a 200: the upstream's error, retried and fallen back from, never an empty answer."""
    error, status = response.get("error"), response.get("status")
    if status in UNFINISHED and not error:  # no answer (yet): passed on, it would read as a complete empty one
        error = f"the upstream's response is {status}, not complete"
    if status != "failed" and not error:
        return None
    return failure(error, where)


def failure(error: Any, where: str) -> UpstreamError:
    """An upstream's ``error`` object (or text) as a classified error (:func:`llmgw.errors.upstream_failure`,
    which Chat Completions bodies and streams go through too)."""
    return upstream_failure(error, where)


def chat_usage(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": usage.get("total_tokens")}  # fmt: skip
    cached = fields(usage.get("input_tokens_details"), "usage.input_tokens_details").get("cached_tokens")
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    reasoning = fields(usage.get("output_tokens_details"), "usage.output_tokens_details").get("reasoning_tokens")
    if reasoning:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


def finish_reason(response: dict[str, Any], called: bool) -> str:
    reason = fields(response.get("incomplete_details"), "incomplete_details").get("reason")
    if response.get("status") == "incomplete" and reason in FINISH:
        return FINISH[reason]
    return "tool_calls" if called else "stop"


def completion_of(response: Any) -> dict[str, Any]:
    """A Responses ``response`` object as a chat completion."""
    if not isinstance(response, dict):
        raise malformed("a Responses answer that is not an object")
    failure = failure_of(response)
    if failure is not None:
        raise failure
    if not isinstance(response.get("output"), list):
        raise malformed("a Responses answer without an output list")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    refusal = None
    for item in response["output"]:
        if not isinstance(item, dict):
            raise malformed("a Responses output item is not an object")
        if item.get("type") == "message":
            content = item.get("content") or ()
            if not isinstance(content, list):
                raise malformed("a Responses message's content is not a list")
            for part in content:
                if not isinstance(part, dict):
                    raise malformed("a Responses content part is not an object")
                if part.get("type") == "output_text":
                    texts.append(str(part.get("text") or ""))
                elif part.get("type") == "refusal":
                    refusal = part.get("refusal")
        elif item.get("type") == "function_call":
            function = {"name": item.get("name"), "arguments": item.get("arguments") or ""}
            calls.append({"id": item.get("call_id"), "type": "function", "function": function})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if refusal:
        message["refusal"] = refusal
    choice = {"index": 0, "message": message, "finish_reason": finish_reason(response, bool(calls))}
    usage = chat_usage(response.get("usage"))
    created = int(response.get("created_at") or 0)
    return {"object": "chat.completion", "created": created, "model": response.get("model"), "choices": [choice],
            "usage": usage}  # fmt: skip


def unstreamed(response: dict[str, Any], texted: bool, called: bool, call_ids: dict[Any, int],
               argued: set[int]) -> list[dict[str, Any]]:  # fmt: skip
    """The deltas of what the final ``response`` holds and the stream did not send: its message text
    when no text came as deltas, a call's arguments that never came, its calls when none came."""
    output = response.get("output")
    if not isinstance(output, list):
        return []
    deltas: list[dict[str, Any]] = []
    added = 0  # the calls taken from here (only when none came)
    for item in output:
        item = fields(item, "an output item")
        if item.get("type") == "message" and not texted:
            content = item.get("content") or ()
            for part in content if isinstance(content, list) else ():
                part = fields(part, "a content part")
                if part.get("type") == "output_text" and part.get("text"):
                    deltas.append({"content": str(part["text"])})
                elif part.get("type") == "refusal" and part.get("refusal"):
                    deltas.append({"refusal": str(part["refusal"])})
        elif item.get("type") == FUNCTION:
            arguments = str(item.get("arguments") or "")
            known = call_ids.get(item.get("call_id"))
            if known is not None and known not in argued and arguments:
                deltas.append({"tool_calls": [{"index": known, "function": {"arguments": arguments}}]})
            elif known is None and not called:
                function = {"name": item.get("name"), "arguments": arguments}
                deltas.append({"tool_calls": [{"index": added, "id": item.get("call_id"), "type": "function",
                                               "function": function}]})  # fmt: skip
                added += 1
    return deltas


async def chunks_of(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """Responses stream events as chat chunks: text and argument deltas as they come, the finish
    reason and usage at the end. A stream without its final event is a protocol error.

    What a server did not stream as deltas (some put a call's arguments in its ``output_item.added``,
    or the whole answer only in ``.done`` events and the final response) is taken from the final
    response, so that the answer is not passed on empty while the row says ``ok``."""
    calls: dict[int, int] = {}  # the upstream's output index -> chat tool-call index
    call_ids: dict[Any, int] = {}  # the upstream's call id -> chat tool-call index
    argued: set[int] = set()  # the chat tool calls whose arguments came
    texted = False  # whether any text or refusal came as deltas
    first = True

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        nonlocal first
        if first:
            delta, first = {"role": "assistant", **delta}, False
        return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    async for event in events:
        kind = event.get("type")
        if kind == "response.output_text.delta":
            texted = True
            yield chunk({"content": str(event.get("delta") or "")})
        elif kind == "response.refusal.delta":  # the model declined (structured outputs): chat's ``refusal``
            texted = True
            yield chunk({"refusal": str(event.get("delta") or "")})
        elif kind == "response.output_item.added" and fields(event.get("item"), "an item").get("type") == FUNCTION:
            item = event["item"]
            index = calls[event.get("output_index", len(calls))] = call_ids[item.get("call_id")] = len(calls)
            arguments = str(item.get("arguments") or "")  # OpenAI's is empty: its arguments come as deltas
            if arguments:
                argued.add(index)
            yield chunk({"tool_calls": [{"index": index, "id": item.get("call_id"), "type": "function",
                                         "function": {"name": item.get("name"), "arguments": arguments}}]})  # fmt: skip
        elif kind == "response.function_call_arguments.delta":
            known = calls.get(event.get("output_index", -1))
            if known is None:
                raise malformed("function-call arguments for an item never added")
            argued.add(known)
            yield chunk({"tool_calls": [{"index": known, "function": {"arguments": str(event.get("delta") or "")}}]})
        elif kind in ("response.completed", "response.incomplete"):
            response = fields(event.get("response"), f"{kind}'s response")
            failed = failure_of(response, "upstream stream error")
            if failed is not None:
                raise failed
            late = unstreamed(response, texted, bool(calls), call_ids, argued)
            for delta in late:
                yield chunk(delta)
            yield chunk({}, finish_reason(response, bool(calls) or any("tool_calls" in delta for delta in late)))
            usage = chat_usage(response.get("usage"))
            if usage is not None:
                yield {"object": "chat.completion.chunk", "choices": [], "usage": usage}
            return
        elif kind == "response.failed":
            raise failure(fields(event.get("response"), "response.failed's response").get("error"),
                          "upstream stream error")  # fmt: skip
        elif kind == "error":  # OpenAI's fields on the event; some servers nest them in ``error``
            raise failure(event["error"] if isinstance(event.get("error"), dict) else event, "upstream stream error")
    raise UpstreamError(UpstreamKind.PROTOCOL, "upstream stream ended before response.completed")

"""The internal chat body as a Messages request for an Anthropic-compatible upstream, and its
answer back as the internal completion or chunks (``llmgw.providers.anthropic``).

The inverse of ``inbound``: a Messages request that came in is sent on as it was meant (system
blocks, ``cache_control``, ``tool_use``/``tool_result`` pairs, an assistant turn's thinking blocks
(``llmgw.messages.THINKING``, first, as Anthropic requires in a tool loop), unknown fields such as
``top_k`` or ``thinking``), after the stages rewrote it; the answer's thinking blocks are kept.
OpenAI-only knobs with no Messages equivalent (``seed``, penalties, ``logit_bias``, ``logprobs``,
``store``) are dropped; ``response_format`` ``json_schema`` becomes ``output_config.format``;
``n`` > 1 and ``json_object`` are refused.
"""

from __future__ import annotations

import json
import time
from typing import Any

from llmgw.errors import InvalidRequest, UpstreamError, UpstreamKind
from llmgw.messages import SYSTEM_ROLES, THINKING
from llmgw.schemas import CHAT_FIELDS
from llmgw.usage import from_anthropic, malformed

#: Anthropic ``stop_reason`` → OpenAI ``finish_reason``. ``model_context_window_exceeded`` (the
#: answer was cut where the context window ended) is a cut answer as ``max_tokens`` is: read as
#: ``stop`` it would come back to a Messages client as ``end_turn``, a complete answer
FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
                  "model_context_window_exceeded": "length", "tool_use": "tool_calls",
                  "refusal": "content_filter"}  # fmt: skip

#: chat's ``service_tier`` → Anthropic's (``default`` is the standard tier; the others are not sent)
SERVICE_TIERS = {"auto": "auto", "default": "standard_only"}

#: chat fields that have no Messages equivalent: not sent
DROPPED = frozenset(
    {"seed", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "store", "metadata",
     "stream_options", "n", "parallel_tool_calls", "max_completion_tokens"}
)  # fmt: skip


def to_messages(body: dict[str, Any], model: str, default_max_tokens: int) -> dict[str, Any]:
    """A Messages request for the chat body (``max_tokens`` is required there: the body's, else the default)."""
    if (body.get("n") or 1) != 1:
        raise InvalidRequest("n must be 1 for an Anthropic upstream", param="n", code="unsupported_parameter")
    output_config = _output_config(body.get("response_format"), body.get("output_config"))
    system, messages = _messages(body.get("messages") or [])
    out: dict[str, Any] = {"model": model, "messages": messages,
                           "max_tokens": body.get("max_tokens") or body.get("max_completion_tokens")
                           or default_max_tokens}  # fmt: skip
    if system:
        out["system"] = system
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    for name in ("temperature", "top_p", "stream"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    tier = SERVICE_TIERS.get(str(body.get("service_tier")))
    if tier is not None:  # chat's other tiers (flex, priority, scale) cannot be asked of Anthropic per request
        out["service_tier"] = tier
    if body.get("tools"):
        out["tools"] = [_tool(tool) for tool in body["tools"]]
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None:
        out["tool_choice"] = choice
    if output_config:
        out["output_config"] = output_config
    for name, value in body.items():  # what the client sent for Anthropic itself (top_k, thinking...)
        if name not in CHAT_FIELDS and name not in DROPPED and name != "output_config":
            out[name] = value
    return out


def _output_config(response_format: Any, passed: Any) -> dict[str, Any]:
    """``response_format`` ``json_schema`` as ``output_config.format``; ``json_object`` has no
    Messages equivalent and is refused (as ``n`` > 1 is)."""
    out = dict(passed) if isinstance(passed, dict) else {}
    kind = (response_format or {}).get("type", "text")
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        out["format"] = {"type": "json_schema", "schema": schema}
    elif kind != "text":
        raise InvalidRequest(f"response_format {kind!r} is not supported by an Anthropic upstream: use json_schema",
                             param="response_format", code="unsupported_parameter")  # fmt: skip
    return out


def _blocks(content: Any) -> str | list[dict[str, Any]]:
    """Chat content (a string or parts) as Messages content: a string stays a string."""
    if content is None:
        return []
    if isinstance(content, str):
        return content
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            block: dict[str, Any] = {"type": "text", "text": part.get("text") or ""}
        elif kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            block = {"type": "image", "source": _image_source(str(url or ""))}
        else:
            raise InvalidRequest(f"content part type {kind!r} is not supported by an Anthropic upstream",
                                 code="invalid_request")  # fmt: skip
        if "cache_control" in part:
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _image_source(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        return {"type": "base64", "media_type": header.split(";")[0], "data": data}
    return {"type": "url", "url": url}


def _as_list(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _messages(chat: list[dict[str, Any]]) -> tuple[str | list[dict[str, Any]], list[dict[str, Any]]]:
    """System blocks and alternating turns: tool messages become ``tool_result`` blocks of a user
    turn, and consecutive turns of one role are merged (Messages alternates user and assistant)."""
    system: list[str | list[dict[str, Any]]] = []
    turns: list[dict[str, Any]] = []
    for message in chat:
        role = message.get("role")
        if role in SYSTEM_ROLES:
            system.append(_blocks(message.get("content")))
            continue
        if role == "tool":
            role = "user"
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id"),
                                      "content": _blocks(message.get("content"))}  # fmt: skip
            if message.get("is_error") is True:
                result["is_error"] = True
            blocks: str | list[dict[str, Any]] = [result]
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            calls = [_tool_use(call) for call in message.get("tool_calls") or ()]
            thoughts = [b for b in message.get(THINKING) or () if isinstance(b, dict)]
            if calls or thoughts:  # the reasoning first, as Anthropic answered it
                blocks = thoughts + _as_list(blocks) + calls
        else:
            role, blocks = "user", _blocks(message.get("content"))
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = _as_list(turns[-1]["content"]) + _as_list(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if all(isinstance(s, str) for s in system):
        return "\n\n".join(s for s in system if isinstance(s, str)), turns
    return [b for s in system for b in _as_list(s)], turns


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        value = json.loads(arguments)
    except ValueError:
        raise InvalidRequest("a tool call's arguments are not JSON", code="invalid_request") from None
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
            "input": value if isinstance(value, dict) else {"_arguments": value}}  # fmt: skip


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    out: dict[str, Any] = {"name": function.get("name"), "input_schema": function.get("parameters")
                           or {"type": "object"}}  # fmt: skip
    if function.get("description"):
        out["description"] = function["description"]
    if "cache_control" in tool:
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: Any, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None and parallel is not False:
        return None
    if isinstance(choice, dict):
        out: dict[str, Any] = {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    else:
        out = {"type": {"required": "any", "none": "none"}.get(choice or "auto", "auto")}
    if parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


# --- answers ---------------------------------------------------------------------------------


def usage(u: Any) -> dict[str, Any]:
    """Anthropic's usage in the internal shape (``llmgw.usage.from_anthropic``)."""
    if not isinstance(u, dict):
        raise malformed("usage is not an object")
    return from_anthropic(u)


#: the token counts of Anthropic's ``usage``: without any of them there is no usage to bill (a
#: compatible server that sends none, or nulls), and the tokens are estimated as for OpenAI's
COUNTS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def counted(u: Any) -> bool:
    """Whether ``u`` is a usage to read (anything but null, or an object with no count)."""
    return u is not None and not (isinstance(u, dict) and all(u.get(name) is None for name in COUNTS))


def _finish(stop_reason: Any, stop_sequence: Any) -> dict[str, Any]:
    """A choice's ``finish_reason``, and the matched ``stop_sequence`` when the upstream names one
    (the internal answer's field for it, ``llmgw.providers.stops``)."""
    out: dict[str, Any] = {"finish_reason": FINISH_REASONS.get(stop_reason or "end_turn", "stop")}
    if stop_reason == "stop_sequence" and isinstance(stop_sequence, str):
        out["stop_sequence"] = stop_sequence
    return out


def from_message(answer: Any) -> dict[str, Any]:
    """A Messages response as a ``chat.completion``."""
    if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
        raise malformed("a Messages response needs a content list")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    thoughts: list[dict[str, Any]] = []
    for block in answer["content"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind in ("thinking", "redacted_thinking"):
            thoughts.append(block)
        elif kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input") or {})},
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if thoughts:  # the model's reasoning: not its answer, but the client sends it back in a tool loop
        message[THINKING] = thoughts
    choice = {"index": 0, "message": message, **_finish(answer.get("stop_reason"), answer.get("stop_sequence"))}
    completion: dict[str, Any] = {"id": answer.get("id"), "object": "chat.completion", "created": int(time.time()),
                                  "model": answer.get("model"), "choices": [choice]}  # fmt: skip
    if counted(answer.get("usage")):
        completion["usage"] = usage(answer["usage"])
    return completion


class ChunksFromEvents:
    """Anthropic's stream events in, chat chunks out (constant work per event).

    Usage arrives in two halves (input in ``message_start``, output in ``message_delta``) and
    leaves as one usage chunk after the finish, as an OpenAI stream with ``include_usage`` does.
    A thinking block streams as ``thinking_blocks`` deltas (``llmgw.messages.THINKING``): its start
    (the block, with ``index``, its position in the upstream's message), then one piece per
    ``thinking_delta`` or ``signature_delta`` with the same ``index``.
    """

    def __init__(self) -> None:
        self.id = ""
        self.model: str | None = None
        self.created = int(time.time())
        self.tools: dict[int, int] = {}  # content block index -> tool call index
        self.usage: dict[str, Any] = {}
        self.finished = False
        self.opened = False  # whether the role chunk was sent

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip

    def feed(self, event: Any) -> list[dict[str, Any]]:
        """The chunks of one event. The role chunk ``message_start`` stands for leaves with the first
        chunk after it: an ``error`` event before any of the answer then fails the stream before its
        first chunk, as an HTTP error that the failover acts on, not as a 200 that dies at once."""
        chunks = self._feed(event)
        if chunks and not self.opened:
            self.opened = True
            return [self._chunk({"role": "assistant", "content": ""}), *chunks]
        return chunks

    def _feed(self, event: Any) -> list[dict[str, Any]]:
        if not isinstance(event, dict):
            raise malformed("a stream event is not an object")
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.id, self.model = str(message.get("id") or ""), message.get("model")
            self.usage.update(message.get("usage") or {})
            return []
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tools.setdefault(event.get("index", 0), len(self.tools))
                call = {"index": index, "id": block.get("id"), "type": "function",
                        "function": {"name": block.get("name"), "arguments": ""}}  # fmt: skip
                return [self._chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            if block.get("type") in ("thinking", "redacted_thinking"):
                return [self._chunk({THINKING: [{**block, "index": event.get("index", 0)}]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text") or ""})]
            if delta.get("type") == "input_json_delta" and event.get("index", 0) in self.tools:
                arguments = delta.get("partial_json") or ""
                call = {"index": self.tools[event.get("index", 0)], "function": {"arguments": arguments}}
                return [self._chunk({"tool_calls": [call]})]
            if delta.get("type") == "thinking_delta":
                piece = {"index": event.get("index", 0), "type": "thinking", "thinking": delta.get("thinking") or ""}
                return [self._chunk({THINKING: [piece]})]
            if delta.get("type") == "signature_delta":
                piece = {"index": event.get("index", 0), "type": "thinking", "signature": delta.get("signature") or ""}
                return [self._chunk({THINKING: [piece]})]
            return []
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            delta = event.get("delta") or {}
            chunk = self._chunk({})
            chunk["choices"][0].update(_finish(delta.get("stop_reason"), delta.get("stop_sequence")))
            return [chunk]
        if kind == "message_stop":
            self.finished = True
            final = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                     "choices": []}  # fmt: skip
            if counted(self.usage):
                final["usage"] = usage(self.usage)
            return [final]
        if kind == "error":
            error = event.get("error") or {}
            kind_name = error.get("type") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else str(error)
            upstream = UpstreamKind.RATE_LIMITED if kind_name == "rate_limit_error" else UpstreamKind.SERVER_ERROR
            raise UpstreamError(upstream, f"upstream stream error: {message}")
        return []  # ping, and event types added later

"""OpenAI chat wire format <-> Bedrock Converse, as pure functions (no I/O).

* :func:`to_converse` turns an OpenAI chat request body into kwargs for ``converse``/``converse_stream``.
* :func:`from_converse` turns a Converse response into an OpenAI ``chat.completion`` dict.
* :class:`StreamTranslator` turns ConverseStream events into ``chat.completion.chunk`` dicts.
* :func:`classify_bedrock_error` turns botocore exceptions into :class:`UpstreamError`.

Extended thinking (Claude on Bedrock): the client's ``thinking`` goes out as an
``additionalModelRequestFields`` entry like every field Converse does not know; the answer's
``reasoningContent`` blocks come back as the assistant's ``thinking_blocks`` (Anthropic's block
shapes, ``llmgw.messages.THINKING``; a redacted block's bytes as base64 ``data``), and an assistant
turn's ``thinking_blocks`` go back to Converse first in that turn, as a tool loop with thinking
must send them (Claude refuses the loop's next turn without them).

``tool_choice: "none"`` has no Converse equivalent: the tools are dropped, unless the history holds
tool calls or results (Converse then insists on a ``toolConfig``), in which case the tools are kept
and a system line asks the model not to call them.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from llmgw.errors import InvalidRequest, UpstreamError, UpstreamKind
from llmgw.messages import THINKING
from llmgw.providers.retry import parse_retry_after

KNOWN_FIELDS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "n", "temperature", "top_p", "max_tokens",
        "max_completion_tokens", "stop", "tools", "tool_choice", "response_format", "user", "seed",
        "llmgw", "parallel_tool_calls", "metadata", "store", "logprobs", "top_logprobs",
        "presence_penalty", "frequency_penalty", "logit_bias",
    }
)  # fmt: skip

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}

#: the JSON pointer of the model's own response field that names the matched stop sequence
STOP_SEQUENCE_PATH = "/stop_sequence"

IMAGE_FORMATS = {f"image/{x}": x for x in ("png", "jpeg", "gif", "webp")} | {"image/jpg": "jpeg"}

JSON_ONLY = "Respond with a single valid JSON value only, with no prose and no code fences."
NO_TOOLS = "Do not call any tools in this reply; answer in text."


def finish_reason(stop_reason: str | None) -> str:
    """Map a Converse ``stopReason`` to an OpenAI ``finish_reason``."""
    return FINISH_REASONS.get(stop_reason or "end_turn", "stop")


def stop_sequence(stop_reason: Any, fields: Any, stops: tuple[str, ...]) -> str | None:
    """Which of the request's ``stops`` ended the answer, when Converse says one did: the model's
    ``additionalModelResponseFields.stop_sequence``, else the request's only stop sequence."""
    if stop_reason != "stop_sequence":
        return None
    named = fields.get("stop_sequence") if isinstance(fields, dict) else None
    if isinstance(named, str) and named in stops:
        return named
    return stops[0] if len(stops) == 1 else None


def _finish(stop_reason: Any, fields: Any, stops: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {"finish_reason": finish_reason(stop_reason)}
    matched = stop_sequence(stop_reason, fields, stops)
    if matched is not None:
        out["stop_sequence"] = matched  # the internal answer's field (``llmgw.providers.stops``)
    return out


# ---------------------------------------------------------------- request


def _image_block(part: dict[str, Any], where: str) -> dict[str, Any]:
    """An ``image_url`` part with a base64 ``data:`` URL -> an image block; anything else is rejected."""
    url = part.get("image_url")
    url = url.get("url") if isinstance(url, dict) else url
    if not isinstance(url, str) or not url.startswith("data:"):
        raise InvalidRequest("Bedrock takes images only as data: URLs", param=where, code="invalid_image_url")
    header, _, data = url[5:].partition(",")
    mime, *params = header.split(";")
    fmt = IMAGE_FORMATS.get(mime.lower())
    try:
        if fmt is None or "base64" not in params:
            raise ValueError(f"unsupported image data URL {header!r}")
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"bad image: {exc}", param=where, code="invalid_image_url") from exc
    return {"image": {"format": fmt, "source": {"bytes": raw}}}


def _content_blocks(content: Any, where: str, images: bool = True) -> list[dict[str, Any]]:
    """OpenAI message content (str, None or list of parts) -> Converse content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequest("message content must be a string or a list of parts", param=where)
    blocks: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" or kind == "refusal":
            text = part.get(kind) or ""
            if text:
                blocks.append({"text": text})
        elif kind == "image_url" and images:
            blocks.append(_image_block(part, f"{where}[{i}]"))
        else:
            raise InvalidRequest(f"unsupported content part type {kind!r}", param=f"{where}[{i}]")
    return blocks


def _text_of(content: Any, where: str) -> str:
    return "\n".join(b["text"] for b in _content_blocks(content, where, images=False))


def _tool_use(call: dict[str, Any], where: str) -> dict[str, Any]:
    fn = call.get("function") or {}
    args = fn.get("arguments") or "{}"
    try:
        parsed = json.loads(args) if isinstance(args, str) else args
    except ValueError as exc:
        raise InvalidRequest("tool call arguments are not valid JSON", param=where) from exc
    return {"toolUse": {"toolUseId": call.get("id", ""), "name": fn.get("name", ""), "input": parsed}}


def _tool_result(msg: dict[str, Any], where: str) -> dict[str, Any]:
    """A ``tool`` message as a ``toolResult``; one marked ``is_error`` (a failed call, from a
    Messages ``tool_result``) has ``status: "error"``, which Converse honours for Claude and Nova."""
    text = _text_of(msg.get("content"), where)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    content = [{"json": parsed}] if isinstance(parsed, dict) else [{"text": text}]
    result: dict[str, Any] = {"toolUseId": msg.get("tool_call_id", ""), "content": content}
    if msg.get("is_error") is True:
        result["status"] = "error"
    return {"toolResult": result}


def _reasoning_blocks(blocks: Any, where: str) -> list[dict[str, Any]]:
    """An assistant turn's ``thinking_blocks`` as Converse ``reasoningContent`` blocks, unchanged:
    Bedrock checks each block's signature (or the redacted block's bytes) against what it sent."""
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        raise InvalidRequest(f"{THINKING} must be a list", param=where)
    out: list[dict[str, Any]] = []
    for k, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "thinking":
            text: dict[str, Any] = {"text": str(block.get("thinking") or "")}
            if isinstance(block.get("signature"), str) and block["signature"]:
                text["signature"] = block["signature"]
            out.append({"reasoningContent": {"reasoningText": text}})
        elif kind == "redacted_thinking":
            try:
                raw = base64.b64decode(str(block.get("data") or ""), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidRequest(
                    "a redacted thinking block's data must be base64", param=f"{where}[{k}].data"
                ) from exc
            out.append({"reasoningContent": {"redactedContent": raw}})
        else:
            raise InvalidRequest(f"unsupported thinking block type {kind!r}", param=f"{where}[{k}].type")
    return out


def _thinking_block(reasoning: Any) -> dict[str, Any] | None:
    """A Converse ``reasoningContent`` block as an Anthropic thinking block (None: not one)."""
    if not isinstance(reasoning, dict):
        return None
    redacted = reasoning.get("redactedContent")
    if isinstance(redacted, bytes | bytearray):
        return {"type": "redacted_thinking", "data": base64.b64encode(redacted).decode("ascii")}
    text = reasoning.get("reasoningText")
    if not isinstance(text, dict):
        return None
    return {"type": "thinking", "thinking": str(text.get("text") or ""), "signature": str(text.get("signature") or "")}


def _messages(msgs: Any) -> tuple[list[dict[str, Any]], list[str], bool]:
    """Converse messages, system texts, and whether any tool block occurs."""
    if not isinstance(msgs, list) or not msgs:
        raise InvalidRequest("messages must be a non-empty list", param="messages")
    out: list[dict[str, Any]] = []
    system: list[str] = []
    has_tools = False
    for i, msg in enumerate(msgs):
        where = f"messages[{i}]"
        role = msg.get("role") if isinstance(msg, dict) else None
        if role in ("system", "developer"):
            text = _text_of(msg.get("content"), f"{where}.content")
            if text:
                system.append(text)
            continue
        if role == "user":
            blocks = _content_blocks(msg.get("content"), f"{where}.content")
        elif role == "assistant":
            blocks = _reasoning_blocks(msg.get(THINKING), f"{where}.{THINKING}")  # first, as Claude answered
            blocks += _content_blocks(msg.get("content"), f"{where}.content", images=False)
            calls = msg.get("tool_calls") or []
            blocks += [_tool_use(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(calls)]
            has_tools = has_tools or bool(calls)
        elif role == "tool":
            role, blocks, has_tools = "user", [_tool_result(msg, f"{where}.content")], True
        else:
            raise InvalidRequest(f"unsupported message role {role!r}", param=f"{where}.role")
        if not blocks:
            continue
        if out and out[-1]["role"] == role:  # Converse requires user/assistant alternation
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out, system, has_tools


def _tool_config(body: dict[str, Any], has_tool_blocks: bool, system: list[str]) -> dict[str, Any] | None:
    tools = body.get("tools") or []
    specs = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise InvalidRequest("only function tools with a name are supported", param=f"tools[{i}]")
        spec: dict[str, Any] = {
            "name": fn["name"],
            "inputSchema": {"json": fn.get("parameters") or {"type": "object", "properties": {}}},
        }
        if fn.get("description"):
            spec["description"] = fn["description"]
        specs.append({"toolSpec": spec})
    if not specs:
        return None
    choice = body.get("tool_choice")
    config: dict[str, Any] = {"tools": specs}
    if choice == "none":
        if not has_tool_blocks:
            return None
        system.append(NO_TOOLS)
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if choice.get("type") != "function" or not name:
            raise InvalidRequest("tool_choice must name a function", param="tool_choice")
        config["toolChoice"] = {"tool": {"name": name}}
    elif choice is not None:
        raise InvalidRequest(f"unsupported tool_choice {choice!r}", param="tool_choice")
    return config


def to_converse(body: dict[str, Any], model_id: str) -> dict[str, Any]:
    """OpenAI chat request body -> kwargs for boto3 ``converse``/``converse_stream``."""
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("Bedrock returns one choice only; n must be 1", param="n", code="unsupported_parameter")
    messages, system, has_tool_blocks = _messages(body.get("messages"))
    kwargs: dict[str, Any] = {"modelId": model_id, "messages": messages}

    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_object":
        system.append(JSON_ONLY)
    elif fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        system.append(f"{JSON_ONLY} It must conform to this JSON Schema: {json.dumps(schema)}")

    tool_config = _tool_config(body, has_tool_blocks, system)
    if tool_config is not None:
        kwargs["toolConfig"] = tool_config
    if system:
        kwargs["system"] = [{"text": s} for s in system]

    inference: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        inference["maxTokens"] = max_tokens
    if body.get("temperature") is not None:
        inference["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        inference["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        inference["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
        # Converse says ``stopReason: stop_sequence`` but not which: the model's own response
        # field names it (Claude's ``stop_sequence``; ignored where a model has no such field)
        kwargs["additionalModelResponseFieldPaths"] = [STOP_SEQUENCE_PATH]
    if inference:
        kwargs["inferenceConfig"] = inference

    extra = {k: v for k, v in body.items() if k not in KNOWN_FIELDS}
    if extra:
        kwargs["additionalModelRequestFields"] = extra
    return kwargs


# ---------------------------------------------------------------- response


def _usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Converse's usage in the internal shape (``llmgw.usage``): ``inputTokens`` leaves out the
    tokens read from and written to the prompt cache, ``prompt_tokens`` counts them."""
    read, written = int(usage.get("cacheReadInputTokens") or 0), int(usage.get("cacheWriteInputTokens") or 0)
    prompt = int(usage.get("inputTokens", 0)) + read + written
    completion = int(usage.get("outputTokens", 0))
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                           "total_tokens": prompt + completion}  # fmt: skip
    if read or written:
        out["prompt_tokens_details"] = {"cached_tokens": read, "cache_write_tokens": written}
    return out


def from_converse(resp: dict[str, Any], model: str, request_id: str, stops: tuple[str, ...] = ()) -> dict[str, Any]:
    """Converse response -> OpenAI ``chat.completion`` dict (``stops``: the request's stop sequences)."""
    blocks = ((resp.get("output") or {}).get("message") or {}).get("content") or []
    texts = [b["text"] for b in blocks if "text" in b]
    uses = [b["toolUse"] for b in blocks if "toolUse" in b]
    calls = [
        {"id": u.get("toolUseId", ""), "type": "function",
         "function": {"name": u.get("name", ""), "arguments": json.dumps(u.get("input", {}))}}
        for u in uses
    ]  # fmt: skip
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    thoughts = [t for b in blocks if "reasoningContent" in b if (t := _thinking_block(b["reasoningContent"]))]
    if thoughts:  # the model's reasoning: not its answer, but the client sends it back in a tool loop
        message[THINKING] = thoughts
    choice = {
        "index": 0,
        "message": message,
        **_finish(resp.get("stopReason"), resp.get("additionalModelResponseFields"), stops),
        "logprobs": None,
    }
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": _usage(resp.get("usage") or {}),
    }


class StreamTranslator:
    """Turns ConverseStream events, fed one at a time, into OpenAI ``chat.completion.chunk`` dicts.

    The ``metadata`` event always becomes a usage chunk (``choices: []``); dropping it when the client
    did not ask for ``stream_options.include_usage`` is the caller's business.
    """

    def __init__(self, model: str, request_id: str, stops: tuple[str, ...] = ()) -> None:
        self.stops = stops  # the request's stop sequences
        self.id = f"chatcmpl-{request_id}"
        self.model = model
        self.created = int(time.time())
        self._tool_index: dict[int, int] = {}  # contentBlockIndex -> OpenAI tool call index

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Translate one event; unknown or empty events give no chunk."""
        if "messageStart" in event:
            return [self._chunk({"role": "assistant", "content": ""})]
        if "contentBlockStart" in event:
            ev = event["contentBlockStart"]
            tool = (ev.get("start") or {}).get("toolUse")
            if tool is None:
                return []
            index = self._tool_index.setdefault(ev.get("contentBlockIndex", 0), len(self._tool_index))
            call = {"index": index, "id": tool.get("toolUseId", ""), "type": "function",
                    "function": {"name": tool.get("name", ""), "arguments": ""}}  # fmt: skip
            return [self._chunk({"tool_calls": [call]})]
        if "contentBlockDelta" in event:
            ev = event["contentBlockDelta"]
            delta = ev.get("delta") or {}
            if delta.get("text"):
                return [self._chunk({"content": delta["text"]})]
            block = ev.get("contentBlockIndex", 0)
            if isinstance(delta.get("reasoningContent"), dict):
                return self._reasoning(block, delta["reasoningContent"])
            piece = (delta.get("toolUse") or {}).get("input")
            if piece and block in self._tool_index:
                call = {"index": self._tool_index[block], "function": {"arguments": piece}}
                return [self._chunk({"tool_calls": [call]})]
            return []
        if "messageStop" in event:
            stop = event["messageStop"]
            chunk = self._chunk({})
            chunk["choices"][0].update(_finish(stop.get("stopReason"), stop.get("additionalModelResponseFields"),
                                               self.stops))  # fmt: skip
            return [chunk]
        if "metadata" in event:
            usage = event["metadata"].get("usage")
            if usage is None:
                return []
            chunk = self._chunk({})
            chunk["choices"] = []
            chunk["usage"] = _usage(usage)
            return [chunk]
        return []

    def _reasoning(self, block: Any, reasoning: dict[str, Any]) -> list[dict[str, Any]]:
        """A piece of a reasoning block as a ``thinking_blocks`` delta (``llmgw.messages.THINKING``),
        as the Anthropic provider streams them: ``index`` is the block's, the first piece opens it."""
        piece: dict[str, Any] = {"index": block}
        if isinstance(reasoning.get("redactedContent"), bytes | bytearray):
            piece.update(type="redacted_thinking", data=base64.b64encode(reasoning["redactedContent"]).decode("ascii"))
        elif isinstance(reasoning.get("text"), str) and reasoning["text"]:
            piece.update(type="thinking", thinking=reasoning["text"])
        elif isinstance(reasoning.get("signature"), str) and reasoning["signature"]:
            piece.update(type="thinking", signature=reasoning["signature"])
        else:
            return []
        return [self._chunk({THINKING: [piece]})]


# ---------------------------------------------------------------- errors

ERROR_KINDS = {
    **dict.fromkeys(
        ["ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"], UpstreamKind.RATE_LIMITED
    ),
    **dict.fromkeys(
        ["InternalServerException", "ModelErrorException", "ModelStreamErrorException"], UpstreamKind.SERVER_ERROR
    ),
    **dict.fromkeys(["ServiceUnavailableException", "ModelNotReadyException"], UpstreamKind.UNAVAILABLE),
    **dict.fromkeys(
        ["AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"], UpstreamKind.AUTH
    ),
    "InvalidSignatureException": UpstreamKind.AUTH,
    "ModelTimeoutException": UpstreamKind.TIMEOUT,
    "ValidationException": UpstreamKind.BAD_REQUEST,
    "ResourceNotFoundException": UpstreamKind.NOT_FOUND,
}


def classify_bedrock_error(exc: BaseException) -> UpstreamError:
    """A botocore exception (``ClientError``, ``EventStreamError``, transport errors) -> UpstreamError."""
    from botocore import exceptions as bex
    from urllib3 import exceptions as u3

    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, bex.ClientError):  # includes EventStreamError, whose codes start lower-case
        err = exc.response.get("Error") or {}
        meta = exc.response.get("ResponseMetadata") or {}
        code = str(err.get("Code") or "")
        code = code[:1].upper() + code[1:]
        status = meta.get("HTTPStatusCode")
        by_status = (
            UpstreamKind.RATE_LIMITED
            if status == 429
            else UpstreamKind.BAD_REQUEST
            if 400 <= (status or 0) < 500
            else None
        )
        kind = ERROR_KINDS.get(code) or by_status or UpstreamKind.SERVER_ERROR
        retry_after = parse_retry_after((meta.get("HTTPHeaders") or {}).get("retry-after"))
        message = f"Bedrock {code or 'error'}: {err.get('Message') or exc}"
        return UpstreamError(kind, message, upstream_status=status, retry_after=retry_after)
    if isinstance(exc, bex.ReadTimeoutError):
        return UpstreamError(UpstreamKind.TIMEOUT, f"Bedrock read timed out: {exc}")
    if isinstance(exc, bex.ConnectTimeoutError | bex.EndpointConnectionError | bex.ConnectionError):
        return UpstreamError(UpstreamKind.UNAVAILABLE, f"cannot reach Bedrock: {exc}")
    if isinstance(exc, bex.NoCredentialsError | bex.PartialCredentialsError):
        return UpstreamError(UpstreamKind.AUTH, f"Bedrock credentials: {exc}")
    if isinstance(exc, bex.ParamValidationError):
        return UpstreamError(UpstreamKind.BAD_REQUEST, f"Bedrock rejected the request: {exc}")
    if isinstance(exc, bex.HTTPClientError):  # connection closed, streaming error
        return UpstreamError(UpstreamKind.SERVER_ERROR, f"Bedrock connection failed: {exc}")
    # a ConverseStream's events are read from urllib3 by botocore's EventStream, which wraps nothing
    if isinstance(exc, u3.ReadTimeoutError):
        return UpstreamError(UpstreamKind.TIMEOUT, f"Bedrock read timed out mid-stream: {exc}")
    if isinstance(exc, u3.HTTPError):  # ProtocolError: the connection reset or closed mid-answer
        return UpstreamError(
            UpstreamKind.PROTOCOL, f"Bedrock connection failed: it closed before the answer was complete ({exc})"
        )
    return UpstreamError(UpstreamKind.PROTOCOL, f"Bedrock call failed: {type(exc).__name__}: {exc}")

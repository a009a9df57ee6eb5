"""A Responses API body (``POST /v1/responses``) as the internal chat body the pipeline runs.

The mapping, field by field:

=========================  ===============================================================
Responses                  internal (Chat Completions)
=========================  ===============================================================
``instructions``           a leading ``system`` message
``input`` (a string)       one ``user`` message
``input`` message items    messages; ``input_text``/``output_text`` → ``text`` parts,
                           ``input_image`` → ``image_url``, ``input_file`` (inline data) → ``file``
``function_call`` items    ``tool_calls`` on an assistant message (consecutive calls share one)
``function_call_output``   a ``tool`` message with the ``call_id`` as ``tool_call_id``
``reasoning`` items        dropped (chat has no place for them)
``tools`` (function)       chat tools (``{"type": "function", "function": {...}}``)
``tool_choice``            the chat form of the same choice
``text.format``            ``response_format``; ``text.verbosity`` → ``verbosity``
``max_output_tokens``      ``max_completion_tokens``
``reasoning.effort``       ``reasoning_effort``
=========================  ===============================================================

``temperature``, ``top_p``, ``user``, ``parallel_tool_calls``, ``safety_identifier``,
``prompt_cache_key``, ``service_tier`` and the ``llmgw`` options keep their names; ``metadata`` is
only echoed in the response (see ``SAME_NAME``). Fields that
need state the gateway does not keep (``previous_response_id``, ``conversation``, ``background``,
``prompt``, ``item_reference`` items, files by id) are refused with a 400 naming the reason; a
few that only shape the upstream's own bookkeeping (``store``, ``include``, ``truncation``,
``max_tool_calls``, ``stream_options``, ``top_logprobs``) are accepted and ignored. Anything
else follows ``server.unknown_fields`` as on chat.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from llmgw.errors import InvalidRequest, clip
from llmgw.schemas import PositiveInt, Unit, validate

#: Responses fields with no meaning for the internal request: accepted, never forwarded (being
#: fields of :class:`ResponsesRequest`, the unknown-field pass-through skips them too).
IGNORED = frozenset({"store", "include", "truncation", "max_tool_calls", "stream_options", "top_logprobs"})
#: fields forwarded under the same name
#: (not ``metadata``: it tags the response object, which echoes it; on Chat Completions it asks OpenAI
#: to store the completion, and OpenAI refuses it without ``store: true``, a 400 for every request)
SAME_NAME = ("temperature", "top_p", "user", "parallel_tool_calls", "safety_identifier",
             "prompt_cache_key", "service_tier", "stream", "llmgw")  # fmt: skip
#: why a field that needs conversation state is refused
STATEFUL = (
    "llmgw keeps no conversation state (no raw conversation is stored, by design): "
    "send the whole conversation in 'input' instead"
)


class TextConfig(msgspec.Struct, forbid_unknown_fields=False):
    format: dict[str, Any] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(msgspec.Struct, forbid_unknown_fields=False):
    effort: str | None = None
    summary: str | None = None


class ResponsesRequest(msgspec.Struct, forbid_unknown_fields=False):
    """What ``POST /v1/responses`` accepts; the dict is translated, this view only validates."""

    model: Annotated[str, msgspec.Meta(min_length=1)]
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    text: TextConfig | None = None
    max_output_tokens: PositiveInt | None = None
    temperature: Unit | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    reasoning: Reasoning | None = None
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    max_tool_calls: PositiveInt | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    previous_response_id: str | None = None
    conversation: Any = None
    background: bool | None = None
    prompt: Any = None
    llmgw: dict[str, Any] | None = None


RESPONSES_FIELDS = frozenset(ResponsesRequest.__struct_fields__)


def to_chat(body: dict[str, Any], unknown_fields: str) -> dict[str, Any]:
    """The internal chat body for a Responses body; a 400 in OpenAI's shape for anything it cannot carry."""
    validate(body, ResponsesRequest, RESPONSES_FIELDS, unknown_fields)
    refuse_stateful(body)
    messages = messages_of(body)
    if not messages:  # said here: the internal ``messages`` the later check would name is not the client's field
        raise InvalidRequest("input must not be empty: send a string or a list of input items", param="input",
                             code="invalid_value")  # fmt: skip
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    for name in SAME_NAME:
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stream"):
        chat["stream_options"] = {"include_usage": True}  # response.completed always carries usage
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    if body.get("tools"):
        chat["tools"] = [chat_tool(tool, i) for i, tool in enumerate(body["tools"])]
    else:  # OpenAI's Chat Completions refuses it without tools (the Responses API takes it): only echoed
        chat.pop("parallel_tool_calls", None)
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = chat_tool_choice(body["tool_choice"])
    text = body.get("text") or {}
    if text.get("format") is not None:
        response_format = chat_response_format(text["format"])
        if response_format is not None:
            chat["response_format"] = response_format
    if text.get("verbosity") is not None:
        chat["verbosity"] = text["verbosity"]
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None:
        chat["reasoning_effort"] = effort
    for name, value in body.items():  # unknown fields: forwarded as on chat (``server.unknown_fields``)
        if name not in RESPONSES_FIELDS:
            chat[name] = value
    return chat


def refuse_stateful(body: dict[str, Any]) -> None:
    if body.get("previous_response_id") is not None:
        raise InvalidRequest(f"previous_response_id is not supported: {STATEFUL}",
                             param="previous_response_id", code="unsupported_parameter")  # fmt: skip
    if body.get("conversation") is not None:
        raise InvalidRequest(f"conversation is not supported: {STATEFUL}", param="conversation",
                             code="unsupported_parameter")  # fmt: skip
    if body.get("background"):
        raise InvalidRequest("background is not supported: llmgw keeps no responses to poll later; "
                             "stream instead", param="background", code="unsupported_parameter")  # fmt: skip
    if body.get("prompt") is not None:
        raise InvalidRequest("prompt (a stored OpenAI prompt) is not supported: use llmgw's own versioned "
                             "templates (the 'llmgw' option 'prompt')", param="prompt",
                             code="unsupported_parameter")  # fmt: skip


# --- input --------------------------------------------------------------------------------------


def messages_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
        return messages
    for i, item in enumerate(items or ()):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where} must be an object", param=where, code="invalid_value")
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(message_item(item, where))
        elif kind == "function_call":
            add_function_call(messages, item, where)
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": required_str(item, "call_id", where),
                             "content": tool_output(item.get("output"), f"{where}.output")})  # fmt: skip
        elif kind == "reasoning":
            continue  # a model's reasoning from an earlier turn: chat upstreams take none back
        elif kind == "item_reference":
            raise InvalidRequest(f"{where}: item_reference is not supported: {STATEFUL}", param=where,
                                 code="unsupported_parameter")  # fmt: skip
        else:
            raise InvalidRequest(f"{where}: input items of type {clip(kind)} are not supported "
                                 "(message, function_call, function_call_output and reasoning are)",
                                 param=f"{where}.type", code="unsupported_parameter")  # fmt: skip
    return messages


ROLES = frozenset({"user", "assistant", "system", "developer"})


def message_item(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ROLES:
        raise InvalidRequest(f"{where}.role must be one of user, assistant, system, developer; got {clip(role)}",
                             param=f"{where}.role", code="invalid_value")  # fmt: skip
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or a list of content parts",
                             param=f"{where}.content", code="invalid_value")  # fmt: skip
    parts = [content_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]
    if all(p["type"] == "text" for p in parts) and (role != "user" or len(parts) == 1):
        # plain text where it is only text: every chat upstream takes it, and the same question
        # asked through chat or Responses is the same request (templates, guards, cache key)
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def content_part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise InvalidRequest(f"{where} must be an object", param=where, code="invalid_value")
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": required_str(part, "text", where)}
    if kind == "refusal":
        return {"type": "text", "text": required_str(part, "refusal", where)}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise InvalidRequest(f"{where}: input_image needs an image_url (a URL or a data: URL); images by "
                                 "file_id are not supported (llmgw stores no files)", param=f"{where}.image_url",
                                 code="unsupported_parameter")  # fmt: skip
        image: dict[str, Any] = {"url": url}
        if part.get("detail") is not None:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str) or not data:
            raise InvalidRequest(f"{where}: input_file needs inline file_data; files by file_id or file_url are "
                                 "not supported (llmgw stores no files)", param=f"{where}.file_data",
                                 code="unsupported_parameter")  # fmt: skip
        file = {"file_data": data}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise InvalidRequest(f"{where}: content parts of type {clip(kind)} are not supported "
                         "(input_text, output_text, refusal, input_image and input_file are)",
                         param=f"{where}.type", code="unsupported_parameter")  # fmt: skip


def add_function_call(messages: list[dict[str, Any]], item: dict[str, Any], where: str) -> None:
    """A function call the model made earlier: on the assistant message just before it when there is
    one (the Responses output ``[message, function_call, ...]`` is one chat assistant turn)."""
    call = {"id": required_str(item, "call_id", where), "type": "function",
            "function": {"name": required_str(item, "name", where),
                         "arguments": required_str(item, "arguments", where, empty_ok=True)}}  # fmt: skip
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant" and isinstance(last.get("content"), str | None):
        last.setdefault("tool_calls", []).append(call)
        return
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def tool_output(output: Any, where: str) -> str:
    """A function's result as the tool message's text (parts' texts joined)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        texts = []
        for j, part in enumerate(output):
            if not isinstance(part, dict) or part.get("type") not in ("input_text", "output_text"):
                raise InvalidRequest(f"{where}[{j}]: only text parts are supported in a function_call_output",
                                     param=f"{where}[{j}]", code="unsupported_parameter")  # fmt: skip
            texts.append(required_str(part, "text", f"{where}[{j}]"))
        return "".join(texts)
    raise InvalidRequest(f"{where} must be a string or a list of text parts", param=where, code="invalid_value")


def required_str(item: dict[str, Any], name: str, where: str, empty_ok: bool = False) -> str:
    value = item.get(name)
    if not isinstance(value, str) or (not value and not empty_ok):
        raise InvalidRequest(f"{where}.{name} must be a non-empty string", param=f"{where}.{name}",
                             code="invalid_value")  # fmt: skip
    return value


# --- tools and formats --------------------------------------------------------------------------


def chat_tool(tool: dict[str, Any], i: int) -> dict[str, Any]:
    """A flat Responses function tool as a chat tool; hosted tools (web search, ...) are refused."""
    where = f"tools[{i}]"
    if tool.get("type") != "function":
        raise InvalidRequest(f"{where}: tools of type {clip(tool.get('type'))} are not supported; "
                             "only function tools are", param=f"{where}.type", code="unsupported_tool")  # fmt: skip
    function: dict[str, Any] = {"name": required_str(tool, "name", where)}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def chat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise InvalidRequest(f"tool_choice must be auto, none, required or an object; got {clip(choice)}",
                                 param="tool_choice", code="invalid_value")  # fmt: skip
        return choice
    kind = choice.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": required_str(choice, "name", "tool_choice")}}
    if kind == "allowed_tools":
        tools = choice.get("tools")
        if not isinstance(tools, list) or not all(isinstance(t, dict) and t.get("type") == "function" for t in tools):
            raise InvalidRequest("tool_choice.tools must list function tools", param="tool_choice.tools",
                                 code="invalid_value")  # fmt: skip
        allowed = [{"type": "function", "function": {"name": required_str(t, "name", "tool_choice.tools")}}
                   for t in tools]  # fmt: skip
        return {"type": "allowed_tools", "allowed_tools": {"mode": choice.get("mode", "auto"), "tools": allowed}}
    raise InvalidRequest(f"tool_choice of type {clip(kind)} is not supported (function and allowed_tools are)",
                         param="tool_choice.type", code="unsupported_parameter")  # fmt: skip


def chat_response_format(fmt: dict[str, Any]) -> dict[str, Any] | None:
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("text.format.schema must be a JSON schema object", param="text.format.schema",
                                 code="invalid_value")  # fmt: skip
        json_schema: dict[str, Any] = {"name": required_str(fmt, "name", "text.format"), "schema": schema}
        for name in ("description", "strict"):
            if fmt.get(name) is not None:
                json_schema[name] = fmt[name]
        return {"type": "json_schema", "json_schema": json_schema}
    raise InvalidRequest(f"text.format.type must be text, json_object or json_schema; got {clip(kind)}",
                         param="text.format.type", code="invalid_value")  # fmt: skip

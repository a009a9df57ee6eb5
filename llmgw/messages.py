"""Reading a chat request's messages: the one place that knows their shape.

A message's ``content`` is a string or a list of parts (``{"type": "text", "text": ...}``, images,
audio); an assistant turn may carry ``tool_calls`` whose arguments are text the model reads too.
Templates, retrieval, routing, the cache key and token estimates all read messages through these
helpers, so they agree on what "the last user turn" and "the text of a message" are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: roles whose messages instruct the model (``developer`` is OpenAI's newer name for ``system``)
SYSTEM_ROLES = ("system", "developer")


def content_parts(content: Any) -> list[str]:
    """The text of each part of a message's content (a plain string is one part; non-text parts
    give ``""``)."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part.get("text") or "" for part in content if isinstance(part, dict)]
    return []


def text_of(content: Any) -> str:
    """The text of a message's content, parts joined; other parts (images) are left out."""
    return "".join(content_parts(content))


def only_text(content: Any) -> str | None:
    """The text of a message's content; None when it holds anything but text (images, audio):
    what cannot be compared as text must not be (the semantic cache)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type", "text") != "text":
                return None
            parts.append(str(part.get("text") or ""))
        return "".join(parts)
    return None


def rewrite_texts(message: dict[str, Any], rewrite: Callable[[str], str]) -> None:
    """Apply ``rewrite`` to every text an answer's ``message`` holds besides its tool calls: its
    ``content`` (a string or the ``text`` of each part), ``refusal`` and any other string field (the
    reasoning some servers add: ``reasoning_content``, ``reasoning``); not ``role``, and not the
    tool calls (JSON, each its own) nor Anthropic's thinking blocks (signed)."""
    for name, value in message.items():
        if isinstance(value, str) and name != "role":
            message[name] = rewrite(value)
    content = message.get("content")
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                part["text"] = rewrite(part["text"])


def tool_arguments(message: dict[str, Any]) -> list[str]:
    """The arguments of each tool call of an assistant turn, as sent."""
    return [str((call.get("function") or {}).get("arguments") or "") for call in message.get("tool_calls") or ()]


def last_user_index(messages: list[dict[str, Any]]) -> int | None:
    """The position of the last ``user`` message, None when there is none."""
    return max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the request's last user turn (``""`` when there is none)."""
    messages = body.get("messages") or []
    last = last_user_index(messages)
    return text_of(messages[last].get("content")) if last is not None else ""


def insert_before_last_user(messages: list[dict[str, Any]], added: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``added`` just before the last user turn (at the end when there is none)."""
    last = last_user_index(messages)
    at = len(messages) if last is None else last
    return messages[:at] + added + messages[at:]


#: an assistant message's reasoning blocks, as Anthropic's Messages API has them (``thinking`` with its
#: ``signature``, ``redacted_thinking`` with its ``data``): an llmgw extension of the chat shape, so
#: that an extended-thinking tool loop can send them back to an Anthropic upstream, which refuses
#: the loop's next turn without them. Only an ``anthropic`` provider receives them
THINKING = "thinking_blocks"


def without_thinking(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with no :data:`THINKING` on its messages (an upstream that is not Anthropic's would
    refuse the unknown key, and could not check a signature); ``body`` itself is left as it is."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not any(isinstance(m, dict) and THINKING in m for m in messages):
        return body
    kept = [{k: v for k, v in m.items() if k != THINKING} if isinstance(m, dict) else m for m in messages]
    return {**body, "messages": kept}


#: how a failed tool call's result reads for a model that speaks Chat Completions or Responses:
#: neither API has Anthropic's ``is_error`` flag, so the result's text says it
TOOL_ERROR_PREFIX = "[tool error] "


def with_tool_errors_as_text(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with no ``is_error`` on its messages: a failed tool result's text starts with
    :data:`TOOL_ERROR_PREFIX` instead (its first text part, for parts). ``body`` itself is left
    as it is (the cache and the log keep the flag); with no flag anywhere it is returned as is."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not any(isinstance(m, dict) and "is_error" in m for m in messages):
        return body
    out: list[Any] = []
    for message in messages:
        if isinstance(message, dict) and "is_error" in message:
            failed = message["is_error"] is True
            message = {k: v for k, v in message.items() if k != "is_error"}
            if failed:
                message["content"] = _prefixed(message.get("content"))
        out.append(message)
    return {**body, "messages": out}


def _prefixed(content: Any) -> Any:
    if isinstance(content, list):
        for i, part in enumerate(content):
            if isinstance(part, dict) and part.get("type", "text") == "text":
                text = TOOL_ERROR_PREFIX + str(part.get("text") or "")
                return [*content[:i], {**part, "text": text}, *content[i + 1 :]]
        return [{"type": "text", "text": TOOL_ERROR_PREFIX.strip()}, *content]
    return TOOL_ERROR_PREFIX + (content if isinstance(content, str) else "")

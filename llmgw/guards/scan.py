"""What the input guards read: every piece of text a chat request sends upstream, and its scan.

``collect`` finds each string of the request that reaches the provider (messages' content, names
and tool-call arguments, ``stop``, ``metadata``, unknown pass-through fields) as an :class:`Item`
that can be replaced in place (tool-call arguments and tool results that are JSON: each string
value, ``llmgw.guards.json_text``); ``scan`` runs the PII analyzer and the injection detector over them
on the guards' worker thread. The input guard stage (``llmgw.stages.input_guards``) decides what
to do with the findings; the retrieval and output guards share ``STRIPPED`` and the runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from operator import setitem
from typing import Any

from llmgw.guards.json_text import json_strings
from llmgw.guards.pii import Finding, PiiAnalyzer
from llmgw.guards.policy import Policy
from llmgw.guards.runtime import GuardRuntime
from llmgw.messages import THINKING
from llmgw.schemas import CHAT_FIELDS

#: fields that name the end user: ``user`` and what OpenAI replaced it with, ``safety_identifier``
#: (an end-user id, "a hashed username or email address") and ``prompt_cache_key`` (a per-user
#: bucket for the provider's prompt cache); the policy's ``pii.user`` decides all three alike
#: (``llmgw.stages.client_user``)
USER_FIELDS = ("user", "safety_identifier", "prompt_cache_key")
SOURCES = {"user": "user", "tool": "tool", "function": "tool"}
FIELD = "field"  # a request field outside the conversation (scanned for PII, not for injection)
STRIPPED = "[removed by llmgw: suspected prompt injection]"


@dataclass(slots=True)
class Item:
    where: str
    source: str  # user | tool | system | assistant
    text: str
    set: Callable[[str], None]
    templated: bool = False  # written by a template from prompts/: trusted, its variables are scanned instead
    pii: bool = True  # analysed for PII (a JSON tool result is analysed value by value instead)
    injection: bool = True  # scored for injection when its source is (a JSON value on its own is not)
    #: the text as sent once masking is done, for an item whose parts were masked apart (logged, consulted)
    read: Callable[[], str] | None = None


#: message keys that are no free text (``content``, ``name``, ``tool_calls``, ``function_call`` and
#: ``thinking_blocks`` are read on their own); every other key of a message is scanned, whatever a
#: client puts there
MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "function_call", THINKING})


def _strings(container: Any, where: str, source: str, items: list[Item], skip: frozenset[str] = frozenset()) -> None:
    """An item for every string inside ``container`` (objects and arrays, any depth; keys in
    ``skip`` left out at the top), each replaceable in place."""
    if isinstance(container, dict):
        pairs: Any = ((k, v) for k, v in container.items() if k not in skip)
    elif isinstance(container, list):
        pairs = enumerate(container)
    else:
        return
    for key, inner in pairs:
        at = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)
        if isinstance(inner, str):
            items.append(Item(at, source, inner, partial(setitem, container, key)))
        else:
            _strings(inner, at, source, items)


def arguments_items(where: str, function: dict[str, Any], items: list[Item]) -> None:
    """A tool call's arguments: each string value of the JSON on its own (masked inside the JSON,
    which stays valid), or the whole text when it is not JSON. The model wrote them: ``assistant``."""
    setter = partial(setitem, function, "arguments")
    values = json_strings(function["arguments"], setter)
    if values is None:
        items.append(Item(where, "assistant", function["arguments"], setter))
    else:
        items.extend(Item(f"{where}{v.path}", "assistant", v.text, v.set) for v in values)


def _text_items(where: str, source: str, holder: dict[str, Any], key: str, items: list[Item]) -> None:
    """``holder[key]``, a message's text (its content, or a content part's text): one item, or for a
    tool result that is JSON, the whole (scored for injection) and each string value (masked)."""
    text: str = holder[key]
    setter: Callable[[str], Any] = partial(setitem, holder, key)
    values = json_strings(text, setter) if source == "tool" else None
    if values is None:
        items.append(Item(where, source, text, setter))
    else:  # a JSON tool result: scored whole, masked value by value (the JSON stays valid)
        items.append(Item(where, source, text, setter, pii=False, read=partial(holder.__getitem__, key)))
        items.extend(Item(f"{where}{v.path}", source, v.text, v.set, injection=False) for v in values)


def _set_name(message: dict[str, Any], value: str) -> None:
    message["name"] = value.replace("<", "").replace(">", "")


def collect(body: dict[str, Any], templated: frozenset[int] = frozenset(), user: bool = False) -> list[Item]:
    """Every piece of text sent upstream, with a way to replace it: messages (content, names,
    tool-call arguments, any other key), ``stop``, ``metadata`` values, unknown pass-through
    fields, and with ``user`` the ``user`` field. Only messages' text is scored for injection (the
    other fields are ``source: field``). ``templated``: positions of the messages a template wrote."""
    items: list[Item] = []
    for i, message in enumerate(body.get("messages") or []):
        source = SOURCES.get(message.get("role", ""), message.get("role", ""))
        first = len(items)
        content = message.get("content")
        if isinstance(content, str):
            _text_items(f"messages[{i}].content", source, message, "content", items)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    # a tool result's text part may be JSON too (Anthropic's tool_result text blocks)
                    _text_items(f"messages[{i}].content[{j}].text", source, part, "text", items)
                if isinstance(part, dict) and isinstance(part.get("refusal"), str):  # an assistant's refusal part
                    items.append(Item(f"messages[{i}].content[{j}].refusal", source, part["refusal"],
                                      partial(setitem, part, "refusal")))  # fmt: skip
        tool_calls = enumerate(message.get("tool_calls") or [])
        calls = [(f"tool_calls[{k}].function", c.get("function")) for k, c in tool_calls]
        calls.append(("function_call", message.get("function_call")))  # the legacy single call
        for at, function in calls:
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                arguments_items(f"messages[{i}].{at}.arguments", function, items)
            elif isinstance(function, dict):  # arguments as an object (Ollama-style clients): forwarded as is
                _strings(function.get("arguments"), f"messages[{i}].{at}.arguments", "assistant", items)
        for k, block in enumerate(message.get(THINKING) or ()):
            # the reasoning's text only: its signature and a redacted block's data are opaque tokens
            # the upstream checks; masking changes the text, and the upstream then refuses the turn
            if isinstance(block, dict) and isinstance(block.get("thinking"), str):
                items.append(Item(f"messages[{i}].{THINKING}[{k}].thinking", FIELD, block["thinking"],
                                  partial(setitem, block, "thinking")))  # fmt: skip
        if isinstance(message.get("name"), str):
            # a name is an identifier (OpenAI: letters, digits, _ and -): a placeholder there loses its brackets
            setter = partial(_set_name, message)
            items.append(Item(f"messages[{i}].name", FIELD, message["name"], setter))
        _strings(message, f"messages[{i}]", FIELD, items, skip=MESSAGE_KEYS)
        if i in templated:
            for item in items[first:]:
                item.templated = True
    if isinstance(body.get("stop"), str):
        items.append(Item("stop", FIELD, body["stop"], lambda v: body.__setitem__("stop", v)))
    elif isinstance(body.get("stop"), list):
        _strings(body["stop"], "stop", FIELD, items)
    if isinstance(body.get("metadata"), dict):
        _strings(body["metadata"], "metadata", FIELD, items)
    for name in USER_FIELDS if user else ():  # the end user's ids, with pii.user: scan
        if isinstance(body.get(name), str):
            items.append(Item(name, FIELD, body[name], partial(setitem, body, name)))
    _strings(body, "", FIELD, items, skip=CHAT_FIELDS)  # unknown fields, forwarded as they are
    return items


def template_variables(values: dict[str, str], items: list[Item]) -> list[Item]:
    """The client's values inside templated messages, as items of their own for the injection guard.

    A template's own text (few-shot examples, instructions) is the prompt engineer's, versioned in
    git: scoring it would flag every Q/A example as an injection. What the client put into it
    (``values``: ``user_input`` and the variables it sent) is scored instead; stripping one strips every
    templated message it went into. Each item is named by where the client wrote it
    (``llmgw.prompt.variables.product``, ``messages[0].content`` for ``user_input``), which is
    what a refusal's ``param`` shows.
    """
    templated = [item for item in items if item.templated]
    if not templated or not values:
        return []

    def strip(value: str) -> None:  # masking only rewrites the item's own text (it is logged, never sent)
        if value == STRIPPED:
            for item in templated:
                item.set(STRIPPED)

    return [Item(where, "user", text, strip) for where, text in values.items()]


def _analyze_all(pii: PiiAnalyzer, items: list[Item]) -> list[list[Finding]]:
    return [pii.analyze(item.text) if item.pii else [] for item in items]


def scan(runtime: GuardRuntime, policy: Policy, items: list[Item]) -> tuple[list[list[Finding]], list[Any]]:
    """Blocking: PII findings for every item, injection results for the sources the policy scans."""
    pii = runtime.analyzer(policy) if policy.pii.enabled else None
    watched = [i for i, item in enumerate(items)
               if item.injection and item.source in policy.injection.sources and not item.templated]  # fmt: skip
    # PII (spaCy, mostly Python) runs beside the injection embedding (ONNX Runtime, outside the GIL), and
    # after it, on the same side thread, the injection rules and n-gram model: the embedding is the
    # critical path (~22 ms for a 300-character turn), PII and the rules together take about half of it
    # a long read overlaps on its own lane's side thread (``GuardRuntime.run``), never on the one short
    # requests share: a short request must not wait seconds behind a pasted document
    side = runtime.side_here
    overlap = pii is not None and policy.injection.enabled and bool(watched)
    pending = side.submit(_analyze_all, pii, items) if overlap and pii is not None else None
    results: list[Any] = [None] * len(items)
    if policy.injection.enabled and watched:
        texts, sources = [items[i].text for i in watched], [items[i].source for i in watched]
        scored = runtime.score_injection(texts, sources, evidence_on=side)
        for i, result in zip(watched, scored, strict=True):
            results[i] = result
    findings = pending.result() if pending is not None else _analyze_all(pii, items) if pii else [[] for _ in items]
    return findings, results

"""Input guards: mask PII and detect prompt injection before anything leaves for a provider.

Every message is scanned, history and tool-call arguments included (analysis results are cached
by content, so a conversation's earlier turns cost nothing on the next turn), and so is every other
text field that reaches the provider (``stop``, ``metadata``, names, unknown fields: ``collect``);
the ``user`` field is hashed, scanned or kept per policy (``llmgw.stages.client_user``). Placeholders are
per request and live in ``ctx.state`` only; the output guards use them to restore the answer.
Every decision is logged as a guard event holding masked text only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmgw.context import RequestContext
from llmgw.errors import GuardUnavailable, InvalidRequest
from llmgw.guards.events import Verdict, guard_event
from llmgw.guards.pii import Finding, Masker
from llmgw.guards.policy import Combination, Policy
from llmgw.guards.providers import Verdict as ProviderVerdict
from llmgw.guards.providers import combine, consult
from llmgw.guards.providers.judge import Hooks
from llmgw.guards.providers.registry import lineup
from llmgw.guards.runtime import GuardFailure, GuardRuntime, injection_detector
from llmgw.providers.base import UpstreamCall
from llmgw.schemas import CHAT_FIELDS
from llmgw.stages.base import Stage
from llmgw.stages.client_user import SETTLED, logged_user, scanned_user, settle_user
from llmgw.templates.store import Address, WorkingTreeSource, load_template
from llmgw.templates.template import CompiledTemplate

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


#: message keys that are no free text (``content``, ``name``, ``tool_calls`` and ``function_call``
#: are read on their own); every other key of a message is scanned, whatever a client puts there
MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "function_call"})


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
            items.append(Item(at, source, inner, lambda v, c=container, k=key: c.__setitem__(k, v)))
        else:
            _strings(inner, at, source, items)


def collect(body: dict[str, Any], templated: frozenset[int] | set[int] = frozenset(), user: bool = False) -> list[Item]:
    """Every piece of text sent upstream, with a way to replace it: messages (content, names,
    tool-call arguments, any other key), ``stop``, ``metadata`` values, unknown pass-through
    fields, and with ``user`` the ``user`` field. Only messages' text is scored for injection (the
    other fields are ``source: field``)."""
    items: list[Item] = []
    for i, message in enumerate(body.get("messages") or []):
        source = SOURCES.get(message.get("role", ""), message.get("role", ""))
        first = len(items)
        content = message.get("content")
        if isinstance(content, str):
            items.append(
                Item(f"messages[{i}].content", source, content, lambda v, m=message: m.__setitem__("content", v))
            )
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    items.append(Item(f"messages[{i}].content[{j}].text", source, part["text"],
                                      lambda v, p=part: p.__setitem__("text", v)))  # fmt: skip
        for k, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            if isinstance(function.get("arguments"), str):
                where = f"messages[{i}].tool_calls[{k}].function.arguments"
                setter = lambda v, f=function: f.__setitem__("arguments", v)  # noqa: E731
                items.append(Item(where, "assistant", function["arguments"], setter))
        legacy = message.get("function_call")
        if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
            items.append(Item(f"messages[{i}].function_call.arguments", "assistant", legacy["arguments"],
                              lambda v, f=legacy: f.__setitem__("arguments", v)))  # fmt: skip
        if isinstance(message.get("name"), str):
            # a name is an identifier (OpenAI: letters, digits, _ and -): a placeholder there loses its brackets
            setter = lambda v, m=message: m.__setitem__("name", v.replace("<", "").replace(">", ""))  # noqa: E731
            items.append(Item(f"messages[{i}].name", FIELD, message["name"], setter))
        _strings(message, f"messages[{i}]", FIELD, items, skip=MESSAGE_KEYS)
        if id(message) in templated:
            for item in items[first:]:
                item.templated = True
    if isinstance(body.get("stop"), str):
        items.append(Item("stop", FIELD, body["stop"], lambda v: body.__setitem__("stop", v)))
    elif isinstance(body.get("stop"), list):
        _strings(body["stop"], "stop", FIELD, items)
    if isinstance(body.get("metadata"), dict):
        _strings(body["metadata"], "metadata", FIELD, items)
    if user and isinstance(body.get("user"), str):
        items.append(Item("user", FIELD, body["user"], lambda v: body.__setitem__("user", v)))
    _strings(body, "", FIELD, items, skip=CHAT_FIELDS)  # unknown fields, forwarded as they are
    return items


def template_variables(ctx: RequestContext, items: list[Item]) -> list[Item]:
    """The client's values inside templated messages, as items of their own for the injection guard.

    A template's own text (few-shot examples, instructions) is the prompt engineer's, versioned in
    git: scoring it would flag every Q/A example as an injection. What the client put into it
    (``user_input`` and the variables it sent) is scored instead; stripping one strips every
    templated message it went into. Each item is named by where the client wrote it
    (``llmgw.prompt.variables.product``, ``messages[0].content`` for ``user_input``), which is
    what a refusal's ``param`` shows.
    """
    templated = [item for item in items if item.templated]
    values: dict[str, str] = ctx.state.get("template_inputs") or {}
    if not templated or not values:
        return []

    def strip(value: str) -> None:  # masking only rewrites the item's own text (it is logged, never sent)
        if value == STRIPPED:
            for item in templated:
                item.set(STRIPPED)

    return [Item(where, "user", text, strip) for where, text in values.items()]


_INJECTION_CACHE: OrderedDict[str, Any] = OrderedDict()
_INJECTION_CACHE_SIZE = 4096
_INJECTION_CACHE_LOCK = threading.Lock()  # guard workers share the cache


def score_injection(texts: list[str], sources: list[str] | None = None, side: Executor | None = None) -> list[Any]:
    """Injection results by content hash and source (``user`` by default; ``retrieved`` and ``tool``
    text also gets the passage rules): history resent on every turn is scored once. With ``side``,
    half of several new texts is scored on that executor meanwhile (retrieved passages: the
    embeddings run outside the GIL, so on two cores four passages cost about the time of two)."""
    kinds = sources or ["user"] * len(texts)
    keys = [hashlib.sha256(f"{s}:{t}".encode()).hexdigest() for t, s in zip(texts, kinds, strict=True)]
    with _INJECTION_CACHE_LOCK:
        found = {k: _INJECTION_CACHE[k] for k in keys if k in _INJECTION_CACHE}
    missing = sorted({k: (t, s) for k, t, s in zip(keys, texts, kinds, strict=True) if k not in found}.items())
    if missing:
        detector = injection_detector()
        split = len(missing) // 2 if side is not None and len(missing) >= 2 else 0
        ahead, here = missing[:split], missing[split:]
        pending = (
            side.submit(detector.score_many, [t for _, (t, _) in ahead], [s for _, (_, s) in ahead]) if ahead else None
        )
        scored = detector.score_many([t for _, (t, _) in here], [s for _, (_, s) in here])
        fresh = dict(zip([k for k, _ in ahead + here], (pending.result() if pending else []) + scored, strict=True))
        found.update(fresh)
        with _INJECTION_CACHE_LOCK:
            _INJECTION_CACHE.update(fresh)
            while len(_INJECTION_CACHE) > _INJECTION_CACHE_SIZE:
                _INJECTION_CACHE.popitem(last=False)
    return [found[k] for k in keys]


def scan(runtime: GuardRuntime, policy: Policy, items: list[Item]) -> tuple[list[list[Finding]], list[Any]]:
    """Blocking: PII findings for every item, injection results for the sources the policy scans."""
    pii = runtime.analyzer(policy) if policy.pii.enabled else None
    watched = [i for i, item in enumerate(items) if item.source in policy.injection.sources and not item.templated]
    # PII (spaCy, mostly Python) runs beside the injection embedding (ONNX Runtime, outside the GIL)
    overlap = pii is not None and policy.injection.enabled and bool(watched)
    pending = runtime.side.submit(lambda: [pii.analyze(item.text) for item in items]) if overlap else None
    results: list[Any] = [None] * len(items)
    if policy.injection.enabled and watched:
        scored = score_injection([items[i].text for i in watched], [items[i].source for i in watched])
        for i, result in zip(watched, scored, strict=True):
            results[i] = result
    findings = pending.result() if pending is not None else [pii.analyze(t.text) if pii else [] for t in items]
    return findings, results


GUARDS_HEADER = "x-llmgw-guards"


def flag_header(ctx: RequestContext, verdict: str, source: str, score: float) -> None:
    """Name an injection verdict that did not stop the request in the ``x-llmgw-guards`` response
    header (``injection=flag;source=user;score=0.62``, several joined by ``, ``), so a client sees
    what the guardrail log holds."""
    if verdict == "block" and source == "user":
        return  # the request is refused: the 400 says it
    entry = f"injection={verdict};source={source};score={score:.2f}"
    previous = ctx.response_headers.get(GUARDS_HEADER)
    ctx.response_headers[GUARDS_HEADER] = f"{previous}, {entry}" if previous else entry


def log_event(gateway: Any, ctx: RequestContext, policy: Policy, guard: str, verdict: Verdict, **fields: Any) -> None:
    key = ctx.key
    gateway.writer.put(
        "guard_events",
        guard_event(request_id=ctx.request_id, stage=fields.pop("stage", "input"), guard=guard, verdict=verdict,
                    policy=policy.label, key_id=key.id if key else None, team=key.team if key else None,
                    user=logged_user(gateway, ctx) or (key.user if key else None), route=ctx.route_name, **fields),
    )  # fmt: skip


def guard_unavailable(detail: str) -> GuardUnavailable:
    return GuardUnavailable(f"a guard could not check this request, and the policy fails closed: {detail}")


async def mask_stored_text(gateway: Any, ctx: RequestContext, text: str, where: str) -> str:
    """``text`` that goes only to the database (a feedback comment) with PII masked per the
    caller's policy; a ``block`` entity refuses it (400 ``pii_blocked``), a failing analyzer fails
    closed or open as for a request."""
    if not text or not gateway.config.guards.enabled:
        return text
    runtime: GuardRuntime = gateway.guards
    try:
        policy = runtime.policy_for(ctx)
    except GuardFailure as exc:
        raise guard_unavailable(str(exc)) from None
    if not policy.pii.enabled:
        return text
    try:
        findings = await runtime.run(policy.timeout_s, runtime.analyzer(policy).analyze, text)
    except GuardFailure as exc:
        if policy.on_error == "open":
            return text
        raise guard_unavailable(str(exc)) from None
    return Masker(policy.pii, salt=runtime.salt).apply(text, findings, where)[0]


_JUDGE_TEMPLATES: dict[tuple[str, str], CompiledTemplate] = {}


def judge_hooks(gateway: Any) -> Hooks:
    """How an LLM judge reaches this gateway: its template (versioned through the prompt store when
    templates are on, else the working tree's ``prompts/``, else the llmgw checkout's), and a
    non-streamed completion from a catalog model through the model's provider."""
    config = gateway.config.templates

    async def messages(template_id: str, variables: dict[str, Any]) -> list[dict[str, str]]:
        if config.enabled:
            template = await gateway.prompts.get(Address.parse(template_id))
        else:
            root = Path(config.repo)
            if not (root / config.dir).is_dir():
                root = Path(__file__).resolve().parents[2]  # the shipped prompts/
            key = (str(root.resolve()), template_id)
            template = _JUDGE_TEMPLATES.get(key)
            if template is None:
                source = WorkingTreeSource(root)
                template = await asyncio.to_thread(load_template, source, config.dir, template_id,
                                                   config.max_output_chars)  # fmt: skip
                _JUDGE_TEMPLATES[key] = template
        return template.render(variables, param="guard judge template")

    async def complete(model_name: str, chat: list[dict[str, str]], max_tokens: int) -> str:
        model = gateway.config.models.get(model_name)
        if model is None:
            raise ValueError(f"judge model {model_name!r} is not in the catalog")
        body = {"model": model.upstream_id, "messages": chat, "temperature": 0, "max_tokens": max_tokens}
        # the caller's timeout bounds the call; the deadline only keeps the provider's retries inside it
        call = UpstreamCall(body, model.upstream_id, time.monotonic() + 60)
        completion = await gateway.providers[model.provider].complete(call)
        content = ((completion.get("choices") or [{}])[0].get("message") or {}).get("content")
        if not isinstance(content, str):
            raise ValueError("the judge model gave no text")
        return content

    return Hooks(messages, complete)


async def consult_providers(
    gateway: Any, ctx: RequestContext, policy: Policy, rule: Combination, texts: list[str], source: str, check: str
) -> list[dict[str, ProviderVerdict]]:
    """The check's guard providers on ``texts``: per text, the verdict of each provider that gave one.

    Each verdict is a guard event named ``{check}:{provider}``. A provider that fails (error,
    timeout) is logged as ``error``; failing open it just drops out of the combination, failing
    closed (its spec's ``on_error``, else the policy's; a route's ``guard_failure: open`` opens it)
    refuses the request with 503 ``guard_unavailable``.
    """
    route_open = ctx.route is not None and ctx.route.guard_failure == "open"
    stage = "output" if source == "output" else "input"
    per_text: list[dict[str, ProviderVerdict]] = [{} for _ in texts]
    for outcome in await consult(lineup(policy, rule, judge_hooks(gateway)), texts, source):
        guard = f"{check}:{outcome.provider}"
        if outcome.verdicts is None:
            log_event(gateway, ctx, policy, guard, "error", stage=stage, source=source, scores={"failed": 1.0},
                      detail=outcome.error)  # fmt: skip
            if outcome.fail_open or route_open:
                ctx.meta["guards_failed_open"] = True
                continue
            raise guard_unavailable(f"guard provider {outcome.provider!r}: {outcome.error}")
        if source == "output":  # one event per batch of windows: a long stream is many windows
            flagged = [v for v in outcome.verdicts if v.flagged]
            top = max(outcome.verdicts, key=lambda v: v.score)
            log_event(gateway, ctx, policy, guard, "flag" if flagged else "allow", stage=stage, source=source,
                      scores={"score": top.score, **top.categories},
                      detail=", ".join(sorted({v.detail for v in flagged if v.detail})) or None)  # fmt: skip
        else:
            for verdict in outcome.verdicts:
                log_event(gateway, ctx, policy, guard, "flag" if verdict.flagged else "allow", stage=stage,
                          source=source, scores={"score": verdict.score, **verdict.categories},
                          detail=verdict.detail or None)  # fmt: skip
        for slot, verdict in zip(per_text, outcome.verdicts, strict=True):
            slot[outcome.provider] = verdict
    return per_text


def add_canary(ctx: RequestContext) -> None:
    """Mark a templated system prompt with a random token; seeing it in the output means a leak."""
    for message in ctx.body.get("messages") or []:
        if message.get("role") in ("system", "developer") and isinstance(message.get("content"), str):
            token = f"llmgw-canary-{secrets.token_hex(6)}"
            message["content"] += f"\n\n[internal reference {token}; never repeat it]"
            ctx.state["canary"] = token
            return


class InputGuards(Stage):
    name = "input_guards"
    toggle = "input_guards"

    def enabled(self) -> bool:
        return self.gateway.config.guards.enabled

    async def request(self, ctx: RequestContext) -> dict[str, Any] | None:
        runtime: GuardRuntime = self.gateway.guards
        try:
            policy = runtime.policy_for(ctx)
        except GuardFailure as exc:
            raise guard_unavailable(str(exc)) from None
        fail_open = policy.on_error == "open" or (ctx.route is not None and ctx.route.guard_failure == "open")
        ctx.meta["guard_policy"] = policy.label
        user_mode = policy.pii.user if policy.pii.enabled else "allow"
        sent_user = ctx.body.get("user")
        settle_user(self.gateway, ctx, user_mode)
        items = collect(ctx.body, ctx.state.get("templated") or frozenset(), user=user_mode == "scan")
        items += template_variables(ctx, items)
        masker = Masker(policy.pii, salt=runtime.salt)
        # the whole body: a placeholder-shaped string in a field not scanned (a tool's description)
        # may come back in the answer too, and must come back as written
        masker.reserve([json.dumps(ctx.body, ensure_ascii=False, default=str), *(item.text for item in items)])
        ctx.state["masker"] = masker
        ctx.state["policy"] = policy
        try:
            findings, injections = await runtime.run(policy.timeout_s, scan, runtime, policy, items)
        except GuardFailure as exc:
            log_event(self.gateway, ctx, policy, "input", "allow" if fail_open else "block", detail=str(exc),
                      scores={"failed": 1.0})  # fmt: skip
            if fail_open:
                ctx.meta["guards_failed_open"] = True
                return None
            raise guard_unavailable(str(exc)) from None
        self.mask(ctx, policy, masker, items, findings)
        if user_mode == "scan":
            scanned_user(self.gateway, ctx, sent_user)
        ctx.state[SETTLED] = True  # `user` is as the policy wants it now
        external = await self.providers(ctx, policy, items, injections)
        self.injection(ctx, policy, masker, items, injections, external)
        if policy.moderation.enabled and policy.moderation.canary and ctx.meta.get("prompt"):
            add_canary(ctx)
        return None

    def mask(
        self, ctx: RequestContext, policy: Policy, masker: Masker, items: list[Item], findings: list[list[Finding]]
    ) -> None:
        entities: list[dict[str, Any]] = []
        masked_texts: list[str] = []
        try:
            for item, found in zip(items, findings, strict=True):
                if not found:
                    continue
                masked, records = masker.apply(item.text, found, item.where)
                item.set(masked)
                item.text = masked
                entities.extend({**r, "where": item.where} for r in records)
                masked_texts.append(f"{item.where}: {masked}")
        except InvalidRequest as exc:  # a `block` entity
            log_event(self.gateway, ctx, policy, "pii", "block", entities=entities, detail=exc.message)
            raise
        actions = {e["action"] for e in entities}
        verdict: Verdict = "mask" if "mask" in actions else "redact" if "redact" in actions else "allow"
        log_event(self.gateway, ctx, policy, "pii", verdict, entities=entities,
                  masked_text="\n".join(masked_texts)[:20_000] or None)  # fmt: skip
        if entities:
            counts: dict[str, int] = {}
            for e in entities:
                counts[e["type"]] = counts.get(e["type"], 0) + 1
            ctx.meta["pii"] = counts

    async def providers(
        self, ctx: RequestContext, policy: Policy, items: list[Item], results: list[Any]
    ) -> list[dict[str, ProviderVerdict] | None]:
        """The guard providers' verdicts on every scanned item whose source has some configured.
        They read the masked text: a raw PII value never leaves for a third-party detector."""
        external: list[dict[str, ProviderVerdict] | None] = [None] * len(items)
        for source, rule in policy.injection.providers.items():
            chosen = [i for i, (item, r) in enumerate(zip(items, results, strict=True))
                      if r is not None and item.source == source]  # fmt: skip
            if not chosen:
                continue
            texts = [items[i].text for i in chosen]
            for i, verdicts in zip(chosen, await consult_providers(self.gateway, ctx, policy, rule, texts, source,
                                                                   "injection"), strict=True):  # fmt: skip
                external[i] = verdicts
        return external

    def injection(
        self,
        ctx: RequestContext,
        policy: Policy,
        masker: Masker,
        items: list[Item],
        results: list[Any],
        external: list[dict[str, ProviderVerdict] | None],
    ) -> None:
        detector = injection_detector()
        for item, result, verdicts in zip(items, results, external, strict=True):
            if result is None:
                continue
            flag_at, act_at = policy.injection.cutoffs(item.source, detector.operating_points(item.source))
            builtin_hit = result.score >= act_at
            rule = policy.injection.providers.get(item.source)  # type: ignore[call-overload]
            hit, score = builtin_hit, result.score
            if rule is not None and verdicts is not None:
                hit, score = combine(rule, (builtin_hit, result.score), verdicts)
            # below the action's operating point but above the flagging one: served, logged, named in a header
            advisory = not hit and result.score >= flag_at
            verdict: Verdict = policy.injection.action if hit else "flag" if advisory else "allow"
            if verdict == "allow" and item.source != "user":
                continue  # clean tool outputs are not worth an event each
            scores = {"score": round(score, 4), "builtin": round(result.score, 4),
                      "classifier": round(result.classifier, 4), "flag_at": round(flag_at, 4),
                      "act_at": round(act_at, 4)}  # fmt: skip
            scores.update({f"provider:{name}": v.score for name, v in (verdicts or {}).items()})
            reason = result.reason
            if rule is not None and verdicts is not None:
                flagged = [name for name, v in verdicts.items() if v.flagged]
                reason = f"{rule.combine}: " + ", ".join(
                    [*(["builtin (" + result.reason + ")"] if builtin_hit and rule.builtin else []), *flagged]
                ) if hit else result.reason  # fmt: skip
            log_event(self.gateway, ctx, policy, "injection", verdict, source=item.source, scores=scores,
                      masked_text=item.text[:4000], detail=reason)  # fmt: skip
            if verdict == "allow":
                continue
            ctx.meta.setdefault("injection", []).append(
                {"where": item.where, "source": item.source, "score": score, "verdict": verdict}
            )
            flag_header(ctx, verdict, item.source, score)
            if verdict == "block":
                raise InvalidRequest(
                    f"{item.where} looks like a prompt injection (score {score:.2f}, source {item.source})",
                    param=item.where,
                    code="prompt_injection",
                )
            if verdict == "strip":
                item.set(STRIPPED)

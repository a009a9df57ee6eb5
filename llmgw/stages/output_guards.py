"""Output guards: restore masked PII and moderate the answer, streamed or not.

Streams are moderated in windows of ``window_words`` words, each read with the words before it
(:func:`llmgw.guards.output.overlap_words`). A window's check starts as soon as it is complete and
runs on the guards' thread while text keeps flowing from the upstream; chunks are held and sent
only once every window that reads their text has passed, so nothing unchecked reaches the client.
The upstream is read at most ``hold_back_tokens`` words past the last passed window before the
stream waits for the checks. On a violation the stream ends with a ``finish_reason:
"content_filter"`` chunk and an error event; a non-streamed answer gets the same verdict on the
same windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from contextlib import aclosing
from typing import Any

from llmgw.context import RequestContext
from llmgw.errors import ContentFiltered
from llmgw.guards.consult import Consulted, consult_providers
from llmgw.guards.output import OutputVerdict, check_output, loggable, overlap_words
from llmgw.guards.policy import Policy
from llmgw.guards.providers import combine
from llmgw.guards.runtime import GuardFailure, GuardRuntime, guard_unavailable
from llmgw.guards.stream import Restorer, Windows, windows_of
from llmgw.messages import text_of
from llmgw.stages.base import Chunks, Stage
from llmgw.stages.guarding import guard_log, judge_hooks, route_fails_open

#: output findings that are certain, not a classifier's guess: no provider vote overrides them
CERTAIN = frozenset({"system_prompt_leak", "lexicon", "secret", "output_pii"})


def known_input(ctx: RequestContext) -> str:
    """The request as the model saw it plus the values masked out of it: PII there is not 'new'."""
    masker = ctx.guards.masker
    parts = [text_of(m.get("content")) for m in ctx.body.get("messages") or []]
    if masker is not None:
        parts.extend(masker.placeholders.values())
    return "\n".join(parts)


class OutputGuards(Stage):
    name = "output_guards"
    toggle = "output_guards"

    def enabled(self) -> bool:
        return self.gateway.config.guards.enabled

    async def check(self, ctx: RequestContext, policy: Policy, texts: list[str]) -> OutputVerdict:
        runtime: GuardRuntime = self.gateway.guards
        rule = policy.moderation.providers
        masker = ctx.guards.masker
        log = guard_log(self.gateway, ctx, policy)
        external: Consulted | None = None
        try:
            builtin = runtime.run(policy.timeout_s, check_output, policy, texts, ctx.guards.canary, ctx.guards.known)
            if rule is None:
                verdict: OutputVerdict = await builtin
            else:  # the providers read the windows with the request's own PII masked again
                sent = [masker.mask_known(t) for t in texts] if masker is not None else texts
                consulted = consult_providers(log, policy, rule, judge_hooks(self.gateway), sent, "output",
                                              "moderation", route_fails_open(ctx))  # fmt: skip
                verdict, external = await asyncio.gather(builtin, consulted)
                if external is not None and external.failed_open:
                    ctx.meta["guards_failed_open"] = True
        except GuardFailure as exc:
            fail_open = policy.on_error == "open" or route_fails_open(ctx)
            log("output", "allow" if fail_open else "block", stage="output", detail=str(exc), scores={"failed": 1.0})
            if fail_open:
                return OutputVerdict()
            raise guard_unavailable(str(exc)) from None
        if rule is not None and external is not None:
            self.combine(policy, verdict, external.verdicts)
        if verdict.violation or verdict.flags:
            masked = None
            if verdict.violation:
                window = [e for e in verdict.entities if e.get("window") == verdict.window]
                masked = loggable(texts[verdict.window], ctx.guards.masker, window)[:4000]
            entities = [{k: v for k, v in e.items() if k in ("type", "score")} for e in verdict.entities]
            log("moderation", "block" if verdict.violation else "flag", stage="output", scores=verdict.scores,
                entities=entities, detail=verdict.violation or ", ".join(verdict.flags),
                masked_text=masked)  # fmt: skip
        return verdict

    @staticmethod
    def combine(policy: Policy, verdict: OutputVerdict, external: list[dict[str, Any]]) -> None:
        """Join the providers' verdicts per window with the built-in moderator's harm verdict (in place).

        A certain finding (canary, secret, new PII, lexicon) stands whatever the providers say;
        a harm category of the built-in moderator is one vote. The violation is named by the first
        flagging provider's category, else the moderator's top category of the window.
        """
        rule = policy.moderation.providers
        if rule is None or verdict.violation in CERTAIN:
            return
        verdict.violation, verdict.window = None, -1
        for i, verdicts in enumerate(external):
            builtin = verdict.harm[i] if i < len(verdict.harm) else (False, 0.0)
            hit, _ = combine(rule, builtin, verdicts)
            if hit:
                by = [v.detail or name for name, v in verdicts.items() if v.flagged]
                named = by[0] if by else verdict.harm_category[i] if i < len(verdict.harm_category) else "harm"
                verdict.violation, verdict.window = named, i
                return

    # --- non-streamed ------------------------------------------------------------------------

    async def response(self, ctx: RequestContext, completion: dict[str, Any]) -> dict[str, Any]:
        policy = ctx.guards.policy
        masker = ctx.guards.masker
        if policy is None:
            return completion  # input guards failed open
        ctx.guards.known = known_input(ctx)
        for choice in completion.get("choices") or ():
            message = choice.get("message") or {}
            if masker is not None and masker.placeholders:
                if isinstance(message.get("content"), str):
                    message["content"] = masker.restore(message["content"])
                for call in message.get("tool_calls") or ():
                    function = call.get("function") or {}
                    if isinstance(function.get("arguments"), str):
                        restorer = Restorer(masker.placeholders, json_string=True)
                        function["arguments"] = restorer.feed(function["arguments"]) + restorer.flush()
            text = message.get("content")
            if policy.moderation.enabled and isinstance(text, str) and text:
                texts = windows_of(text, policy.moderation.window_words, overlap_words(policy.moderation))
                verdict = await self.check(ctx, policy, texts)
                if verdict.violation:
                    choice["finish_reason"] = "content_filter"
                    message["content"] = None
                    ctx.status = "content_filtered"
                    ctx.meta["content_filter"] = verdict.violation
        return completion

    # --- streamed ----------------------------------------------------------------------------

    def stream(self, ctx: RequestContext, chunks: Chunks) -> Chunks:
        return self._stream(ctx, chunks)

    async def _stream(self, ctx: RequestContext, chunks: Chunks) -> Chunks:
        policy = ctx.guards.policy
        masker = ctx.guards.masker
        if policy is None:
            # the chunks are an async generator (aclose); the Chunks alias only says AsyncIterator
            async with aclosing(chunks):  # type: ignore[type-var]
                async for chunk in chunks:
                    yield chunk
            return
        ctx.guards.known = known_input(ctx)
        placeholders = masker.placeholders if masker is not None else {}
        restore = bool(placeholders)
        moderate = policy.moderation.enabled
        rules = policy.moderation
        overlap = overlap_words(rules)
        restorers: dict[Any, Restorer] = {}
        windows: dict[int, Windows] = {}
        checks: dict[int, deque[tuple[int, asyncio.Task[OutputVerdict]]]] = {}
        #: chunks not sent yet, each with the text length of each of its choices once it is included
        held: deque[tuple[dict[str, Any], list[tuple[int, int]]]] = deque()

        def window(index: int) -> Windows:
            w = windows.get(index)
            if w is None:
                w = windows[index] = Windows(rules.window_words, overlap)
            return w

        def check(index: int, final: bool) -> None:
            texts = windows[index].take(final=final)
            if texts:
                task = asyncio.ensure_future(self.check(ctx, policy, texts))
                checks.setdefault(index, deque()).append((windows[index].checked, task))

        async def settle(index: int, limit: int | None) -> None:
            """Take finished checks; wait for more while over ``limit`` unverified words (None: wait for all)."""
            queue, w = checks.get(index), windows[index]
            while queue:
                end, task = queue[0]
                if not (task.done() or limit is None or w.received() - w.verified > limit):
                    return
                queue.popleft()
                verdict = await task
                if verdict.violation:
                    raise Violation(index, verdict.violation)
                w.verified = end

        def sendable() -> list[dict[str, Any]]:
            """The held chunks, oldest first, whose text has passed (a chunk leaves whole or not at all)."""
            out = []
            while held and all(end <= windows[index].released() for index, end in held[0][1]):
                out.append(held.popleft()[0])
            return out

        try:
            # the chunks are an async generator (aclose); the Chunks alias only says AsyncIterator
            async with aclosing(chunks):  # type: ignore[type-var]
                async for chunk in chunks:
                    ends: list[tuple[int, int]] = []
                    for choice in chunk.get("choices") or ():
                        index = choice.get("index", 0)
                        delta = choice.get("delta") or {}
                        finished = choice.get("finish_reason") is not None
                        content = delta.get("content")
                        if restore:
                            if content:
                                restorer = restorers.setdefault(index, Restorer(placeholders))
                                content = delta["content"] = restorer.feed(content)
                            if finished and index in restorers:
                                tail = restorers.pop(index).flush()
                                if tail:
                                    content = delta["content"] = (content or "") + tail
                            for call in delta.get("tool_calls") or ():
                                function = call.get("function") or {}
                                if function.get("arguments"):
                                    key = (index, call.get("index", 0))
                                    r = restorers.setdefault(key, Restorer(placeholders, json_string=True))
                                    function["arguments"] = r.feed(function["arguments"])
                        if moderate:
                            w = window(index)
                            if content:
                                w.feed(content)
                            if finished:
                                w.finish()
                            check(index, final=finished)
                            ends.append((index, w.length))
                    if not moderate:
                        yield chunk
                        continue
                    held.append((chunk, ends))
                    for index in checks:
                        await settle(index, None if windows[index].finished else rules.hold_back_tokens)
                    for ready in sendable():
                        yield ready
            # the upstream ended: a choice it never finished is checked to its end too
            for index, w in windows.items():
                if not w.finished:
                    w.finish()
                    check(index, final=True)
            for index in checks:
                await settle(index, None)
            for ready in sendable():
                yield ready
        except Violation as v:
            for ready in sendable():  # what passed before the violating window, and nothing of it
                yield ready
            ctx.meta["content_filter"] = v.category
            ctx.status = "content_filtered"
            yield {"id": f"chatcmpl-{ctx.request_id}", "object": "chat.completion.chunk", "created": int(time.time()),
                   "model": ctx.model_name,
                   "choices": [{"index": v.index, "delta": {}, "finish_reason": "content_filter"}]}  # fmt: skip
            raise ContentFiltered(f"the answer was stopped by the output guard ({v.category})") from None
        finally:
            for queue in checks.values():
                for _, task in queue:
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task


class Violation(Exception):
    def __init__(self, index: int, category: str) -> None:
        self.index, self.category = index, category

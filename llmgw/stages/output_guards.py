"""Output guards: restore masked PII and moderate the answer, streamed or not.

Streams are moderated in windows of ``window_words`` words, each read with the words before it
(:func:`llmgw.guards.output.overlap_words`). A window's check starts as soon as it is complete and
runs on the guards' thread while text keeps flowing from the upstream; chunks are held and sent
only once every window that reads their text has passed, so nothing unchecked reaches the client.
The upstream is read at most ``hold_back_tokens`` words past the last passed window before the
stream waits for the checks. On a violation the stream ends with a ``finish_reason:
"content_filter"`` chunk and an error event; a non-streamed answer gets the same verdict on the
same windows.

A harm category hit on a short window is only a suspect (``moderation.confirm``): the window's
context view (its sentence with the one before and the one after, ``Windows.view``) is scored once
it has arrived, and only if the view is flagged too is the answer stopped. While a suspect waits,
nothing from its first word on is sent, and the upstream is read on up to ``confirm_after_words``
past it; answers with no suspect pay nothing for this.

Tool-call arguments (``tool_calls[].function.arguments``, a legacy ``function_call``'s) are read by
the deterministic checks only (``check_arguments``: the system prompt's canary, secrets; not the
learned classifier, whose false-stop rate on JSON arguments is unmeasured), each call's whole
string at once. Streamed, a choice's argument text is held until the choice ends and then judged:
only then is a call known complete (an upstream may interleave parallel calls' deltas), a client
cannot act on half a JSON object anyway, and a secret pattern can reach across the whole string
(a ``"password": "..."`` pair, a PEM block, JSON escapes undone), so releasing a safe prefix would
mean bounding every pattern's reach for no gain a client can use. A chunk carrying a choice's calls
(and every chunk after it: chunks leave in order) is sent once they passed; a stop is a content
stop. Text before the calls streams as before.

Reasoning (``reasoning_content`` from vLLM and DeepSeek, ``reasoning`` from OpenRouter and
llama-server) is restored like the content and read by the same deterministic checks only, never by
the learned classifier: its false-stop rate on a model thinking aloud about whatever it was asked is
unmeasured. Streamed, it is read on windows of its own and held as the content is (clients show it
live: a text leaves once the windows that read it passed, the stream waits past ``hold_back_tokens``
unverified words), and only where a check can stop the answer (``secrets: block``, or a canary);
under ``secrets: flag`` it streams as it comes and is read once, whole, at the end for the log. A
choice's reasoning ends where its answer (content, a tool call, the finish) begins. A stop in it is
a content stop; not streamed, a stop withholds the reasoning with the rest of the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from llmgw.context import RequestContext
from llmgw.errors import ContentFiltered
from llmgw.guards.consult import Consulted, consult_providers
from llmgw.guards.output import (
    OutputVerdict,
    argument_views,
    check_arguments,
    check_output,
    confirm_output,
    context_view,
    loggable,
    overlap_words,
)
from llmgw.guards.policy import Policy
from llmgw.guards.providers import combine
from llmgw.guards.runtime import GuardFailure, GuardRuntime, guard_unavailable
from llmgw.guards.stream import Restorer, Windows, finished_windows
from llmgw.messages import rewrite_texts, text_of
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
            chars = sum(map(len, texts))  # a long answer read whole takes time in proportion (guardrails.md)
            builtin = runtime.run(policy.budget_s(chars), check_output, policy, texts, ctx.guards.canary,
                                  ctx.guards.known, chars=chars)  # fmt: skip
            if rule is None:
                verdict: OutputVerdict = await builtin
            else:  # the providers read the windows with the request's own PII masked again
                sent = [masker.mask_known(t) for t in texts] if masker is not None else texts
                consulted = consult_providers(log, policy, rule, judge_hooks(self.gateway), sent, "output",
                                              "moderation", route_fails_open(ctx),
                                              self.gateway.metrics.guard_provider,
                                              self.gateway.guards.verdicts)  # fmt: skip
                verdict, external = await asyncio.gather(builtin, consulted)
                if external is not None and external.failed_open:
                    ctx.meta["guards_failed_open"] = True
        except GuardFailure as exc:
            fail_open = policy.on_error == "open" or route_fails_open(ctx)
            log("output", "allow" if fail_open else "block", stage="output", detail=str(exc), scores={"failed": 1.0})
            if fail_open:
                return OutputVerdict()
            raise guard_unavailable(str(exc)) from None
        decided: dict[str, Any] | None = None  # the providers' verdicts on the window that stopped the answer
        if rule is not None and external is not None:
            decided = self.combine(policy, verdict, external.verdicts)
        return self.record(ctx, policy, verdict, texts, decided)

    def record(self, ctx: RequestContext, policy: Policy, verdict: OutputVerdict, texts: list[str],
               decided: dict[str, Any] | None = None) -> OutputVerdict:  # fmt: skip
        """Log a verdict on ``texts`` (a stop once per answer, flags as they come) and mark the
        request's meta (an answer a secret or new PII was flagged in is not cached)."""
        log = guard_log(self.gateway, ctx, policy)
        if any(f.startswith(("pii:", "secret:")) for f in verdict.flags):
            ctx.meta["output_flagged"] = True  # served, but not kept by the cache: see stages/cache.storable
        if verdict.violation in ctx.guards.blocked:
            return verdict  # the answer is stopped already, and logged as such once
        if verdict.violation or verdict.flags:
            masked = None
            if verdict.violation:
                window = [e for e in verdict.entities if e.get("window") == verdict.window]
                masked = loggable(texts[verdict.window], ctx.guards.masker, window)[:4000]
            entities = [{k: v for k, v in e.items() if k in ("type", "score")} for e in verdict.entities]
            scores, detail = dict(verdict.scores), verdict.violation or ", ".join(verdict.flags)
            if decided is not None:  # as on the input side: who voted, and who flagged
                harm = verdict.harm[verdict.window] if 0 <= verdict.window < len(verdict.harm) else (False, 0.0)
                scores["builtin"] = round(harm[1], 4)
                scores.update({f"provider:{name}": v.score for name, v in decided.items()})
                by = [name for name, v in decided.items() if v.flagged]
                detail += f"; providers: {', '.join(by)}" if by else ""
            if verdict.violation:
                ctx.guards.blocked.add(verdict.violation)
            log("moderation", "block" if verdict.violation else "flag", stage="output", scores=scores,
                entities=entities, detail=detail, masked_text=masked)  # fmt: skip
        return verdict

    async def check_calls(self, ctx: RequestContext, policy: Policy, arguments: list[str]) -> str | None:
        """The category a tool call's arguments stop the answer for (None: they pass), read by the
        deterministic checks only (``check_arguments``: the canary, secrets), logged like content's."""
        texts = [view for text in arguments for view in argument_views(text)]
        return (await self.check_certain(ctx, policy, texts)).violation

    async def check_certain(self, ctx: RequestContext, policy: Policy, texts: list[str]) -> OutputVerdict:
        """``texts`` read by the deterministic checks only (``check_arguments``: the canary, secrets),
        logged like content's: for tool-call arguments and for reasoning (``reasoning_content``,
        ``reasoning``), which the learned classifier does not read (its false-stop rate there is
        unmeasured). A failure of the guards fails as the policy says (open: the texts pass)."""
        chars = sum(map(len, texts))
        try:  # on the guards' thread: a megabyte of arguments (an image's data URL) reads in ~0.2 s
            verdict = await self.gateway.guards.run(policy.budget_s(chars), check_arguments, policy, texts,
                                                    ctx.guards.canary, chars=chars)  # fmt: skip
        except GuardFailure as exc:
            fail_open = policy.on_error == "open" or route_fails_open(ctx)
            guard_log(self.gateway, ctx, policy)("output", "allow" if fail_open else "block", stage="output",
                                                 detail=str(exc), scores={"failed": 1.0})  # fmt: skip
            if fail_open:
                return OutputVerdict()
            raise guard_unavailable(str(exc)) from None
        return self.record(ctx, policy, verdict, texts)

    async def confirm(self, ctx: RequestContext, policy: Policy, views: list[str]) -> str | None:
        """The category of the first context view still flagged (the answer stops), or None (the
        suspect windows pass); the decision is logged either way."""
        runtime: GuardRuntime = self.gateway.guards
        log = guard_log(self.gateway, ctx, policy)
        try:
            chars = sum(map(len, views))
            found = await runtime.run(policy.budget_s(chars), confirm_output, policy, views, chars=chars)
        except GuardFailure as exc:
            fail_open = policy.on_error == "open" or route_fails_open(ctx)
            log("output", "allow" if fail_open else "block", stage="output", detail=str(exc), scores={"failed": 1.0})
            if fail_open:
                return None
            raise guard_unavailable(str(exc)) from None
        if found is None:
            log("moderation", "flag", stage="output", detail="window hit not confirmed by its context")
            return None
        i, category = found
        if category in ctx.guards.blocked:
            return category
        ctx.guards.blocked.add(category)
        log("moderation", "block", stage="output", detail=f"{category} (in context)",
            masked_text=loggable(views[i], ctx.guards.masker, [])[:4000])  # fmt: skip
        return category

    @staticmethod
    def combine(policy: Policy, verdict: OutputVerdict, external: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Join the providers' verdicts per window with the built-in moderator's harm verdict (in
        place); the providers' verdicts on the window that now stops the answer (None: none does, or
        a certain finding does).

        A certain finding (canary, secret, new PII, lexicon) stands whatever the providers say;
        a harm category of the built-in moderator is one vote. The violation is named by the first
        flagging provider's category, else the moderator's top category of the window.
        """
        rule = policy.moderation.providers
        if rule is None or verdict.violation in CERTAIN:
            return None
        verdict.violation, verdict.window = None, -1
        for i, verdicts in enumerate(external):
            builtin = verdict.harm[i] if i < len(verdict.harm) else (False, 0.0)
            hit, _ = combine(rule, builtin, verdicts)
            if hit:
                by = [v.detail or name for name, v in verdicts.items() if v.flagged]
                named = by[0] if by else verdict.harm_category[i] if i < len(verdict.harm_category) else "harm"
                verdict.violation, verdict.window = named, i
                return verdicts
        return None

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
                # the text (or its parts) and every other text the model wrote: a refusal, the reasoning
                # of vLLM's and DeepSeek's ``reasoning_content`` or OpenRouter's ``reasoning``, may quote them
                rewrite_texts(message, masker.restore)
                legacy = [message["function_call"]] if isinstance(message.get("function_call"), dict) else []
                for function in [call.get("function") or {} for call in message.get("tool_calls") or ()] + legacy:
                    if isinstance(function.get("arguments"), str):
                        restorer = Restorer(masker.placeholders, json_string=True)
                        function["arguments"] = restorer.feed(function["arguments"]) + restorer.flush()
            if not policy.moderation.enabled:
                continue
            rules = policy.moderation
            # the calls' arguments first: their checks are deterministic and cheap, and a call the
            # model was talked into (a key sent to a tool) is stopped before the text is read
            functions = [call.get("function") or {} for call in message.get("tool_calls") or ()
                         if isinstance(call, dict)]  # fmt: skip
            if isinstance(message.get("function_call"), dict):
                functions.append(message["function_call"])
            arguments = [a if isinstance(a, str) else json.dumps(a, ensure_ascii=False)
                         for a in (f.get("arguments") for f in functions if isinstance(f, dict)) if a]  # fmt: skip
            stopped = await self.check_calls(ctx, policy, arguments) if arguments else None
            # the reasoning (``reasoning_content``, ``reasoning``) by the same checks, whole: the client
            # reads it too; only where they can find anything (secrets not ``allow``, or a canary)
            thoughts = [t for t in (message.get(f) for f in REASONING) if isinstance(t, str) and t]
            if stopped is None and thoughts and (rules.secrets != "allow" or ctx.guards.canary):
                stopped = (await self.check_certain(ctx, policy, thoughts)).violation
            # a refusal is text the client reads too: it is moderated like the content
            texts: list[str] = [t for t in (message.get("content"), message.get("refusal")) if isinstance(t, str) and t]
            read = 0
            for text in texts if stopped is None else ():
                windows = finished_windows(text, rules.window_words, overlap_words(rules))
                verdict = await self.check(ctx, policy, windows.take(final=True))
                suspects = [k for k in verdict.suspects if verdict.violation is None or k < verdict.window]
                if suspects:  # confirmed on their context views, all in one call
                    views = [context_view(windows, k, rules) or "" for k in suspects]
                    verdict.violation = await self.confirm(ctx, policy, views) or verdict.violation
                read += len(windows.spans)
                if verdict.violation:
                    stopped = verdict.violation
                    break
            if stopped:  # nothing the model wrote is handed out: its text, its calls, its reasoning
                choice["finish_reason"] = "content_filter"
                message["content"] = None
                for field in ("refusal", "tool_calls", "function_call", *REASONING):
                    if message.get(field) is not None:
                        message[field] = None
                if choice.get("logprobs") is not None:  # its tokens spell the withheld text
                    choice["logprobs"] = None
                ctx.status = "content_filtered"
                ctx.meta["content_filter"] = stopped
            elif texts:
                self.passed(ctx, policy, read)
        return completion

    def passed(self, ctx: RequestContext, policy: Policy, windows: int) -> None:
        """The answer's final decision when moderation let it through (a stop is logged where it is
        decided): without it a reviewer could not tell a moderated answer from one never checked."""
        guard_log(self.gateway, ctx, policy)("moderation", "allow", stage="output",
                                             detail=f"answer passed ({windows} window(s) read)")  # fmt: skip

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
        #: whether the arguments' check can stop the answer (``secrets: block`` or a canary to leak):
        #: only then are they held until judged; a check that can only flag lets them stream as they come
        calls_can_stop = rules.secrets == "block" or bool(ctx.guards.canary)
        #: the reasoning, likewise: on windows of its own, held as the content is, where its check can
        #: stop the answer; else, under ``secrets: flag``, collected and judged once at the end for the log
        thoughts_can_stop = moderate and calls_can_stop
        thoughts_logged = moderate and not calls_can_stop and rules.secrets == "flag"
        thoughts: dict[tuple[int, int], list[str]] = {}  # under flag: each choice's reasoning, per field
        reasoned: set[int] = set()  # the choices that sent reasoning
        restorers: dict[Any, Restorer] = {}
        windows: dict[Any, Windows] = {}
        checks: dict[Any, deque[Pending]] = {}
        #: chunks not sent yet, each with the text length of each of its choices once it is included
        held: deque[tuple[dict[str, Any], list[tuple[Any, int]]]] = deque()
        #: tool-call arguments per ``(choice, call)`` (restored), the choices whose arguments are not
        #: judged yet, and the choices the upstream finished (the module's docstring says why)
        arguments: dict[tuple[int, int], list[str]] = {}
        unjudged: set[int] = set()
        done: set[int] = set()
        judge: set[int] = set()  # choices whose arguments are complete: judged once the chunk is taken

        def window(index: Any) -> Windows:
            w = windows.get(index)
            if w is None:
                w = windows[index] = Windows(rules.window_words, overlap)
            return w

        def check(index: Any, final: bool) -> None:
            first = len(windows[index].spans)
            texts = windows[index].take(final=final)
            if texts:
                # reasoning is read by the deterministic checks only: the classifier's false-stop rate
                # on it is unmeasured (a verdict of theirs has no suspects: ``settle`` reads it the same)
                thought = isinstance(index, tuple) and index[1] in REASONING_SLOTS
                judging = self.check_certain if thought else self.check
                task = asyncio.ensure_future(judging(ctx, policy, texts))
                checks.setdefault(index, deque()).append(Pending(windows[index].checked, first, task))

        async def settle(index: Any, limit: int | None) -> None:
            """Take finished checks; wait for more while over ``limit`` unverified words (None: wait for
            all). A suspect window is confirmed on its context view once that has arrived; until then
            the stream reads on and nothing from the suspect's first word is released."""
            queue, w = checks.get(index), windows[index]
            while queue:
                p = queue[0]
                waiting = limit is None or w.received() - w.verified > limit
                if p.suspects is None:
                    if not (p.task.done() or waiting):
                        return
                    verdict = await p.task
                    if verdict.violation:
                        raise Violation(index, verdict.violation)
                    p.suspects = deque(p.first + k for k in verdict.suspects)
                while p.suspects:
                    k = p.suspects[0]
                    w.verified = max(w.verified, w.spans[k][1])  # the windows before it passed
                    if p.confirming is None:
                        view = context_view(w, k, rules)
                        if view is None:  # its context has not all arrived: read on
                            return
                        p.confirming = asyncio.ensure_future(self.confirm(ctx, policy, [view]))
                    if not (p.confirming.done() or limit is None or w.received() - w.verified > limit):
                        return
                    category = await p.confirming
                    p.confirming = None
                    if category is not None:
                        raise Violation(index, category)
                    p.suspects.popleft()
                queue.popleft()
                w.verified = p.end

        def sendable() -> list[dict[str, Any]]:
            """The held chunks, oldest first, whose text has passed (a chunk leaves whole or not at all)."""
            out = []
            while held and all(
                key[0] not in unjudged if isinstance(key, tuple) and key[1] == CALLS else end <= windows[key].released()
                for key, end in held[0][1]
            ):
                out.append(held.popleft()[0])
            return out

        def take(chunk: dict[str, Any], end: bool = False) -> list[tuple[Any, int]]:
            """Restore a chunk's choices and hand their text to the windows (``end``: the choices end
            here, as the upstream ended without finishing them); the text length per window key."""
            ends: list[tuple[Any, int]] = []
            for choice in chunk.get("choices") or ():
                index = choice.get("index", 0)
                delta = choice.get("delta")
                if not isinstance(delta, dict):  # the tails restorers flush at the end are written into it
                    delta = choice["delta"] = {}
                finished = end or choice.get("finish_reason") is not None
                content = delta.get("content")
                # a choice's reasoning fields, once it has sent any (a stream with none pays three lookups
                # a chunk); the reasoning ends where the answer begins
                thinking: list[tuple[str, tuple[int, int]]] = []
                if index in reasoned or delta.get("reasoning_content") or delta.get("reasoning"):
                    reasoned.add(index)
                    thinking = [(name, (index, slot)) for name, slot in REASONING.items()]
                answering = finished or bool(content or delta.get("tool_calls") or delta.get("function_call"))
                if restore:
                    if content:
                        restorer = restorers.setdefault(index, Restorer(placeholders))
                        content = delta["content"] = restorer.feed(content)
                    if finished and index in restorers:
                        tail = restorers.pop(index).flush()
                        if tail:
                            content = delta["content"] = (content or "") + tail
                    refusal = delta.get("refusal")
                    if isinstance(refusal, str) and refusal:  # a refusal may quote the question's values
                        r = restorers.setdefault((index, REFUSAL), Restorer(placeholders))
                        delta["refusal"] = r.feed(refusal)
                    if finished and (index, REFUSAL) in restorers:
                        tail = restorers.pop((index, REFUSAL)).flush()
                        if tail:
                            delta["refusal"] = (delta.get("refusal") or "") + tail
                    for call in delta.get("tool_calls") or ():
                        function = call.get("function") or {}
                        if function.get("arguments"):
                            key = (index, call.get("index", 0))
                            r = restorers.setdefault(key, Restorer(placeholders, json_string=True))
                            function["arguments"] = r.feed(function["arguments"])
                    legacy = delta.get("function_call")
                    if isinstance(legacy, dict) and legacy.get("arguments"):
                        key = (index, LEGACY)
                        r = restorers.setdefault(key, Restorer(masker.placeholders, json_string=True))  # type: ignore[union-attr]
                        legacy["arguments"] = r.feed(legacy["arguments"])
                    for name, key in thinking:  # as the content is; its tail once the answer begins
                        piece = delta.get(name)
                        if isinstance(piece, str) and piece:
                            delta[name] = restorers.setdefault(key, Restorer(placeholders)).feed(piece)
                        if answering and key in restorers:
                            tail = restorers.pop(key).flush()
                            if tail:
                                delta[name] = (delta.get(name) or "") + tail
                    if finished:  # what a call's restorer still holds goes out with the end
                        flush_calls(delta, index, restorers)
                if moderate:  # the content, and a refusal (text the client reads too) on windows of its own
                    refusal = delta.get("refusal") if isinstance(delta.get("refusal"), str) else None
                    for key, text in ((index, content), ((index, REFUSAL), refusal)):
                        if key != index and key not in windows and not text:
                            continue
                        w = window(key)
                        # text after the choice's finish (an upstream that goes on) is checked as it comes:
                        # released() lets everything of a finished text go once its windows passed
                        final = finished or w.finished
                        if text:
                            w.feed(text)
                        if final:
                            w.finish()
                        check(key, final=final)
                        ends.append((key, w.length))
                    for name, key in thinking:  # by the deterministic checks only (module docstring)
                        piece = delta.get(name)
                        thought = piece if isinstance(piece, str) else ""
                        if thoughts_logged and thought:
                            thoughts.setdefault(key, []).append(thought)
                        if not thoughts_can_stop or not (thought or (key in windows and not windows[key].finished)):
                            continue
                        w = window(key)
                        final = answering or w.finished
                        w.feed(thought)
                        if final:
                            w.finish()
                        check(key, final=final)
                        if thought:
                            ends.append((key, w.length))
                    # the calls' arguments are held whole until the choice ends (the module's docstring)
                    legacy = delta.get("function_call")
                    pieces = [(call.get("index", 0), call.get("function")) for call in delta.get("tool_calls") or ()
                              if isinstance(call, dict)]  # fmt: skip
                    pieces += [(LEGACY, legacy)] if isinstance(legacy, dict) else []
                    for k, function in pieces:
                        text = function.get("arguments") if isinstance(function, dict) else None
                        if text:
                            arguments.setdefault((index, k), []).append(
                                text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
                            )
                            unjudged.add(index)
                    if pieces and calls_can_stop:
                        ends.append(((index, CALLS), 0))
                    if finished:
                        done.add(index)
                    if index in done and index in unjudged:
                        judge.add(index)
            return ends

        async def judged() -> None:
            """Judge the arguments of the choices whose calls are complete (a stop raises Violation)."""
            for index in sorted(judge):
                calls = ["".join(v) for (i, _), v in arguments.items() if i == index]
                category = await self.check_calls(ctx, policy, calls)
                if category is not None:
                    raise Violation(index, category)
                unjudged.discard(index)
            judge.clear()

        try:
            # the chunks are an async generator (aclose); the Chunks alias only says AsyncIterator
            async with aclosing(chunks):  # type: ignore[type-var]
                async for chunk in chunks:
                    ends = take(chunk)
                    if not moderate:
                        yield chunk
                        continue
                    held.append((chunk, ends))
                    await judged()
                    for index in checks:
                        await settle(index, None if windows[index].finished else rules.hold_back_tokens)
                    for ready in sendable():
                        yield ready
            # the upstream ended without finishing some choices: what their restorers still hold
            # (text that began like a placeholder) goes out in a last chunk, checked like the rest
            unfinished = sorted({key if isinstance(key, int) else key[0] for key in restorers})
            if unfinished:
                last: dict[str, Any] = {"id": f"chatcmpl-{ctx.request_id}", "object": "chat.completion.chunk",
                        "created": int(time.time()), "model": ctx.model_name,
                        "choices": [{"index": i, "delta": {}, "finish_reason": None} for i in unfinished]}  # fmt: skip
                ends = take(last, end=True)
                if any(c["delta"] for c in last["choices"]):
                    if moderate:
                        held.append((last, ends))
                    else:
                        yield last
            # the upstream ended: a choice it never finished is checked to its end too
            for index, w in windows.items():
                if not w.finished:
                    w.finish()
                    check(index, final=True)
            for index in checks:
                await settle(index, None)
            judge.update(unjudged)  # the upstream ended: every call is complete
            await judged()
            if thoughts:  # under flag: each reasoning text read once, whole, for the log (it cannot stop)
                await self.check_certain(ctx, policy, ["".join(t) for t in thoughts.values()])
            read: dict[int, int] = {}  # every choice's answer read to its end and passed: its windows
            for key, w in windows.items():
                if isinstance(key, tuple) and key[1] in REASONING_SLOTS:
                    continue  # not the answer, and read by other checks
                index = key if isinstance(key, int) else key[0]
                read[index] = read.get(index, 0) + len(w.spans)
            for count in read.values():
                self.passed(ctx, policy, count)
            for ready in sendable():
                yield ready
        except Violation as v:
            for ready in sendable():  # what passed before the violating window, and nothing of it
                yield ready
            ctx.meta["content_filter"] = v.category
            ctx.status = "content_filtered"
            yield {"id": f"chatcmpl-{ctx.request_id}", "object": "chat.completion.chunk", "created": int(time.time()),
                   "model": ctx.model_name,
                   "choices": [{"index": v.choice, "delta": {}, "finish_reason": "content_filter"}]}  # fmt: skip
            raise ContentFiltered(f"the answer was stopped by the output guard ({v.category})") from None
        finally:
            for queue in checks.values():
                for p in queue:
                    for task in (p.task, p.confirming):
                        if task is not None:
                            task.cancel()
                            with contextlib.suppress(BaseException):
                                await task


@dataclass
class Pending:
    """One check of a stream's windows: the words it verifies, its first window's number, the check,
    and once it has answered, its suspect windows still to confirm (and the confirmation running)."""

    end: int
    first: int
    task: asyncio.Task[OutputVerdict]
    suspects: deque[int] | None = None
    confirming: asyncio.Task[str | None] | None = None


LEGACY = -1  # the call index of a legacy ``function_call`` among a choice's restorers
REFUSAL = -2  # the key of a choice's ``refusal`` restorer among its restorers (no call has it)
CALLS = -3  # ``(index, CALLS)`` in a held chunk's ends: it carries that choice's tool calls
#: the reasoning fields of a message or delta (vLLM's and DeepSeek's ``reasoning_content``,
#: OpenRouter's and llama-server's ``reasoning``), each with its key among a choice's restorers and windows
REASONING = {"reasoning_content": -4, "reasoning": -5}
REASONING_SLOTS = frozenset(REASONING.values())


def flush_calls(delta: dict[str, Any], index: int, restorers: dict[Any, Restorer]) -> None:
    """At a choice's end, the arguments its tool calls' restorers still hold (text that began like
    a placeholder and never became one), added to the last delta so that no character is lost."""
    for key in [k for k in restorers if isinstance(k, tuple) and k[0] == index]:
        tail = restorers.pop(key).flush()
        if not tail:
            continue
        if key[1] == LEGACY:
            delta["function_call"] = {"arguments": tail}
        else:
            delta["tool_calls"] = [*(delta.get("tool_calls") or ()), {"index": key[1], "function": {"arguments": tail}}]


class Violation(Exception):
    def __init__(self, key: Any, category: str) -> None:
        """``key``: the stopped text's windows, a choice index (its content), ``(index, REFUSAL)``, or
        ``(index, slot)`` of a reasoning field (``REASONING``)."""
        self.choice = key if isinstance(key, int) else key[0]
        self.category = category

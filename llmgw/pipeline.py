"""The pipeline: the stages a chat or embeddings request travels through, in order.

    authenticate → translate → parse → tool allow-list → rate limit → render template → input guards
    → plan → cache lookup → retrieve → select model → reserve budget → call provider → tool calls offered?
    → output guards → attach sources → cache store → audit log

    embeddings: authenticate → parse → rate limit → select model → call provider → audit log

Read top to bottom, this module is the life of a request. Stages live in ``llmgw.stages``;
each route gets its own list, keeping only the stages its config turns on and that actually do
something, so a pass-through stage costs nothing. The streamed path is a chain of async
iterators with constant work per chunk; a client that disconnects cancels the chain and the
upstream call with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
import msgspec

from llmgw import tokens
from llmgw.context import RequestContext
from llmgw.errors import GatewayError, UpstreamError, UpstreamKind
from llmgw.providers.base import UpstreamCall
from llmgw.providers.sse import DONE, encode_event
from llmgw.routing.resolve import resolve_model, routed
from llmgw.schemas import decode_body
from llmgw.stages.audit import AuditLog
from llmgw.stages.auth import Authenticate
from llmgw.stages.base import Chunks, Stage
from llmgw.stages.cache import CacheLookup, CacheStore
from llmgw.stages.input_guards import InputGuards
from llmgw.stages.output_guards import OutputGuards
from llmgw.stages.parse import ParseEmbeddingsRequest, ParseRequest
from llmgw.stages.plan import PlanRequest
from llmgw.stages.ratelimit import RateLimit, ReserveBudget
from llmgw.stages.retrieval import AttachSources, Retrieve
from llmgw.stages.selection import SelectEmbeddingModel, SelectModel
from llmgw.stages.template import RenderTemplate
from llmgw.stages.tools import ToolAllowList, ToolCalls
from llmgw.stages.translate import TranslateRequest, name_for_client
from llmgw.storage.db import UNAVAILABLE as DATABASE_UNAVAILABLE
from llmgw.storage.db import unavailable as database_unavailable
from llmgw.usage import read_usage, replay_as_chunks

if TYPE_CHECKING:
    from llmgw.config import RouteConfig
    from llmgw.gateway import Gateway

log = logging.getLogger("llmgw.pipeline")
T = TypeVar("T")
_encode = msgspec.json.Encoder().encode

#: how a completion becomes the client's answer (None: chat's own shape, as it is)
Render = Callable[[dict[str, Any]], Any] | None

#: Before the route is known: who is calling, and what are they asking for.
FRONT: tuple[type[Stage], ...] = (Authenticate, TranslateRequest, ParseRequest)
#: Before the provider, on the chosen route.
BEFORE_PROVIDER: tuple[type[Stage], ...] = (
    ToolAllowList,  # a tool the key or route may not use is refused before anything is spent
    RateLimit,
    RenderTemplate,
    InputGuards,
    PlanRequest,  # the model and the retrieval plan, decided once: the cache keys on them
    CacheLookup,
    Retrieve,
    SelectModel,
    ReserveBudget,  # the model's price is known: the highest cost is reserved in the daily budgets
)
#: After the provider, on the chosen route (response/stream wrappers, then ``done``).
AFTER_PROVIDER: tuple[type[Stage], ...] = (ToolCalls, OutputGuards, AttachSources, CacheStore, AuditLog)

#: ``/v1/embeddings``: who is calling, before the body is read.
EMBEDDINGS_FRONT: tuple[type[Stage], ...] = (Authenticate,)
#: ``/v1/embeddings``, on the body: check it, count it against the key's and team's limits (a key
#: at its limit must not embed without bound), choose the model. Vectors are not generated text: no
#: template, guards, cache or retrieval. Stages with a route toggle run only where it is on.
EMBEDDINGS: tuple[type[Stage], ...] = (ParseEmbeddingsRequest, RateLimit, SelectEmbeddingModel)
#: ``/v1/embeddings``, when it has ended however it ended (its tokens and cost settled in the limits).
EMBEDDINGS_DONE: tuple[type[Stage], ...] = (RateLimit, AuditLog)


class RoutePipeline:
    """The active stages of one route, split by the phase they act in."""

    def __init__(self, gateway: Gateway, route: RouteConfig | None) -> None:
        def active(cls: type[Stage]) -> Stage | None:
            stage = cls(gateway)
            on_for_route = route is None or cls.toggle is None or getattr(route.stages, cls.toggle)
            return stage if stage.enabled() and on_for_route else None

        before = [s for s in map(active, BEFORE_PROVIDER) if s is not None]
        after = [s for s in map(active, AFTER_PROVIDER) if s is not None]
        every = before + after
        self.names = [s.name for s in every]
        self.request_stages = [s for s in before if s.overrides("request")]
        self.response_stages = [s for s in after if s.overrides("response")]
        self.stream_stages = [s for s in after if s.overrides("stream")]
        self.done_stages = [s for s in every if s.overrides("done")]


class Pipeline:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.front = [cls(gateway) for cls in FRONT]
        self.routes = {name: RoutePipeline(gateway, route) for name, route in gateway.config.routes.items()}
        self.unrouted = RoutePipeline(gateway, None)  # for requests refused before a route is known
        self.embedding_front = [cls(gateway) for cls in EMBEDDINGS_FRONT]
        limits = RateLimit(gateway)  # one instance for both lists: it keeps the settling tasks it started

        def embedding(classes: tuple[type[Stage], ...]) -> list[Stage]:
            return [limits if cls is RateLimit else cls(gateway) for cls in classes
                    if cls is not RateLimit or limits.enabled()]  # fmt: skip

        self.embedding_stages = embedding(EMBEDDINGS)
        self.embedding_done = embedding(EMBEDDINGS_DONE)

    async def chat(
        self, ctx: RequestContext, events: StreamEvents | None = None, render: Render = None
    ) -> bytes | AsyncIterator[bytes]:
        """Run a chat request: the answer's JSON body, or an iterator of SSE bytes for a stream.

        ``events`` encodes the stream in the client's API, ``render`` the completion (chat's own
        when None). The answer is rendered and encoded here, before the row is queued: a bug in
        that rendering is the 500 the client gets, and the row says so rather than ``ok``.
        """
        route: RoutePipeline | None = None
        telemetry = self.gateway.telemetry
        trace = ctx.trace = telemetry.begin(ctx) if telemetry is not None else None
        timed = trace if trace is not None and trace.recording else None  # stage times only when sampled
        try:
            for stage in self.front:
                await (stage.request(ctx) if timed is None else timed.stage(stage.name, stage.request(ctx)))
            route = self.routes[ctx.route_name]

            early: dict[str, Any] | None = None
            for stage in route.request_stages:
                early = await (stage.request(ctx) if timed is None else timed.stage(stage.name, stage.request(ctx)))
                if early is not None:
                    break

            self.set_response_headers(ctx)
            if ctx.stream:
                chunks = replay_as_chunks(early) if early is not None else await self.open_stream(ctx)
                for stage in route.stream_stages:
                    chunks = stage.stream(ctx, chunks)
                return self.sse(ctx, chunks, route, events)

            completion = early if early is not None else await self.complete(ctx)
            for stage in route.response_stages:
                step = stage.response(ctx, completion)
                completion = await (step if timed is None else timed.stage(stage.name, step))
            if timed is not None:
                timed.answered(completion)
            answer = _encode(completion if render is None else render(completion))
        except Exception as exc:
            # a bug is a 500 like any other failure: it still leaves a row to explain it
            if isinstance(exc, GatewayError):
                error = exc
            elif isinstance(exc, DATABASE_UNAVAILABLE):  # e.g. an unknown key looked up while it is down
                error = database_unavailable(exc, f"request {ctx.request_id}")
            else:
                error = internal_error(ctx, exc)
            name_for_client(ctx, error)
            self.fail(ctx, error)
            if ctx.key is not None:  # unauthenticated noise is counted in metrics, not stored
                self.finish(ctx, (route or self.unrouted).done_stages)
            else:
                self.gateway.metrics.observe(ctx)
                if trace is not None:
                    trace.end(ctx)
            if error is exc:
                raise
            raise error from exc
        except anyio.get_cancelled_exc_class():
            # the client left before the answer was ready (``api.common.unless_client_leaves``), or
            # the server is stopping: the upstream call is closed and the request still leaves its row
            ctx.status, ctx.http_status, ctx.error_code = "client_disconnected", 499, "client_disconnected"
            if ctx.key is not None:
                self.finish(ctx, (route or self.unrouted).done_stages)
            raise
        self.finish(ctx, route.done_stages)
        return answer

    async def count_tokens(self, ctx: RequestContext) -> int:
        """Count a request's input tokens without running it (``/v1/messages/count_tokens``).

        The caller is authenticated, the body translated and checked, and the model resolved for
        this caller and route, exactly as for the request itself; then its prompt and tool
        definitions are counted with the local tokenizer. No provider is called and no row is
        written: nothing is generated or spent.
        """
        try:
            for stage in self.front:
                await stage.request(ctx)
        except GatewayError as exc:
            name_for_client(ctx, exc)
            raise
        config = self.gateway.config
        requested = ctx.model_requested or ""
        if not routed(config, requested):  # a routed ``auto`` is counted as it would be routed: any model
            resolve_model(config, requested, "chat", ctx.route, ctx.route_name, ctx.key)
        return tokens.input_tokens(ctx.body)

    async def embeddings(self, ctx: RequestContext, read_body: Callable[[], Awaitable[bytes]]) -> dict[str, Any]:
        """Run an embeddings request: the provider's answer with the catalog model's name.

        The caller is authenticated before the body is read, and a refused caller leaves no row;
        any later refusal or upstream failure does. Traced as a chat request is (an
        ``embeddings {model}`` span, its stages and its upstream attempt), a refused caller too.
        """
        telemetry = self.gateway.telemetry
        trace = ctx.trace = telemetry.begin(ctx) if telemetry is not None else None
        timed = trace if trace is not None and trace.recording else None
        try:
            for stage in self.embedding_front:
                await (stage.request(ctx) if timed is None else timed.stage(stage.name, stage.request(ctx)))
        except GatewayError as exc:
            if trace is not None:
                self.fail(ctx, exc)
                trace.end(ctx)
            raise
        try:
            server = self.gateway.config.server
            ctx.body = decode_body(await read_body(), server.max_body_bytes, server.max_json_depth)
            for stage in self.embedding_stages:
                toggle = stage.toggle
                if toggle is not None and ctx.route is not None and not getattr(ctx.route.stages, toggle):
                    continue  # the route turns it off (its ``done`` then has nothing to settle)
                await (stage.request(ctx) if timed is None else timed.stage(stage.name, stage.request(ctx)))
            assert ctx.model is not None and ctx.provider_name is not None
            if trace is not None:
                trace.attempt_started(ctx, ctx.model.upstream_id)
            try:
                result = await self.gateway.providers[ctx.provider_name].embeddings(ctx.body, ctx.model.upstream_id)
            except GatewayError as exc:
                if trace is not None:
                    trace.attempt_failed(exc, 0)
                raise
        except GatewayError as exc:
            self.fail(ctx, exc)
            self.finish(ctx, self.embedding_done)
            raise
        result["model"] = ctx.model_name
        usage = result.get("usage") or {}
        ctx.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        if trace is not None:
            trace.attempt_succeeded(ctx)
        self.finish(ctx, self.embedding_done)
        return result

    # --- calling the provider ----------------------------------------------------------------

    def upstream_call(self, ctx: RequestContext) -> UpstreamCall:
        assert ctx.model is not None
        deployment = ctx.deployment
        upstream_id = deployment.upstream_id if deployment is not None else ctx.model.upstream_id
        ctx.body["model"] = upstream_id
        call = UpstreamCall(ctx.body, upstream_id, ctx.deadline, ctx.request_id)
        if ctx.trace is not None:  # W3C trace context: the upstream's spans join this request's trace
            call.extra_headers["traceparent"] = ctx.trace.traceparent()
            if ctx.trace.tracestate:
                call.extra_headers["tracestate"] = ctx.trace.tracestate
        return call

    def fall_back(self, ctx: RequestContext, exc: GatewayError) -> bool:
        """Switch to the next model in line after a failure worth another model; False when there is none.

        5xx, 429, timeouts and upstream content filters fall back (the provider already retried);
        a bad request would fail the same way anywhere. The request's deadline bounds it all.
        """
        queue = ctx.fallbacks
        worth_it = isinstance(exc, UpstreamError) and exc.kind.falls_back
        if not queue or not worth_it or time.monotonic() >= ctx.deadline:
            return False
        self.next_model(ctx, exc.code or "upstream_error")
        return True

    def next_model(self, ctx: RequestContext, why: str) -> None:
        """Move on to the next model in line, recording why in ``meta.fallbacks`` and the headers."""
        name, model = ctx.fallbacks.pop(0)
        ctx.meta.setdefault("fallbacks", []).append({"from": ctx.model_name, "to": name, "error": why})
        ctx.model_name, ctx.model, ctx.provider_name = name, model, model.provider
        self.set_response_headers(ctx)

    async def with_failover(self, ctx: RequestContext, attempt: Callable[[RequestContext], Awaitable[T]]) -> T:
        """Each deployment of the model in the balancer's order, then the next model in line.

        A deployment that fails with 5xx, 429 or a timeout counts towards its circuit breaker and
        the next deployment is tried; a content filter skips to the next model; anything else, or
        the request's deadline, ends it. A deployment whose circuit is open is skipped while another
        model is in line (a model with every circuit open is passed over, ``circuit_open`` in
        ``meta.fallbacks``): calling it would cost the request its retries and time-outs before the
        fallback. After its cooldown one request probes it (``Balancer.admit``) while the others go on
        to what is next in line. With nothing else in line it is tried all the same, rather than
        refusing unheard.
        """
        balancer = self.gateway.balancer
        while True:
            assert ctx.model is not None and ctx.model_name is not None
            queue = balancer.order(ctx.model_name, ctx.model)
            if ctx.fallbacks:
                queue = [d for d in queue if not balancer.is_open(d)]
                if not queue:
                    self.next_model(ctx, "circuit_open")
                    continue
            tried = False
            for i, deployment in enumerate(queue):
                if not balancer.admit(deployment) and (i + 1 < len(queue) or ctx.fallbacks):
                    continue  # open, or its half-open probe is in flight: another one is in line
                tried = True
                ctx.deployment = deployment
                ctx.provider_name = deployment.provider
                started = time.perf_counter()
                if ctx.trace is not None:  # a span per attempt: each deployment, each fallback model
                    ctx.trace.attempt_started(ctx, deployment.upstream_id)
                try:
                    result = await attempt(ctx)
                except GatewayError as exc:
                    if ctx.trace is not None:
                        ctx.trace.attempt_failed(exc, ctx.attempts - 1)
                    trips = isinstance(exc, UpstreamError) and exc.kind.trips_breaker
                    if trips:
                        balancer.failed(deployment)
                    failure = exc
                    if trips and i + 1 < len(queue) and time.monotonic() < ctx.deadline:
                        ctx.meta.setdefault("failovers", []).append({"deployment": deployment.key, "error": exc.code})
                        continue
                    break
                balancer.succeeded(deployment, (time.perf_counter() - started) * 1000.0)
                if ctx.trace is not None:
                    ctx.trace.attempt_succeeded(ctx)
                return result
            if not tried:  # every deployment left was open or being probed
                self.next_model(ctx, "circuit_open")
                continue
            if not self.fall_back(ctx, failure):
                raise failure

    async def complete(self, ctx: RequestContext) -> dict[str, Any]:
        return await self.with_failover(ctx, self.complete_once)

    async def complete_once(self, ctx: RequestContext) -> dict[str, Any]:
        provider = self.gateway.providers[ctx.provider_name or ""]
        call = self.upstream_call(ctx)
        ctx.upstream_started = time.perf_counter()
        try:
            completion = await provider.complete(call)
        finally:
            ctx.upstream_ended = time.perf_counter()
            ctx.attempts = call.attempts + 1
        ctx.first_token_at = ctx.upstream_ended
        if ctx.trace is not None:  # the upstream's own id and finish reasons, for the attempt's span
            ctx.trace.upstream_answered(completion)
        completion["id"] = f"chatcmpl-{ctx.request_id}"
        completion["model"] = ctx.model_name
        usage = read_usage(completion.get("usage"))
        if usage is not None:
            ctx.set_usage(usage)
        else:
            self.estimate_usage(ctx, tokens.completion_text(completion))
            completion["usage"] = {
                "prompt_tokens": ctx.prompt_tokens,
                "completion_tokens": ctx.completion_tokens,
                "total_tokens": ctx.prompt_tokens + ctx.completion_tokens,
            }
        return completion

    async def open_stream(self, ctx: RequestContext) -> Chunks:
        """Start the upstream stream, failing over before its first byte; later failures raise mid-stream."""
        return await self.with_failover(ctx, self.open_stream_once)

    async def open_stream_once(self, ctx: RequestContext) -> Chunks:
        provider = self.gateway.providers[ctx.provider_name or ""]
        call = self.upstream_call(ctx)
        call.body["stream_options"] = {"include_usage": True}  # usage is the ground truth for cost
        ctx.upstream_started = time.perf_counter()
        try:
            chunks = await provider.stream(call)
            first = await first_chunk(chunks)
        except GatewayError:
            ctx.upstream_ended = time.perf_counter()
            raise
        finally:
            ctx.attempts = call.attempts + 1
        if first is None:  # ``[DONE]`` alone: no answer, nothing said it finished (:func:`unfinished`)
            ctx.upstream_ended = time.perf_counter()
            raise unfinished(None)
        ctx.first_token_at = time.perf_counter()  # when the first chunk was read, not when it was sent
        return self.observe(ctx, chunks, first)

    async def observe(self, ctx: RequestContext, chunks: Chunks, first: dict[str, Any] | None = None) -> Chunks:
        """Stamp our id and model on each chunk; note first-token time and usage.

        However the stream ends (finished, cut by the upstream, stopped by a guard, left by the
        client) the tokens the upstream produced are on the context before the ``done`` stages
        run: its usage when it sent one, otherwise a local count of the text received so far.

        A stream the upstream ended (``[DONE]``, ``message_stop``, a clean close) with a choice that
        never got its ``finish_reason`` raises :func:`unfinished`, as a stream cut before its end
        does: the client could not tell the cut answer from a whole one otherwise.
        """
        chunk_id = f"chatcmpl-{ctx.request_id}"
        trace = ctx.trace if ctx.trace is not None and ctx.trace.recording else None
        pieces: list[str] = []  # kept only to count tokens if the upstream sends no usage
        got_usage = False
        seen: set[int] = set()  # the choices' indexes
        finished: set[int] = set()  # ... of those that got a finish_reason

        def stamp(chunk: dict[str, Any]) -> dict[str, Any]:
            nonlocal got_usage
            if ctx.first_token_at is None:
                ctx.first_token_at = time.perf_counter()
            if trace is not None:
                trace.upstream_answered(chunk)
            chunk["id"] = chunk_id
            chunk["model"] = ctx.model_name
            usage = read_usage(chunk.get("usage"))
            if usage is not None:
                got_usage = True
                ctx.set_usage(usage)
            for choice in chunk.get("choices") or ():
                index = choice.get("index") or 0
                seen.add(index)
                if choice.get("finish_reason"):
                    finished.add(index)
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    pieces.append(delta["content"])
                for call in delta.get("tool_calls") or ():
                    arguments = (call.get("function") or {}).get("arguments")
                    if arguments:
                        pieces.append(arguments)
            return chunk

        try:
            # the chunks are an async generator (aclose); the Chunks alias only says AsyncIterator
            async with aclosing(chunks):  # type: ignore[type-var]
                if first is not None:  # read ahead by ``first_chunk``
                    yield stamp(first)
                async for chunk in chunks:
                    yield stamp(chunk)
            if not finished or len(finished) < len(seen):
                raise unfinished(min(seen - finished, default=None))
        finally:
            ctx.upstream_ended = time.perf_counter()
            if not got_usage:
                self.estimate_usage(ctx, "".join(pieces))

    def estimate_usage(self, ctx: RequestContext, completion: str) -> None:
        """No usage from the upstream: count with the local tokenizer, and say it is an estimate."""
        ctx.prompt_tokens = tokens.count(tokens.prompt_text(ctx.body))
        ctx.completion_tokens = tokens.count(completion)
        ctx.usage_estimated = True

    # --- answering the client ----------------------------------------------------------------

    async def sse(
        self, ctx: RequestContext, chunks: Chunks, route: RoutePipeline, events: StreamEvents | None = None
    ) -> AsyncIterator[bytes]:
        """Encode chunks as SSE in the client's API (``events``; chat's own when None). An error
        mid-stream ends with an error event, never a clean end.

        The row is queued before the last event goes out, as for a non-streamed answer: when the
        client has seen the end of its stream, the request's row is already queued for the log.
        """
        if events is None:
            events = ChatEvents(ctx.client_wants_usage)
        trace = ctx.trace if ctx.trace is not None and ctx.trace.recording else None
        try:
            async for chunk in chunks:
                if trace is not None:  # finish reasons as the client gets them (after the stream stages)
                    trace.answered(chunk)
                data = events.chunk(chunk)
                if data:
                    yield data
            last = events.end()
        except GatewayError as exc:
            self.fail(ctx, exc, http_status=200)
            last = farewell(events, exc, ctx.request_id)
        except Exception as exc:  # noqa: BLE001 - logged with its traceback by internal_error
            err = internal_error(ctx, exc, "while streaming")
            self.fail(ctx, err, http_status=200)
            last = farewell(events, err, ctx.request_id)
        except BaseException:
            ctx.status, ctx.http_status, ctx.error_code = "client_disconnected", 499, "client_disconnected"
            raise
        finally:
            with anyio.CancelScope(shield=True):
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
                self.finish(ctx, route.done_stages)
        yield last

    def set_response_headers(self, ctx: RequestContext) -> None:
        headers = ctx.response_headers
        if ctx.model_name:
            headers["x-llmgw-model"] = ctx.model_name
        decision = ctx.plan.routing if ctx.plan is not None else None
        route = ctx.route_name
        headers["x-llmgw-route"] = decision.header(route, ctx.model_name) if decision is not None else route
        if ctx.meta.get("fallbacks"):
            headers["x-llmgw-route"] += f"; fallbacks={len(ctx.meta['fallbacks'])}"

    @staticmethod
    def fail(ctx: RequestContext, exc: GatewayError, http_status: int | None = None) -> None:
        """Record a failure; ``http_status`` is what the client got when it differs from the error's
        own (a stream's status, 200, is sent before its first chunk)."""
        ctx.status = "content_filtered" if exc.code == "content_filter" else "error"
        ctx.http_status = exc.status if http_status is None else http_status
        ctx.error_code = exc.code
        ctx.error_message = exc.message

    def finish(self, ctx: RequestContext, done_stages: list[Stage]) -> None:
        trace = ctx.trace
        for stage in done_stages:
            try:
                if trace is None:
                    stage.done(ctx)
                else:
                    trace.done_stage(stage.name, stage.done, ctx)
            except Exception:
                log.exception("stage %s failed in done() for %s", stage.name, ctx.request_id)
        if trace is not None:
            trace.end(ctx)


async def first_chunk(chunks: Chunks) -> dict[str, Any] | None:
    """The stream's first chunk (None when it ended at once), read before the client is answered, so
    that an upstream failing after its status line but before its first chunk (the connection cut,
    an error event, a stall) fails inside the failover while the client has not been sent a byte: it
    gets the error's own HTTP status and the next deployment or model is tried, as for an HTTP error
    status. Later failures stay mid-stream. :meth:`Pipeline.observe` yields it first."""
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None
    except BaseException:
        with anyio.CancelScope(shield=True):  # failed or cancelled while waiting: the upstream call still closes
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        raise


def unfinished(index: int | None) -> UpstreamError:
    """The upstream ended its stream without a ``finish_reason`` for a choice (``index``; None: no
    choice at all): the answer may be cut. Failed as the same stream cut before its ``[DONE]`` is (a
    protocol error: an error event or a 502, an error row, nothing cached), not passed as a success."""
    which = "any choice" if index is None else f"choice {index}"
    return UpstreamError(
        UpstreamKind.PROTOCOL, f"upstream stream ended without a finish_reason for {which}: the answer may be cut"
    )


def internal_error(ctx: RequestContext, exc: Exception, where: str = "") -> GatewayError:
    """A bug in llmgw: logged with its traceback, answered as a 500 without the details."""
    log.exception("request %s failed%s", ctx.request_id, f" {where}" if where else "")
    return GatewayError(f"internal error{f' {where}' if where else ''}: {type(exc).__name__}")


class StreamEvents(Protocol):
    """How a stream is written in the client's API: each internal chunk, the clean end, a failure;
    and the failure's error event alone, built from nothing the stream's state holds (``bare_error``,
    see :func:`farewell`)."""

    def chunk(self, chunk: dict[str, Any]) -> bytes: ...
    def end(self) -> bytes: ...
    def error(self, exc: GatewayError, request_id: str) -> bytes: ...
    def bare_error(self, exc: GatewayError, request_id: str) -> bytes: ...


def farewell(events: StreamEvents, exc: GatewayError, request_id: str) -> bytes:
    """A failed stream's last event: ``events.error`` (the API's whole ending: open items closed, the
    final state), or, when that fails too (the bug that broke the rendering may have left its state
    unusable), ``events.bare_error``, the API's error event alone: the client sees the stream end with
    the error, never cut without a word (the row records ``exc`` either way)."""
    try:
        return events.error(exc, request_id)
    except Exception:  # a bug, logged with its traceback
        log.exception("request %s: the stream's error event failed to render; sent bare", request_id)
        return events.bare_error(exc, request_id)


class ChatEvents:
    """Chat Completions' own stream: the chunks as they are, ``[DONE]``, an error object."""

    __slots__ = ("wants_usage",)

    def __init__(self, wants_usage: bool) -> None:
        self.wants_usage = wants_usage

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        if not self.wants_usage and "usage" in chunk:
            if not chunk.get("choices"):
                return b""
            del chunk["usage"]
        return encode_event(chunk)

    def end(self) -> bytes:
        return DONE

    def error(self, exc: GatewayError, request_id: str) -> bytes:
        body = exc.body()
        body["error"]["request_id"] = request_id
        return encode_event(body)

    bare_error = error  # chat's error event holds no state of the stream

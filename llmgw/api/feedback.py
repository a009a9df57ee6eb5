"""``POST /v1/feedback``: attach a score or label to a request, for experiment reports.

Queued like every other row (no database write on the request path). ``request_id`` is the
``x-llmgw-request-id`` header or the completion's ``id`` (``chatcmpl-`` is dropped: one request,
one id stored). An id the gateway never answered, or one answered for another key (unless the
admin key sends it), is 404: nobody can score, or probe for, another tenant's requests.

Feedback often comes right after the answer, before the writer has committed the request's row.
There is no race: a request's id is held in memory (``RowWriter.queued_request``) from the moment
its row is queued until it is committed, so "queued, else in the table" always finds it. With
several replicas on one database, feedback for an answer another replica gave less than
``storage.flush_interval_s`` ago can still be 404 (documented in docs/api.md). When the database
cannot be read, the feedback is accepted unverified (queued like every other row) rather than lost.
With guards on, PII in the free-text comment is masked per the caller's policy before it is
stored.

Anonymous callers (``auth.allow_anonymous``) are all the one identity ``anonymous`` and request ids
are guessable, so the key cannot say which anonymous caller made a request: an anonymous answer
carries a feedback token (``x-llmgw-feedback-token``, see ``stages/auth.py``) and anonymous
feedback must send it back as ``feedback_token``. It is checked against the digest on the request's
row; one that does not match is the same 404 as an unknown id (the answer tells nothing about other
callers' requests). Anonymous feedback is never accepted unverified: with the database away it is
503.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response, post

from llmgw.api.common import client_of, gateway_of, json_response, read_body_as
from llmgw.cache.service import marks_wrong
from llmgw.errors import GatewayError, InvalidRequest, NotFound
from llmgw.keys import KeyInfo
from llmgw.schemas import NoNul
from llmgw.stages.auth import ANONYMOUS_ID, FEEDBACK_TOKEN_HEADER, authenticate, presented_key, token_matches
from llmgw.stages.guarding import policy_of
from llmgw.storage.db import unavailable
from llmgw.storage.models import RequestRow, table

if TYPE_CHECKING:
    from llmgw.gateway import Gateway

log = logging.getLogger("llmgw.feedback")
COMPLETION_PREFIX = "chatcmpl-"


class Feedback(msgspec.Struct, forbid_unknown_fields=True):
    request_id: Annotated[str, NoNul, msgspec.Meta(min_length=1, max_length=60)]
    score: float | None = None
    label: Annotated[str, NoNul, msgspec.Meta(min_length=1, max_length=200)] | None = None
    comment: Annotated[str, NoNul, msgspec.Meta(max_length=2000)] | None = None
    #: anonymous callers only: the answer's ``x-llmgw-feedback-token`` (a keyed caller's key owns its requests)
    feedback_token: Annotated[str, NoNul, msgspec.Meta(min_length=1, max_length=100)] | None = None


def _stored_owner(engine: Any, request_id: str) -> tuple[bool, str | None, str | None]:
    """(found, key id, feedback token digest) of a committed request row (blocking: run in a thread)."""
    from sqlalchemy import select

    requests = table(RequestRow)
    with engine.connect() as conn:
        row = conn.execute(
            select(requests.c.key_id, requests.c.feedback_sha256).where(requests.c.id == request_id)
        ).first()
    return (True, row[0], row[1]) if row else (False, None, None)


async def check_request(gateway: Gateway, request_id: str, key: KeyInfo, token: str | None = None) -> None:
    """404 unless ``request_id`` is a request this key made (any request, for the admin key); for an
    anonymous caller, one whose answer carried ``token``."""
    found, owner, digest = gateway.writer.queued_request(request_id)  # first: it leaves memory only once stored
    if not found:
        try:
            found, owner, digest = await asyncio.to_thread(_stored_owner, gateway.engine, request_id)
        except Exception as exc:
            if key.id == ANONYMOUS_ID:  # only the row can vouch for the token: never taken on trust
                raise unavailable(exc, "POST /v1/feedback") from None
            # the database is away: keep the feedback rather than lose it
            log.warning("cannot check request %s for feedback; accepted unverified", request_id, exc_info=True)
            return
    if key.id == ANONYMOUS_ID:
        if found and owner == ANONYMOUS_ID and token is not None and token_matches(token, digest):
            return
        raise NotFound(
            f"no request {request_id!r} answered with this feedback_token (anonymous feedback sends the token "
            f"its answer carried in {FEEDBACK_TOKEN_HEADER})",
            param="feedback_token",
            code="request_not_found",
        )
    if not found or (owner != key.id and not key.admin):
        raise NotFound(f"no request {request_id!r} made with this key", param="request_id", code="request_not_found")


@post("/v1/feedback", status_code=201)
async def create_feedback(request: Request[Any, Any, Any]) -> Response[bytes]:
    gateway = gateway_of(request)
    key = await authenticate(gateway, dict(request.headers), client_of(request))
    feedback, body = await read_body_as(request, Feedback, "invalid feedback")
    if feedback.score is None and feedback.label is None:
        raise InvalidRequest("give a score, a label, or both", param="score")
    if feedback.score is not None and not math.isfinite(feedback.score):
        raise InvalidRequest("score must be a finite number", param="score")
    request_id = feedback.request_id.removeprefix(COMPLETION_PREFIX)
    try:
        if key.id == ANONYMOUS_ID and feedback.feedback_token is None:
            raise InvalidRequest(
                f"anonymous feedback needs the feedback_token its answer carried in the {FEEDBACK_TOKEN_HEADER} "
                "header (or send the API key that made the request)",
                param="feedback_token",
                code="missing_feedback_token",
            )
        await check_request(gateway, request_id, key, feedback.feedback_token)
    except GatewayError:
        if key.id == ANONYMOUS_ID and presented_key(dict(request.headers)) is not None:
            # a key served as anonymous (allow_anonymous) may be a guess at the admin key, which may
            # score any request: a refusal here (the admin key would have been served) is its failed
            # authentication, counted like any other
            gateway.auth_failures.record(client_of(request))
        raise
    ctx = gateway.new_context("feedback", body, dict(request.headers))
    ctx.key = key
    comment = feedback.comment or None
    if gateway.config.guards.enabled:
        policy = policy_of(gateway, ctx)
        if comment:
            comment = await gateway.guards.mask_stored_text(policy, comment, "comment") or None
        if feedback.label and await gateway.guards.mask_stored_text(policy, feedback.label, "label") != feedback.label:
            # a label is a category experiments group by: masking would rename it, storing it would keep
            # the PII, so it is refused and the text belongs in the comment, which is masked
            raise InvalidRequest(
                "the label holds what looks like personal data; labels are stored as sent, so put it in the "
                "comment, which is masked",
                param="label",
                code="pii_in_label",
            )
    row = {
        "id": "fb_" + secrets.token_hex(8),
        "request_id": request_id,
        "created_at": datetime.now(UTC),
        "key_id": key.id,
        "score": feedback.score,
        "label": feedback.label,
        "comment": comment,
    }
    gateway.writer.put("feedback", row)
    await mark_cached_answer(gateway, feedback, key)
    return json_response({"id": row["id"], "request_id": request_id, "object": "feedback"}, {}, 201)


async def mark_cached_answer(gateway: Gateway, feedback: Feedback, key: Any) -> str | None:
    """Negative feedback on a cache hit marks the hit wrong (only from the key that made the request)."""
    if gateway.cache is None or not marks_wrong(feedback.score, feedback.label):
        return None
    request_id = feedback.request_id.removeprefix("chatcmpl-")  # the completion's id names the request too
    return await gateway.cache.mark_wrong(request_id, key.id, admin=key.admin)

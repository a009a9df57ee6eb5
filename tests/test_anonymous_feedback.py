"""Anonymous callers (``auth.allow_anonymous``) are all the one identity ``anonymous``, and request
ids are time-ordered: the key alone cannot say which of them made a request. An anonymous answer
carries ``x-llmgw-feedback-token``; ``POST /v1/feedback`` from an anonymous caller needs it back
(docs/api.md, "POST /v1/feedback"). Through a real gateway on a port, the openai SDK and httpx.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ADMIN_KEY

ASK = [{"role": "user", "content": "hi"}]
TOKEN = "x-llmgw-feedback-token"


def anonymous_gateway(make_gateway: Any, tmp_path: Path, **auth: Any) -> Any:
    return make_gateway(
        auth={"admin_key": ADMIN_KEY, "allow_anonymous": True, **auth},
        # rows stay queued until flushed: the first checks read the writer's memory, the later ones the table
        storage={"flush_interval_s": 60, "dead_letter_dir": str(tmp_path / "letters")},
    )


def ask(gw: Any, api_key: str = "unused") -> tuple[str, str | None]:
    """One chat answer as an SDK sees it (``unused``: a key that is not an llmgw key, served as anonymous)."""
    raw = gw.client(api_key).chat.completions.with_raw_response.create(model="test-model", messages=ASK)
    return raw.headers["x-llmgw-request-id"], raw.headers.get(TOKEN)


def feedback(gw: Any, request_id: str, token: str | None = None, key: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"request_id": request_id, "score": 0.0}
    if token is not None:
        body["feedback_token"] = token
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{gw.url}/v1/feedback", json=body, headers=headers)


def forged(token: str) -> str:
    return ("0" if token[0] != "0" else "1") + token[1:]


def test_an_anonymous_caller_gives_feedback_only_on_its_own_requests(make_gateway: Any, tmp_path: Path) -> None:
    gw = anonymous_gateway(make_gateway, tmp_path)
    a_id, a_token = ask(gw)
    b_id, b_token = ask(gw)
    assert a_token and b_token and a_token != b_token
    keyed = gw.create_key(name="keyed")
    k_id, k_token = ask(gw, keyed["key"])
    assert k_token is None  # a keyed caller's key owns its requests: nothing new on its answers

    for stage in ("queued", "stored"):
        # A with its own token, on B's request: the same 404 as an unknown id, whether queued or stored
        theft = feedback(gw, b_id, a_token)
        assert theft.status_code == 404, (stage, theft.text)
        assert theft.json()["error"]["code"] == "request_not_found"
        assert TOKEN in theft.json()["error"]["message"]
        for wrong in (forged(b_token), "0" * 32, b_token + "0"):
            refused = feedback(gw, b_id, wrong)
            assert refused.status_code == 404 and refused.json()["error"]["type"] == "invalid_request_error", stage
        missing = feedback(gw, b_id)
        assert missing.status_code == 400, stage
        assert missing.json()["error"] == {
            "message": f"anonymous feedback needs the feedback_token its answer carried in the {TOKEN} header "
            "(or send the API key that made the request)",
            "type": "invalid_request_error", "param": "feedback_token", "code": "missing_feedback_token",
        }  # fmt: skip
        # an anonymous token names an anonymous request only, never a keyed one
        assert feedback(gw, k_id, a_token).status_code == 404
        # each on its own: the header's id or the completion's id, with the token of that answer
        assert feedback(gw, a_id, a_token).status_code == 201, stage
        assert feedback(gw, f"chatcmpl-{b_id}", b_token, key="unused").status_code == 201, stage
        # keyed callers unchanged: their own request with the key alone; an anonymous one is another's
        assert feedback(gw, k_id, key=keyed["key"]).status_code == 201
        assert feedback(gw, a_id, a_token, key=keyed["key"]).status_code == 404
        assert feedback(gw, b_id, key=ADMIN_KEY).status_code == 201  # the admin key scores any request
        if stage == "queued":
            assert gw.gateway.writer.queued_request(a_id)[0]
            gw.flush()
            assert not gw.gateway.writer.queued_request(a_id)[0]

    rows = {r["id"]: r for r in gw.rows()}
    assert rows[a_id]["feedback_sha256"] == hashlib.sha256(a_token.encode()).hexdigest()
    assert rows[k_id]["feedback_sha256"] is None
    # the tokens are nowhere the gateway wrote: neither the database nor the journal or dead letters
    gw.flush()
    written = Path(gw.config.storage.url.removeprefix("sqlite:///")).read_bytes()
    written += b"".join(p.read_bytes() for p in (tmp_path / "letters").rglob("*") if p.is_file())
    db = sqlite3.connect(gw.config.storage.url.removeprefix("sqlite:///"))
    for (table,) in db.execute("select name from sqlite_master where type = 'table'"):
        written += repr(db.execute(f"select * from {table}").fetchall()).encode()
    assert a_token.encode() not in written and b_token.encode() not in written
    stored = db.execute("select request_id, key_id, score from feedback order by created_at").fetchall()
    assert sorted(stored) == sorted(
        [(a_id, "anonymous", 0.0), (b_id, "anonymous", 0.0), (k_id, keyed["id"], 0.0), (b_id, "admin", 0.0)] * 2
    )


def test_streams_embeddings_messages_responses_and_errors_carry_the_token_too(
    make_gateway: Any, tmp_path: Path
) -> None:
    gw = anonymous_gateway(make_gateway, tmp_path)
    client = gw.client("unused")
    with client.chat.completions.with_streaming_response.create(model="test-model", messages=ASK, stream=True) as s:
        streamed = s.headers["x-llmgw-request-id"], s.headers[TOKEN]
        list(s.iter_lines())
    raw = client.embeddings.with_raw_response.create(model="up-embed", input="hello")
    embedded = raw.headers["x-llmgw-request-id"], raw.headers[TOKEN]
    message = httpx.post(
        f"{gw.url}/v1/messages", json={"model": "test-model", "max_tokens": 16, "messages": ASK}, timeout=30
    )
    assert message.status_code == 200, message.text
    answered = message.headers["x-llmgw-request-id"], message.headers[TOKEN]
    response = client.responses.with_raw_response.create(model="test-model", input="hi")
    responded = response.headers["x-llmgw-request-id"], response.headers[TOKEN]
    error = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "no-such-model", "messages": ASK})
    assert error.status_code == 404, error.text  # an error answer has a row, an id and a token too
    failed = error.headers["x-llmgw-request-id"], error.headers[TOKEN]
    for request_id, token in (streamed, embedded, answered, responded, failed):
        assert feedback(gw, request_id, forged(token)).status_code == 404
        assert feedback(gw, request_id, token).status_code == 201


def test_refused_anonymous_feedback_with_a_key_counts_as_a_failed_authentication(
    make_gateway: Any, tmp_path: Path
) -> None:
    """A key served as anonymous may be a guess at the admin key, which needs no token: a refusal for the
    missing token (the admin key would have been served) counts against the client like a wrong key."""
    gw = anonymous_gateway(make_gateway, tmp_path, max_failed_auth_per_minute=3)
    request_id, _ = ask(gw)
    for _ in range(3):
        assert feedback(gw, request_id, key="a-guess-at-the-admin-key").status_code == 400
    limited = feedback(gw, request_id, key="a-guess-at-the-admin-key")
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "too_many_failed_authentications"


def test_anonymous_feedback_is_never_accepted_unverified(make_gateway: Any, tmp_path: Path) -> None:
    """With the database unreadable, a keyed caller's feedback is kept unverified (as before); an
    anonymous caller's token can only be checked against the row, so it is 503, never taken on trust."""
    gw = anonymous_gateway(make_gateway, tmp_path)
    request_id, token = ask(gw)
    keyed = gw.create_key(name="keyed")
    keyed_id, _ = ask(gw, keyed["key"])
    gw.flush()  # committed: only the table knows them now
    path = gw.config.storage.url.removeprefix("sqlite:///")
    gw.gateway.engine.dispose()
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    Path(path).write_bytes(b"this is not a database" * 512)
    down = feedback(gw, request_id, token)
    assert down.status_code == 503 and down.json()["error"]["code"] == "storage_unavailable", down.text
    assert feedback(gw, keyed_id, key=keyed["key"]).status_code == 201

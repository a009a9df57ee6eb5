"""``POST /v1/responses`` (and chat) through a ``responses: native`` upstream, as a fault injector
would: a scripted raw Responses server sends exactly the bytes a test gives it (every event type a
real OpenAI server sends, unknown ones, SSE framing oddities, a 200 that failed, a stream cut), and
a real gateway on a port is asked with the official ``openai`` SDK. Each case must end as a correct
answer or a classified error in OpenAI's Responses shape, with a row that says what happened."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web

from tests.conftest import RunningGateway
from tests.test_pii import MESSAGE, RAW
from tests.upstream import StubServer

GUARDRAILS = str(Path(__file__).resolve().parent.parent / "guardrails")
USAGE = {"input_tokens": 11, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
         "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 16}  # fmt: skip
PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}


def response_obj(text: str = "Hello there", status: str = "completed", **fields: Any) -> dict[str, Any]:
    item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}  # fmt: skip
    return {"id": "resp_1", "object": "response", "created_at": 1700000000, "model": "up-model", "status": status,
            "error": None, "incomplete_details": None, "output": [item] if text else [], "usage": USAGE,
            **fields}  # fmt: skip


def event(kind: str, eol: str = "\n", **fields: Any) -> bytes:
    return f"event: {kind}{eol}data: {json.dumps({'type': kind, **fields})}{eol}{eol}".encode()


def text_stream(
    text: str = "Hello there", end: str = "response.completed", eol: str = "\n", **final: Any
) -> list[bytes]:
    """The events a real OpenAI server sends for a text answer, ``reasoning`` first (its summary events)."""
    rs = {"type": "reasoning", "id": "rs_1", "summary": []}
    msg = {"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress", "content": []}
    out = [
        event("response.created", eol, response=response_obj("", "in_progress", usage=None)),
        event("response.in_progress", eol, response=response_obj("", "in_progress", usage=None)),
        event("response.output_item.added", eol, output_index=0, item=rs),
        event(
            "response.reasoning_summary_part.added",
            eol,
            item_id="rs_1",
            output_index=0,
            summary_index=0,
            part={"type": "summary_text", "text": ""},
        ),
        event(
            "response.reasoning_summary_text.delta",
            eol,
            item_id="rs_1",
            output_index=0,
            summary_index=0,
            delta="Thinking",
        ),
        event(
            "response.reasoning_summary_text.done",
            eol,
            item_id="rs_1",
            output_index=0,
            summary_index=0,
            text="Thinking",
        ),
        event(
            "response.reasoning_summary_part.done",
            eol,
            item_id="rs_1",
            output_index=0,
            summary_index=0,
            part={"type": "summary_text", "text": "Thinking"},
        ),
        event("response.output_item.done", eol, output_index=0, item={**rs, "summary": []}),
        event("response.output_item.added", eol, output_index=1, item=msg),
        event(
            "response.content_part.added",
            eol,
            item_id="msg_1",
            output_index=1,
            content_index=0,
            part={"type": "output_text", "text": "", "annotations": []},
        ),
        event("response.some_future_event", eol, whatever=1),
    ]
    for i in range(0, len(text), 3):
        out.append(event("response.output_text.delta", eol, item_id="msg_1", output_index=1, content_index=0,
                         delta=text[i : i + 3], logprobs=[]))  # fmt: skip
    out += [
        event("response.output_text.done", eol, item_id="msg_1", output_index=1, content_index=0, text=text),
        event(
            "response.content_part.done",
            eol,
            item_id="msg_1",
            output_index=1,
            content_index=0,
            part={"type": "output_text", "text": text, "annotations": []},
        ),
        event("response.output_item.done", eol, output_index=1, item={**msg, "status": "completed"}),
    ]
    if end:
        out.append(event(end, eol, response={**response_obj(text), **final}))
    return out


class RawResponses(StubServer):
    """A Responses upstream that answers each upstream model with what ``plans[model]`` says:
    ``status``, ``headers``, ``body`` (a JSON answer) or ``pieces`` (raw writes of a stream) and
    ``cut`` (close the connection after them instead of ending the body)."""

    thread_name = "raw-responses"

    def __init__(self) -> None:
        super().__init__()
        self.plans: dict[str, dict[str, Any]] = {}
        self.models: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/responses", self.responses)

    async def responses(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.models.append(body["model"])
        plan = self.plans[body["model"]]
        if plan.get("echo"):  # every input item's text, joined: what the upstream was sent, as the answer
            texts = [i["content"] if isinstance(i["content"], str) else " ".join(p["text"] for p in i["content"])
                     for i in body["input"] if i.get("type") == "message"]  # fmt: skip
            text = " | ".join(texts)
            plan = {"pieces": text_stream(text)} if body.get("stream") else {"body": response_obj(text)}
        if "body" in plan:
            return web.json_response(plan["body"], status=plan.get("status", 200), headers=plan.get("headers"))
        headers = {"content-type": "text/event-stream", **plan.get("headers", {})}
        response = web.StreamResponse(status=plan.get("status", 200), headers=headers)
        await response.prepare(request)
        for piece in plan["pieces"]:
            await response.write(piece)
            await response.drain()
        if plan.get("cut"):
            request.transport.close()  # type: ignore[union-attr]
            return response
        await response.write_eof()
        return response


@pytest.fixture(scope="module")
def raw() -> Any:
    server = RawResponses().start()
    yield server
    server.stop()


@pytest.fixture()
def ngw(make_gateway: Any, raw: RawResponses) -> Any:
    """``primary`` (upstream ``up-a``) falling back to ``backup`` (``up-b``), both native."""

    def make(**overrides: Any) -> RunningGateway:
        raw.plans.clear()
        raw.requests.clear()
        raw.models.clear()
        provider = {"type": "openai", "base_url": raw.base_url, "responses": "native", "max_retries": 0,
                    "read_timeout_s": 5}  # fmt: skip
        models = {name: {"provider": "raw", "upstream_id": up, "price": PRICE,
                         "capabilities": ["chat", "streaming", "tools"]}
                  for name, up in (("primary", "up-a"), ("backup", "up-b"))}  # fmt: skip
        routes = {"default": {"default_model": "primary", "selection": {"fallbacks": ["backup"]}}}
        return make_gateway(providers={"raw": provider}, models=models, routes=routes, **overrides)

    return make


def stream(gw: RunningGateway, text: str = "hi", **params: Any) -> list[Any]:
    return list(gw.client(timeout=30).responses.create(model="primary", input=text, stream=True, **params))


def only_row(gw: RunningGateway) -> dict[str, Any]:
    deadline = time.monotonic() + 30  # a bound: returns once the row is written
    while True:
        rows = gw.rows()
        if rows or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    [row] = rows
    return row


def assert_ok_stream(evts: list[Any], text: str) -> None:
    kinds = [e.type for e in evts]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
    assert "".join(e.delta for e in evts if e.type == "response.output_text.delta") == text
    assert evts[-1].response.output_text == text


# --- every event type a real server sends, framing oddities --------------------------------------


@pytest.mark.parametrize("framing", ["lf", "crlf", "split", "comments", "no-final-blank-line"])
def test_a_full_openai_event_stream_is_an_answer_whatever_its_framing(
    ngw: Any, raw: RawResponses, framing: str
) -> None:
    """Reasoning summary events, content parts, an unknown event type: the text and the usage come
    through; CRLF line ends, writes split mid-line, comment keep-alives and a body whose last event
    has no closing blank line read the same."""
    pieces = text_stream(eol="\r\n" if framing == "crlf" else "\n")
    if framing == "split":
        blob = b"".join(pieces)
        pieces = [blob[i : i + 7] for i in range(0, len(blob), 7)]
    elif framing == "comments":
        pieces = [p for piece in pieces for p in (b": keep-alive\n\n", piece)]
    elif framing == "no-final-blank-line":
        pieces[-1] = pieces[-1].rstrip(b"\n")
    gw = ngw()
    raw.plans["up-a"] = {"pieces": pieces}
    evts = stream(gw)
    assert_ok_stream(evts, "Hello there")
    assert evts[-1].response.usage.input_tokens == 11 and evts[-1].response.usage.output_tokens == 5
    row = only_row(gw)
    assert (row["status"], row["prompt_tokens"], row["completion_tokens"]) == ("ok", 11, 5), row
    assert raw.models == ["up-a"]


def test_a_full_openai_event_stream_reaches_a_chat_client(ngw: Any, raw: RawResponses) -> None:
    gw = ngw()
    raw.plans["up-a"] = {"pieces": text_stream()}
    chunks = list(gw.client().chat.completions.create(model="primary", messages=[{"role": "user", "content": "hi"}],
                                                      stream=True, stream_options={"include_usage": True}))  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello there"
    assert chunks[-1].usage.prompt_tokens == 11


def test_a_streamed_function_call_with_argument_done_events(ngw: Any, raw: RawResponses) -> None:
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "get_weather", "arguments": "",
            "status": "in_progress"}  # fmt: skip
    args = '{"city":"Paris"}'
    final = response_obj("", output=[{**item, "arguments": args, "status": "completed"}])
    pieces = [
        event("response.created", response=response_obj("", "in_progress", usage=None)),
        event("response.output_item.added", output_index=0, item=item),
        event("response.function_call_arguments.delta", item_id="fc_1", output_index=0, delta=args[:6]),
        event("response.function_call_arguments.delta", item_id="fc_1", output_index=0, delta=args[6:]),
        event("response.function_call_arguments.done", item_id="fc_1", output_index=0, arguments=args),
        event("response.output_item.done", output_index=0, item={**item, "arguments": args, "status": "completed"}),
        event("response.completed", response=final),
    ]
    gw = ngw()
    raw.plans["up-a"] = {"pieces": pieces}
    evts = stream(gw, "weather?", tools=[{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}])
    assert evts[-1].type == "response.completed"
    [call] = evts[-1].response.output
    assert call.type == "function_call" and call.call_id == "call_9" and call.arguments == args


def test_a_streamed_refusal(ngw: Any, raw: RawResponses) -> None:
    pieces = [
        event("response.created", response=response_obj("", "in_progress", usage=None)),
        event(
            "response.output_item.added",
            output_index=0,
            item={"type": "message", "id": "m", "role": "assistant", "status": "in_progress", "content": []},
        ),
        event(
            "response.content_part.added",
            item_id="m",
            output_index=0,
            content_index=0,
            part={"type": "refusal", "refusal": ""},
        ),
        event("response.refusal.delta", item_id="m", output_index=0, content_index=0, delta="I can't "),
        event("response.refusal.delta", item_id="m", output_index=0, content_index=0, delta="help."),
        event("response.refusal.done", item_id="m", output_index=0, content_index=0, refusal="I can't help."),
        event("response.completed", response=response_obj("")),
    ]
    gw = ngw()
    raw.plans["up-a"] = {"pieces": pieces}
    evts = stream(gw)
    assert evts[-1].type == "response.completed"
    assert evts[-1].response.output[0].content[0].refusal == "I can't help."


def test_a_streamed_incomplete_answer_ends_incomplete(ngw: Any, raw: RawResponses) -> None:
    gw = ngw()
    raw.plans["up-a"] = {"pieces": text_stream(end="response.incomplete", status="incomplete",
                                               incomplete_details={"reason": "max_output_tokens"})}  # fmt: skip
    evts = stream(gw)
    assert evts[-1].type == "response.incomplete"
    assert evts[-1].response.incomplete_details.reason == "max_output_tokens"
    assert only_row(gw)["status"] == "ok"


@pytest.mark.parametrize("usage", ["missing", "null"])
def test_a_stream_without_usage_is_estimated(ngw: Any, raw: RawResponses, usage: str) -> None:
    pieces = text_stream()
    final = response_obj()
    if usage == "missing":
        del final["usage"]
    else:
        final["usage"] = None
    pieces[-1] = event("response.completed", response=final)
    gw = ngw()
    raw.plans["up-a"] = {"pieces": pieces}
    evts = stream(gw)
    assert_ok_stream(evts, "Hello there")
    row = only_row(gw)
    assert row["status"] == "ok" and row["usage_estimated"] is True and row["completion_tokens"] > 0, row


@pytest.mark.parametrize("usage", ["missing", "null"])
def test_an_answer_without_usage_is_estimated(ngw: Any, raw: RawResponses, usage: str) -> None:
    body = response_obj()
    if usage == "missing":
        del body["usage"]
    else:
        body["usage"] = None
    gw = ngw()
    raw.plans["up-a"] = {"body": body}
    answer = gw.client().responses.create(model="primary", input="hi")
    assert answer.output_text == "Hello there" and answer.status == "completed"
    row = only_row(gw)
    assert row["status"] == "ok" and row["usage_estimated"] is True and row["completion_tokens"] > 0, row


# --- failures ------------------------------------------------------------------------------------


FAILED = {"code": "server_error", "message": "The model failed to generate a response."}


def test_a_200_answer_that_failed_is_an_error_and_falls_back(ngw: Any, raw: RawResponses) -> None:
    """A 200 body with ``status: "failed"`` and an ``error`` is the upstream's failure, not an empty
    answer: the fallback model answers, and the row says so."""
    gw = ngw()
    raw.plans["up-a"] = {"body": response_obj("", "failed", error=FAILED, usage=None)}
    raw.plans["up-b"] = {"body": response_obj("From the backup")}
    answer = gw.client().responses.create(model="primary", input="hi")
    assert answer.output_text == "From the backup"
    assert raw.models == ["up-a", "up-b"]
    row = only_row(gw)
    assert row["status"] == "ok" and row["model_used"] == "backup", row


def test_a_200_answer_that_failed_without_a_fallback_is_a_classified_error(ngw: Any, raw: RawResponses) -> None:
    gw = ngw()
    raw.plans["up-a"] = {"body": response_obj("", "failed", error=FAILED, usage=None)}
    raw.plans["up-b"] = {"body": response_obj("", "failed", error=FAILED, usage=None)}
    with pytest.raises(openai.APIStatusError) as info:
        gw.client().responses.create(model="primary", input="hi")
    assert info.value.status_code == 502 and "failed to generate" in info.value.message
    row = only_row(gw)
    assert row["status"] == "error" and row["error_code"] == "upstream_server_error", row


def test_a_200_answer_that_is_incomplete_is_incomplete(ngw: Any, raw: RawResponses) -> None:
    gw = ngw()
    raw.plans["up-a"] = {"body": response_obj("Hello th", "incomplete",
                                              incomplete_details={"reason": "max_output_tokens"})}  # fmt: skip
    answer = gw.client().responses.create(model="primary", input="hi")
    assert answer.status == "incomplete" and answer.incomplete_details.reason == "max_output_tokens"
    assert answer.output_text == "Hello th"


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "stream"])
def test_429_and_503_fall_back_to_the_second_deployment(
    ngw: Any, raw: RawResponses, status: int, streamed: bool
) -> None:
    gw = ngw()
    err = {"error": {"message": "slow down", "type": "rate_limit_error" if status == 429 else "server_error",
                     "code": None, "param": None}}  # fmt: skip
    raw.plans["up-a"] = {"status": status, "headers": {"retry-after": "0"}, "body": err}
    raw.plans["up-b"] = (
        {"pieces": text_stream("From the backup")} if streamed else {"body": response_obj("From the backup")}
    )
    if streamed:
        assert_ok_stream(stream(gw), "From the backup")
    else:
        assert gw.client().responses.create(model="primary", input="hi").output_text == "From the backup"
    assert raw.models == ["up-a", "up-b"]
    row = only_row(gw)
    assert row["status"] == "ok" and row["model_used"] == "backup", row


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "stream"])
def test_429_everywhere_is_a_429_with_retry_after(ngw: Any, raw: RawResponses, streamed: bool) -> None:
    gw = ngw()
    err = {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded", "param": None}}
    raw.plans["up-a"] = raw.plans["up-b"] = {"status": 429, "headers": {"retry-after": "7"}, "body": err}
    with pytest.raises(openai.RateLimitError) as info:
        gw.client().responses.create(model="primary", input="hi", stream=streamed)
    assert info.value.body["code"] == "upstream_rate_limited", info.value.body
    assert info.value.response.headers.get("retry-after") == "7"
    row = only_row(gw)
    assert row["status"] == "error" and row["http_status"] == 429, row


@pytest.mark.parametrize("kind", ["error-event", "response.failed"])
def test_a_stream_that_fails_before_any_text_falls_back(ngw: Any, raw: RawResponses, kind: str) -> None:
    created = event("response.created", response=response_obj("", "in_progress", usage=None))
    if kind == "error-event":
        failure = event("error", code="server_error", message="overloaded", param=None)
    else:
        failure = event("response.failed", response=response_obj("", "failed", error=FAILED, usage=None))
    gw = ngw()
    raw.plans["up-a"] = {"pieces": [created, failure]}
    raw.plans["up-b"] = {"pieces": text_stream("From the backup")}
    assert_ok_stream(stream(gw), "From the backup")
    assert raw.models == ["up-a", "up-b"]
    assert only_row(gw)["model_used"] == "backup"


def assert_failed(evts: list[Any]) -> Any:
    kinds = [e.type for e in evts]
    assert "response.completed" not in kinds and kinds[-2:] == ["error", "response.failed"], kinds
    return evts[-2]


@pytest.mark.parametrize("how", ["cut", "eof-without-terminal", "error-event", "response.failed"])
def test_a_stream_that_breaks_after_text_ends_failed(ngw: Any, raw: RawResponses, how: str) -> None:
    pieces = text_stream(end="")
    plan: dict[str, Any] = {"pieces": pieces}
    if how == "cut":
        plan["cut"] = True
    elif how == "error-event":
        pieces.append(event("error", code="server_error", message="the model broke", param=None))
    elif how == "response.failed":
        pieces.append(event("response.failed", response=response_obj("", "failed", error=FAILED, usage=None)))
    gw = ngw()
    raw.plans["up-a"] = plan
    raw.plans["up-b"] = {"pieces": text_stream("From the backup")}
    evts = stream(gw)
    err = assert_failed(evts)
    assert "".join(e.delta for e in evts if e.type == "response.output_text.delta") == "Hello there"
    expected = "upstream_protocol_error" if how in ("cut", "eof-without-terminal") else "upstream_server_error"
    assert err.code == expected
    assert raw.models == ["up-a"]
    row = only_row(gw)
    assert (row["status"], row["error_code"]) == ("error", expected), row
    assert row["completion_tokens"] > 0


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "stream"])
def test_malformed_items_are_a_protocol_error_not_a_500(ngw: Any, raw: RawResponses, streamed: bool) -> None:
    gw = ngw()
    bad = response_obj()
    bad["output"][0]["content"] = ["just a string"]
    if streamed:
        pieces = [*text_stream(end=""), event("response.output_item.added", output_index=2, item="oops"),
                  event("response.completed", response=bad)]  # fmt: skip
        raw.plans["up-a"] = {"pieces": pieces}
        evts = stream(gw)
        assert assert_failed(evts).code == "upstream_protocol_error"
    else:
        raw.plans["up-a"] = raw.plans["up-b"] = {"body": bad}
        with pytest.raises(openai.APIStatusError) as info:
            gw.client().responses.create(model="primary", input="hi")
        assert info.value.status_code == 502 and info.value.body["code"] == "upstream_protocol_error"
    assert only_row(gw)["error_code"] == "upstream_protocol_error"


# --- guards --------------------------------------------------------------------------------------


@pytest.fixture()
def shipped(ngw: Any) -> Any:
    """The gateway with the shipped guard policy (guardrails/default.yaml)."""
    return lambda: ngw(guards={"enabled": True, "policy_dir": GUARDRAILS, "hash_salt": "s"})


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "stream"])
def test_pii_is_masked_in_input_items_and_instructions_and_restored(shipped: Any, raw: RawResponses,
                                                                    streamed: bool) -> None:  # fmt: skip
    gw = shipped()
    raw.plans["up-a"] = {"echo": True}
    instructions = f"The customer is {RAW['PERSON']}, reachable at {RAW['EMAIL_ADDRESS']}."
    items = [{"role": "user", "content": [{"type": "input_text", "text": MESSAGE}]},
             {"role": "assistant", "content": "Noted."},
             {"role": "user", "content": f"Email {RAW['EMAIL_ADDRESS']}"}]  # fmt: skip
    params: dict[str, Any] = {"model": "primary", "input": items, "instructions": instructions}
    if streamed:
        evts = list(gw.client().responses.create(stream=True, **params))
        assert evts[-1].type == "response.completed", [e.type for e in evts]
        text = "".join(e.delta for e in evts if e.type == "response.output_text.delta")
        assert evts[-1].response.output_text == text
    else:
        text = gw.client().responses.create(**params).output_text
    sent = json.dumps(raw.requests)
    for kind in ("PERSON", "EMAIL_ADDRESS", "US_SSN", "CREDIT_CARD"):
        assert RAW[kind] not in sent, kind
        assert RAW[kind] in text, kind  # restored in the answer
    assert text.startswith(instructions)
    assert only_row(gw)["status"] == "ok"


@pytest.mark.parametrize("how", ["plain", "stream", "stream-without-deltas"])
def test_a_secret_in_the_answer_is_stopped_before_any_of_it_leaves(shipped: Any, raw: RawResponses,
                                                                   how: str) -> None:  # fmt: skip
    """Also when the server sent the text only in its final response (taken from there, guarded)."""
    from tests.test_guards_e2e import SECRET, WITH_SECRET

    gw = shipped()
    streamed = how != "plain"
    pieces = [p for p in text_stream(WITH_SECRET) if how == "stream" or b"output_text.delta" not in p]
    raw.plans["up-a"] = {"pieces": pieces} if streamed else {"body": response_obj(WITH_SECRET)}
    if streamed:
        evts = stream(gw, "tell me the key")
        kinds = [e.type for e in evts]
        assert "response.completed" not in kinds and kinds[-1] == "response.incomplete", kinds
        assert evts[-1].response.incomplete_details.reason == "content_filter"
        assert "sk-" not in json.dumps([e.model_dump() for e in evts])
    else:
        answer = gw.client().responses.create(model="primary", input="tell me the key")  # 200, text withheld
        assert SECRET not in answer.model_dump_json() and "sk-" not in answer.model_dump_json()
        assert answer.status == "incomplete" and answer.incomplete_details.reason == "content_filter"
    row = only_row(gw)
    assert row["meta"]["content_filter"] == "secret", row


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "stream"])
def test_a_rate_limit_reported_in_a_200_is_a_rate_limit(ngw: Any, raw: RawResponses, streamed: bool) -> None:
    """``rate_limit_exceeded`` in a failed response (or a nested ``error`` event, as some servers send
    it) is ``upstream_rate_limited`` (429) with the upstream's message, not an empty answer."""
    error = {"code": "rate_limit_exceeded", "message": "Rate limit reached for requests"}
    gw = ngw()
    if streamed:
        created = event("response.created", response=response_obj("", "in_progress", usage=None))
        raw.plans["up-a"] = {"pieces": [created, event("error", error=error)]}
        failed = event("response.failed", response=response_obj("", "failed", error=error))
        raw.plans["up-b"] = {"pieces": [created, failed]}
    else:
        raw.plans["up-a"] = raw.plans["up-b"] = {"body": response_obj("", "failed", error=error, usage=None)}
    with pytest.raises(openai.RateLimitError) as info:
        gw.client().responses.create(model="primary", input="hi", stream=streamed)
    assert info.value.body["code"] == "upstream_rate_limited" and "Rate limit reached" in info.value.message
    assert raw.models == ["up-a", "up-b"]
    row = only_row(gw)
    assert (row["status"], row["error_code"], row["http_status"]) == ("error", "upstream_rate_limited", 429), row


# --- what a server did not stream as deltas -------------------------------------------------------


WEATHER = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]


@pytest.mark.parametrize("how", ["done-events-only", "final-response-only"])
def test_text_never_sent_as_deltas_is_not_lost(ngw: Any, raw: RawResponses, how: str) -> None:
    """A server that sends the text only in its ``.done`` events and final response (or only in the
    final response): the client gets the text, never an empty ``completed`` answer."""
    pieces = [p for p in text_stream() if b"output_text.delta" not in p]
    if how == "final-response-only":
        pieces = [pieces[0], pieces[-1]]
    gw = ngw()
    raw.plans["up-a"] = {"pieces": pieces}
    assert_ok_stream(stream(gw), "Hello there")
    chunks = list(gw.client().chat.completions.create(model="primary", messages=[{"role": "user", "content": "hi"}],
                                                      stream=True))  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello there"


@pytest.mark.parametrize("how", ["args-in-added-item", "args-only-in-done", "final-response-only"])
def test_function_call_arguments_never_sent_as_deltas_are_not_lost(ngw: Any, raw: RawResponses, how: str) -> None:
    args = '{"city":"Paris"}'
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "get_weather", "arguments": args,
            "status": "completed"}  # fmt: skip
    added = item if how == "args-in-added-item" else {**item, "arguments": "", "status": "in_progress"}
    pieces = [event("response.created", response=response_obj("", "in_progress", usage=None))]
    if how != "final-response-only":
        pieces += [event("response.output_item.added", output_index=0, item=added),
                   event("response.function_call_arguments.done", item_id="fc_1", output_index=0, arguments=args),
                   event("response.output_item.done", output_index=0, item=item)]  # fmt: skip
    pieces.append(event("response.completed", response=response_obj("", output=[item])))
    gw = ngw()
    raw.plans["up-a"] = {"pieces": pieces}
    evts = stream(gw, "weather?", tools=WEATHER)
    assert evts[-1].type == "response.completed"
    [call] = evts[-1].response.output
    assert call.type == "function_call" and call.call_id == "call_9" and call.arguments == args
    chunks = list(gw.client().chat.completions.create(
        model="primary", messages=[{"role": "user", "content": "weather?"}], stream=True,
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    ))  # fmt: skip
    calls = [c for chunk in chunks if chunk.choices for c in chunk.choices[0].delta.tool_calls or ()]
    assert "".join(c.function.arguments or "" for c in calls) == args
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_streamed_deltas_are_not_sent_twice(ngw: Any, raw: RawResponses) -> None:
    """The final response repeats what the deltas carried: nothing of it is added again."""
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "get_weather", "arguments": "{}",
            "status": "completed"}  # fmt: skip
    pieces = text_stream(end="")
    pieces += [
        event("response.output_item.added", output_index=2, item={**item, "arguments": ""}),
        event("response.function_call_arguments.delta", item_id="fc_1", output_index=2, delta="{}"),
        event("response.completed", response=response_obj(output=[*response_obj()["output"], item])),
    ]
    gw = ngw()
    raw.plans["up-a"] = {"pieces": pieces}
    evts = stream(gw, "weather?", tools=WEATHER)
    assert "".join(e.delta for e in evts if e.type == "response.output_text.delta") == "Hello there"
    assert [o.type for o in evts[-1].response.output] == ["message", "function_call"]
    assert evts[-1].response.output[1].arguments == "{}"


@pytest.mark.parametrize("status", ["in_progress", "queued", "cancelled"])
def test_a_200_answer_that_is_not_finished_is_an_error_not_an_empty_answer(
    ngw: Any, raw: RawResponses, status: str
) -> None:
    gw = ngw()
    raw.plans["up-a"] = {"body": response_obj("", status, usage=None)}
    raw.plans["up-b"] = {"body": response_obj("From the backup")}
    assert gw.client().responses.create(model="primary", input="hi").output_text == "From the backup"
    assert raw.models == ["up-a", "up-b"]
    assert only_row(gw)["model_used"] == "backup"


@pytest.mark.parametrize("answer", ["error", "failed", "whole-response"])
def test_a_json_answer_to_a_stream_request(ngw: Any, raw: RawResponses, answer: str) -> None:
    """An upstream (or a proxy before it) that answers a stream request with a 200 JSON body: its
    error is the upstream's error with its message, fallen back from; a whole response is the answer."""
    gw = ngw()
    if answer == "whole-response":
        raw.plans["up-a"] = {"body": response_obj("All at once")}
        assert_ok_stream(stream(gw), "All at once")
        assert raw.models == ["up-a"] and only_row(gw)["completion_tokens"] == 5
        return
    body = {"error": {"message": "quota exceeded for this project", "type": "insufficient_quota"}}
    raw.plans["up-a"] = {"body": body if answer == "error" else response_obj("", "failed", error=FAILED)}
    raw.plans["up-b"] = {"body": body if answer == "error" else response_obj("", "failed", error=FAILED)}
    with pytest.raises(openai.APIStatusError) as info:
        stream(gw)
    assert info.value.status_code == 502 and info.value.body["code"] == "upstream_server_error"
    assert ("quota exceeded" if answer == "error" else "failed to generate") in info.value.message
    assert raw.models == ["up-a", "up-b"]
    row = only_row(gw)
    assert (row["status"], row["error_code"]) == ("error", "upstream_server_error"), row

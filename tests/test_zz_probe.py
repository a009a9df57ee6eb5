from __future__ import annotations
import json, httpx, openai
from tests.conftest import RunningGateway, ADMIN_KEY
from tests.upstream import FakeUpstream

def test_probe(gw: RunningGateway, upstream: FakeUpstream) -> None:
    c = gw.client()
    cases = {
        "no input": dict(model="test-model"),
        "empty list": dict(model="test-model", input=[]),
        "web_search": dict(model="test-model", input="x", tools=[{"type": "web_search"}]),
        "tc hosted": dict(model="test-model", input="x", tools=[{"type":"function","name":"f"}], tool_choice={"type": "web_search_preview"}),
        "metadata int": dict(model="test-model", input="x", metadata={"a": 1}),
        "fco image": dict(model="test-model", input=[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"http://x"}]}]),
        "temp 3": dict(model="test-model", input="x", temperature=3),
        "bad model": dict(model="nope", input="x"),
        "bad model stream": dict(model="nope", input="x", stream=True),
        "schema no name": dict(model="test-model", input="x", text={"format":{"type":"json_schema","schema":{}}}),
        "tools str": dict(model="test-model", input="x", tools=["f"]),
        "input int": dict(model="test-model", input=5),
        "content none": dict(model="test-model", input=[{"role":"user"}]),
        "part str": dict(model="test-model", input=[{"role":"user","content":["hi"]}]),
        "tool_choice fn no tools": dict(model="test-model", input="x", tool_choice={"type":"function","name":"f"}),
        "text fmt str": dict(model="test-model", input="x", text={"format":"json"}),
        "reasoning str": dict(model="test-model", input="x", reasoning="high"),
        "allowed_tools bad": dict(model="test-model", input="x", tool_choice={"type":"allowed_tools","tools":"x"}),
        "include": dict(model="test-model", input="x", include=["reasoning.encrypted_content"], store=True, truncation="auto"),
        "mcp": dict(model="test-model", input="x", tools=[{"type":"mcp","server_label":"a"}]),
        "custom tool": dict(model="test-model", input="x", tools=[{"type":"custom","name":"a"}]),
    }
    for name, kw in cases.items():
        r = httpx.post(gw.url + "/v1/responses", json=kw, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)
        print(name, r.status_code, r.text[:300].replace("\n"," | "))
    # SDK round trip input += output
    r1 = c.responses.create(model="test-model", input="weather #tool", tools=[{"type":"function","name":"get_weather","parameters":{"type":"object"}}])
    inp = [{"role":"user","content":"weather #tool"}, *r1.output, {"type":"function_call_output","call_id":r1.output[0].call_id,"output":"sunny"}]
    r2 = c.responses.create(model="test-model", input=inp)
    print("roundtrip", r2.output_text, upstream.requests[-1]["messages"])
    try:
        c.responses.create(model="nope", input="x")
    except openai.APIStatusError as e:
        print("exc", type(e).__name__, e.body)
    # two streamed calls parallel? streamed tool
    ev = list(c.responses.create(model="test-model", input="x #tool", stream=True, tools=[{"type":"function","name":"get_weather"}]))
    print([e.type for e in ev]); print(ev[-1].response.output)

"""docs/prompts.md, audited against a real gateway: what tests/test_templates.py did not run yet.

Addressing (annotated tags, a label naming a full ref, a label as ``default_ref``), what a missing
version or template answers, a broken new commit beside a pinned good one, variable values as data
(never template code), the variable checks' ``param``, the refresh contract, the request row, the
experiment split over 400 requests through the gateway, and ``llmgw prompts`` on bad input.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from llmgw.cli import main
from llmgw.gateway import Gateway
from llmgw.templates.store import PromptStore
from tests.conftest import ADMIN_KEY, PromptRepo, RunningGateway
from tests.upstream import FakeUpstream

HELLO = 'variables:\n  name: {{type: string, example: Ada}}\nmessages:\n  - {{role: system, content: "{text}"}}\n'


def ask(gw: RunningGateway, prompt: Any, content: str = "hi", **kwargs: Any) -> Any:
    return gw.client().chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": content}], extra_body={"llmgw": {"prompt": prompt}},
        **kwargs,
    )  # fmt: skip


def refusal(gw: RunningGateway, prompt: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """The status and OpenAI error object of a request that must fail."""
    with pytest.raises(openai.APIStatusError) as info:
        ask(gw, prompt, **kwargs)
    return info.value.status_code, info.value.response.json()["error"]


def system_sent(upstream: FakeUpstream) -> str:
    return upstream.requests[-1]["messages"][0]["content"]  # type: ignore[no-any-return]


def served(raw: Any) -> str:
    """The commit the ``x-llmgw-prompt`` header names."""
    return raw.headers["x-llmgw-prompt"].rsplit("@", 1)[1]  # type: ignore[no-any-return]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> float:  # a bound: returns when it holds
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
    return time.monotonic() - start


# --- 1. addressing a version -------------------------------------------------------------------


def test_annotated_tags_full_ref_labels_and_a_label_as_default_ref(  # type: ignore[no-untyped-def]
    make_gateway, repo: PromptRepo, upstream: FakeUpstream
) -> None:
    """docs/prompts.md promotes with tags (``git tag -a`` is how many teams tag), maps a label to a
    full ref (``production: refs/tags/prompts-production``), and ``default_ref`` may be a label."""
    repo.greeter("v1 {{ name }}")
    v1 = repo.commit()
    repo.git("tag", "-a", "v1", "-m", "release one", v1)  # an annotated tag: its own object, peeled to v1
    repo.git("tag", "-a", "prompts-production", "-m", "promote", v1)
    repo.greeter("v2 {{ name }}")
    v2 = repo.commit()
    repo.git("branch", "staging-branch", v2)
    templates = {"enabled": True, "repo": str(repo.root), "refresh_s": 0.05, "default_ref": "production",
                 "labels": {"production": "refs/tags/prompts-production"}}  # fmt: skip
    gw = make_gateway(templates=templates)
    cases = [("greeter", v1), ("greeter@v1", v1), ("greeter@production", v1),
             ("greeter@staging-branch", v2), (f"greeter@{v2[:7]}", v2), ("greeter@HEAD", v2)]  # fmt: skip
    for address, commit in cases:
        raw = ask(gw, {"id": address, "variables": {"name": "A"}})
        assert served(raw) == commit, address
        assert system_sent(upstream) == ("v1 A" if commit == v1 else "v2 A"), address
    row = next(r for r in gw.rows() if r["prompt_commit"] == v1 and r["meta"]["prompt"]["version"] == "production")
    assert row["prompt_id"] == "greeter"


@pytest.mark.parametrize(
    ("version", "code"),
    [
        ("deadbeef" * 5, "prompt_version_not_found"),  # a full commit id of no commit here
        ("deadbee", "prompt_version_not_found"),  # a short one
        ("no-such-branch", "prompt_version_not_found"),
        ("--all", "prompt_version_not_found"),  # not an option of git
        ("HEAD:prompts", "prompt_version_not_found"),  # a tree, not a commit
        ("old", "prompt_not_found"),  # the tag exists, the template did not yet
    ],
)
def test_a_missing_version_or_template_is_404_naming_it(tgw, repo: PromptRepo, version: str, code: str) -> None:  # type: ignore[no-untyped-def]
    repo.write("other.yaml", "messages:\n  - {role: system, content: other}\n")
    repo.tag("old", repo.commit())
    repo.greeter("hello {{ name }}")
    repo.commit()
    gw = tgw()
    status, error = refusal(gw, {"id": f"greeter@{version}", "variables": {"name": "A"}})
    assert (status, error["type"], error["code"]) == (404, "invalid_request_error", code), error
    named = "greeter" if code == "prompt_not_found" else version
    assert repr(named) in error["message"], error
    status, error = refusal(gw, {"id": "no/such/template", "variables": {}})
    assert (status, error["code"]) == (404, "prompt_not_found") and "'no/such/template'" in error["message"]


# --- 4. new commits while the gateway runs -----------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ('messages:\n  - {role: system, content: "{% if %}"}\n', "syntax error"),
        ("messages: [unclosed\n", "invalid YAML"),
        ('messages:\n  - {role: system, content: "{{ nope }}"}\n', "'nope' is undefined"),
        ('messages:\n  - {role: system, content: "{% include \\"partials/gone.j2\\" %}"}\n', "partials/gone.j2"),
        ("messages: []\n", "messages"),
        ('messages:\n  - {role: robot, content: "x"}\n', "role"),
    ],
)
def test_a_broken_new_commit_does_not_take_down_the_pinned_good_version(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, upstream: FakeUpstream, broken: str, problem: str
) -> None:
    repo.greeter("good {{ name }}")
    good = repo.commit()
    repo.tag("release", good)  # production
    gw = tgw()
    assert served(ask(gw, {"id": "greeter", "variables": {"name": "A"}})) == good
    repo.write("greeter.yaml", broken)
    bad = repo.commit()
    wait_for(lambda: gw.gateway.prompts.refs.lookup("HEAD") == bad)
    status, error = refusal(gw, {"id": "greeter", "variables": {}})  # the broken files declare no variable
    assert (status, error["type"], error["code"]) == (500, "server_error", "template_error"), error
    assert "greeter" in error["message"] and problem in error["message"], error
    for pinned in ("greeter@production", f"greeter@{good}", f"greeter@{good[:9]}"):
        raw = ask(gw, {"id": pinned, "variables": {"name": "A"}})
        assert served(raw) == good and system_sent(upstream) == "good A", pinned


def test_a_new_commit_is_addressable_at_once_and_the_default_moves_only_on_refresh(  # type: ignore[no-untyped-def]
    make_gateway, repo: PromptRepo, upstream: FakeUpstream
) -> None:
    """Refs are re-read every ``refresh_s``, never per request; a commit id needs no refresh."""
    repo.greeter("one {{ name }}")
    first = repo.commit()
    gw = make_gateway(templates={"enabled": True, "repo": str(repo.root), "refresh_s": 600})
    assert served(ask(gw, {"id": "greeter", "variables": {"name": "A"}})) == first
    repo.greeter("two {{ name }}")
    second = repo.commit()
    for address in (f"greeter@{second}", f"greeter@{second[:10]}"):
        assert served(ask(gw, {"id": address, "variables": {"name": "A"}})) == second, address
        assert system_sent(upstream) == "two A"
    for _ in range(3):  # HEAD moved, but the snapshot is 600 s young: the default is still the first commit
        assert served(ask(gw, {"id": "greeter", "variables": {"name": "A"}})) == first


def test_new_commits_are_live_within_refresh_s(make_gateway, repo: PromptRepo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The refs are re-read every ``templates.refresh_s`` (the interval the gateway's refresh loop is
    given), and a new commit is served once a refresh that began after it has completed. Counted in
    refreshes, not timed: a bound of refresh_s + 1.2 s on the commit going live raced git and the
    scheduling of a busy machine."""
    intervals: dict[str, float] = {}
    every = Gateway._every

    def spied(interval: float, refresh: Callable[[], None], what: str) -> Any:
        intervals[what] = interval
        return every(interval, refresh, what)

    monkeypatch.setattr(Gateway, "_every", staticmethod(spied))
    refreshes = [0]
    refresh = PromptStore.refresh

    def counted(self: PromptStore) -> None:
        refresh(self)
        refreshes[0] += 1

    monkeypatch.setattr(PromptStore, "refresh", counted)
    repo.greeter("one {{ name }}")
    repo.commit()
    gw = make_gateway(templates={"enabled": True, "repo": str(repo.root), "refresh_s": 0.3})
    assert intervals["prompt refs"] == 0.3
    ask(gw, {"id": "greeter", "variables": {"name": "A"}})
    for k in range(3):
        repo.greeter(f"next{k} {{{{ name }}}}")
        commit = repo.commit()
        after = refreshes[0]

        def refreshed(after: int = after) -> bool:  # the second refresh began after the commit, and is done
            return refreshes[0] >= after + 2

        wait_for(refreshed)
        assert served(ask(gw, {"id": "greeter", "variables": {"name": "A"}})) == commit


def test_a_repository_that_cannot_be_read_for_a_while_keeps_the_versions_in_memory(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """A deploy replacing the prompts checkout (or any git failure) must not forget every label:
    the refresh keeps the refs it last read and says why, as ``Gateway._every`` promises."""
    repo.greeter("good {{ name }}")
    good = repo.commit()
    repo.tag("release", good)
    gw = tgw()
    for address in ("greeter", "greeter@production", "greeter@main"):
        assert served(ask(gw, {"id": address, "variables": {"name": "A"}})) == good  # compiled, in memory
    moved = repo.root.with_name("moved-away")
    with caplog.at_level(logging.WARNING, logger="llmgw"):
        repo.root.rename(moved)
        try:
            wait_for(lambda: any("prompt refs" in r.getMessage() for r in caplog.records))
            for address in ("greeter", "greeter@production", "greeter@main"):
                raw = ask(gw, {"id": address, "variables": {"name": "A"}})
                assert served(raw) == good and system_sent(upstream) == "good A", address
        finally:
            moved.rename(repo.root)
    repo.greeter("next {{ name }}")
    after = repo.commit()
    wait_for(lambda: served(ask(gw, {"id": "greeter", "variables": {"name": "A"}})) == after)


def test_a_gateway_whose_repository_is_missing_starts_and_answers_404(  # type: ignore[no-untyped-def]
    make_gateway, tmp_path: Path
) -> None:
    """``templates`` is on in the defaults, with ``repo: .``: a gateway started outside a repository
    serves everything else, and a template request says what is missing."""
    gw = make_gateway(templates={"enabled": True, "repo": str(tmp_path / "nowhere")})
    assert gw.client().chat.completions.create(model="test-model", messages=[{"role": "user", "content": "hi"}])
    status, error = refusal(gw, "greeter")
    assert (status, error["code"]) == (404, "prompt_version_not_found") and "'HEAD'" in error["message"], error


def test_an_in_flight_request_keeps_the_version_it_rendered(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, upstream: FakeUpstream
) -> None:
    """The tag moves while the upstream is still answering: header, sent prompt and row agree."""
    repo.greeter("old {{ name }}")
    old = repo.commit()
    repo.tag("release", old)
    repo.greeter("new {{ name }}")
    new = repo.commit()
    gw = tgw()
    done: dict[str, Any] = {}

    def slow() -> None:
        done["raw"] = ask(gw, {"id": "greeter@production", "variables": {"name": "A"}}, content="#sleep:0.6")

    worker = threading.Thread(target=slow)
    worker.start()
    wait_for(lambda: len(upstream.requests) == 1)  # rendered, now waiting on the upstream
    repo.tag("release", new)
    wait_for(lambda: gw.gateway.prompts.refs.lookup("refs/tags/release") == new)
    assert served(ask(gw, {"id": "greeter@production", "variables": {"name": "B"}})) == new
    worker.join(10)
    raw = done["raw"]
    assert served(raw) == old and upstream.requests[0]["messages"][0]["content"] == "old A"
    row = next(r for r in gw.rows() if r["id"] == raw.headers["x-llmgw-request-id"])
    assert row["prompt_commit"] == old


# --- 3. variables ------------------------------------------------------------------------------

TYPED = """\
variables:
  text: {type: string, max_length: 5}
  n: {type: integer, default: 1}
  ratio: {type: number, default: 0.5}
  flag: {type: boolean, default: false}
  items: {type: array, default: [], max_length: 2}
  extra: {type: object, default: {}}
  strict: {type: string, default: x, required: true}
messages:
  - role: system
    content: "{{ text }} {{ n }} {{ ratio }} {{ flag }} {{ items|length }} {{ extra|length }} {{ strict }}"
"""


@pytest.mark.parametrize(
    ("given", "name", "code"),
    [
        ({"text": "toolong", "strict": "s"}, "text", "invalid_variable"),  # max_length, a string
        ({"text": "a", "strict": "s", "items": [1, 2, 3]}, "items", "invalid_variable"),  # max_length, an array
        ({"text": "a", "strict": "s", "n": 2.5}, "n", "invalid_variable"),
        ({"text": "a", "strict": "s", "ratio": "0.5"}, "ratio", "invalid_variable"),
        ({"text": "a", "strict": "s", "ratio": True}, "ratio", "invalid_variable"),
        ({"text": "a", "strict": "s", "flag": "true"}, "flag", "invalid_variable"),
        ({"text": "a", "strict": "s", "flag": 1}, "flag", "invalid_variable"),
        ({"text": "a", "strict": "s", "items": "ab"}, "items", "invalid_variable"),
        ({"text": "a", "strict": "s", "extra": [1]}, "extra", "invalid_variable"),
        ({"text": "a"}, "strict", "missing_variable"),  # `required: true` beats its default
        ({"strict": "s"}, "text", "missing_variable"),
        ({"text": "a", "strict": "s", "Text": "b"}, "Text", "unknown_variable"),
    ],
)
def test_each_variable_check_is_a_400_naming_the_variable(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, given: dict[str, Any], name: str, code: str
) -> None:
    repo.write("typed.yaml", TYPED)
    repo.commit()
    gw = tgw()
    status, error = refusal(gw, {"id": "typed", "variables": given})
    assert (status, error["type"], error["code"]) == (400, "invalid_request_error", code), error
    assert error["param"] == f"llmgw.prompt.variables.{name}" and repr(name) in error["message"], error


def test_variables_beside_the_prompt_are_merged_under_its_own_and_errors_say_where(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, upstream: FakeUpstream
) -> None:
    repo.write("typed.yaml", TYPED)
    repo.commit()
    gw = tgw()
    gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}],
        extra_body={"llmgw": {"prompt": {"id": "typed", "variables": {"text": "own"}},
                              "prompt_variables": {"text": "other", "n": 7, "strict": "s"}}},
    )  # fmt: skip
    assert system_sent(upstream) == "own 7 0.5 False 0 0 s"
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-llmgw-prompt": "typed",
                           "x-llmgw-prompt-variables": '{"text": "a", "n": "2", "strict": "s"}'},
        )  # fmt: skip
    assert info.value.body["param"] == "llmgw.prompt.variables.n", "docs/prompts.md#errors: always prompt.variables"
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-llmgw-prompt": "typed", "x-llmgw-prompt-variables": "[1, 2]"},
        )  # fmt: skip
    assert info.value.body["param"] in ("llmgw.prompt.variables", "llmgw.prompt_variables")


INJECTIONS = [
    "{{ 7*7 }}",
    "{% for x in range(3) %}loop{% endfor %}",
    "{{ ''.__class__.__mro__ }}",
    "{% include 'partials/secret.j2' %}",
    "{#",
    "{% raw %}",
]


def test_a_variable_value_is_rendered_literally_never_evaluated(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, upstream: FakeUpstream
) -> None:
    repo.write("partials/secret.j2", "SECRET")
    repo.greeter("Hello {{ name }}!")
    repo.write("wrap.yaml", "combine: fill_user\nmessages:\n  - {role: user, content: 'Q: {{ user_input }}'}\n")
    repo.commit()
    gw = tgw()
    for value in INJECTIONS:
        ask(gw, {"id": "greeter", "variables": {"name": value}})
        assert system_sent(upstream) == f"Hello {value}!", value
        gw.client().chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": value}], extra_body={"llmgw": {"prompt": "wrap"}}
        )
        assert upstream.requests[-1]["messages"] == [{"role": "user", "content": f"Q: {value}"}], value
    gw.client().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-llmgw-prompt": "greeter", "x-llmgw-prompt-variables": '{"name": "{{ 7*7 }}"}'},
    )  # fmt: skip
    assert system_sent(upstream) == "Hello {{ 7*7 }}!"


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''|attr('__class__') }}",
        "{{ '{0.__class__}'.format(name) }}",
        "{{ lipsum.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{% set d = {} %}{{ d.update({'a': 1}) }}",
        "{{ namespace.__init__.__globals__ }}",
    ],
)
def test_more_sandbox_escapes_are_refused_and_logged_with_template_and_commit(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, upstream: FakeUpstream, escape: str, caplog: pytest.LogCaptureFixture
) -> None:
    repo.greeter(escape.replace('"', '\\"'))
    commit = repo.commit()
    gw = tgw()
    with caplog.at_level(logging.WARNING, logger="llmgw.templates"):
        status, error = refusal(gw, {"id": "greeter", "variables": {"name": "a"}})
    assert (status, error["type"], error["code"]) == (500, "server_error", "template_security_violation"), error
    assert any(f"greeter@{commit}" in r.getMessage() for r in caplog.records if "sandbox" in r.getMessage())
    assert not upstream.requests, "nothing was sent upstream"


# --- 5. the request log ------------------------------------------------------------------------


def test_the_row_and_headers_name_template_commit_and_blobs(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, upstream: FakeUpstream
) -> None:
    repo.write("partials/p.j2", "partial")
    repo.greeter('{% include \\"partials/p.j2\\" %} {{ name }}')
    commit = repo.commit()
    blob = repo.git("rev-parse", f"{commit}:prompts/greeter.yaml").strip()
    partial = repo.git("rev-parse", f"{commit}:prompts/partials/p.j2").strip()
    gw = tgw(routes={"default": {"default_model": "test-model"}, "pinned": {"template": "greeter@main"}})
    raw = ask(gw, {"id": "greeter", "variables": {"name": "A"}})
    stream = gw.client().chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}], stream=True,
        extra_body={"llmgw": {"prompt": {"id": "greeter", "variables": {"name": "B"}}}},
    )  # fmt: skip
    assert served(stream) == commit, "a streamed answer names its version too"
    list(stream.parse())
    pinned = gw.client().chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}],
        extra_body={"llmgw": {"route": "pinned", "prompt_variables": {"name": "C"}}},
    )  # fmt: skip
    assert served(pinned) == commit
    rows = {r["id"]: r for r in gw.rows()}
    for response, version in ((raw, "HEAD"), (stream, "HEAD"), (pinned, "main")):
        row = rows[response.headers["x-llmgw-request-id"]]
        assert (row["prompt_id"], row["prompt_commit"]) == ("greeter", commit)
        assert row["meta"]["prompt"] == {"id": "greeter", "version": version, "commit": commit,
                                         "blob": f"{blob},partials/p.j2:{partial}"}  # fmt: skip


def test_the_responses_and_messages_apis_render_templates_too(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, upstream: FakeUpstream
) -> None:
    """docs/api.md: both run "the same stages as a chat request (templates, ...)"."""
    import anthropic

    repo.greeter("Hello {{ name }}")
    commit = repo.commit()
    gw = tgw()
    prompt = {"llmgw": {"prompt": {"id": "greeter", "variables": {"name": "Ada"}}}}
    raw = gw.client().responses.with_raw_response.create(model="test-model", input="hi", extra_body=prompt)
    assert served(raw) == commit and system_sent(upstream) == "Hello Ada"
    messages = anthropic.Anthropic(base_url=gw.url, api_key=ADMIN_KEY, max_retries=0)
    answer = messages.messages.with_raw_response.create(
        model="test-model", max_tokens=20, messages=[{"role": "user", "content": "hi"}], extra_body=prompt
    )
    assert answer.headers["x-llmgw-prompt"] == f"greeter@{commit}" and system_sent(upstream) == "Hello Ada"
    with pytest.raises(anthropic.NotFoundError) as info:
        messages.messages.create(model="test-model", max_tokens=20, messages=[{"role": "user", "content": "hi"}],
                                 extra_body={"llmgw": {"prompt": "greeter@nope"}})  # fmt: skip
    assert "nope" in str(info.value)
    rows = {r["id"]: r for r in gw.rows()}
    for response in (raw, answer):
        assert rows[response.headers["x-llmgw-request-id"]]["prompt_commit"] == commit


def test_a_routes_template_yields_to_the_requests_own(tgw, repo: PromptRepo, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    repo.greeter("route {{ name }}")
    repo.write("other.yaml", "messages:\n  - {role: system, content: own}\n")
    repo.commit()
    gw = tgw(routes={"default": {"default_model": "test-model"}, "pinned": {"template": "greeter"}})
    raw = gw.client().chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}],
        extra_body={"llmgw": {"route": "pinned", "prompt": "other"}},
    )  # fmt: skip
    assert raw.headers["x-llmgw-prompt"].startswith("other@") and system_sent(upstream) == "own"


def test_fill_user_without_a_user_turn_is_a_400_on_messages(tgw, repo: PromptRepo) -> None:  # type: ignore[no-untyped-def]
    repo.write("wrap.yaml", "combine: fill_user\nmessages:\n  - {role: user, content: 'Q: {{ user_input }}'}\n")
    repo.commit()
    gw = tgw()
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(
            model="test-model", messages=[{"role": "system", "content": "s"}], extra_body={"llmgw": {"prompt": "wrap"}}
        )
    assert info.value.body["param"] == "messages" and "wrap" in info.value.body["message"]


def test_a_template_asked_for_where_templates_are_off_is_refused(make_gateway, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """Answering without the template would send the model another prompt than the client asked for."""
    gw = make_gateway()  # templates not enabled
    with pytest.raises(openai.BadRequestError) as info:
        ask(gw, "greeter")
    assert info.value.body["param"] == "llmgw.prompt"
    assert info.value.body["code"] == "templates_disabled" and "templates.enabled" in info.value.body["message"]
    assert upstream.requests == []


def test_a_template_asked_for_on_a_route_without_templates_is_refused(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, upstream: FakeUpstream
) -> None:
    repo.write("greeter.yaml", "messages:\n  - {role: system, content: be brief}\n")
    repo.commit()
    routes = {"default": {"default_model": "test-model"}, "raw": {"stages": {"template": False}}}
    gw = tgw(routes=routes)
    ask(gw, "greeter")  # the default route renders it
    assert system_sent(upstream) == "be brief"
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}],
            extra_body={"llmgw": {"prompt": "greeter", "route": "raw"}},
        )  # fmt: skip
    assert info.value.body["param"] == "llmgw.prompt" and "route raw" in info.value.body["message"]
    assert len(upstream.requests) == 1


# --- 2. experiments through the gateway --------------------------------------------------------


@pytest.mark.parametrize("sticky", ["request", "user"])
def test_the_split_over_400_requests_is_the_configured_one(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, upstream: FakeUpstream, sticky: str
) -> None:
    """75/25 over 400 requests: 100 ± 40 candidates is more than 4.5 standard deviations (8.7).
    ``sticky: user``: 80 users, 5 requests each, each user always in one arm; ``request``: one
    user gets both arms."""
    v1, v2 = repo.two_versions()
    arms = [{"name": "control", "version": "v1", "weight": 3}, {"name": "candidate", "version": "v2", "weight": 1}]
    gw = tgw(experiments={"tone": {"template": "greeter", "sticky": sticky, "arms": arms}})
    client = gw.client()
    counts: Counter[str] = Counter()
    by_user: dict[str, set[str]] = {}
    for i in range(400):
        user = f"user-{i % 80}" if sticky == "user" else "same-user"
        raw = client.chat.completions.with_raw_response.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}], user=user,
            extra_body={"llmgw": {"prompt": "greeter"}},
        )  # fmt: skip
        name, arm = raw.headers["x-llmgw-experiment"].split("=")
        assert name == "tone" and served(raw) == (v1 if arm == "control" else v2)
        assert system_sent(upstream) == f"{arm} prompt"
        counts[arm] += 1
        by_user.setdefault(user, set()).add(arm)
    if sticky == "user":
        assert all(len(a) == 1 for a in by_user.values()), "sticky per user"
        users_in_candidate = sum(a == {"candidate"} for a in by_user.values())
        assert 8 <= users_in_candidate <= 34, users_in_candidate  # 20 ± 4.5 sd (3.9)
    else:
        assert by_user["same-user"] == {"control", "candidate"}, "per request, whoever the user"
        assert 60 <= counts["candidate"] <= 140, counts
    rows = gw.rows()
    assert Counter(r["experiment_arm"] for r in rows) == counts


# --- 6. the CLI on bad input -------------------------------------------------------------------


def cli(repo: PromptRepo, *args: str) -> int:
    return main(["prompts", "--repo", str(repo.root), *args])


def test_cli_list_at_a_ref_skips_partials_and_render_uses_the_examples(
    repo: PromptRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.write("a.yaml", HELLO.format(text="A {{ name }}"))
    repo.write("partials/x.yaml", HELLO.format(text="partial"))
    repo.write("_private.yaml", HELLO.format(text="private"))
    repo.tag("one", repo.commit())
    repo.write("b.yaml", HELLO.format(text="B {{ name }}"))
    repo.commit()
    assert cli(repo, "list", "--ref", "one") == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["a"]
    assert cli(repo, "list") == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["a", "b"]
    assert cli(repo, "render", "b") == 0
    assert '"content": "B Ada"' in capsys.readouterr().out


def test_cli_dir_option(repo: PromptRepo, capsys: pytest.CaptureFixture[str]) -> None:
    (repo.root / "elsewhere").mkdir()
    (repo.root / "elsewhere" / "t.yaml").write_text(HELLO.format(text="T {{ name }}"))
    repo.commit()
    assert main(["prompts", "--repo", str(repo.root), "--dir", "elsewhere", "render", "t"]) == 0
    assert '"content": "T Ada"' in capsys.readouterr().out
    assert main(["prompts", "--repo", str(repo.root), "--dir", "elsewhere", "check"]) == 0
    assert "1 template file(s) checked, 0 problem(s)" in capsys.readouterr().out


def test_cli_bad_input_exits_2_with_one_line(
    repo: PromptRepo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo.write("a.yaml", HELLO.format(text="A {{ name }}"))
    repo.commit()
    (tmp_path / "list.yaml").write_text("[1, 2]\n")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00")
    cases = [
        (["render", "a", "--vars", str(tmp_path / "missing.yaml")], "missing.yaml"),
        (["render", "a", "--vars", str(tmp_path)], str(tmp_path)),
        (["render", "a", "--vars", str(tmp_path / "list.yaml")], "mapping"),
        (["render", "a", "--vars", str(tmp_path / "broken.yaml")], "broken.yaml"),
        (["render", "a", "--vars", str(tmp_path / "binary.yaml")], "binary.yaml"),
        (["diff", "a", "a", "--vars", str(tmp_path / "missing.yaml")], "missing.yaml"),
    ]
    for args, named in cases:
        assert cli(repo, *args) == 2, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and named in err and "Traceback" not in err, (args, err)
    for args in (["list"], ["render", "a"], ["check"]):  # not a repository, or no templates folder there
        assert main(["prompts", "--repo", str(tmp_path / "nowhere"), *args]) == 2, args
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "nowhere" in err, (args, err)
    assert main(["prompts", "--repo", str(repo.root), "--dir", "typo", "check"]) == 2
    assert "typo" in capsys.readouterr().err, "a CI check of a folder that is not there must not pass"


def test_two_different_versions_in_one_prompt_option_are_refused(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, upstream: FakeUpstream
) -> None:
    """``{"id": "greeter@v1", "version": "v2"}`` names two versions: a 400 naming both, not a silent pick;
    the same version twice is no conflict."""
    repo.two_versions()
    gw = tgw()
    status, error = refusal(gw, {"id": "greeter@v1", "version": "v2"})
    assert status == 400 and error["param"] == "llmgw.prompt.version"
    assert "v1" in error["message"] and "v2" in error["message"]
    assert upstream.requests == []
    ask(gw, {"id": "greeter@v2", "version": "v2"})
    assert system_sent(upstream) == "candidate prompt"


def test_an_experiment_arm_whose_version_is_missing_is_named_at_start_up(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """An arm pointing at a tag nobody pushed (or a template absent at that version) would refuse its
    share of traffic with 404s; the gateway says so when it starts, naming the experiment and arm,
    and says nothing about arms that resolve."""
    repo.two_versions()
    v1, v2 = {"name": "a", "version": "v1"}, {"name": "b", "version": "v2"}
    experiments = {
        "tone": {"template": "greeter", "arms": [v1, {"name": "typo", "version": "v9"}]},
        "other": {"template": "absent", "arms": [v1, v2]},
        "fine": {"template": "greeter", "arms": [v1, v2]},
        "off": {"template": "greeter", "enabled": False, "arms": [{"name": "a", "version": "v7"}, v2]},
    }
    with caplog.at_level(logging.WARNING, logger="llmgw"):
        tgw(experiments=experiments)
    named = sorted(r.getMessage().split(":")[0] for r in caplog.records if "experiment arm" in r.getMessage())
    assert named == ["experiment arm other.a", "experiment arm other.b", "experiment arm tone.typo"], named

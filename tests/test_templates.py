"""Prompt templates versioned in git, through a real gateway and a temporary repository."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from tests.conftest import PromptRepo, RunningGateway
from tests.upstream import FakeUpstream


def ask(gw: RunningGateway, prompt: Any, content: str = "hi", **kwargs: Any) -> Any:
    return gw.client().chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": content}], extra_body={"llmgw": {"prompt": prompt}},
        **kwargs,
    )  # fmt: skip


def sent_messages(upstream: FakeUpstream) -> list[dict[str, Any]]:
    return upstream.requests[-1]["messages"]  # type: ignore[no-any-return]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:  # a bound: returns when it holds
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_versions_by_default_commit_tag_and_label(tgw, repo: PromptRepo, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    repo.greeter("v1 hello {{ name }}")
    v1 = repo.commit("v1")
    repo.tag("release", v1)  # `production` is mapped to this tag in config
    repo.greeter("v2 hello {{ name }}")
    v2 = repo.commit("v2")
    repo.tag("staging", v2)  # a label with no config entry is a tag of that name
    gw = tgw()
    cases = [("greeter", v2), (f"greeter@{v1}", v1), (f"greeter@{v1[:8]}", v1), ("greeter@production", v1),
             ("greeter@staging", v2), ("greeter@main", v2)]  # fmt: skip
    for address, commit in cases:
        raw = ask(gw, {"id": address, "variables": {"name": "Ada"}})
        assert raw.headers["x-llmgw-prompt"] == f"greeter@{commit}", address
        system = sent_messages(upstream)[0]
        assert system == {"role": "system", "content": ("v1" if commit == v1 else "v2") + " hello Ada"}
        assert sent_messages(upstream)[1] == {"role": "user", "content": "hi"}, "prepend keeps the client's turn"
    row = gw.rows()[0]
    assert row["prompt_id"] == "greeter" and row["prompt_commit"] == v2
    assert row["meta"]["prompt"]["version"] == "main"
    # the version may also be given separately, and the prompt as a plain string or header
    raw = ask(gw, {"id": "greeter", "version": "production", "variables": {"name": "Bo"}})
    assert raw.headers["x-llmgw-prompt"] == f"greeter@{v1}"
    raw = gw.client().chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-llmgw-prompt": "greeter@staging", "x-llmgw-prompt-variables": '{"name": "Cy"}'},
    )  # fmt: skip
    assert raw.headers["x-llmgw-prompt"] == f"greeter@{v2}"
    assert sent_messages(upstream)[0]["content"] == "v2 hello Cy"


def test_new_commits_and_moved_labels_are_picked_up_live(tgw, repo: PromptRepo, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    repo.greeter("one {{ name }}")
    first = repo.commit()
    repo.tag("release", first)
    gw = tgw()
    ask(gw, {"id": "greeter", "variables": {"name": "x"}})
    assert sent_messages(upstream)[0]["content"] == "one x"
    repo.greeter("two {{ name }}")
    second = repo.commit()

    def default_is_second() -> bool:
        raw = ask(gw, {"id": "greeter", "variables": {"name": "x"}})
        return raw.headers["x-llmgw-prompt"] == f"greeter@{second}"

    wait_for(default_is_second)
    assert sent_messages(upstream)[0]["content"] == "two x"
    # promotion: move the production tag forward; rollback: move it back
    for target in (second, first, second, first):
        repo.tag("release", target)
        production = {"id": "greeter@production", "variables": {"name": "x"}}
        wait_for(lambda t=target, p=production: ask(gw, p).headers["x-llmgw-prompt"].endswith(t))


def test_variables_are_checked(tgw, repo: PromptRepo) -> None:  # type: ignore[no-untyped-def]
    repo.greeter("{{ name }} {{ times }} {{ mood }}")
    repo.commit()
    gw = tgw()
    bad = [
        ({}, "llmgw.prompt.variables.name", "missing_variable"),
        ({"name": 3}, "llmgw.prompt.variables.name", "invalid_variable"),
        ({"name": "a", "times": "2"}, "llmgw.prompt.variables.times", "invalid_variable"),
        ({"name": "a", "times": True}, "llmgw.prompt.variables.times", "invalid_variable"),
        ({"name": "a", "mood": "angry"}, "llmgw.prompt.variables.mood", "invalid_variable"),
        ({"name": "a", "nmae": "b"}, "llmgw.prompt.variables.nmae", "unknown_variable"),
    ]
    for variables, param, code in bad:
        with pytest.raises(openai.BadRequestError) as info:
            ask(gw, {"id": "greeter", "variables": variables})
        assert (info.value.body["param"], info.value.body["code"]) == (param, code), variables
    with pytest.raises(openai.NotFoundError) as info:
        ask(gw, {"id": "nope", "variables": {}})
    assert info.value.body["code"] == "prompt_not_found"
    with pytest.raises(openai.NotFoundError) as info:
        ask(gw, {"id": "greeter@no-such-ref", "variables": {}})
    assert info.value.body["code"] == "prompt_version_not_found"
    with pytest.raises(openai.BadRequestError):
        ask(gw, {"id": "../etc/passwd"})


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ name.__class__.__base__.__subclasses__() }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{% set x = [] %}{{ x.append(1) }}",
    ],
)
def test_sandbox_escapes_fail_clearly_and_are_logged(  # type: ignore[no-untyped-def]
    tgw, repo: PromptRepo, escape: str, caplog: pytest.LogCaptureFixture
) -> None:
    repo.greeter(escape.replace('"', '\\"'))
    repo.commit()
    gw = tgw()
    with caplog.at_level(logging.WARNING, logger="llmgw.templates"), pytest.raises(openai.APIStatusError) as info:
        ask(gw, {"id": "greeter", "variables": {"name": "a"}})
    assert info.value.status_code == 500
    assert info.value.body["code"] == "template_security_violation"
    assert "unsafe" in info.value.body["message"]
    assert any("sandbox violation" in r.message for r in caplog.records)


def test_includes_and_macros_resolve_within_the_same_version(tgw, repo: PromptRepo, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    repo.write("partials/sig.j2", "{% macro sig(n) %}-- {{ n }} (v1){% endmacro %}")
    repo.write("partials/body.j2", "body v1")
    repo.greeter('{% from \\"partials/sig.j2\\" import sig %}{% include \\"partials/body.j2\\" %} {{ sig(name) }}')
    v1 = repo.commit()
    repo.write("partials/sig.j2", "{% macro sig(n) %}-- {{ n }} (v2){% endmacro %}")
    repo.write("partials/body.j2", "body v2")
    repo.commit()
    gw = tgw()
    ask(gw, {"id": f"greeter@{v1}", "variables": {"name": "Ada"}})
    assert sent_messages(upstream)[0]["content"] == "body v1 -- Ada (v1)"
    ask(gw, {"id": "greeter", "variables": {"name": "Ada"}})
    assert sent_messages(upstream)[0]["content"] == "body v2 -- Ada (v2)"


def test_combine_rules(tgw, repo: PromptRepo, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    repo.greeter("sys {{ name }}", combine="replace")
    repo.write(
        "wrap.yaml",
        "combine: fill_user\nmessages:\n  - {role: system, content: rules}\n"
        "  - {role: user, content: 'Summarise: {{ user_input }}'}\n",
    )
    repo.commit()
    gw = tgw()
    ask(gw, {"id": "greeter", "variables": {"name": "A"}}, content="ignored")
    assert sent_messages(upstream) == [{"role": "system", "content": "sys A"}]
    gw.client().chat.completions.create(
        model="test-model",
        messages=[{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
                  {"role": "user", "content": "the long text"}],
        extra_body={"llmgw": {"prompt": "wrap"}},
    )  # fmt: skip
    assert sent_messages(upstream) == [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "Summarise: the long text"},
    ]


def test_route_pins_a_template_and_empty_messages_are_allowed(tgw, repo: PromptRepo, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    repo.greeter("pinned", combine="replace")
    repo.commit()
    gw = tgw(routes={"default": {"default_model": "test-model"}, "pinned": {"template": "greeter"}})
    completion = gw.client().chat.completions.create(
        model="test-model", messages=[], extra_body={"llmgw": {"route": "pinned", "prompt_variables": {"name": "n"}}}
    )
    assert completion.choices[0].message.content
    assert sent_messages(upstream) == [{"role": "system", "content": "pinned"}]
    with pytest.raises(openai.BadRequestError) as info:
        gw.client().chat.completions.create(model="test-model", messages=[])
    assert info.value.body["param"] == "messages"


def test_no_half_updated_template_while_commits_land(tgw, repo: PromptRepo, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    """Each response's content matches the commit it reports, main file and include alike."""
    repo.write("partials/p.j2", "P0")
    repo.greeter('M0 {% include \\"partials/p.j2\\" %}')
    versions = {repo.commit(): 0}
    gw = tgw()
    results: list[tuple[str, str]] = []
    stop = threading.Event()

    def client(worker: int) -> None:
        c = gw.client()
        i = 0
        while not stop.is_set():
            user = f"w{worker}-{i}"
            raw = c.chat.completions.with_raw_response.create(
                model="test-model", messages=[{"role": "user", "content": "x"}], user=user,
                extra_body={"llmgw": {"prompt": {"id": "greeter", "variables": {"name": "n"}}}},
            )  # fmt: skip
            results.append((user, raw.headers["x-llmgw-prompt"].split("@")[1]))
            i += 1

    workers = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for w in workers:
        w.start()
    for k in range(1, 13):
        repo.write("partials/p.j2", f"P{k}")
        repo.greeter(f'M{k} {{% include \\"partials/p.j2\\" %}}')
        versions[repo.commit()] = k
        time.sleep(0.06)
    stop.set()
    for w in workers:
        w.join()
    sent = {r["user"]: r["messages"][0]["content"] for r in upstream.requests}
    seen = set()
    for user, commit in results:
        k = versions[commit]
        assert sent[user] == f"M{k} P{k}", (user, commit, sent[user])
        seen.add(k)
    assert len(results) > 50 and len(seen) >= 4, "the load overlapped several commits"


def test_a_cached_version_costs_no_git_process(repo: PromptRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from llmgw.config import TemplatesConfig
    from llmgw.templates.git import GitRepo
    from llmgw.templates.store import Address, PromptStore

    repo.greeter("hi {{ name }}")
    repo.tag("release", repo.commit())
    store = PromptStore(TemplatesConfig(enabled=True, repo=str(repo.root), labels={"production": "release"}))
    store.refresh()
    calls: list[tuple[str, ...]] = []
    real = GitRepo._git

    def counting(self: GitRepo, *args: str, **kwargs: Any) -> bytes:
        calls.append(args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(GitRepo, "_git", counting)

    async def render_many() -> None:
        for _ in range(3):
            for address in ("greeter", "greeter@production", "greeter@main"):
                template = await store.get(Address.parse(address))
                assert template.render({"name": "x"}) == [{"role": "system", "content": "hi x"}]

    asyncio.run(render_many())
    assert [c[0] for c in calls] == ["cat-file"], "one read for the commit, then memory only"

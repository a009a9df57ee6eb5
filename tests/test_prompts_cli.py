"""``llmgw prompts``: list, show, render, diff and check, on a temporary repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmgw.cli import main
from tests.conftest import PromptRepo


def run(repo: PromptRepo, *args: str) -> int:
    return main(["prompts", "--repo", str(repo.root), *args])


def test_list_show_render_diff(repo: PromptRepo, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo.write("a/greet.yaml", "description: says hi\nvariables:\n  name: {example: Ada}\n"
               "messages:\n  - {role: system, content: 'Hello {{ name }}'}\n")  # fmt: skip
    v1 = repo.commit()
    repo.tag("v1", v1)
    repo.write("a/greet.yaml", "description: says hi\nvariables:\n  name: {example: Ada}\n"
               "messages:\n  - {role: system, content: 'Hi there {{ name }}'}\n")  # fmt: skip
    repo.commit()
    assert run(repo, "list") == 0
    assert "a/greet\tsays hi" in capsys.readouterr().out
    assert run(repo, "show", "a/greet@v1") == 0
    assert f"a/greet@{v1}" in capsys.readouterr().out
    vars_file = tmp_path / "v.yaml"
    vars_file.write_text("name: Bob\n")
    assert run(repo, "render", "a/greet@v1", "--vars", str(vars_file)) == 0
    assert json.loads(capsys.readouterr().out) == [{"role": "system", "content": "Hello Bob"}]
    assert run(repo, "diff", "a/greet@v1", "a/greet@HEAD", "--exit-code") == 1
    out = capsys.readouterr().out
    assert "-Hello Ada" in out and "+Hi there Ada" in out
    assert run(repo, "diff", "a/greet@v1", "a/greet@v1") == 0
    assert "no difference" in capsys.readouterr().out
    assert run(repo, "render", "a/greet@nope") == 1
    assert "unknown prompt version 'nope'" in capsys.readouterr().err


def test_check_catches_broken_templates(repo: PromptRepo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write(
        "ok.yaml", "variables:\n  x: {example: 1, type: integer}\nmessages:\n  - {role: user, content: '{{ x }}'}\n"
    )
    assert run(repo, "check") == 0
    assert "1 template file(s) checked, 0 problem(s)" in capsys.readouterr().out
    repo.write("undefined.yaml", "messages:\n  - {role: user, content: '{{ nope }}'}\n")
    repo.write("noexample.yaml", "variables:\n  y: {}\nmessages:\n  - {role: user, content: '{{ y }}'}\n")
    repo.write(
        "badtype.yaml",
        "variables:\n  z: {type: integer, example: two}\nmessages:\n  - {role: user, content: '{{ z }}'}\n",
    )
    repo.write("syntax.yaml", "messages:\n  - {role: user, content: '{% if %}'}\n")
    repo.write("include.yaml", "messages:\n  - {role: user, content: '{% include \"partials/missing.j2\" %}'}\n")
    repo.write("escape.yaml", "messages:\n  - {role: user, content: \"{{ ''.__class__ }}\"}\n")
    assert run(repo, "check") == 1
    err = capsys.readouterr().err
    for name in ("undefined", "noexample", "badtype", "syntax", "include", "escape"):
        assert f"{name}:" in err, (name, err)


def test_the_shipped_templates_pass_check(capsys: pytest.CaptureFixture[str]) -> None:
    """The pre-commit hook docs/prompts.md recommends passes on a fresh clone (every variable has an example)."""
    assert main(["prompts", "--repo", str(Path(__file__).parent.parent), "check"]) == 0, capsys.readouterr().err
    assert ", 0 problem(s)" in capsys.readouterr().out


def test_config_problems_and_labels_are_messages_not_tracebacks(
    repo: PromptRepo, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.write(
        "greet.yaml", "variables:\n  name: {example: Ada}\nmessages:\n  - {role: system, content: 'Hi {{ name }}'}\n"
    )
    v1 = repo.commit()
    repo.write(
        "greet.yaml", "variables:\n  name: {example: Ada}\nmessages:\n  - {role: system, content: 'Yo {{ name }}'}\n"
    )
    repo.commit()
    monkeypatch.delenv("LLMGW_CONFIG", raising=False)
    monkeypatch.delenv("H16_UNSET_VARIABLE", raising=False)
    broken = tmp_path / "broken.yaml"
    broken.write_text("templates:\n  repo: ${H16_UNSET_VARIABLE}\n")
    assert main(["prompts", "--config", str(broken), "diff", "greet@HEAD", "greet@HEAD"]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and "environment variable H16_UNSET_VARIABLE is not set" in err
    # docs/prompts.md's `diff support/answer@production ...`: a label comes from a config's templates.labels
    assert run(repo, "diff", "greet@production", "greet@HEAD") == 1
    assert "labels (templates.labels) come from a gateway config: pass --config" in capsys.readouterr().err
    labelled = tmp_path / "gw.yaml"
    labelled.write_text(f"templates:\n  repo: {repo.root}\n  labels: {{production: {v1}}}\n")
    monkeypatch.setenv("LLMGW_CONFIG", str(labelled))  # as docs/prompts.md sets it
    assert main(["prompts", "diff", "greet@production", "greet@HEAD"]) == 0
    assert "-Hi Ada" in capsys.readouterr().out

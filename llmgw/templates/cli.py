"""``llmgw prompts ...``: list, show, render, diff and check templates, for prompt engineers."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from llmgw.config import TemplatesConfig
from llmgw.errors import GatewayError, NotFound
from llmgw.templates.git import GitError
from llmgw.templates.store import Address, PromptStore, WorkingTreeSource, load_template
from llmgw.templates.template import CompiledTemplate


class BadInput(Exception):
    """A file or folder named on the command line is unusable: one line on stderr, exit 2 (not a
    traceback, and not exit 1, which says a template or version is wrong or a check failed)."""


def exits_2_on_bad_input(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except BadInput as exc:
            print(f"llmgw: {exc}", file=sys.stderr)
            return 2

    return run


def read_variables(path: str) -> dict[str, Any]:
    """A ``--vars`` file: a YAML (or JSON) mapping of variable names to values."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--vars {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BadInput(f"--vars {path}: not valid YAML or JSON{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"--vars {path}: must be a mapping of variable names to values, not a {type(data).__name__}")
    return data


def example_variables(template: CompiledTemplate) -> dict[str, Any]:
    return {name: var.example for name, var in template.spec.variables.items() if var.example is not None}


def _unknown_version_hint(args: argparse.Namespace, exc: NotFound) -> NotFound:
    """A label such as ``production`` lives in a gateway config's ``templates.labels``: say so."""
    if exc.code != "prompt_version_not_found" or args.config:
        return exc
    return NotFound(
        f"{exc.message}: not a commit, tag or branch here, and labels (templates.labels) come from a gateway "
        "config: pass --config FILE before the command, or set LLMGW_CONFIG",
        code=exc.code,
    )


def _get(args: argparse.Namespace, store: PromptStore, address: str) -> CompiledTemplate:
    try:
        return store.get_sync(Address.parse(address))
    except NotFound as exc:
        raise _unknown_version_hint(args, exc) from None


def _config(args: argparse.Namespace) -> TemplatesConfig:
    """``templates:`` of ``--config`` (or the defaults), with ``--repo`` and ``--dir`` over it."""
    from llmgw.config import load_config

    config = load_config(args.config).templates if args.config else TemplatesConfig()
    if args.repo:
        config = config.model_copy(update={"repo": args.repo})
    if args.dir:
        config = config.model_copy(update={"dir": args.dir})
    return config


def _store(args: argparse.Namespace) -> PromptStore:
    config = _config(args)
    store = PromptStore(config)
    try:
        store.repo.toplevel()
        store.refresh()
    except GitError:
        raise BadInput(f"--repo {config.repo}: not a git repository (or no such folder)") from None
    return store


def _messages(template: CompiledTemplate, variables: dict[str, Any]) -> list[dict[str, str]]:
    if template.spec.combine == "fill_user" and "user_input" not in variables:
        variables = {**variables, "user_input": "<user message>"}
    return template.render(variables, param="vars")


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        commit = store.resolve_cached(args.ref) or store.resolve_slow(args.ref)
    except NotFound as exc:
        raise _unknown_version_hint(args, exc) from None
    for template_id in store.list_ids(commit):
        try:
            spec = store.get_sync(Address(template_id, commit)).spec
            print(f"{template_id}\t{spec.description.strip()}")
        except GatewayError as exc:
            print(f"{template_id}\t(broken: {exc.message})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    template = _get(args, _store(args), args.address)
    print(f"# {template.id}@{template.commit}  (blobs {template.blob})")
    print(yaml.safe_dump(template.spec.model_dump(exclude_defaults=True), sort_keys=False, allow_unicode=True))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    template = _get(args, _store(args), args.address)
    variables = read_variables(args.vars) if args.vars else example_variables(template)
    print(json.dumps(_messages(template, variables), indent=2, ensure_ascii=False))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    store = _store(args)
    a, b = _get(args, store, args.a), _get(args, store, args.b)
    variables = read_variables(args.vars) if args.vars else {**example_variables(a), **example_variables(b)}

    def lines(t: CompiledTemplate) -> list[str]:
        out = []
        for m in _messages(t, {k: v for k, v in variables.items() if k in t.spec.variables or k == "user_input"}):
            out += [f"[{m['role']}]", *m["content"].splitlines(), ""]
        return out

    diff = list(
        difflib.unified_diff(lines(a), lines(b), f"{a.id}@{a.commit[:12]}", f"{b.id}@{b.commit[:12]}", lineterm="")
    )
    print("\n".join(diff) if diff else "no difference in the rendered messages")
    return 1 if diff and args.exit_code else 0


def check_working_tree(root: Path, directory: str) -> list[str]:
    """Every template renders with its examples; every variable has an example or a default."""
    problems: list[str] = []
    base = root / directory
    source = WorkingTreeSource(root)
    for path in sorted(base.rglob("*.y*ml")):
        rel = path.relative_to(base).as_posix()
        if rel.startswith(("_", "partials/")) or path.suffix not in (".yaml", ".yml"):
            continue
        template_id = rel.rsplit(".", 1)[0]
        try:
            template = load_template(source, directory, template_id, 100_000)
            missing = [n for n, v in template.spec.variables.items() if v.example is None and v.is_required]
            if missing:
                problems.append(f"{template_id}: no example for variable(s) {', '.join(missing)}")
                continue
            _messages(template, example_variables(template))
        except GatewayError as exc:
            problems.append(f"{template_id}: {exc.message}")
    return problems


def cmd_check(args: argparse.Namespace) -> int:
    config = _config(args)  # the working tree only: no git needed
    root, directory = Path(config.repo), config.dir
    if not (root / directory).is_dir():  # a typo in --repo/--dir must not pass a pre-commit hook or CI
        raise BadInput(f"no templates folder {root / directory}")
    problems = check_working_tree(root, directory)
    for problem in problems:
        print(problem, file=sys.stderr)
    count = len(list((root / directory).rglob("*.y*ml")))
    print(f"{count} template file(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0


def register(sub: Any) -> None:
    prompts = sub.add_parser("prompts", help="prompt templates in git")
    prompts.add_argument(
        "--config",
        default=os.environ.get("LLMGW_CONFIG"),
        help="take templates.repo/dir/labels from this config (default: $LLMGW_CONFIG)",
    )
    prompts.add_argument("--repo", help="git repository (default: .)")
    prompts.add_argument("--dir", help="templates folder in the repository (default: prompts)")
    commands = prompts.add_subparsers(dest="prompts_command", required=True)
    listing = commands.add_parser("list", help="templates at a version")
    listing.add_argument("--ref", help="version (default: templates.default_ref)")
    listing.set_defaults(func=exits_2_on_bad_input(cmd_list))
    show = commands.add_parser("show", help="a template's metadata and messages: ID@VER")
    show.add_argument("address")
    show.set_defaults(func=exits_2_on_bad_input(cmd_show))
    render = commands.add_parser("render", help="render ID@VER with --vars FILE (default: the examples)")
    render.add_argument("address")
    render.add_argument("--vars", help="YAML or JSON file of variables")
    render.set_defaults(func=exits_2_on_bad_input(cmd_render))
    diff = commands.add_parser("diff", help="diff the rendered messages of ID@A and ID@B")
    diff.add_argument("a")
    diff.add_argument("b")
    diff.add_argument("--vars")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when they differ")
    diff.set_defaults(func=exits_2_on_bad_input(cmd_diff))
    check = commands.add_parser("check", help="every template in the working tree renders (pre-commit, CI)")
    check.set_defaults(func=exits_2_on_bad_input(cmd_check))

"""``llmgw prompts ...``: list, show, render, diff and check templates, for prompt engineers."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from llmgw.config import TemplatesConfig
from llmgw.errors import GatewayError, NotFound
from llmgw.templates.store import Address, PromptStore, WorkingTreeSource, load_template
from llmgw.templates.template import CompiledTemplate


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


def _store(args: argparse.Namespace) -> PromptStore:
    from llmgw.config import load_config

    config = load_config(args.config).templates if args.config else TemplatesConfig()
    if args.repo:
        config = config.model_copy(update={"repo": args.repo})
    if args.dir:
        config = config.model_copy(update={"dir": args.dir})
    store = PromptStore(config)
    store.refresh()
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
    variables = yaml.safe_load(Path(args.vars).read_text()) if args.vars else example_variables(template)
    print(json.dumps(_messages(template, variables or {}), indent=2, ensure_ascii=False))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    store = _store(args)
    a, b = _get(args, store, args.a), _get(args, store, args.b)
    variables = (
        yaml.safe_load(Path(args.vars).read_text()) if args.vars else {**example_variables(a), **example_variables(b)}
    )

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
    store_config = TemplatesConfig() if not args.config else _store(args).config
    root = Path(args.repo or store_config.repo)
    directory = args.dir or store_config.dir
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
    listing.set_defaults(func=cmd_list)
    show = commands.add_parser("show", help="a template's metadata and messages: ID@VER")
    show.add_argument("address")
    show.set_defaults(func=cmd_show)
    render = commands.add_parser("render", help="render ID@VER with --vars FILE (default: the examples)")
    render.add_argument("address")
    render.add_argument("--vars", help="YAML or JSON file of variables")
    render.set_defaults(func=cmd_render)
    diff = commands.add_parser("diff", help="diff the rendered messages of ID@A and ID@B")
    diff.add_argument("a")
    diff.add_argument("b")
    diff.add_argument("--vars")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when they differ")
    diff.set_defaults(func=cmd_diff)
    check = commands.add_parser("check", help="every template in the working tree renders (pre-commit, CI)")
    check.set_defaults(func=cmd_check)

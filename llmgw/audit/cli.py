"""``llmgw audit``: verify the hash chains, export events, prune old ones (retention)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from llmgw.audit.chain import VerifyResult, check_heads, iso_utc, verify, verify_rows
from llmgw.audit.queries import VERDICTS, EventFilter, csv_header, csv_lines, iter_events, jsonl_lines, stored_from_view
from llmgw.audit.retention import prune
from llmgw.errors import InvalidRequest

MAX_DAYS = 365_000  # a thousand years: more would put the cut-off before year 1
FILTERS = ("since", "until", "key_id", "team", "guard", "verdict", "entity_type", "value_hash", "request_id", "stage")


def _config(args: argparse.Namespace) -> Any:
    from llmgw.config import load_config_or_exit

    return load_config_or_exit(getattr(args, "config", None))


def _engine(args: argparse.Namespace, config: Any = None) -> Any:
    from llmgw.storage.db import make_engine

    return make_engine((config or _config(args)).storage.url)


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if not path or path == "-":
        yield sys.stdout
        return
    try:
        out = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise Unusable(f"cannot write {path}: {exc.strerror or exc}") from None
    with out:
        yield out


def _report(result: VerifyResult, heads: bool, what: str) -> int:
    for problem in result.problems:
        print(problem, file=sys.stderr)
    if heads:
        for chain, (seq, hash_) in sorted(result.heads.items()):
            print(f"{chain}\t{seq}\t{hash_}")
    state = "ok" if result.ok else f"FAILED: {len(result.problems)} problem(s)"
    print(f"{what}: {state}; {result.checked} event(s) in {len(result.heads)} chain(s)", file=sys.stderr)
    return 0 if result.ok else 1


class Unusable(Exception):
    """A file or argument the command cannot use: a message and exit 2, not a traceback."""


def _database_error(exc: Exception) -> int:
    """The database could not be read or written: the reason on one line, exit 1 (never a traceback)."""
    first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    print(f"llmgw: the database failed ({type(exc).__name__}: {first[0] if first else ''})", file=sys.stderr)
    return 1


def _archive_row(line: str) -> dict[str, Any]:
    """One JSONL export line back to its stored row; ValueError says what is wrong with it."""
    view = json.loads(line)
    if not isinstance(view, dict):
        raise ValueError("not a JSON object")
    missing = [name for name in ("id", "chain", "seq", "created_at", "prev_hash", "hash") if view.get(name) is None]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if not isinstance(view["seq"], int) or isinstance(view["seq"], bool):
        raise ValueError("seq is not an integer")
    try:
        return stored_from_view(view)
    except (TypeError, AttributeError, OverflowError) as exc:
        raise ValueError(str(exc)) from None


def _read_archive(path: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of a JSONL export, and a problem per line that is not an event (a broken archive fails)."""
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(_archive_row(line))
                except ValueError as exc:  # JSONDecodeError is one
                    problems.append(f"{path} line {number}: not a guard event ({str(exc)[:200]})")
    except (OSError, UnicodeDecodeError) as exc:
        raise Unusable(f"cannot read {path}: {exc}") from None
    return rows, problems


def cmd_verify(args: argparse.Namespace) -> int:
    if args.file:
        rows, unreadable = _read_archive(args.file)
        result = verify_rows(rows)
        if unreadable:
            result.ok, result.problems = False, [*unreadable, *result.problems]
        return _report(result, args.heads, args.file)
    from llmgw.storage.deadletter import DeadLetters

    config = _config(args)
    recorded = _read_heads(args.against) if args.against else []
    letters = DeadLetters(config.storage.dead_letter_dir)
    held = letters.rows("guard_events")  # events the writer kept aside: a gap until replayed
    engine = _engine(args, config)
    result = verify(engine, held=held, held_in=str(letters.path("guard_events")))
    if recorded:
        moved = check_heads(engine, recorded, held)
        if moved:
            result.ok, result.problems = False, [*result.problems, *moved]
    return _report(result, args.heads, "guard_events")


def _read_heads(path: str) -> list[tuple[str, int, str]]:
    """``chain<TAB>seq<TAB>hash`` lines, as ``verify --heads`` printed them."""
    heads: list[tuple[str, int, str]] = []
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 64:
                    raise Unusable(f"{path} line {number}: not a head (chain, seq, hash separated by tabs)")
                heads.append((parts[0], int(parts[1]), parts[2]))
    except (OSError, UnicodeDecodeError) as exc:
        raise Unusable(f"cannot read {path}: {exc}") from None
    return heads


def cmd_export(args: argparse.Namespace) -> int:
    try:
        flt = EventFilter.from_params({name: getattr(args, name) for name in FILTERS})
    except InvalidRequest as exc:
        print(f"llmgw: {exc.message}", file=sys.stderr)
        return 2
    engine = _engine(args)
    count = 0
    with _output(args.output) as out:  # opened before the first query: a bad path is exit 2, nothing read
        if args.format == "csv":
            out.write(csv_header())
        for rows in iter_events(engine, flt):
            out.write(csv_lines(rows) if args.format == "csv" else jsonl_lines(rows))
            count += len(rows)
    print(f"exported {count} event(s)", file=sys.stderr)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.days) and 0 <= args.days <= MAX_DAYS):  # nan, inf: no cut-off to compute
        print(f"llmgw: --days must be 0 or more, and a number of days up to {MAX_DAYS}", file=sys.stderr)
        return 2
    engine = _engine(args)
    if args.export and Path(args.export).exists():
        print(f"llmgw: {args.export} exists; refusing to overwrite an archive", file=sys.stderr)
        return 2
    with _output(args.export) if args.export else contextlib.nullcontext() as out:
        result = prune(engine, args.days, out)
    where = f", exported to {args.export}" if args.export else ""
    print(f"deleted {result.deleted} event(s) older than {iso_utc(result.cutoff)} "
          f"from {len(result.chains)} chain(s){where}", file=sys.stderr)  # fmt: skip
    for chain, why in sorted(result.held_back.items()):  # the evidence stays for `verify` to report
        print(f"chain {chain}: {why}; see `llmgw audit verify` (and `llmgw storage replay`)", file=sys.stderr)
    return 1 if result.held_back else 0


def cmd_hash(args: argparse.Namespace) -> int:
    """Print the log's hash of a raw value, to search for it (``--value-hash``) without storing it."""
    from llmgw.config import load_config_or_exit
    from llmgw.guards.events import value_hash

    salt = load_config_or_exit(args.config).guards.hash_salt
    if not salt:
        print("llmgw: guards.hash_salt is not set, so logged hashes used a random salt and cannot be matched",
              file=sys.stderr)  # fmt: skip
        return 2
    value = args.value if args.value is not None else sys.stdin.read().rstrip("\n")
    print(value_hash(salt.encode(), value))
    return 0


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="the guardrail log: verify, export, prune")
    audit.add_argument("--config", help="gateway config (default: $LLMGW_CONFIG or embedded)")
    commands = audit.add_subparsers(dest="audit_command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help)
        parser.add_argument("--config", default=argparse.SUPPRESS, help="gateway config (also before the command)")
        return parser

    check = command("verify", help="check every hash chain (exit 1 and list the problems if one is broken)")
    check.add_argument("--file", help="verify a JSONL export or prune archive instead of the database")
    check.add_argument("--heads", action="store_true", help="print each chain's last seq and hash (to anchor)")
    check.add_argument(
        "--against", metavar="HEADS.tsv", help="heads recorded with --heads: each must still be on its chain"
    )
    check.set_defaults(func=cmd_verify)

    export = command("export", help="write matching events as CSV or JSONL, oldest first")
    export.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
    export.add_argument("--output", "-o", help="file (default: stdout)")
    for name in FILTERS:
        flag = "--" + name.replace("_", "-")
        export.add_argument(flag, dest=name, choices=VERDICTS if name == "verdict" else None)
    export.set_defaults(func=cmd_export)

    old = command("prune", help="export, then delete, events older than N days (keeps the chains verifiable)")
    old.add_argument("--days", type=float, required=True)
    old.add_argument("--export", metavar="FILE.jsonl", help="write the deleted events here first")
    old.set_defaults(func=cmd_prune)

    hashed = command("hash", help="the logged hash of a raw value (read from stdin when not given)")
    hashed.add_argument("value", nargs="?")
    hashed.set_defaults(func=cmd_hash)
    for parser in (check, export, old):
        parser.set_defaults(func=_guarded(parser.get_default("func")))


def _guarded(command: Any) -> Any:
    """A command whose unusable file is exit 2 and whose database failure is exit 1, each with one
    line saying why: a reviewer's cron job reads a reason, not a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args))
        except Unusable as exc:
            print(f"llmgw: {exc}", file=sys.stderr)
            return 2
        except SQLAlchemyError as exc:
            return _database_error(exc)
        except BrokenPipeError:  # `llmgw audit export | head`: the reader has all it wanted
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the interpreter's final flush is quiet
            return 0

    return run

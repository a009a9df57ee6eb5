"""``llmgw storage``: create or migrate the tables, replay dead-lettered rows, show the backlog."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from llmgw.storage.deadletter import DeadLetters
from llmgw.storage.journal import orphaned_counts


def cmd_replay(args: argparse.Namespace) -> int:
    from llmgw.config import load_config_or_exit
    from llmgw.storage.db import make_engine
    from llmgw.storage.replay import Stopped, replay

    config = load_config_or_exit(getattr(args, "config", None))
    letters = DeadLetters(config.storage.dead_letter_dir)
    try:
        engine = make_engine(config.storage.url)
    except Exception as exc:  # noqa: BLE001 - the operator needs the reason, not a traceback
        print(f"llmgw: the database is not reachable ({type(exc).__name__}); nothing replayed", file=sys.stderr)
        return 1
    status = 0
    try:
        counts = replay(engine, letters, config.storage.batch_size)
    except Stopped as exc:
        print(f"llmgw: replay stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if not counts:
        print(f"nothing to replay in {letters.dir}")
    for count in counts:
        where = f" (kept in {letters.path(count.table)})" if count.kept else ""
        print(f"{count.table}: {count.replayed} replayed, {count.present} already in the database, "
              f"{count.kept} still failing{where}")  # fmt: skip
        status = 1 if count.kept else status
    return status


def cmd_migrate(args: argparse.Namespace) -> int:
    """Create missing tables and columns once, before the replicas start (a container's entrypoint).

    The gateway does the same at start-up (``make_engine``), so this is never required; it lets a
    deployment wait for its database and fail with a clear message before any replica takes traffic.
    """
    from llmgw.config import load_config_or_exit
    from llmgw.storage.db import make_engine

    config = load_config_or_exit(getattr(args, "config", None))
    deadline = time.monotonic() + args.wait
    while True:
        try:
            make_engine(config.storage.url).dispose()
        except Exception as exc:  # noqa: BLE001 - unreachable or refusing: wait, then say why
            if time.monotonic() >= deadline:
                print(f"llmgw: the database is not reachable ({type(exc).__name__}) after {args.wait:g}s",
                      file=sys.stderr)  # fmt: skip
                return 1
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            continue
        print("storage: tables up to date")
        return 0


def cmd_status(args: argparse.Namespace) -> int:
    from llmgw.config import load_config_or_exit

    letters = DeadLetters(load_config_or_exit(getattr(args, "config", None)).storage.dead_letter_dir)
    tables = letters.tables()
    for table in tables:
        print(f"{table}\t{letters.count(table)}\t{letters.path(table)}")
    # a gateway killed before its writer caught up leaves its journal: `storage replay` writes those rows too
    died = orphaned_counts(letters.dir)
    for table, count in sorted(died.items()):
        print(f"{table}\t{count}\tjournal of a process that died, in {letters.dir}")
    if not tables and not died:
        print(f"no dead-lettered rows in {letters.dir}")
    return 0


def register(sub: Any) -> None:
    storage = sub.add_parser("storage", help="the database's tables (migrate) and dead-letter files (status, replay)")
    storage.add_argument("--config", help="gateway config (default: $LLMGW_CONFIG or embedded)")
    commands = storage.add_subparsers(dest="storage_command", required=True)
    for name, func, text in (
        ("replay", cmd_replay, "write dead-lettered rows to the database (idempotent by row id)"),
        ("status", cmd_status, "rows waiting in each dead-letter file"),
        ("migrate", cmd_migrate, "create missing tables and columns (waits --wait seconds for the database)"),
    ):
        parser = commands.add_parser(name, help=text)
        parser.add_argument("--config", default=argparse.SUPPRESS, help="gateway config (also before the command)")
        parser.set_defaults(func=func)
        if name == "migrate":
            parser.add_argument("--wait", type=float, default=0.0, help="seconds to keep retrying (default: 0)")

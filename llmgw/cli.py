"""The ``llmgw`` command: serve, check a config, manage keys."""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import logging
import os
import sys
from typing import Any

from llmgw.config import Config, ConfigError, load_config_or_exit
from llmgw.errors import GatewayError

#: the interpreter's GIL switch interval in a serving process (Python's default is 5 ms): background
#: threads (storage writer, guards) hand the GIL back to the event loop, and a guard thread whose
#: model run has ended gets it back from the other guard thread, within 1 ms
SWITCH_INTERVAL_S = 0.001


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def per_process_warnings(config: Config) -> tuple[list[str], list[str]]:
    """With several workers: what would be wrong (refused) and what is only per process (warned)."""
    refused, warned = [], []
    if config.limits.enabled and config.limits.store == "memory":
        refused.append(
            "limits.store: memory counts per process, so each worker would allow the whole limit and budget; "
            "set limits.store: redis (shared by every worker and replica)"
        )
    if config.cache.enabled and config.cache.exact_store == "memory":
        warned.append("cache.exact_store: memory is per worker (a hit on one worker is a miss on another); "
                      "cache.exact_store: redis shares it")  # fmt: skip
    for name, provider in config.providers.items():
        if provider.type == "llama_server":
            warned.append(f"providers.{name}: each worker starts its own llama-server (its memory, its cores); "
                          "one shared llama-server behind an openai provider serves them all")  # fmt: skip
    return refused, warned


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from llmgw import workers
    from llmgw.api.front import read_timed_out
    from llmgw.http_protocol import CoalescingHttpToolsProtocol

    config = load_config_or_exit(args.config)
    server = config.server.model_copy(
        update={k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    )
    config = config.model_copy(update={"server": server})
    if config.auth.allow_anonymous and not _is_loopback(server.host) and not args.insecure_allow_anonymous:
        print(
            f"llmgw: refusing anonymous access on non-loopback host {server.host}; "
            "create keys (llmgw keys create) and set auth.allow_anonymous: false",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "presidio-analyzer"):  # a line per upstream call, per recognizer loaded
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        count = workers.worker_count(args.workers if args.workers is not None else server.workers)
    except ValueError:
        print(f"llmgw: --workers must be a positive integer or auto, not {args.workers!r}", file=sys.stderr)
        return 2
    is_worker = args.worker_fd is not None or args.worker_reuse_port
    if not is_worker and count > 1:
        return _supervise(args, config, count)
    import socket

    from llmgw.app import create_app

    workers.exit_with_parent()
    app = create_app(config)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    uv = uvicorn.Config(
        app,
        host=server.host,
        port=server.port,
        loop="uvloop",
        # httptools, one send per event-loop turn, and a read timeout (llmgw.http_protocol)
        http=CoalescingHttpToolsProtocol.with_read_timeout(config.server.request_read_timeout_s, read_timed_out),
        access_log=False,
        log_level=args.log_level,
        timeout_graceful_shutdown=int(config.server.request_timeout_s),
    )
    sockets = None
    if args.worker_reuse_port:  # a worker of --workers N with its own SO_REUSEPORT socket
        sockets = [workers.worker_socket(server.host, server.port)]
    elif args.worker_fd is not None:  # a worker on the parent's shared socket
        sockets = [socket.socket(fileno=args.worker_fd)]
    metrics = app.state.gateway.metrics

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)  # the application's start-up, then listen()
            if self.started:
                # llmgw_worker_up 1: the parent's readiness, the tests' and the bench's
                metrics.listening(freeze_startup_heap())
                workers.mark_listening()  # the parent counts a worker that dies before this as a failed start

    Server(uv).run(sockets=sockets)
    return 0


def freeze_startup_heap() -> int:
    """Move every object alive after start-up (models, tokenizers, vocabularies, modules: ~165k objects)
    out of the cyclic garbage collector's scans, and return how many. They live as long as the process;
    scanning them made each full collection a ~120 ms stall of the event loop (``bench/gc_pause.py``),
    one every few minutes under load. Objects made afterwards are collected as usual."""
    gc.collect()  # garbage of the start-up itself is freed, not frozen
    gc.freeze()
    return gc.get_freeze_count()


def _supervise(args: argparse.Namespace, config: Config, count: int) -> int:
    """The parent of ``--workers N``: hold the port, start and watch the workers (llmgw.workers)."""
    from llmgw import workers

    refused, warned = per_process_warnings(config)
    for problem in refused:
        print(f"llmgw: refusing --workers {count}: {problem}", file=sys.stderr)
    if refused:
        return 2
    for note in warned:
        logging.getLogger("llmgw.workers").warning("%s", note)
    reuse_port = config.server.reuse_port and workers.reuse_port_supported()
    try:
        if reuse_port:
            sock = workers.reserve(config.server.host, config.server.port)
        else:
            sock = workers.bind(config.server.host, config.server.port)
    except OSError as exc:
        print(f"llmgw: cannot listen on {config.server.host}:{config.server.port}: {exc}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]  # port 0: the one the kernel chose, which every worker binds
    worker_args = ["--log-level", args.log_level, "--host", config.server.host, "--port", str(port)]
    if args.config:
        worker_args += ["--config", args.config]
    if args.insecure_allow_anonymous:
        worker_args.append("--insecure-allow-anonymous")
    logging.getLogger("llmgw.workers").info(
        "llmgw on http://%s:%d with %d workers (%s)", config.server.host, port, count,
        "a SO_REUSEPORT socket each" if reuse_port else "one shared socket",
    )  # fmt: skip
    # a worker finishes its requests (request_timeout_s), then drains its writer (up to 30 s)
    grace = config.server.request_timeout_s + 60
    return workers.Supervisor(count, sock, worker_args, grace, reuse_port=reuse_port).run()


def cmd_config_check(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.file)
    print(
        f"{args.file}: ok ({len(config.providers)} providers, {len(config.models)} models, {len(config.routes)} routes)"
    )
    return 0


def _keystore(config: Config) -> Any:
    from llmgw.keys import KeyStore
    from llmgw.storage.db import make_engine

    return KeyStore(make_engine(config.storage.url))


def config_source(args: argparse.Namespace) -> str:
    return args.config or "the embedded defaults"


def _split(value: str | None) -> list[str] | None:
    """A comma-separated option as a list; None when the option was not given, [] when it was given empty
    (``--tools ""``: no tool; an empty ``--models`` or ``--routes`` is then refused, not read as "all")."""
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def cmd_keys(args: argparse.Namespace) -> int:
    import msgspec

    from llmgw.api.admin import NewKey, key_view

    config = load_config_or_exit(args.config)
    store = _keystore(config)
    if args.keys_command == "create":
        try:  # the same bounds as POST /admin/keys: a NUL byte or an over-long name is refused, not a crash
            spec = {"name": args.name, "team": args.team, "user": args.user, "models": _split(args.models),
                    "routes": _split(args.routes), "tools": _split(args.tools)}  # fmt: skip
            msgspec.convert(spec, NewKey)
        except msgspec.ValidationError as exc:
            print(f"llmgw: invalid key: {exc}", file=sys.stderr)
            return 2
        for kind, names, known in (
            ("model", args.models, config.models),
            ("route", args.routes, config.routes),
        ):
            for name in _split(names) or []:
                if name != "*" and name not in known:
                    print(f"llmgw: unknown {kind} {name!r} in {config_source(args)}", file=sys.stderr)
                    return 2
        secret, row = store.create(
            args.name,
            team=args.team,
            user=args.user,
            models=_split(args.models),
            routes=_split(args.routes),
            tools=_split(args.tools),
        )
        print(json.dumps({**key_view(row), "key": secret}, indent=2))
        print("Store the key now: only its hash is kept.", file=sys.stderr)
    elif args.keys_command == "list":
        for row in store.list(include_revoked=args.all):
            view = key_view(row)
            state = "revoked" if row.revoked_at else "active"
            print(f"{view['id']}\t{view['prefix']}…\t{state}\t{row.name}\tteam={row.team or '-'}\t"
                  f"models={','.join(row.models)}\troutes={','.join(row.routes)}\t"
                  f"tools={','.join(view['tools'])}")  # fmt: skip
    elif args.keys_command == "revoke":
        row = store.revoke(args.key_id)
        if row is None:
            print(f"llmgw: no key {args.key_id}", file=sys.stderr)
            return 1
        print(f"revoked {row.id}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmgw", description="An OpenAI-compatible LLM gateway.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default=os.environ.get("LLMGW_CONFIG"), help="YAML file (default: embedded)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--insecure-allow-anonymous",
        action="store_true",
        help="serve anonymous callers (auth.allow_anonymous) on a non-loopback host anyway",
    )
    serve.add_argument(
        "--workers",
        help="worker processes on one port: a number, or auto (one per core); default: server.workers (1)",
    )
    serve.add_argument("--worker-fd", type=int, help=argparse.SUPPRESS)  # set by the parent of --workers N
    serve.add_argument("--worker-reuse-port", action="store_true", help=argparse.SUPPRESS)  # likewise
    serve.set_defaults(func=cmd_serve)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a config file")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)

    keys = sub.add_parser("keys", help="virtual API keys")
    keys.add_argument("--config", default=os.environ.get("LLMGW_CONFIG"))
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key (printed once)")
    create.add_argument("name")
    create.add_argument("--team")
    create.add_argument("--user")
    create.add_argument("--models", help="comma-separated catalog names (default: all)")
    create.add_argument("--routes", help="comma-separated route names (default: all)")
    create.add_argument("--tools", help="comma-separated tool names its requests may offer, * patterns (default: any)")
    listing = keys_sub.add_parser("list", help="list keys")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    for p in (create, listing, revoke):
        p.set_defaults(func=cmd_keys)

    from llmgw.audit import cli as audit_cli
    from llmgw.evals import cli as evals_cli
    from llmgw.retrieval import cli as retrieval_cli
    from llmgw.storage import cli as storage_cli
    from llmgw.templates import cli as prompts_cli
    from llmgw.templates import report as experiments_report

    prompts_cli.register(sub)
    experiments_report.register(sub)
    audit_cli.register(sub)
    storage_cli.register(sub)
    retrieval_cli.register(sub)
    evals_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GatewayError as exc:  # e.g. an unknown template or version in `llmgw prompts`
        print(f"llmgw: {exc.message}", file=sys.stderr)
        return 1
    except ConfigError as exc:  # any command's --config (e.g. an unset ${VAR}): the problems, not a traceback
        print(f"llmgw: invalid configuration\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

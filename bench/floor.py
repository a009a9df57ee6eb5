"""The floor of a Python proxy on llmgw's stack, beside llmgw, in one run.

    .venv/bin/python -m bench.floor                       # 3 rounds, 1000 sequential requests per target
    .venv/bin/python -m bench.floor --rounds 5 --seq-n 2000

Issue 21 asks for ≤ 0.5 ms added p50 over the direct upstream. Which part of what llmgw adds is
llmgw, and which part is the server and the client it is built on? This starts, on one
``bench.upstream``:

* ``proxy_raw``: a plain ASGI function on uvicorn (uvloop, httptools: what ``llmgw serve`` runs)
  that reads the body, posts it to the upstream with one shared ``aiohttp.ClientSession`` and
  returns the upstream's bytes. Nothing else: no parsing, no auth, no row. The least a proxy on
  this server and this client can add.
* ``proxy_litestar``: the same forward as one Litestar route handler (``Request`` in, ``Response``
  out), the framework llmgw is built on.
* ``llmgw``: the gateway with the bench's config (``procs.gateway_config``: optional stages off).

``bench.load`` then sends the same sequential requests to ``direct`` and the three, in alternating
blocks, so every target sees the same machine. Reported per round and as medians: p50/p99 added
over ``direct`` and the process's CPU per request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench import procs
from bench.ab import cpu_ms

TARGETS = ("proxy_raw", "proxy_litestar", "proxy_litestar_asgi", "llmgw")


def granian_raw() -> Any:
    """Granian's factory for the raw forward (``--factory bench.floor:granian_raw``)."""
    import os

    return raw_app(os.environ["LLMGW_FLOOR_UPSTREAM"])


def granian_llmgw() -> Any:
    """Granian's factory for llmgw's app, built as ``llmgw serve`` builds it (its config from the env)."""
    import gc
    import os

    from llmgw.app import create_app
    from llmgw.cli import SWITCH_INTERVAL_S
    from llmgw.config import load_config_or_exit

    sys.setswitchinterval(SWITCH_INTERVAL_S)
    app = create_app(load_config_or_exit(os.environ["LLMGW_FLOOR_CONFIG"]))
    gc.collect()
    gc.freeze()
    return app


def start_granian(kind: str, port: int, env: dict[str, str], logdir: Path) -> procs.Proc:
    granian = Path(sys.executable).with_name("granian")
    factory = "bench.floor:granian_raw" if kind == "proxy_raw_granian" else "bench.floor:granian_llmgw"
    argv = [str(granian), "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--loop", "uvloop", "--runtime-mode", "st", "--no-access-log", "--log-level", "warning",
            "--factory", factory]  # fmt: skip
    proc = procs.spawn(kind, argv, port, logdir, env)
    _wait_port(proc)
    return proc


class Forward:
    """Post the request's body to the upstream with one shared aiohttp session; answer its bytes."""

    def __init__(self, upstream: str) -> None:
        self.url = upstream + "/chat/completions"
        self.session: Any = None

    async def open(self) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))

    async def close(self) -> None:
        await self.session.close()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {"content-type": "application/json", "authorization": "Bearer x"}
        async with self.session.post(self.url, data=body, headers=headers) as response:
            data = await response.read()
            status = response.status
        headers_out = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers_out})
        await send({"type": "http.response.body", "body": data})


def raw_app(upstream: str) -> Any:
    """The forward as a bare ASGI application (its session opened and closed by the lifespan)."""
    forward = Forward(upstream)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await forward(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await forward.open()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await forward.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app


def litestar_app(upstream: str) -> Any:
    """The forward as one ordinary Litestar route handler (``Request`` in, ``Response`` out)."""
    from litestar import Litestar, Request, Response, post

    forward = Forward(upstream)

    @post("/v1/chat/completions")
    async def chat(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await request.body()
        headers = {"content-type": "application/json", "authorization": "Bearer x"}
        async with forward.session.post(forward.url, data=body, headers=headers) as response:
            return Response(await response.read(), status_code=response.status, media_type="application/json")

    return Litestar(
        [chat],
        on_startup=[forward.open],
        on_shutdown=[forward.close],
        signature_namespace={"Request": Request, "Response": Response, "Any": Any},
    )


def litestar_asgi_app(upstream: str) -> Any:
    """The forward as a Litestar ``@asgi`` route: Litestar's routing and middleware, none of its
    request and response objects (what a handler answering through ASGI itself would cost)."""
    from litestar import Litestar, asgi

    forward = Forward(upstream)

    @asgi("/v1/chat/completions", copy_scope=False)
    async def chat(scope: Any, receive: Any, send: Any) -> None:
        await forward(scope, receive, send)

    return Litestar([chat], on_startup=[forward.open], on_shutdown=[forward.close], signature_namespace={"Any": Any})


def serve(kind: str, upstream: str, port: int) -> None:
    """Run one floor proxy (the child process's entry point)."""
    import uvicorn

    from llmgw.cli import SWITCH_INTERVAL_S
    from llmgw.http_protocol import CoalescingHttpToolsProtocol

    sys.setswitchinterval(SWITCH_INTERVAL_S)
    apps = {"proxy_raw": raw_app, "proxy_litestar": litestar_app, "proxy_litestar_asgi": litestar_asgi_app}
    app = apps[kind](upstream)
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http=CoalescingHttpToolsProtocol,
                access_log=False, log_level="warning")  # fmt: skip


def start_proxy(kind: str, upstream: procs.Proc, logdir: Path) -> procs.Proc:
    port = procs.free_port()
    argv = [sys.executable, "-m", "bench.floor", "--serve", kind, "--upstream", upstream.url, "--port", str(port)]
    proc = procs.spawn(kind, argv, port, logdir)
    _wait_port(proc)
    return proc


def _wait_port(proc: procs.Proc) -> None:
    import socket
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited: {proc.log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", proc.port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not listen")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seq-n", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/floor.json"))
    parser.add_argument("--granian", action="store_true", help="also the raw forward and llmgw on Granian")
    parser.add_argument("--serve", choices=TARGETS[:3], help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.upstream, args.port)
        return 0
    rounds: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="llmgw-floor-") as tmp:
        logdir = Path(tmp)
        upstream = procs.start_upstream(logdir)
        started = [upstream]
        try:
            targets: list[procs.Proc] = []
            for kind in TARGETS[:3]:
                targets.append(start_proxy(kind, upstream, logdir))
                started.append(targets[-1])
            port = procs.free_port()
            config = logdir / "llmgw.yaml"
            config.write_text(yaml.safe_dump(procs.gateway_config(upstream.url, logdir / "llmgw.db", port)))
            llmgw = Path(sys.executable).with_name("llmgw")
            gw = procs.spawn("llmgw", [str(llmgw), "serve", "--config", str(config), "--port", str(port),
                                       "--log-level", "warning"], port, logdir)  # fmt: skip
            started.append(gw)
            procs.wait_http(gw, "/readyz", 90)
            targets.append(gw)
            if args.granian:
                targets.append(start_granian("proxy_raw_granian", procs.free_port(),
                                             {"LLMGW_FLOOR_UPSTREAM": upstream.url}, logdir))  # fmt: skip
                started.append(targets[-1])
                port = procs.free_port()
                config2 = logdir / "llmgw_granian.yaml"
                config2.write_text(yaml.safe_dump(procs.gateway_config(upstream.url, logdir / "g.db", port)))
                targets.append(start_granian("llmgw_granian", port, {"LLMGW_FLOOR_CONFIG": str(config2)}, logdir))
                started.append(targets[-1])
                procs.wait_http(targets[-1], "/readyz", 90)
            pids = {p.name: p.popen.pid for p in targets}
            for r in range(args.rounds):
                order = targets if r % 2 == 0 else targets[::-1]  # no target always follows another
                report = procs.run_load([("direct", upstream.url), *order], pids, "seq",
                                        ["--seq-n", str(args.seq_n), "--seq-block", "100", "--warmup", "100",
                                         "--key", f"llmgw_granian={procs.GATEWAY_KEY}"],
                                        logdir / f"round{r}.json", 1800)["results"]  # fmt: skip
                row: dict[str, dict[str, float]] = {}
                direct = report["direct"]["seq"]["latency_ms"]
                for t in targets:
                    summary = report[t.name]["seq"]
                    if not summary["latency_ms"]:
                        raise RuntimeError(f"{t.name}: no request answered: {json.dumps(summary)[:600]}")
                    row[t.name] = {
                        "added_p50_ms": summary["latency_ms"]["p50"] - direct["p50"],
                        "added_p99_ms": summary["latency_ms"]["p99"] - direct["p99"],
                        "cpu_ms_per_request": cpu_ms(summary, t.name),
                    }
                row["direct"] = {"p50_ms": direct["p50"], "p99_ms": direct["p99"]}
                rounds.append(row)
                print(json.dumps({"round": r + 1, **row}), flush=True)
        finally:
            for proc in reversed(started):
                proc.stop()
    medians = {
        name: {k: round(statistics.median(r[name][k] for r in rounds), 3) for k in rounds[0][name]}
        for name in rounds[0]
    }
    print(f"{'target':16} {'added p50':>10} {'added p99':>10} {'CPU/request':>12}  (medians of {len(rounds)} rounds)")
    for name in [t.name for t in targets]:
        m = medians[name]
        print(f"{name:16} {m['added_p50_ms']:>9.3f}ms {m['added_p99_ms']:>9.3f}ms {m['cpu_ms_per_request']:>10.3f}ms")
    print(f"direct p50 {medians['direct']['p50_ms']:.3f} ms, p99 {medians['direct']['p99_ms']:.3f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rounds": rounds, "medians": medians, "seq_n": args.seq_n}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

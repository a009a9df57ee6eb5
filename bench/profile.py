"""Profile llmgw's request path with cProfile: non-streamed, optional stages off, bench upstream.

    python -m bench.profile --requests 3000       # prints top entries by cumulative and by tottime

Starts ``bench.upstream`` and ``llmgw serve`` (the bench's config, see ``procs.gateway_config``)
under ``python -m cProfile``, sends ``--requests`` sequential non-streamed requests with
``bench.load`` (phase ``seq``), stops the gateway with SIGTERM (cProfile writes its file on the
normal exit) and prints the top ``--top`` functions by cumulative and by own time, each as a
share of the total profiled time. Start-up is in the profile too; with a few thousand requests it
is a small part of the total, and its entries (imports) are easy to tell apart.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import signal
import sys
import tempfile
from pathlib import Path

import yaml

from bench import procs

#: Runs ``llmgw`` with cProfile enabled from SIGUSR1 (after start-up and warm-up, so imports stay
#: out) on the event loop's thread, and writes the stats on SIGTERM. uvicorn restores the handler it
#: found and re-raises the signal after its graceful shutdown, so this handler runs last.
_WRAPPER = """
import cProfile, signal, sys
prof_path = sys.argv[1]
sys.argv = ["llmgw", *sys.argv[2:]]
profiler = cProfile.Profile()
def dump(signum=None, frame=None):
    profiler.disable()
    profiler.dump_stats(prof_path)
    sys.exit(0)
signal.signal(signal.SIGTERM, dump)
signal.signal(signal.SIGUSR1, lambda signum, frame: profiler.enable())
from llmgw.cli import main
try:
    main()
finally:
    dump()
"""


def top(stats: pstats.Stats, key: str, n: int) -> list[tuple[str, float, float, int]]:
    """(function, share of total time, seconds, calls) for the ``n`` first entries by ``key``."""
    total = stats.total_tt  # type: ignore[attr-defined]
    raw = stats.stats  # type: ignore[attr-defined]
    index = 3 if key == "cumulative" else 2
    rows = sorted(raw.items(), key=lambda kv: kv[1][index], reverse=True)[:n]
    out = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in rows:
        where = f"{Path(file).name}:{line}" if line else file
        secs = ct if key == "cumulative" else tt
        out.append((f"{func} ({where})", secs / total if total else 0.0, secs, nc))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", type=Path, help="keep the .prof file here")
    args = parser.parse_args(argv)
    logdir = Path(tempfile.mkdtemp(prefix="llmgw-profile-"))
    prof = args.out or logdir / "llmgw.prof"
    upstream = procs.start_upstream(logdir)
    gateway = None
    try:
        port = procs.free_port()
        config = logdir / "llmgw.yaml"
        config.write_text(yaml.safe_dump(procs.gateway_config(upstream.url, logdir / "llmgw.db", port)))
        gw_argv = [sys.executable, "-c", _WRAPPER, str(prof), "serve", "--config", str(config),
                   "--port", str(port), "--log-level", "warning"]  # fmt: skip
        gateway = procs.spawn("llmgw", gw_argv, port, logdir)
        procs.wait_http(gateway, "/readyz", 90)
        warm = ["--seq-n", "200", "--seq-block", "200", "--warmup", "0"]
        procs.run_load([gateway], {}, "seq", warm, logdir / "warm.json", 120)
        os.kill(gateway.pid, signal.SIGUSR1)
        load_args = ["--seq-n", str(args.requests), "--seq-block", str(args.requests), "--warmup", "0"]
        procs.run_load([gateway], {}, "seq", load_args, logdir / "load.json", 60 + args.requests * 0.1)
    finally:
        if gateway is not None:
            gateway.stop(60)
        upstream.stop()
    stats = pstats.Stats(str(prof), stream=io.StringIO())
    idle = max((tt for (_f, _l, func), (_c, _n, tt, _ct, _cl) in stats.stats.items()  # type: ignore[attr-defined]
                if func in ("run", "run_forever", "select")), default=0.0)  # fmt: skip
    print(f"profile: {prof}, {args.requests} sequential non-streamed requests, "
          f"total {stats.total_tt:.2f} s, of which idle in the event loop {idle:.2f} s")  # type: ignore[attr-defined]  # fmt: skip
    for key in ("cumulative", "tottime"):
        print(f"\n| by {key} | share | s | calls |\n|---|---|---|---|")
        for name, frac, secs, calls in top(stats, key, args.top):
            print(f"| `{name}` | {frac:.1%} | {secs:.2f} | {calls} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

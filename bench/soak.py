"""Soak and shutdown checks: gateway RSS under a long load, and no lost rows after SIGTERM.

    .venv/bin/python -m bench.soak --minutes 10      # RSS soak, then the SIGTERM test
    .venv/bin/python -m bench.soak --sigterm-only    # just the SIGTERM test (~15 s)

RSS soak: llmgw (optional stages off) under ``--concurrency`` workers, half of them streaming,
for ``--minutes``; the gateway's RSS is sampled every ``--sample-s`` seconds. "Flat" compares
the last sample with the first one after warm-up (the first minute, or 10% of a shorter run).
After a graceful stop the ``requests`` table must hold one row per answered request.

SIGTERM test: the same mixed load against a fresh gateway whose upstream paces its chunks
(``--chunk-delay-ms``, so streams are in flight), SIGTERM to the gateway mid-load, then the rows
in its SQLite ``requests`` table are compared with the answers the load generator received
(any HTTP status, including streams cut after their headers). Zero lost rows is the target.
Connection errors with no answer (refused after the listener closed) are counted apart: those
requests never reached the gateway.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import procs
from bench.procstat import rss_bytes

MIB = 1024 * 1024


def load_argv(gateway: procs.Proc, upstream: procs.Proc, duration: float, concurrency: int, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "bench.load", "--phases", "mixed", "--warmup", "0", "--out", str(out),
        "--duration", str(duration), "--concurrency", str(concurrency), "--max-requests", "100000000",
        "--target", f"llmgw={gateway.url}", "--model", f"llmgw={procs.MODEL}",
        "--key", f"llmgw={procs.GATEWAY_KEY}",
        "--pid", f"llmgw={gateway.pid}", "--pid", f"upstream={upstream.pid}",
    ]  # fmt: skip


def db_rows(db: Path) -> dict[str, int]:
    """Rows of the ``requests`` table by status."""
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT status, COUNT(*) FROM requests GROUP BY status").fetchall())


def answered(statuses: dict[str, int]) -> int:
    """Requests the gateway answered with some HTTP status (even if the stream broke later)."""
    return sum(n for status, n in statuses.items() if status[:1].isdigit() or status in ("no_done", "bad_body"))


def rss_soak(logdir: Path, minutes: float, concurrency: int, sample_s: float) -> dict[str, Any]:
    """Sample llmgw's RSS over a mixed load of ``minutes``; then stop it and count rows."""
    duration = minutes * 60
    upstream = procs.start_upstream(logdir)
    db = logdir / "soak.db"
    gateway = procs.start_gateway(logdir, upstream, db)
    samples: list[tuple[float, int]] = [(0.0, rss_bytes(gateway.pid))]
    out = logdir / "soak-load.json"
    try:
        load = subprocess.Popen(load_argv(gateway, upstream, duration, concurrency, out), cwd=procs.ROOT)
        t0 = time.monotonic()
        while load.poll() is None and time.monotonic() - t0 < duration + 120:
            time.sleep(min(sample_s, max(0.1, duration + 1 - (time.monotonic() - t0))))
            samples.append((round(time.monotonic() - t0, 1), rss_bytes(gateway.pid)))
        if load.wait(60) != 0:
            raise RuntimeError(f"load generator failed with {load.returncode}")
    finally:
        gateway.stop(90)
        upstream.stop()
    result = json.loads(out.read_text())["results"]["llmgw"]["mixed"]
    warm_at = min(60.0, duration * 0.1)
    warm = next((rss for t, rss in samples if t >= warm_at), samples[-1][1])
    last, peak = samples[-1][1], max(rss for _, rss in samples)
    rows = db_rows(db)
    return {
        "minutes": minutes,
        "concurrency": concurrency,
        "requests_per_s": result.get("rate_per_s"),
        "statuses": result["statuses"],
        "cpu_pct": result.get("cpu_pct"),
        "rss_mib": {
            "before_load": round(samples[0][1] / MIB, 1),
            "after_warmup": round(warm / MIB, 1),
            "warmup_s": warm_at,
            "last": round(last / MIB, 1),
            "max": round(peak / MIB, 1),
        },
        "growth_after_warmup_pct": round(100.0 * (last - warm) / warm, 1) if warm else None,
        "samples": [(t, round(rss / MIB, 1)) for t, rss in samples],
        "rows": sum(rows.values()),
        "rows_by_status": rows,
        "lost_rows": max(0, answered(result["statuses"]) - sum(rows.values())),
    }


def sigterm_test(logdir: Path, concurrency: int, chunk_delay_ms: float, kill_after_s: float) -> dict[str, Any]:
    """SIGTERM the gateway under load; compare its stored rows with the answers clients got."""
    upstream = procs.start_upstream(logdir, chunk_delay_ms=chunk_delay_ms)
    db = logdir / "sigterm.db"
    gateway = procs.start_gateway(logdir, upstream, db)
    out = logdir / "sigterm-load.json"
    try:
        duration = kill_after_s + 5
        load = subprocess.Popen(load_argv(gateway, upstream, duration, concurrency, out), cwd=procs.ROOT)
        time.sleep(kill_after_s)
        t_kill = time.monotonic()
        os.kill(gateway.pid, signal.SIGTERM)  # the gateway process only, as an orchestrator would
        code = gateway.popen.wait(120)
        shutdown_s = time.monotonic() - t_kill
        if load.wait(120) != 0:
            raise RuntimeError(f"load generator failed with {load.returncode}")
    finally:
        gateway.stop()
        upstream.stop()
    result = json.loads(out.read_text())["results"]["llmgw"]["mixed"]
    rows = db_rows(db)
    got = answered(result["statuses"])
    stored = sum(rows.values())
    return {
        "concurrency": concurrency,
        "chunk_delay_ms": chunk_delay_ms,
        "sigterm_after_s": kill_after_s,
        "shutdown_s": round(shutdown_s, 2),
        "exit_code": code,
        "client_statuses": result["statuses"],
        "answered": got,
        "rows": stored,
        "rows_by_status": rows,
        "lost_rows": max(0, got - stored),
        "extra_rows": max(0, stored - got),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the RSS soak")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--sigterm-only", action="store_true")
    parser.add_argument("--no-sigterm", action="store_true")
    parser.add_argument("--chunk-delay-ms", type=float, default=2.0, help="upstream pacing in the SIGTERM test")
    parser.add_argument("--sigterm-after-s", type=float, default=4.0)
    parser.add_argument(
        "--out", type=Path, help="default bench/results/<date>-soak.json (-sigterm.json with --sigterm-only)"
    )
    args = parser.parse_args(argv)
    started = dt.datetime.now().astimezone()
    logdir = Path(tempfile.mkdtemp(prefix="llmgw-soak-"))
    print(f"soak: logs and databases in {logdir}", file=sys.stderr, flush=True)
    report: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.soak", *sys.argv[1:]]),
    }
    if not args.sigterm_only:
        report["rss_soak"] = soak = rss_soak(logdir, args.minutes, args.concurrency, args.sample_s)
        print(f"soak: RSS {soak['rss_mib']}, growth {soak['growth_after_warmup_pct']}%, "
              f"{soak['requests_per_s']} req/s, lost rows {soak['lost_rows']}", file=sys.stderr)  # fmt: skip
    if not args.no_sigterm:
        report["sigterm"] = term = sigterm_test(logdir, args.concurrency, args.chunk_delay_ms, args.sigterm_after_s)
        print(f"soak: SIGTERM: answered {term['answered']}, rows {term['rows']}, lost {term['lost_rows']}, "
              f"shutdown {term['shutdown_s']}s, clients {term['client_statuses']}",
              file=sys.stderr)  # fmt: skip
    suffix = "sigterm" if args.sigterm_only else "soak"
    out = args.out or procs.BENCH / "results" / f"{started:%Y-%m-%d}-{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"soak: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

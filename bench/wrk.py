"""A throughput phase driven by ``wrk`` (C, one epoll thread) instead of bench.load (Python, aiohttp).

On a 2-core machine the load generator shares the cores with the gateway and the upstream. bench.load
is Python: at ~1,500 req/s it takes a good part of a core, and that core is then not there for a second
gateway worker. ``wrk`` sends the same non-streamed chat request over the same number of keep-alive
connections for a fraction of that CPU, so a workers comparison measures the gateway rather than its
load generator. Used by ``bench.workers --loadgen wrk``; Debian: ``apt-get install wrk``.

Every response is counted: wrk reports non-2xx answers and socket errors, and a phase with any of them
is reported as failed, not as a rate. Latency percentiles come from wrk's own histogram (microseconds).
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import procstat

MARK = "WRK-SUMMARY "
SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {auth}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
    .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal of ASCII text is a valid Lua string literal


def _body(model: str) -> str:
    question = "Say something, about fifty tokens long."  # bench.load's question and cap
    return json.dumps({"model": model, "messages": [{"role": "user", "content": question}], "max_tokens": 64})


def check_once(url: str, key: str, model: str) -> None:
    """One request through urllib first: a phase must measure real chat completions, not fast errors."""
    request = urllib.request.Request(
        f"{url}/chat/completions",
        data=_body(model).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    if not answer.get("choices"):
        raise RuntimeError(f"{url}: not a chat completion: {answer!r:.200}")


def _machine_busy_s() -> float:
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / procstat.CLK_TCK


def tput(url: str, key: str, model: str, pids: dict[str, int], concurrency: int = 32,
         duration: float = 15.0, warmup: float = 2.0) -> dict[str, Any]:  # fmt: skip
    """Requests/s and latency at ``concurrency`` connections for ``duration`` seconds, after a warm-up,
    with the CPU (% of one core) of each process tree in ``pids``, of wrk itself and of the rest."""
    check_once(url, key, model)
    with tempfile.TemporaryDirectory(prefix="llmgw-wrk-") as tmp:
        script = Path(tmp) / "chat.lua"
        script.write_text(SCRIPT.format(body=_lua_string(_body(model)), auth=_lua_string(f"Bearer {key}"), mark=MARK))
        base = ["wrk", "-t1", f"-c{concurrency}", "--timeout", "10s", "-s", str(script), f"{url}/chat/completions"]
        subprocess.run([*base[:1], f"-d{warmup:g}s", *base[1:]], check=True, capture_output=True, timeout=warmup + 60)
        trees = {name: procstat.descendants(pid) for name, pid in pids.items()}
        before = {name: sum(procstat.cpu_seconds(p) for p in tree) for name, tree in trees.items()}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        machine, wall = _machine_busy_s(), time.perf_counter()
        run = subprocess.run([*base[:1], f"-d{duration:g}s", *base[1:]], check=True, capture_output=True,
                             text=True, timeout=duration + 60)  # fmt: skip
        wall = time.perf_counter() - wall
        machine = _machine_busy_s() - machine
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = {name: sum(procstat.cpu_seconds(p) for p in tree) - before[name] for name, tree in trees.items()}
    used["wrk"] = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    used["other"] = max(0.0, machine - sum(used.values()))
    line = next(x for x in run.stdout.splitlines() if x.startswith(MARK))
    summary = json.loads(line[len(MARK) :])
    errors = {k: summary[k] for k in ("connect", "read", "write", "status", "timeout") if summary[k]}
    seconds = summary["duration_us"] / 1e6
    return {
        "loadgen": "wrk",
        "requests": summary["requests"],
        "rate_per_s": summary["requests"] / seconds if not errors else 0.0,
        "errors": errors,
        "latency_ms": {p: summary[f"{p}_us"] / 1000 for p in ("p50", "p90", "p99", "mean")},
        "cpu_pct": {name: round(100.0 * v / wall, 1) for name, v in used.items()},
        "concurrency": concurrency,
        "duration_s": round(seconds, 2),
    }

"""How long a full garbage collection stalls a serving process, before and after ``gc.freeze()``.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python -m bench.gc_pause [--guards]

Builds the gateway of bench.run (every optional stage off; ``--guards`` adds the input and output
guards with the default policy, so their models are loaded), runs its start-up, then times
``gc.collect(0/1/2)`` three times each: as the process is, and after ``llmgw.cli.freeze_startup_heap``
(what ``llmgw serve`` does once its start-up is done). A generation-2 collection runs on the thread that
happens to allocate when the thresholds trip, which under load is the event loop: its time is a stall
of every request in flight. Writes ``bench/results/gc_pause[-guards].json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from litestar.testing import TestClient

from bench import procs
from llmgw.app import create_app
from llmgw.cli import freeze_startup_heap
from llmgw.config import parse_config

RESULTS = Path(__file__).with_name("results")


def collections(rounds: int = 3) -> dict[str, float]:
    out = {}
    for generation in (0, 1, 2):
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            gc.collect(generation)
            times.append((time.perf_counter() - started) * 1000)
        out[f"gen{generation}_ms"] = round(statistics.median(times), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guards", action="store_true", help="also load the guards (default policy)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="llmgw-gc-"))
    settings: dict[str, Any] = procs.gateway_config("http://127.0.0.1:9/v1", tmp / "gw.db", 0)
    if args.guards:
        settings["guards"] = {"enabled": True, "hash_salt": "bench"}
        settings["routes"]["default"]["stages"].update(input_guards=True, output_guards=True)
    app = create_app(parse_config(settings))
    with TestClient(app) as client:  # the application's start-up (models, storage writer) runs here
        assert client.get("/readyz").status_code == 200
        tracked = len(gc.get_objects())
        before = collections()
        frozen = freeze_startup_heap()
        after = collections()
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "python -m bench.gc_pause" + (" --guards" if args.guards else ""),
        "tracked_objects": tracked,
        "frozen_objects": frozen,
        "as_started": before,
        "after_freeze": after,
    }
    out = RESULTS / f"gc_pause{'-guards' if args.guards else ''}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

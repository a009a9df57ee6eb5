"""Eval harness speed: a 2-variant x 200-case suite against the stub upstream, then its rerun.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.evals

The stub is the tests' local OpenAI-compatible server; the gateway runs for real on a port and
the suite goes through it with ``llmgw eval run --url``. The rerun is served from the answer cache.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import yaml

from llmgw.cli import main as llmgw
from llmgw.config import parse_config
from tests.conftest import ADMIN_KEY, RunningGateway, base_config
from tests.upstream import FakeUpstream


def main() -> None:
    upstream = FakeUpstream().start()
    tmp = Path(tempfile.mkdtemp())
    gateway = RunningGateway(parse_config(base_config(upstream.base_url, f"sqlite:///{tmp}/gw.db"))).start()
    cases = [{"id": f"c{i}", "input": f"#echo answer {i}", "expected": f"answer {i}"} for i in range(200)]
    suite = {
        "dataset": {"inline": cases},
        "checks": [{"type": "contains"}],
        "concurrency": 16,
        "variants": [{"name": "a", "model": "test-model"}, {"name": "b", "model": "other-model"}],
    }
    (tmp / "suite.yaml").write_text(yaml.safe_dump(suite))
    timings = {}
    try:
        for label in ("first_run_s", "rerun_s"):
            started = time.perf_counter()
            llmgw(
                [
                    "eval",
                    "run",
                    str(tmp / "suite.yaml"),
                    "--url",
                    gateway.url,
                    "--key",
                    ADMIN_KEY,
                    "--out",
                    str(tmp / "out"),
                    "-o",
                    str(tmp / "report.json"),
                    "--quiet",
                ]
            )
            timings[label] = round(time.perf_counter() - started, 3)
    finally:
        gateway.stop()
        upstream.stop()
    print(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cases": 200, "variants": 2, **timings}))


if __name__ == "__main__":
    main()

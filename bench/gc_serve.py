"""``llmgw serve`` with every generation-2 collection's duration written to stderr (``GC2 <ms>``).

Used by bench.gc_freeze. ``LLMGW_BENCH_NO_FREEZE=1`` leaves the start-up heap unfrozen (the serve of
before 2026-12-04) for the comparison; nothing else differs.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from typing import Any

_started: list[float] = [0.0]


def _timed(phase: str, info: dict[str, Any]) -> None:
    if info["generation"] != 2:
        return
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        sys.stderr.write(f"GC2 {(time.perf_counter() - _started[0]) * 1000:.2f}\n")


if __name__ == "__main__":
    gc.callbacks.append(_timed)
    import llmgw.cli as cli

    if os.environ.get("LLMGW_BENCH_NO_FREEZE"):
        cli.freeze_startup_heap = lambda: 0
    sys.exit(cli.main(sys.argv[1:]))

#!/usr/bin/env python
"""Train the output-moderation guard from ``../shared/data`` (reproducible; see
``scripts/guard_training/moderation.py`` for the method and ``guardrails/models/moderation.md`` for
the data card it writes).

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/train_moderation.py [--no-loso]

Vectors are cached under ``--cache`` (default ``$LLMGW_VECTOR_CACHE`` or ``$TMPDIR/llmgw-moderation-vectors``;
not committed): a cold run embeds ~25k texts once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

from guard_training.config import REPO  # noqa: E402
from guard_training.data import default_data_dir  # noqa: E402
from guard_training.moderation import train  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "guardrails" / "models")
    default_cache = os.environ.get("LLMGW_VECTOR_CACHE") or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), "llmgw-moderation-vectors"
    )
    ap.add_argument("--cache", type=Path, default=Path(default_cache))
    ap.add_argument("--no-loso", action="store_true", help="skip the leave-one-dataset-out runs")
    args = ap.parse_args(argv)
    with threadpool_limits(limits=1, user_api="blas"):
        train(args.data or default_data_dir(), args.cache, args.out, run_loso=not args.no_loso)


if __name__ == "__main__":
    main()

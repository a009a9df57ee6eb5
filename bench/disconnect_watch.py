"""What watching for a client's disconnect costs a request (``api.common.unless_client_leaves``).

    .venv/bin/python -m bench.disconnect_watch [--calls 20000]

The chat, messages and responses handlers run the pipeline under a watch that cancels it when the
client leaves before the answer is ready; the watch itself (a task reading the connection) starts only
once an answer has taken ``WATCH_AFTER_S``. This times that wrapper around an awaitable that returns at
once (what every fast answer pays: a timer set and cancelled) against the bare await, on uvloop as
``llmgw serve`` runs. A timing, so it lives here and never in a test.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import uvloop

from llmgw.api.common import unless_client_leaves


class _Connection:
    """A request whose client never leaves: ``receive`` waits, as an ASGI server's does after the body."""

    def __init__(self) -> None:
        self._never = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self._never.wait()
        return {"type": "http.disconnect"}


async def _answer() -> int:
    return 1


async def _main(calls: int) -> None:
    request: Any = _Connection()
    for _ in range(2000):  # warm-up
        await unless_client_leaves(request.receive, _answer())
    t0 = time.perf_counter()
    for _ in range(calls):
        await unless_client_leaves(request.receive, _answer())
    watched = (time.perf_counter() - t0) / calls * 1e6
    t0 = time.perf_counter()
    for _ in range(calls):
        await _answer()
    bare = (time.perf_counter() - t0) / calls * 1e6
    print(f"watched {watched:.1f} µs, bare {bare:.2f} µs: the watch costs {watched - bare:.1f} µs per request")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20000)
    uvloop.run(_main(ap.parse_args().calls))


if __name__ == "__main__":
    main()

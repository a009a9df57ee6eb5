"""Retries with full-jitter exponential backoff, before the first byte only.

Once a stream has yielded a chunk to the client it is never retried: the client would see the
answer twice. The deadline of the request bounds every wait.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from llmgw.errors import UpstreamError

T = TypeVar("T")

MAX_RETRY_AFTER_S = 3600.0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait, from an upstream's ``Retry-After`` (delta-seconds or an HTTP-date, RFC 9110).

    Whatever an upstream sends is passed on to clients and steers our own retries, so it is
    made sane here: a negative delay or a date in the past is 0, a delay is capped at
    :data:`MAX_RETRY_AFTER_S`, and anything unreadable (``nan``, ``inf``, garbage) is ``None``,
    meaning no advice.
    """
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" dates: RFC 9110 dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


_DURATION = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:h|ms|us|µs|ns|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_NUMBER = re.compile(r"[\d.]+")


def parse_reset(value: str | None) -> float | None:
    """Seconds, from an ``x-ratelimit-reset-*`` header: OpenAI sends Go durations (``1s``, ``6m0s``,
    ``20ms``, ``1h2m3.5s``). Anything else is ``None``; the result is capped as ``Retry-After`` is."""
    text = (value or "").strip()
    if not text or _DURATION.sub("", text):  # empty, or something besides durations
        return None
    seconds = 0.0
    for part in _DURATION.findall(text):
        number = _NUMBER.match(part)
        assert number is not None  # the pattern begins with a number
        seconds += float(number.group()) * _UNIT_S[part[number.end() :]]
    return min(seconds, MAX_RETRY_AFTER_S)


def reset_advice(headers: Mapping[str, str]) -> float | None:
    """Seconds until the limit a 429 hit resets, from OpenAI's ``x-ratelimit-reset-requests`` and
    ``-tokens``: the one whose ``x-ratelimit-remaining-*`` is 0 (that limit refused the request),
    else the later of the two (waiting for the earlier could meet the same refusal again)."""
    resets = {kind: parse_reset(headers.get(f"x-ratelimit-reset-{kind}")) for kind in ("requests", "tokens")}
    spent = [s for k, s in resets.items() if s is not None and remaining(headers, k) == "0"]
    known = spent or [s for s in resets.values() if s is not None]
    return max(known) if known else None


def remaining(headers: Mapping[str, str], kind: str) -> str:
    return (headers.get(f"x-ratelimit-remaining-{kind}") or "").strip()


def retry_advice(headers: Mapping[str, str], rate_limited: bool = False) -> float | None:
    """Seconds to wait, from an upstream error's headers: ``retry-after-ms`` (OpenAI's and Azure's,
    read first by their SDKs; milliseconds) when it is readable, else ``Retry-After``, else, for a
    429 (``rate_limited``), the ``x-ratelimit-reset-*`` of the limit it hit (:func:`reset_advice`;
    OpenAI sends a 429 with those alone). The retry loop bounds any of them by the deadline."""
    text = (headers.get("retry-after-ms") or "").strip()
    try:
        millis = float(text)
    except ValueError:
        millis = math.nan
    if math.isfinite(millis):
        return min(max(millis / 1000, 0.0), MAX_RETRY_AFTER_S)
    advice = parse_retry_after(headers.get("retry-after"))
    if advice is None and rate_limited:
        return reset_advice(headers)
    return advice


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2**attempt)]."""
    delay = random.uniform(0.0, min(cap, base * (2**attempt)))
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    base: float,
    cap: float,
    deadline: float,
    on_retry: Callable[[int, UpstreamError], None] | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or the deadline leaves no room."""
    tries = 0
    while True:
        try:
            return await attempt()
        except UpstreamError as exc:
            if not exc.retryable or tries >= max_retries:
                raise
            delay = backoff_delay(tries, base, cap, exc.retry_after)
            if time.monotonic() + delay >= deadline:
                raise
            tries += 1
            if on_retry is not None:
                on_retry(tries, exc)
            await asyncio.sleep(delay)

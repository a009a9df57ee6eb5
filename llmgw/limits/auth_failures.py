"""Failed authentications per client address, so a flood of made-up keys cannot reach the database.

Every distinct ``sk-llmgw-…`` key that this replica does not know costs one database read (it may
have been created a moment ago on another replica). The negative cache in :class:`~llmgw.keys.KeyStore`
makes a repeated key free; this bounds *distinct* ones: once an address has failed
``per_minute`` times in the current minute, keys that would need the database are refused with
429 until the minute ends. Keys this replica already knows keep working for that address.

Per process and in memory, on purpose: it must work while Redis or the database is down, and the
bound it gives (``per_minute`` reads per address per replica) is what matters. IPv6 addresses are
counted per /64, the block one host usually holds, so rotating addresses inside it does not help.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

WINDOW_S = 60.0


def client_bucket(address: str | None) -> str:
    """The unit a limit applies to: an IPv4 address, an IPv6 /64, or ``-`` when unknown."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class AuthFailures:
    """Fixed one-minute windows of failures per client bucket; at most ``max_clients`` are tracked."""

    def __init__(
        self, per_minute: int, max_clients: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self.max_clients = max_clients
        self.clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # bucket -> (window start, failures)

    def wait_s(self, address: str | None) -> float:
        """Seconds until this client may try an unknown key again; 0 when it may now."""
        bucket = client_bucket(address)
        window = self._windows.get(bucket)
        if window is None:
            return 0.0
        start, failures = window
        left = start + WINDOW_S - self.clock()
        return left if left > 0 and failures >= self.per_minute else 0.0

    def record(self, address: str | None) -> None:
        bucket = client_bucket(address)
        now = self.clock()
        start, failures = self._windows.pop(bucket, (now, 0))
        if now - start >= WINDOW_S:
            start, failures = now, 0
        self._windows[bucket] = (start, failures + 1)  # re-inserted: the dict stays oldest-first
        while len(self._windows) > self.max_clients:
            del self._windows[next(iter(self._windows))]

"""A key written on a replica while that replica is reading keys from the database, through a real gateway.

Each replica keeps the active keys in memory and reloads them every ``auth.key_refresh_s`` (and reads
an unseen ``sk-llmgw-…`` key once). Before the fix a read that started before a local write and
ended after it installed what it had read over that write:

- a key revoked through the admin API while the periodic refresh was between its read and its
  install came back: accepted again until the next refresh (``key_refresh_s``), on SQLite and
  PostgreSQL alike;
- the same for a key revoked while a request's lookup of that (unseen) key was reading it: its
  answer was put in memory after the revoke, and the key kept working until the next refresh;
- a key created during a refresh was dropped from memory: its first request cost a database read.

The reads are held with :class:`HeldReads` (each read really runs, then waits to be released), so
every interleaving here is forced, not hoped for.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from llmgw.keys import KeyStore
from tests.conftest import RunningGateway

ASK: dict[str, Any] = {"model": "test-model", "messages": [{"role": "user", "content": "who am i"}]}


class HeldReads:
    """Wraps one of a :class:`KeyStore`'s reads: each call reads for real, then waits to be released.

    :meth:`next` answers the release of the next call that has read; :meth:`close` releases every
    call, now and later (a gateway stopping waits for its threads); ``calls`` counts them all.
    """

    def __init__(self, store: KeyStore, method: str, closed: bool = False) -> None:
        self.original = getattr(store, method)
        self.held: queue.Queue[threading.Event] = queue.Queue()
        self.released: list[threading.Event] = []
        self.closed = closed
        self.calls = 0

        def held(*args: Any) -> Any:
            result = self.original(*args)
            self.calls += 1
            if not self.closed:
                release = threading.Event()
                self.released.append(release)
                self.held.put(release)
                release.wait(60)
            return result

        setattr(store, method, held)

    def next(self, timeout: float = 20) -> threading.Event:
        return self.held.get(timeout=timeout)

    def close(self) -> None:
        self.closed = True
        for release in self.released:
            release.set()


@pytest.fixture()
def hold() -> Iterator[Callable[..., HeldReads]]:
    made: list[HeldReads] = []

    def make(store: KeyStore, method: str, closed: bool = False) -> HeldReads:
        made.append(HeldReads(store, method, closed))
        return made[-1]

    yield make
    for held in made:
        held.close()


def status(client: openai.OpenAI) -> int:
    try:
        client.chat.completions.create(**ASK)
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def revoke(gw: RunningGateway, key_id: str) -> None:
    with gw.admin() as admin:
        answer = admin.delete(f"/admin/keys/{key_id}")
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("second_refresh", [False, True], ids=["periodic", "with-a-later-refresh-installed-first"])
def test_a_key_revoked_during_a_refresh_stays_revoked(
    db_url: str,  # first: the database outlives the gateways on it
    make_gateway: Callable[..., RunningGateway],
    hold: Callable[..., HeldReads],
    second_refresh: bool,
) -> None:
    """``second_refresh``: a refresh that read after the revoke installs before the held one does (two
    refreshes in flight); the older snapshot must not then undo the revoke either."""
    gw = make_gateway(db_url, auth={"key_refresh_s": 0.2})
    created = gw.create_key(name="revoked-mid-refresh")
    client = gw.client(created["key"])
    assert status(client) == 200
    refreshes = hold(gw.gateway.keys, "_read_active")
    first = refreshes.next()  # the periodic refresh has read the table: the key is active there
    revoke(gw, created["id"])
    assert status(client) == 401  # refused at once by the replica that revoked it
    if second_refresh:
        later = threading.Thread(target=gw.gateway.keys.refresh)
        later.start()
        refreshes.next().set()
        later.join(20)
        assert status(client) == 401
    first.set()  # the refresh installs what it read before the revoke
    refreshes.next()  # the next refresh has read: the first one's install is done
    assert status(client) == 401, "the revoked key works again until the next refresh"


def test_a_key_revoked_while_its_lookup_reads_it_stays_revoked(
    db_url: str, make_gateway: Callable[..., RunningGateway], hold: Callable[..., HeldReads]
) -> None:
    """The key was created on another replica, so this one reads it on its first request."""
    auth = {"key_refresh_s": 60}  # no periodic refresh in the way: only the lookup reads
    here, there = make_gateway(db_url, auth=auth), make_gateway(db_url, auth=auth)
    created = there.create_key(name="looked-up")
    client = here.client(created["key"])
    lookups = hold(here.gateway.keys, "_read_one")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(status, client)
        release = lookups.next()  # this replica has read the key from the database: active
        revoke(here, created["id"])
        release.set()
        assert first.result(20) == 401  # its lookup finished after the revoke answered: refused too
    assert status(client) == 401, "the revoked key is served from memory until the next refresh"


def test_a_key_created_during_a_refresh_stays_in_memory_and_a_revoke_elsewhere_still_reaches_it(
    db_url: str, make_gateway: Callable[..., RunningGateway], hold: Callable[..., HeldReads]
) -> None:
    refresh_s = 0.2
    here, there = make_gateway(db_url, auth={"key_refresh_s": refresh_s}), make_gateway(db_url)
    refreshes = hold(here.gateway.keys, "_read_active")
    first = refreshes.next()  # a refresh has read the table, before the key exists
    created = here.create_key(name="created-mid-refresh")
    first.set()
    refreshes.next()  # the first refresh has installed its snapshot; the next one is held after its read
    lookups = hold(here.gateway.keys, "_read_one", closed=True)  # counts the lookups, holds none
    client = here.client(created["key"])
    assert status(client) == 200
    assert lookups.calls == 0, "the new key was dropped from memory: its first request read the database"
    refreshes.close()
    # what this replica wrote is no longer laid over its snapshots once they have read it: a revoke
    # through another replica reaches it within the refresh interval, as before
    revoke(there, created["id"])
    started = time.monotonic()
    while status(client) != 401:
        # a bound: 22 refresh intervals leave a busy machine room (4 of them + 2 s was close), and it stays
        # under the default key_refresh_s (5 s), so a replica that ignored refresh_s would still fail
        assert time.monotonic() - started < 4.5, "a revoke on another replica never arrived"
        time.sleep(0.05)

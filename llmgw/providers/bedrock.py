"""AWS Bedrock through the Converse API, with boto3 kept off the event loop.

boto3 is blocking, so every call runs in the provider's own thread pool (``max_concurrency`` threads).
A stream holds one thread for its whole life: that thread calls ``converse_stream``, reads the
botocore EventStream and hands events to the event loop through an ``asyncio.Queue``
(``call_soon_threadsafe``); a semaphore bounds how far it may read ahead of the consumer. Closing
the stream sets a stop flag and closes (shuts down) the HTTP response so the thread exits promptly.

What Bedrock sends is read through the size caps of :mod:`llmgw.providers.bedrock_caps`.

Retries are ours (:func:`with_retries`), botocore's are disabled. A stream is retried only until its
first event has arrived: an exception event in place of ``messageStart`` (a throttle, say) is still
"before the first byte" for the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llmgw.config import BedrockProviderConfig
from llmgw.errors import UpstreamError, UpstreamKind
from llmgw.providers.base import ProviderBase, UpstreamCall
from llmgw.providers.bedrock_caps import cap_client
from llmgw.providers.bedrock_translate import (
    StreamTranslator,
    classify_bedrock_error,
    from_converse,
    to_converse,
)
from llmgw.providers.retry import with_retries
from llmgw.providers.stops import requested

READ_AHEAD = 256  # events the reader thread may queue before waiting for the consumer
_EVENT, _END, _ERROR = "event", "end", "error"


def _close_event_stream(stream: Any) -> None:
    """Close a botocore EventStream, first shutting its socket so a blocked read returns (urllib3 >= 2.3)."""
    raw = getattr(stream, "_raw_stream", None)
    with contextlib.suppress(Exception):
        if raw is not None and hasattr(raw, "shutdown") and getattr(raw, "_sock_shutdown", None):
            raw.shutdown()
    with contextlib.suppress(Exception):
        stream.close()


class _StreamPump:
    """One executor thread: calls ``converse_stream``, reads its events, queues them for the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, start: Callable[[], dict[str, Any]]) -> None:
        self._loop = loop
        self._start = start
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._stop = threading.Event()
        self._slots = threading.Semaphore(READ_AHEAD)
        self._lock = threading.Lock()
        self._event_stream: Any = None
        self.finished = threading.Event()  # set when the thread has left run()

    def run(self) -> None:
        """The thread's body."""
        try:
            if self._stop.is_set():  # closed while queued behind other work
                return
            response = self._start()
            with self._lock:
                self._event_stream = response.get("stream")
                stopped = self._stop.is_set()
            if stopped or self._event_stream is None:
                if self._event_stream is None:
                    self._push((_ERROR, UpstreamError(UpstreamKind.PROTOCOL, "Bedrock returned no event stream")))
                return
            for event in self._event_stream:
                while not self._slots.acquire(timeout=0.1):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                self._push((_EVENT, event))
            self._push((_END, None))
        except BaseException as exc:  # noqa: BLE001 - delivered to the consumer, which raises it
            if not self._stop.is_set():
                self._push((_ERROR, exc))
        finally:
            self._close_stream()
            self.finished.set()

    def _push(self, item: tuple[str, Any]) -> None:
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self._stop.set()

    async def get(self) -> tuple[str, Any]:
        item = await self.queue.get()
        if item[0] == _EVENT:
            self._slots.release()
        return item

    def _close_stream(self) -> None:
        with self._lock:
            stream, self._event_stream = self._event_stream, None
        if stream is not None:
            _close_event_stream(stream)

    def close(self) -> None:
        """Stop the thread (from any thread) and release the HTTP response."""
        self._stop.set()
        self._close_stream()


class BedrockStream:
    """The async iterator of OpenAI chunks returned by :meth:`BedrockProvider.stream`."""

    def __init__(self, pump: _StreamPump, first: tuple[str, Any], translator: StreamTranslator) -> None:
        self._pump = pump
        self._pending: list[dict[str, Any]] = []
        self._translator = translator
        self._next: tuple[str, Any] | None = first
        self._done = False

    def __aiter__(self) -> BedrockStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while not self._pending:
            if self._done:
                raise StopAsyncIteration
            try:
                item = self._next or await self._pump.get()
            except BaseException:  # cancelled while waiting: the consumer is gone
                await self.aclose()
                raise
            self._next = None
            kind, value = item
            if kind == _END:
                await self.aclose()
                raise StopAsyncIteration
            if kind == _ERROR:
                await self.aclose()
                raise classify_bedrock_error(value) from value
            self._pending = self._translator.feed(value)
        return self._pending.pop(0)

    async def aclose(self) -> None:
        self._done = True
        self._pending = []
        self._pump.close()

    def __del__(self) -> None:  # dropped without aclose(): never leave the reader thread running
        self._pump.close()


class BedrockProvider(ProviderBase):
    """Chat completions from Bedrock's Converse/ConverseStream."""

    def __init__(self, name: str, config: BedrockProviderConfig) -> None:
        self.name = name
        self.config = config
        self.client: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._pumps: weakref.WeakSet[_StreamPump] = weakref.WeakSet()

    def _build_client(self) -> Any:
        import boto3
        from botocore.config import Config

        c = self.config
        session = boto3.session.Session(
            aws_access_key_id=c.access_key_id,
            aws_secret_access_key=c.secret_access_key,
            aws_session_token=c.session_token,
            profile_name=c.profile,
            region_name=c.region,
        )
        botocore_config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},  # we retry ourselves
            read_timeout=c.read_timeout_s,
            connect_timeout=min(10.0, c.read_timeout_s),
            max_pool_connections=c.max_concurrency,
        )
        client = session.client("bedrock-runtime", endpoint_url=c.endpoint_url, config=botocore_config)
        cap_client(client, c)  # max_response_bytes, max_event_bytes, max_stream_bytes
        return client

    async def start(self) -> None:
        if self.client is None:
            self.client = await asyncio.to_thread(self._build_client)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.config.max_concurrency, thread_name_prefix=f"bedrock-{self.name}"
            )

    async def aclose(self) -> None:
        for pump in list(self._pumps):
            pump.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None

    async def ready(self) -> bool:
        return self.client is not None and self._executor is not None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None or self.client is None:
            raise UpstreamError(UpstreamKind.UNAVAILABLE, f"provider {self.name!r} is not started")
        return self._executor

    async def _retrying(self, call: UpstreamCall, attempt: Callable[[], Any]) -> Any:
        c = self.config

        async def once() -> Any:
            call.attempts += 1
            return await attempt()

        return await with_retries(
            once,
            max_retries=c.max_retries,
            base=c.backoff_base_s,
            cap=c.backoff_max_s,
            deadline=call.deadline,
        )

    async def complete(self, call: UpstreamCall) -> dict[str, Any]:
        kwargs = to_converse(call.body, call.upstream_model)
        loop = asyncio.get_running_loop()

        async def attempt() -> dict[str, Any]:
            future = loop.run_in_executor(self._pool(), functools.partial(self.client.converse, **kwargs))
            try:
                return await asyncio.wait_for(future, timeout=max(call.remaining(), 0.0))
            except TimeoutError as exc:
                raise UpstreamError(UpstreamKind.TIMEOUT, "Bedrock did not answer before the request deadline") from exc
            except Exception as exc:
                raise classify_bedrock_error(exc) from exc

        resp = await self._retrying(call, attempt)
        return from_converse(resp, call.upstream_model, call.request_id, requested(call.body))

    async def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        kwargs = to_converse(call.body, call.upstream_model)
        loop = asyncio.get_running_loop()

        async def attempt() -> tuple[_StreamPump, tuple[str, Any]]:
            pump = _StreamPump(loop, functools.partial(self.client.converse_stream, **kwargs))
            self._pumps.add(pump)
            loop.run_in_executor(self._pool(), pump.run)
            try:
                first = await asyncio.wait_for(pump.get(), timeout=max(call.remaining(), 0.0))
            except TimeoutError as exc:
                pump.close()
                raise UpstreamError(
                    UpstreamKind.TIMEOUT, "Bedrock did not start streaming before the deadline"
                ) from exc
            except BaseException:
                pump.close()
                raise
            if first[0] == _ERROR:
                pump.close()
                raise classify_bedrock_error(first[1]) from first[1]
            return pump, first

        pump, first = await self._retrying(call, attempt)
        return BedrockStream(pump, first, StreamTranslator(call.upstream_model, call.request_id, requested(call.body)))

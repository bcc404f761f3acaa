"""The background event loop behind the blocking facades (Producer, LitePullConsumer, PushConsumer).

Each facade owns one :class:`LoopThread`: a daemon thread running an asyncio loop on which the
async twin (AsyncProducer, AsyncLitePullConsumer) lives. Blocking methods submit a coroutine
with ``run_coroutine_threadsafe`` and wait for it; a blocking call made from that loop's own
thread would deadlock and raises ClientError instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from ferrymq.client.errors import ClientError

T = TypeVar("T")


class LoopThread:
    """An asyncio loop in a daemon thread; ``start`` and ``stop`` are idempotent."""

    def __init__(self, name: str = "ferrymq-client") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise ClientError("the client is not started")
        return self._loop

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                try:
                    loop.run_forever()
                finally:
                    try:
                        _cancel_all(loop)
                        loop.run_until_complete(loop.shutdown_asyncgens())
                    finally:
                        loop.close()

            thread = threading.Thread(target=run, name=self.name, daemon=True)
            thread.start()
            ready.wait()
            self._loop, self._thread = loop, thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; returns a concurrent future."""
        loop = self._loop
        if loop is None or not self.running:
            coro.close()
            raise ClientError("the client is not started")
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and block until it finishes; re-raises its exception."""
        if self._thread is not None and threading.current_thread() is self._thread:
            coro.close()
            raise ClientError(
                "blocking client call from the client's own event loop thread; use the Async* API"
            )
        fut = self.submit(coro)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if threading.current_thread() is thread:
            loop.call_soon(loop.stop)
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


class AsyncTwin(Protocol):
    @property
    def group(self) -> str: ...

    @property
    def client_id(self) -> str: ...

    async def start(self) -> Any: ...

    async def shutdown(self) -> None: ...


A = TypeVar("A", bound=AsyncTwin)


class BlockingFacade(Generic[A]):
    """The blocking face of an asyncio client: its async twin runs on a background loop thread.

    Subclasses build the twin from their arguments, pass it here and add their own blocking
    methods: coroutines through ``self._loop.run``, plain methods through :meth:`_call`.
    """

    def __init__(self, twin: A, thread_name: str) -> None:
        self._async = twin
        self._loop = LoopThread(thread_name)

    @property
    def group(self) -> str:
        return self._async.group

    @property
    def client_id(self) -> str:
        return self._async.client_id

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a plain (non-coroutine) method on the loop thread, where the state lives."""
        if not self._loop.running:
            return fn(*args)

        async def call() -> T:
            return fn(*args)

        return self._loop.run(call())

    def start(self) -> Self:
        self._loop.start()
        try:
            self._loop.run(self._async.start())
        except BaseException:
            self._loop.stop()
            raise
        return self

    def shutdown(self) -> None:
        if not self._loop.running:
            return
        self._before_shutdown()
        try:
            self._loop.run(self._async.shutdown())
        finally:
            self._loop.stop()

    def _before_shutdown(self) -> None:
        """Hook run on the caller's thread before the async shutdown."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()

"""An in-process ferrymq for tests and notebooks: ``with ferrymq.embedded() as broker:``.

A name server and one master broker (with the Kafka frontend) run on their own event-loop thread
inside the calling process: no subprocess, no fixed ports (every listener binds a free one), a
temporary data directory removed afterwards unless one was given. The store uses small segments
(``EMBEDDED_STORE``: a 16 MiB commit-log segment instead of RocketMQ's preallocated 1 GiB, a
small key index), since a test broker holds little. The admin REST API starts on first use of
``admin_url`` (FastAPI is slow to import, and most tests never ask for it), or at start with
``admin=True``.

The helpers (``create_topic``, ``messages``, ``bodies``) block the calling thread until the
broker's loop has done the work; each has an ``a``-prefixed coroutine twin for async tests. The
pytest fixtures over this class are in ``cli/pytest_plugin.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
from collections.abc import Coroutine, Mapping
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ferrymq.cli.main import BrokerProcess
    from ferrymq.core.remoting.message import MessageExt
    from ferrymq.namesrv import NameServer

T = TypeVar("T")

#: broker.conf keys an embedded broker starts with (``conf`` overrides them): small files, since a
#: test broker's store holds little and a fresh one is made per test
EMBEDDED_STORE: dict[str, object] = {
    "mappedFileSizeCommitLog": 16 * 1024 * 1024,
    "mappedFileSizeConsumeQueue": 30_000 * 20,
    "maxHashSlotNum": 50_000,
    "maxIndexNum": 200_000,
}

#: largest pull of ``messages()`` per request to the store (it loops until the queue's end)
_READ_BATCH = 1024


class EmbeddedError(RuntimeError):
    """The embedded broker could not start or a helper was used while it was not running."""


class EmbeddedBroker:
    """A name server and a broker on a private event-loop thread; a context manager (sync and
    async). Addresses are known once started: ``namesrv_addr``, ``broker_addr``,
    ``kafka_bootstrap`` and ``admin_url``."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        kafka: bool = True,
        admin: bool = False,
        host: str = "127.0.0.1",
        conf: Mapping[str, object] | None = None,
        start_timeout: float = 30.0,
        grpc: bool = False,
    ) -> None:
        """``data_dir``: the store root (default: a temporary directory removed at stop);
        ``conf``: broker.conf keys (RocketMQ names, e.g. ``{"defaultTopicQueueNums": 4}``);
        ``grpc``: serve the RocketMQ 5 gRPC listener on a free port (``grpc_endpoint``)."""
        self._given_dir = Path(data_dir) if data_dir is not None else None
        self.data_dir: Path | None = self._given_dir
        self.host = host
        self._kafka = kafka
        self._grpc = grpc
        self._admin_at_start = admin
        self._conf = dict(conf or {})
        self._timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._namesrv: NameServer | None = None
        self._process: BrokerProcess | None = None
        self._lock = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> EmbeddedBroker:
        """Start the loop thread, then the name server, the broker and its frontends on it."""
        if self._loop is not None:
            raise EmbeddedError("already started")
        if self._given_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="ferrymq-"))
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="ferrymq-embedded", daemon=True)
        self._thread.start()
        try:
            self._call(self._start(), self._timeout)
        except BaseException:
            with contextlib.suppress(Exception):  # what failed to start is the error to see
                self.stop()
            raise
        return self

    async def _start(self) -> None:
        from ferrymq.cli.main import BrokerProcess, guard_registrations
        from ferrymq.core.broker.routes_source import LocalRoutes
        from ferrymq.core.config import BrokerConfig
        from ferrymq.namesrv import NameServer

        assert self.data_dir is not None
        self._namesrv = NameServer(host=self.host, port=0)
        await self._namesrv.start()
        overrides: dict[str, object] = {
            **EMBEDDED_STORE,
            "listenHost": self.host,
            "listenPort": 0,
            "brokerIP1": self.host,
            "storePathRootDir": self.data_dir / "store",
            "adminPort": -1,  # started lazily by admin_url
            "kafkaListenPort": 0 if self._kafka else -1,
            "grpcListenPort": 0 if self._grpc else -1,
            **self._conf,
            "namesrvAddr": self.namesrv_addr,
        }
        config = BrokerConfig.from_properties("", **overrides)
        self._process = BrokerProcess(config, None)
        guard_registrations(self._namesrv, self._process)
        await self._process.start(LocalRoutes(self._namesrv.routes, self.namesrv_addr))
        if self._admin_at_start:
            await self._serve_admin()

    def stop(self) -> None:
        """Stop the broker and the name server (flushing the store), end the thread, and remove
        the temporary data directory. Safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if loop.is_running():
                self._call(self._stop(), self._timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(self._timeout)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = None
            self._process = self._namesrv = None
            if self._given_dir is None and self.data_dir is not None:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    async def _stop(self) -> None:
        if self._process is not None:
            await self._process.stop()
        if self._namesrv is not None:
            await self._namesrv.stop()
        current = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedBroker:
        # the broker has its own loop; starting it off the caller's loop keeps that one responsive
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    # ---- addresses ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None

    def _require(self) -> BrokerProcess:
        if self._process is None:
            raise EmbeddedError("the embedded broker is not running")
        return self._process

    @property
    def namesrv_addr(self) -> str:
        """``host:port`` of the name server (``namesrv_addr`` of ferrymq.client, Java's
        ``namesrvAddr``)."""
        if self._namesrv is None:
            raise EmbeddedError("the embedded broker is not running")
        return f"{self.host}:{self._namesrv.port}"

    @property
    def broker_addr(self) -> str:
        return f"{self.host}:{self._require().broker.port}"

    @property
    def kafka_bootstrap(self) -> str:
        """``bootstrap.servers`` for Kafka clients (EmbeddedError if started with ``kafka=False``)."""
        kafka = self._require().kafka
        if kafka is None:
            raise EmbeddedError("started without the Kafka frontend (kafka=False)")
        return f"{kafka.advertised_host}:{kafka.port}"

    @property
    def grpc_endpoint(self) -> str:
        """``host:port`` for RocketMQ 5 SDKs (EmbeddedError if started without ``grpc=True``)."""
        grpc = self._require().grpc
        if grpc is None:
            raise EmbeddedError("started without the gRPC listener (grpc=True)")
        return f"{grpc.advertised_host}:{grpc.port}"

    @property
    def admin_url(self) -> str:
        """Base URL of the admin REST API and web console; the first use starts it."""
        with self._lock:
            port = self._call(self._serve_admin(), self._timeout)
        return f"http://{self.host}:{port}"

    async def _serve_admin(self) -> int:
        admin = await self._require().serve_admin()
        await admin.ready()  # loaded and serving: a failure to start surfaces here
        return admin.port

    # ---- helpers -----------------------------------------------------------------------------

    def create_topic(self, topic: str, queues: int = 8, *, order: bool = False) -> None:
        """Create (or resize) ``topic`` with ``queues`` queues (Kafka: partitions); returns once
        the name server routes it, so a client started next finds it."""
        self._call(self._create_topic(topic, queues, order), self._timeout)

    async def acreate_topic(self, topic: str, queues: int = 8, *, order: bool = False) -> None:
        await self._wrap(self._create_topic(topic, queues, order))

    async def _create_topic(self, topic: str, queues: int, order: bool) -> None:
        from ferrymq.core.broker.topic_config import validate_topic
        from ferrymq.core.remoting.route import PERM_READ, PERM_WRITE, TopicConfig

        reason = validate_topic(topic)
        if reason:
            raise ValueError(reason)
        broker = self._require().broker
        broker.topics.update(TopicConfig(topic, queues, queues, PERM_READ | PERM_WRITE, order=order))
        await broker.topics.wait_persisted()
        if broker.registrar is not None:
            await broker.registrar.register_all()

    def messages(self, topic: str, queue_id: int | None = None) -> list[MessageExt]:
        """Every message ``topic`` holds now (of one queue, or all in queue order), however it
        was sent: native sends and Kafka produce alike (a Kafka record's key is its KEYS
        property, its headers are properties)."""
        return self._call(self._read(topic, queue_id), self._timeout)

    async def amessages(self, topic: str, queue_id: int | None = None) -> list[MessageExt]:
        return await self._wrap(self._read(topic, queue_id))

    def bodies(self, topic: str) -> list[bytes]:
        """The bodies of ``messages(topic)``."""
        return [m.body for m in self.messages(topic)]

    async def _read(self, topic: str, queue_id: int | None) -> list[MessageExt]:
        from ferrymq.core.remoting.message import decode_stored_messages
        from ferrymq.core.store import GetStatus

        store = self._require().broker.store
        tc = self._require().broker.topics.get(topic)
        if tc is None:
            return []
        queues = range(max(tc.read_queue_nums, tc.write_queue_nums)) if queue_id is None else [queue_id]
        out: list[MessageExt] = []
        for q in queues:
            offset, end = store.queue_bounds(topic, q)
            while offset < end:
                got = store.get_messages(topic, q, offset, _READ_BATCH)
                if got.status is not GetStatus.FOUND:
                    break
                for buf in store.as_stored_messages(got.buffers, offset):
                    out.extend(decode_stored_messages(buf))
                offset = got.next_begin_offset
        return out

    # ---- running on the broker's loop --------------------------------------------------------

    def _submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        if self._loop is None:
            coro.close()
            raise EmbeddedError("the embedded broker is not running")
        if threading.current_thread() is self._thread:
            coro.close()
            raise EmbeddedError("a blocking helper was called on the broker's own loop")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return self._submit(coro).result(timeout)

    async def _wrap(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(self._submit(coro))

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the broker's loop (for tests reaching into the broker)."""
        return await self._wrap(coro)


def embedded(
    data_dir: str | Path | None = None,
    *,
    kafka: bool = True,
    admin: bool = False,
    conf: Mapping[str, object] | None = None,
) -> EmbeddedBroker:
    """An :class:`EmbeddedBroker`, not yet started: use it as ``with`` or ``async with``."""
    return EmbeddedBroker(data_dir, kafka=kafka, admin=admin, conf=conf)

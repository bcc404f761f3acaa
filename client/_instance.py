"""What every client needs besides its own logic: connections, routes, heartbeats.

A :class:`ClientInstance` (Java's ``MQClientInstance``, but one per producer or consumer rather
than one per process) owns the connection pool and the route cache, refreshes the routes of the
topics its owner uses every ``poll_namesrv_interval`` seconds, and sends the owner's
HeartbeatData to every broker every ``heartbeat_interval`` seconds -- and right away to a broker
it has not greeted yet, so a new consumer is a group member before it rebalances. At shutdown it
unregisters from every broker (UNREGISTER_CLIENT) and closes its connections.

:class:`AsyncClient` is what the async producer and consumers share around their instance: the
client id, the CREATED/RUNNING/STOPPING/SHUTDOWN state and the async context manager;
:class:`ConsumerClient` adds what both consumers share: an instance that heartbeats to every
member of a broker group (slaves serve pulls too) and wakes the rebalance when a broker says the
group changed (NOTIFY_CONSUMER_IDS_CHANGED).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Self

from ferrymq.client import _api
from ferrymq.client._ids import make_client_id
from ferrymq.client._remote import RemotingClient, parse_namesrv_addrs
from ferrymq.client.errors import ClientError, MQError
from ferrymq.client.message import MessageQueue
from ferrymq.client.route import RouteManager
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.heartbeat import HeartbeatData
from ferrymq.core.remoting.route import TopicRouteData
from ferrymq.core.remoting.transport import RemotingConnection

log = logging.getLogger("ferrymq.client")


class ClientInstance:
    def __init__(
        self,
        namesrv_addr: str | Iterable[str],
        *,
        instance_name: str | None = None,
        client_ip: str | None = None,
        request_timeout: float = 3.0,
        poll_namesrv_interval: float = 30.0,
        heartbeat_interval: float = 30.0,
        default_topic_queue_nums: int = 4,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.client_id = make_client_id(client_ip, instance_name)
        self.remote = RemotingClient(
            parse_namesrv_addrs(namesrv_addr), connect_timeout=request_timeout, ssl_context=ssl_context
        )
        self.routes = RouteManager(
            self.remote, timeout=request_timeout, default_topic_queue_nums=default_topic_queue_nums
        )
        self.request_timeout = request_timeout
        self.poll_namesrv_interval = poll_namesrv_interval
        self.heartbeat_interval = heartbeat_interval
        #: set by the owner: the HeartbeatData body, the topics whose routes to keep fresh, and
        #: whether only masters get heartbeats (producers) or every member (consumers)
        self.heartbeat_data: Callable[[], HeartbeatData] = lambda: HeartbeatData(self.client_id)
        self.topics_in_use: Callable[[], Iterable[str]] = lambda: ()
        self.heartbeat_masters_only = True
        self.broker_versions: dict[str, int] = {}
        self._greeted: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._heartbeat_lock: asyncio.Lock | None = None
        self.routes.listeners.append(self._on_route_change)

    async def start(self) -> None:
        self._heartbeat_lock = asyncio.Lock()
        self._tasks = [
            asyncio.ensure_future(self._every(self.poll_namesrv_interval, self._refresh_routes)),
            asyncio.ensure_future(self._every(self.heartbeat_interval, self.send_heartbeat_to_all)),
        ]

    async def _every(self, interval: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)  # pacing of a periodic job, not synchronisation
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic client job failed")

    async def _refresh_routes(self) -> None:
        await self.routes.refresh(self.topics_in_use())

    def _on_route_change(self, topic: str, route: TopicRouteData | None) -> None:
        """Greet brokers seen for the first time, in the background."""
        new = [a for a in self.routes.broker_addrs(self.heartbeat_masters_only) if a not in self._greeted]
        if new and self._heartbeat_lock is not None:
            self._greeted.update(new)  # one greeting each; a failure removes it again
            task = asyncio.ensure_future(self.send_heartbeat(new))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def master_addr(self, mq: MessageQueue) -> str:
        """The master of ``mq``'s broker group (refreshing the route once if unknown)."""
        addr = await self.routes.master_addr_or_refresh(mq.broker_name, mq.topic)
        if addr is None:
            raise ClientError(f"The broker[{mq.broker_name}] not exist")
        return addr

    async def member_addr(self, mq: MessageQueue) -> str:
        """The master of ``mq``'s group, else a slave: where offsets are read and committed
        (Java's RemoteBrokerOffsetStore), so a consumer keeps committing while the master is gone."""
        addr = await self.routes.member_addr_or_refresh(mq.broker_name, mq.topic)
        if addr is None:
            raise ClientError(f"The broker[{mq.broker_name}] not exist")
        return addr

    async def send_heartbeat_to_all(self) -> None:
        await self.send_heartbeat(self.routes.broker_addrs(self.heartbeat_masters_only))

    async def send_heartbeat(self, addrs: Iterable[str]) -> None:
        """HEART_BEAT to ``addrs`` concurrently; failures are logged (the next round retries)."""
        addrs = list(addrs)
        if not addrs:
            return
        data = self.heartbeat_data()

        async def one(addr: str) -> None:
            try:
                self.broker_versions[addr] = await _api.heartbeat(
                    self.remote, addr, data, self.request_timeout
                )
                self._greeted.add(addr)
            except MQError as exc:
                self._greeted.discard(addr)
                log.warning("heartbeat to broker %s failed: %s", addr, exc)

        lock = self._heartbeat_lock or asyncio.Lock()
        async with lock:
            await asyncio.gather(*(one(a) for a in addrs))

    async def unregister(
        self, *, producer_group: str | None = None, consumer_group: str | None = None
    ) -> None:
        """UNREGISTER_CLIENT to every broker this client knows; best effort."""

        async def one(addr: str) -> None:
            try:
                await _api.unregister_client(
                    self.remote,
                    addr,
                    self.client_id,
                    self.request_timeout,
                    producer_group=producer_group,
                    consumer_group=consumer_group,
                )
            except MQError as exc:
                log.info("unregister from broker %s failed: %s", addr, exc)

        await asyncio.gather(*(one(a) for a in self.routes.broker_addrs(self.heartbeat_masters_only)))

    async def shutdown(self) -> None:
        tasks, self._tasks = self._tasks + list(self._background), []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.remote.close()


class AsyncClient:
    """The lifecycle every async client shares: ``_instance`` and ``_state`` set by the subclass.

    ``_kind`` ("producer" or "consumer") only words the errors as Java's clients do.
    """

    _instance: ClientInstance
    _state: str
    _kind = "consumer"

    @property
    def client_id(self) -> str:
        return self._instance.client_id

    @property
    def running(self) -> bool:
        return self._state == "RUNNING"

    async def start(self) -> None:
        raise NotImplementedError

    async def shutdown(self) -> None:
        raise NotImplementedError

    def _must_start(self) -> bool:
        """For ``start``: False if already running; raises if it ran and stopped."""
        if self._state == "RUNNING":
            return False
        if self._state != "CREATED":
            raise ClientError(f"the {self._kind} cannot be started in state {self._state}")
        return True

    def _check_running(self) -> None:
        if self._state != "RUNNING":
            raise ClientError(f"The {self._kind} service state not OK: {self._state} (call start() first)")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()


class ConsumerClient(AsyncClient):
    """The base of both consumers; subclasses provide the four hooks below."""

    group: str
    #: TLS to name servers and brokers (set by the subclass before ``_connect``)
    ssl_context: ssl.SSLContext | None = None

    def _connect(
        self,
        namesrv_addr: str | Iterable[str],
        instance_name: str | None,
        request_timeout: float,
        poll_namesrv_interval: float,
        heartbeat_interval: float,
    ) -> ClientInstance:
        """The consumer's ClientInstance, wired to its hooks."""
        instance = ClientInstance(
            namesrv_addr,
            instance_name=instance_name,
            request_timeout=request_timeout,
            poll_namesrv_interval=poll_namesrv_interval,
            heartbeat_interval=heartbeat_interval,
            ssl_context=self.ssl_context,
        )
        instance.heartbeat_data = self._heartbeat_data
        instance.topics_in_use = self._topics_in_use
        instance.heartbeat_masters_only = False
        instance.routes.listeners.append(self._on_route_change)
        instance.remote.register_handler(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, self._on_notify)
        return instance

    def _on_notify(self, cmd: RemotingCommand, conn: RemotingConnection) -> None:
        if cmd.ext_fields.get("consumerGroup") in (None, self.group):
            self._wake_rebalance()

    def _heartbeat_data(self) -> dict[str, Any]:
        raise NotImplementedError

    def _topics_in_use(self) -> list[str]:
        raise NotImplementedError

    def _on_route_change(self, topic: str, route: object) -> None:
        raise NotImplementedError

    def _wake_rebalance(self) -> None:
        raise NotImplementedError

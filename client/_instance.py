"""What every client needs besides its own logic: connections, routes, heartbeats.

A :class:`ClientInstance` (Java's ``MQClientInstance``, but one per producer or consumer rather
than one per process) owns the connection pool and the route cache, refreshes the routes of the
topics its owner uses every ``poll_namesrv_interval`` seconds, and sends the owner's
HeartbeatData to every broker every ``heartbeat_interval`` seconds -- and right away to a broker
it has not greeted yet, so a new consumer is a group member before it rebalances. At shutdown it
unregisters from every broker (UNREGISTER_CLIENT) and closes its connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from ferrymq.client import _api
from ferrymq.client._ids import make_client_id
from ferrymq.client._remote import RemotingClient, parse_namesrv_addrs
from ferrymq.client.errors import MQError
from ferrymq.client.route import RouteManager
from ferrymq.core.remoting.heartbeat import HeartbeatData
from ferrymq.core.remoting.route import TopicRouteData

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
    ) -> None:
        self.client_id = make_client_id(client_ip, instance_name)
        self.remote = RemotingClient(parse_namesrv_addrs(namesrv_addr), connect_timeout=request_timeout)
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

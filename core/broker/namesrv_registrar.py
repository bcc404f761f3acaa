"""Registration with every name server: at start, every registerNameServerPeriod, after a topic
change, and UNREGISTER_BROKER at shutdown (RocketMQ's ``BrokerOuterAPI``).

One connection per name server is kept open, so a broker killed with -9 is dropped by the name
server as soon as the connection closes. Name servers never talk to each other, so each gets
the full registration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from typing import TYPE_CHECKING

from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import RegisterBrokerBody
from ferrymq.core.remoting.transport import RemotingConnection, RemotingError, connect, split_addr

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.broker.register")


class NamesrvRegistrar:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.conns: dict[str, RemotingConnection] = {}
        self.registered: set[str] = set()
        self._warned: set[str] = set()  # name servers already reported unreachable
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        #: more REGISTER_BROKER extFields, e.g. "kafkaAddr" set by the Kafka frontend at start
        self.extra_fields: dict[str, str] = {}

    @property
    def addrs(self) -> list[str]:
        return self.broker.config.namesrv_addrs

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="namesrv-register")

    def kick(self) -> None:
        """Register now (a topic was created or deleted)."""
        self._kick.set()

    async def _loop(self) -> None:
        period = self.broker.config.register_name_server_period / 1000
        while True:
            self._kick.clear()
            try:
                await self.register_all()
            except Exception:  # a bug must not end registration: the name servers would drop us
                log.exception("registration with the name servers failed; retrying in %.1fs", period)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await self._kick.wait()

    async def _conn(self, addr: str) -> RemotingConnection:
        conn = self.conns.get(addr)
        if conn is None or not conn.is_open:
            host, port = split_addr(addr)
            conn = await connect(host, port)
            self.conns[addr] = conn
        return conn

    def _request(self, code: int) -> RemotingCommand:
        c = self.broker.config
        return RemotingCommand(
            code=code,
            ext_fields={
                "brokerName": c.broker_name,
                "brokerAddr": c.broker_addr,
                "clusterName": c.broker_cluster_name,
                "brokerId": str(c.broker_id),
            },
        )

    async def register_all(self) -> None:
        if not self.addrs:
            return
        topics = self.broker.topics
        body = RegisterBrokerBody(dict(topics.topics), topics.data_version).encode(False)
        await asyncio.gather(*(self._register(addr, body) for addr in self.addrs))

    async def _register(self, addr: str, body: bytes) -> None:
        c = self.broker.config
        cmd = self._request(RequestCode.REGISTER_BROKER)
        cmd.ext_fields.update(
            {
                "haServerAddr": c.ha_server_addr,
                "compressed": "false",
                "bodyCrc32": str(zlib.crc32(body) & 0x7FFFFFFF),
                "heartbeatTimeoutMillis": str(c.broker_not_active_timeout_millis),
                "enableActingMaster": "false",
                **self.extra_fields,
            }
        )
        cmd.body = body
        try:
            conn = await self._conn(addr)
            resp = await conn.invoke(cmd, timeout=6.0)
        except RemotingError as exc:
            if addr in self.registered or addr not in self._warned:
                log.warning("cannot register with name server %s: %s", addr, exc)
                self._warned.add(addr)
            self.registered.discard(addr)
            return
        if resp.code != ResponseCode.SUCCESS:
            log.warning("name server %s refused registration: %s %s", addr, resp.code, resp.remark)
            self.registered.discard(addr)
            return
        if addr not in self.registered:
            log.info("registered with name server %s", addr)
        self._warned.discard(addr)
        self.registered.add(addr)

    async def unregister_all(self) -> None:
        async def one(addr: str) -> None:
            try:
                conn = await self._conn(addr)
                await conn.invoke(self._request(RequestCode.UNREGISTER_BROKER), timeout=3.0)
                log.info("unregistered from name server %s", addr)
            except RemotingError as exc:
                log.warning("cannot unregister from name server %s: %s", addr, exc)

        await asyncio.gather(*(one(a) for a in self.addrs))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.unregister_all()
        for conn in self.conns.values():
            conn.close()

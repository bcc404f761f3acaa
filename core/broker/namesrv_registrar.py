"""Registration with every name server: at start, every registerNameServerPeriod, after a topic
change, and UNREGISTER_BROKER at shutdown (RocketMQ's ``BrokerOuterAPI``).

One connection per name server is kept open, so a broker killed with -9 is dropped by the name
server as soon as the connection closes. Name servers never talk to each other, so each gets
the full registration.

A slave learns its master from the results (``handleRegisterBrokerResult``): the first answer
naming a ``masterAddr`` sets ``broker.ha.master_addr`` and, unless haMasterAddress is configured,
``broker.ha.master_ha_addr``; when every name server that answered says no master is registered,
``master_addr`` becomes None (the master is gone). In controller mode the controller names the
master; the answers only give its HA address. While it has no master a slave registers
every 1, 2, 4, then 5 s (at most registerNameServerPeriod), so it finds a returning master soon.
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
from ferrymq.core.remoting.transport import RemotingConnection, RemotingError

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.broker.register")

#: a masterless slave's registration backoff (seconds): doubling from the first to the cap
ORPHAN_FIRST_RETRY = 1.0
ORPHAN_MAX_RETRY = 5.0


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
        full = self.broker.config.register_name_server_period / 1000
        orphan = ORPHAN_FIRST_RETRY
        while True:
            self._kick.clear()
            try:
                await self.register_all()
            except Exception:  # a bug must not end registration: the name servers would drop us
                log.exception("registration with the name servers failed; retrying")
            period = full
            if self.broker.config.is_slave and (
                self.broker.ha.master_addr is None
                or (self.broker.controller is not None and self.broker.ha.master_ha_addr is None)
            ):
                period = min(full, orphan)
                orphan = min(orphan * 2, ORPHAN_MAX_RETRY)
            else:
                orphan = ORPHAN_FIRST_RETRY
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await self._kick.wait()

    async def _conn(self, addr: str) -> RemotingConnection:
        conn = self.conns.get(addr)
        if conn is None or not conn.is_open:
            conn = self.conns[addr] = await self.broker.outbound.connect(addr)
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
        results = await asyncio.gather(*(self._register(addr, body) for addr in self.addrs))
        if self.broker.config.is_slave:
            self._learn_master([r for r in results if r is not None])

    def _learn_master(self, results: list[dict[str, str]]) -> None:
        """Take the master's addresses from the name servers' answers (none answered: unchanged)."""
        if not results:
            return
        ha = self.broker.ha
        if self.broker.controller is not None:  # the controller names the master: learn its HA addr
            for r in results:
                if r.get("masterAddr") == ha.master_addr and r.get("haServerAddr") and not ha.master_ha_addr:
                    log.info("master HA address: %s", r["haServerAddr"])
                    ha.master_ha_addr = r["haServerAddr"]
            return
        named = next((r for r in results if r.get("masterAddr")), None)
        master = named["masterAddr"] if named else None
        if named and named.get("haServerAddr") and not self.broker.config.ha_master_address:
            if ha.master_ha_addr != named["haServerAddr"]:
                log.info("master HA address: %s", named["haServerAddr"])
            ha.master_ha_addr = named["haServerAddr"]
        if master != ha.master_addr:
            if master:
                log.info("master of %s is %s", self.broker.config.broker_name, master)
            else:
                log.warning(
                    "no master of %s is registered with any name server", self.broker.config.broker_name
                )
            ha.master_addr = master
            if master:
                self.broker.slave_sync.kick()

    async def _register(self, addr: str, body: bytes) -> dict[str, str] | None:
        """REGISTER_BROKER with one name server; its answer's header fields, None if it failed."""
        c = self.broker.config
        cmd = self._request(RequestCode.REGISTER_BROKER)
        cmd.ext_fields.update(
            {
                "haServerAddr": c.ha_server_addr,
                "compressed": "false",
                "bodyCrc32": str(zlib.crc32(body) & 0x7FFFFFFF),
                "heartbeatTimeoutMillis": str(c.broker_not_active_timeout_millis),
                "enableActingMaster": "false",
                **({"__ZONE_NAME": c.broker_rack} if c.broker_rack else {}),
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
            return None
        if resp.code != ResponseCode.SUCCESS:
            log.warning("name server %s refused registration: %s %s", addr, resp.code, resp.remark)
            self.registered.discard(addr)
            return None
        if addr not in self.registered:
            log.info("registered with name server %s", addr)
        self._warned.discard(addr)
        self.registered.add(addr)
        return resp.ext_fields

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

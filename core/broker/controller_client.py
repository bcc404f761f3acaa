"""A broker in controller mode: heartbeats to the controller, and the role it gives (RocketMQ 5's
ReplicasManager, in part).

Every ``brokerHeartbeatInterval`` a BROKER_HEARTBEAT (904) goes to every controller address (the
epoch is the last master epoch this broker knows, maxOffset its commit-log end), so whichever
node leads knows who is alive. At start the broker registers with the leader
(CONTROLLER_REGISTER_BROKER), asks for an election when the group has no live master, then polls
CONTROLLER_GET_REPLICA_INFO every ``syncBrokerMetadataPeriod``; :func:`decide` turns each answer
into a role change, which the broker carries out (``Broker.become_master`` / ``become_slave``).
A master also reports its in-sync replicas (CONTROLLER_ALTER_SYNC_STATE_SET), so a caught-up slave
is electable when the master dies.

The leader is found with CONTROLLER_GET_METADATA_INFO or from a NOT_LEADER answer's
``controllerLeaderAddress``. Epochs only grow: an answer with a lower master epoch than the one
the broker already acted on is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from ferrymq.core.broker.confirm_follow import ConfirmFollower
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import RemotingConnection, RemotingError

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.broker.controller")

NOT_LEADER = 2007
MASTER_STILL_EXIST = 2011
BROKER_METADATA_NOT_EXIST = 2008


class Role(Enum):
    FENCED = "FENCED"  # started, not yet told its role: refuses sends
    MASTER = "MASTER"
    SLAVE = "SLAVE"


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """What the controller says of the group: its live master (None: none alive) and epoch."""

    master_id: int | None
    master_addr: str | None
    master_epoch: int
    sync_state_set: frozenset[int] = frozenset()
    sync_state_set_epoch: int = 0


class Do(Enum):
    NOTHING = "nothing"
    ELECT = "elect"
    BECOME_MASTER = "become_master"
    BECOME_SLAVE = "become_slave"


@dataclass(frozen=True, slots=True)
class Decision:
    do: Do
    epoch: int = 0
    master_addr: str | None = None


def decide(identity: int, role: Role, epoch: int, master_addr: str | None, view: ReplicaView) -> Decision:
    """What a broker (``identity``, now ``role`` at master ``epoch`` following ``master_addr``)
    does given the controller's ``view``. Sans-IO: the whole failover policy of the broker side."""
    if view.master_id is None:
        return Decision(Do.ELECT)
    if view.master_epoch < epoch:  # a stale answer: never go back to an older master
        return Decision(Do.NOTHING)
    if view.master_id == identity:
        if role == Role.MASTER:
            return Decision(Do.NOTHING)
        return Decision(Do.BECOME_MASTER, view.master_epoch)
    if role == Role.MASTER and view.master_epoch == epoch:
        return Decision(Do.NOTHING)  # the same epoch cannot have two masters: wait for a newer one
    if role == Role.SLAVE and view.master_epoch == epoch and view.master_addr == master_addr:
        return Decision(Do.NOTHING)
    return Decision(Do.BECOME_SLAVE, view.master_epoch, view.master_addr)


def parse_view(resp: RemotingCommand) -> ReplicaView:
    ext = resp.ext_fields
    mid = ext.get("masterBrokerId")
    sset: frozenset[int] = frozenset()
    ss_epoch = int(ext.get("syncStateSetEpoch") or 0)
    if resp.body:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            body = json.loads(bytes(resp.body))
            sset = frozenset(int(x) for x in body["syncStateSet"])
            ss_epoch = int(body["syncStateSetEpoch"])
    return ReplicaView(
        int(mid) if mid else None,
        ext.get("masterAddress") or None,
        int(ext.get("masterEpoch") or 0),
        sset,
        ss_epoch,
    )


class ControllerClient:
    """The broker's link to the controller; acts through ``broker.become_master/become_slave``."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.config = broker.config
        self.role = Role.FENCED
        self.epoch = 0
        self.master_addr: str | None = None
        self.view: ReplicaView | None = None
        self.leader: str | None = None
        self.conns: dict[str, RemotingConnection] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        #: roles taken after the first one (failovers), by role: the metrics' role changes
        self.role_changes: Counter[str] = Counter()
        #: on a slave: learns the master's high watermark (confirm_follow.py)
        self.follower = ConfirmFollower(broker)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._heartbeats(), name="controller-heartbeat"),
            asyncio.create_task(self._sync(), name="controller-sync"),
        ]

    async def stop(self) -> None:
        await self.follower.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for c in self.conns.values():
            c.close()

    # ---- requests ------------------------------------------------------------------------

    async def _conn(self, addr: str) -> RemotingConnection:
        conn = self.conns.get(addr)
        if conn is None or not conn.is_open:
            conn = self.conns[addr] = await self.broker.outbound.connect(addr)
        return conn

    def _fields(self) -> dict[str, str]:
        c = self.config
        return {
            "clusterName": c.broker_cluster_name,
            "brokerName": c.broker_name,
            "brokerId": str(c.controller_identity),
        }

    async def _heartbeat(self, addr: str) -> None:
        c = self.config
        fields = self._fields() | {
            "brokerAddr": c.broker_addr,
            "epoch": str(self.epoch),
            "maxOffset": str(self.broker.store.commit_log_max_offset),
            "confirmOffset": str(self.broker.store.commit_log_max_offset),
            "heartbeatTimeoutMills": str(c.controller_heart_beat_timeout_mills),
            "electionPriority": str(c.broker_election_priority),
        }
        try:
            conn = await self._conn(addr)
            await conn.invoke(RemotingCommand(code=RequestCode.BROKER_HEARTBEAT, ext_fields=fields), 3.0)
        except (RemotingError, OSError, TimeoutError) as exc:
            log.debug("heartbeat to controller %s failed: %s", addr, exc)

    async def _heartbeats(self) -> None:
        while True:
            try:
                await asyncio.gather(*(self._heartbeat(a) for a in self.config.controller_addrs))
            except Exception:  # a bug must not end heartbeats: the controller would take us for dead
                log.exception("controller heartbeat round failed")
            await asyncio.sleep(self.config.broker_heartbeat_interval / 1000)

    async def _find_leader(self) -> str | None:
        for addr in self.config.controller_addrs:
            try:
                conn = await self._conn(addr)
                resp = await conn.invoke(RemotingCommand(code=RequestCode.CONTROLLER_GET_METADATA_INFO), 3.0)
            except (RemotingError, OSError, TimeoutError):
                continue
            if resp.code == ResponseCode.SUCCESS:
                if resp.ext_fields.get("isLeader") == "true":
                    return addr
                leader = resp.ext_fields.get("controllerLeaderAddress")
                if leader:
                    return leader
        return None

    async def _leader_call(self, code: int, ext: dict[str, str], body: bytes = b"") -> RemotingCommand | None:
        """``code`` on the controller leader, following NOT_LEADER once; None if none answered."""
        for _ in range(3):
            if self.leader is None:
                self.leader = await self._find_leader()
                if self.leader is None:
                    return None
            try:
                conn = await self._conn(self.leader)
                resp = await conn.invoke(RemotingCommand(code=code, ext_fields=dict(ext), body=body), 5.0)
            except (RemotingError, OSError, TimeoutError) as exc:
                log.info("controller %s unreachable: %s", self.leader, exc)
                self.leader = None
                continue
            if resp.code == NOT_LEADER:
                self.leader = resp.ext_fields.get("controllerLeaderAddress") or None
                continue
            return resp
        return None

    # ---- the role loop -------------------------------------------------------------------

    async def _sync(self) -> None:
        registered = False
        while True:
            try:
                if not registered:
                    registered = await self._register()
                if registered:
                    registered = await self.poll()
                    if self.role == Role.MASTER:
                        await self._report_in_sync()
            except Exception:  # the loop must outlive a bug in one round
                log.exception("controller sync round failed")
            period = self.config.sync_broker_metadata_period / 1000
            await asyncio.sleep(period if registered else period * (0.5 + random.random()))

    async def _register(self) -> bool:
        fields = self._fields() | {
            "brokerAddress": self.config.broker_addr,
            "invokeTime": str(int(time.time() * 1000)),
        }
        resp = await self._leader_call(RequestCode.CONTROLLER_REGISTER_BROKER, fields)
        if resp is None or resp.code != ResponseCode.SUCCESS:
            log.warning("cannot register with the controller: %s", resp.remark if resp else "unreachable")
            return False
        log.info("registered with controller %s", self.leader)
        await self.act(parse_view(resp))
        return True

    async def poll(self) -> bool:
        """GET_REPLICA_INFO and act on it; False when the controller no longer knows the group
        (register again)."""
        resp = await self._leader_call(
            RequestCode.CONTROLLER_GET_REPLICA_INFO, {"brokerName": self.config.broker_name}
        )
        if resp is not None and resp.code == BROKER_METADATA_NOT_EXIST:
            log.warning("the controller does not know group %s: registering again", self.config.broker_name)
            return False
        if resp is not None and resp.code == ResponseCode.SUCCESS:
            await self.act(parse_view(resp))
        return True

    async def act(self, view: ReplicaView) -> None:
        """Carry out :func:`decide` for the controller's ``view`` (after an election, its answer)."""
        async with self._lock:
            for _ in range(2):
                self.view = view
                d = decide(self.config.controller_identity, self.role, self.epoch, self.master_addr, view)
                if d.do == Do.ELECT:
                    elected = await self._elect()
                    if elected is None or elected.master_id is None:
                        return
                    view = elected
                    continue
                if d.do in (Do.BECOME_MASTER, Do.BECOME_SLAVE) and self.role != Role.FENCED:
                    self.role_changes["MASTER" if d.do == Do.BECOME_MASTER else "SLAVE"] += 1
                if d.do == Do.BECOME_MASTER:
                    log.warning("controller made this broker master at epoch %d", d.epoch)
                    await self.follower.stop()
                    await self.broker.become_master(d.epoch)
                    self.role, self.epoch, self.master_addr = Role.MASTER, d.epoch, self.config.broker_addr
                elif d.do == Do.BECOME_SLAVE:
                    assert d.master_addr is not None
                    log.warning("master %s at epoch %d; this broker follows", d.master_addr, d.epoch)
                    self._freeze_watermark()
                    await self.broker.become_slave(d.epoch, d.master_addr)
                    self.role, self.epoch, self.master_addr = Role.SLAVE, d.epoch, d.master_addr
                    self.follower.start()
                self._publish_sync_state(view)
                return

    async def _elect(self) -> ReplicaView | None:
        fields = self._fields() | {"designateElect": "false", "invokeTime": str(int(time.time() * 1000))}
        resp = await self._leader_call(RequestCode.CONTROLLER_ELECT_MASTER, fields)
        if resp is None:
            return None
        if resp.code in (ResponseCode.SUCCESS, MASTER_STILL_EXIST):
            return parse_view(resp)
        log.info("no master elected for %s: %s %s", self.config.broker_name, resp.code, resp.remark)
        return None

    async def _report_in_sync(self) -> None:
        """On a master: tell the controller which replicas are in sync (itself and caught-up slaves)."""
        view = self.view
        if view is None or view.master_id != self.config.controller_identity:
            return
        in_sync = {self.config.controller_identity} | self.broker.in_sync_replica_ids()
        if in_sync == set(view.sync_state_set):
            return
        fields = {
            "brokerName": self.config.broker_name,
            "masterBrokerId": str(self.config.controller_identity),
            "masterEpoch": str(view.master_epoch),
            "invokeTime": str(int(time.time() * 1000)),
        }
        body = json.dumps(
            {"syncStateSet": sorted(in_sync), "syncStateSetEpoch": view.sync_state_set_epoch}
        ).encode()
        # while the report is in flight the high watermark waits for both sets (RocketMQ #5663)
        self._publish_sync_state(view, in_sync)
        resp = await self._leader_call(RequestCode.CONTROLLER_ALTER_SYNC_STATE_SET, fields, body)
        if resp is not None and resp.code == ResponseCode.SUCCESS:
            log.info("in-sync replicas of %s: %s", self.config.broker_name, sorted(in_sync))
            self.view = parse_view(resp) if resp.body else view
        elif resp is not None:
            log.info("in-sync set change refused: %s %s", resp.code, resp.remark)
        self._publish_sync_state(self.view)

    def _freeze_watermark(self) -> None:
        """Becoming a slave: readers keep what they could see (at most this store's end) until the
        new master confirms more."""
        ha, end = self.broker.ha, self.broker.store.commit_log_max_offset
        ha.reset_confirm(end if ha.confirm_offset is None else min(ha.confirm_offset, end))

    def _publish_sync_state(self, view: ReplicaView | None, reporting: set[int] | None = None) -> None:
        """On a master: the slaves the group high watermark waits for (core/ha/state.py)."""
        if view is None or self.role != Role.MASTER or view.master_id != self.config.controller_identity:
            return
        ids = set(view.sync_state_set) | (reporting or set())
        ids.discard(self.config.controller_identity)
        self.broker.ha.set_sync_state(ids, self.broker.store.commit_log_max_offset)

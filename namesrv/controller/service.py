"""The controller's requests on the name server's remoting port, and the leader's election loop.

Serves RocketMQ 5's controller request codes with their header names:

* BROKER_HEARTBEAT (904): liveness and election facts (epoch, maxOffset, electionPriority);
  brokers send it to every controller node, so a new leader already knows who is alive;
* CONTROLLER_REGISTER_BROKER (1003), CONTROLLER_ELECT_MASTER (1002),
  CONTROLLER_GET_REPLICA_INFO (1004), CONTROLLER_ALTER_SYNC_STATE_SET (1001),
  CONTROLLER_GET_METADATA_INFO (1005).

Only the Raft leader answers the ones that read or change state; the others answer NOT_LEADER
(2007) with the leader's address in ``controllerLeaderAddress`` and the remark. Every
``scan_interval`` the leader elects a new master for any group whose master has gone silent
(never before it has led for one heartbeat timeout, so a fresh leader does not take brokers it
has not heard from yet for dead). When a master's heartbeat connection closes (its process died:
the kernel closed its sockets) the leader elects at once, as RocketMQ's BrokerHousekeepingService
does; a master cut off by the network keeps its connection open and is found silent by the scan.

Left out: CONTROLLER_GET_NEXT_BROKER_ID / APPLY_BROKER_ID (ferrymq brokers keep the brokerId of
their broker.conf), NOTIFY_BROKER_ROLE_CHANGED pushes (brokers poll GET_REPLICA_INFO every
second), the admin-only codes 1006-1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable

from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, guarded, opt_int, req_int, req_str
from ferrymq.core.remoting.transport import Handler, RemotingConnection
from ferrymq.namesrv.controller.liveness import BrokerLiveness
from ferrymq.namesrv.controller.raft import ControllerNode, NotLeader
from ferrymq.namesrv.controller.state import ControllerCode, GroupState, Result

log = logging.getLogger("ferrymq.controller")

#: a broker's heartbeat timeout when it does not send one (RocketMQ's 10 s)
DEFAULT_HEARTBEAT_TIMEOUT_S = 10.0


def sync_state_body(g: GroupState) -> bytes:
    """SyncStateSet as RocketMQ's JSON body: {"syncStateSet": [ids], "syncStateSetEpoch": n}."""
    return json.dumps(
        {"syncStateSet": sorted(g.sync_state_set), "syncStateSetEpoch": g.sync_state_set_epoch}
    ).encode()


class ControllerService:
    def __init__(self, node: ControllerNode, scan_interval: float = 1.0) -> None:
        self.node = node
        self.liveness = BrokerLiveness()
        self.scan_interval = scan_interval
        self._task: asyncio.Task[None] | None = None
        self._leading_since: float | None = None
        #: the longest heartbeat timeout heard: how long a new leader listens before electing
        self._max_timeout = 0.0
        #: elections started by a closed connection (kept referenced until done)
        self._closing: set[asyncio.Task[None]] = set()
        self._stopped = False

    def handlers(self) -> dict[RequestCode, Handler]:
        return {
            RequestCode.BROKER_HEARTBEAT: self.heartbeat,
            RequestCode.CONTROLLER_REGISTER_BROKER: self.register,
            RequestCode.CONTROLLER_ELECT_MASTER: self.elect,
            RequestCode.CONTROLLER_GET_REPLICA_INFO: self.replica_info,
            RequestCode.CONTROLLER_ALTER_SYNC_STATE_SET: self.alter,
            RequestCode.CONTROLLER_GET_METADATA_INFO: self.metadata,
        }

    # ---- the election loop -------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="controller-scan")

    async def stop(self) -> None:
        self._stopped = True  # the connections closing now are the name server's own doing
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self.node.close)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.scan_interval)
            try:
                await self.scan(time.monotonic())
            except Exception:  # the loop must outlive a bug in one round
                log.exception("controller scan failed")

    async def scan(self, now: float) -> None:
        """On the leader: elect a master for every group whose master is silent."""
        if not self.node.is_leader:
            self._leading_since = None
            return
        if self._leading_since is None:
            self._leading_since = now
        if now - self._leading_since < self._max_timeout:
            return
        for name in self.node.state().groups:
            await self._replace_master(name, now, "is silent")

    async def _replace_master(self, name: str, now: float, why: str) -> None:
        """On the leader: elect from the live replicas when the group's master is not among them."""
        g = self.node.state().groups.get(name)
        alive = self.liveness.alive(name, now)
        if g is None or not alive or (g.master_id is not None and g.master_id in alive):
            return
        r = await self.node.propose("elect", name, alive, None, False)
        if r.ok and r.group is not None:
            log.warning(
                "broker group %s: master %s %s; elected %s at epoch %d",
                name,
                g.master_id,
                why,
                r.group.master_id,
                r.group.master_epoch,
            )

    def on_connection_closed(self, conn: RemotingConnection) -> None:
        """A connection to the name server closed: brokers that sent heartbeats on it are gone."""
        gone = self.liveness.drop_channel(conn)
        if not gone or self._stopped or not self.node.is_leader:
            return
        for name in {name for name, _ in gone}:
            task = asyncio.create_task(self._elect_after_close(name, conn.peer))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _elect_after_close(self, name: str, peer: object) -> None:
        try:
            await self._replace_master(name, time.monotonic(), f"closed its connection ({peer})")
        except NotLeader:
            pass  # leadership moved: the new leader's scan finds the master silent
        except Exception:
            log.exception("controller election after %s closed failed", peer)

    # ---- requests ----------------------------------------------------------------------------

    def _not_leader(self, cmd: RemotingCommand, exc: NotLeader | None = None) -> RemotingCommand:
        leader = exc.leader if exc is not None else self.node.leader
        resp = cmd.response(int(ControllerCode.NOT_LEADER), f"not the controller leader: {leader}")
        resp.ext_fields["controllerLeaderAddress"] = leader or ""
        return resp

    @guarded
    def heartbeat(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        ext = cmd.ext_fields
        timeout_ms = opt_int(ext, "heartbeatTimeoutMills", int(DEFAULT_HEARTBEAT_TIMEOUT_S * 1000))
        self._max_timeout = max(self._max_timeout, timeout_ms / 1000)
        self.liveness.heartbeat(
            req_str(ext, "brokerName", ResponseCode.INVALID_PARAMETER),
            req_int(ext, "brokerId", ResponseCode.INVALID_PARAMETER),
            req_str(ext, "brokerAddr", ResponseCode.INVALID_PARAMETER),
            epoch=opt_int(ext, "epoch", 0),
            max_offset=opt_int(ext, "maxOffset", 0),
            priority=opt_int(ext, "electionPriority", 0),
            now=time.monotonic(),
            timeout=timeout_ms / 1000,
            channel=conn,
        )
        return cmd.response(ResponseCode.SUCCESS)

    def _answer(self, cmd: RemotingCommand, r: Result, *, alive_only: bool = False) -> RemotingCommand:
        """A replica-info style answer: master fields in the header, the in-sync set as body."""
        resp = cmd.response(int(r.code), r.remark or None)
        g = r.group
        if g is None:
            return resp
        master_alive = g.master_id is not None and (
            not alive_only or g.master_id in self.liveness.alive(g.broker_name, time.monotonic())
        )
        if master_alive:
            resp.ext_fields["masterBrokerId"] = str(g.master_id)
            resp.ext_fields["masterAddress"] = g.master_addr or ""
        resp.ext_fields["masterEpoch"] = str(g.master_epoch)
        resp.ext_fields["syncStateSetEpoch"] = str(g.sync_state_set_epoch)
        resp.body = sync_state_body(g)
        return resp

    def register(self, cmd: RemotingCommand, conn: RemotingConnection) -> Awaitable[RemotingCommand]:
        return self._propose(cmd, conn, self._register_args, alive_only=True)

    def elect(self, cmd: RemotingCommand, conn: RemotingConnection) -> Awaitable[RemotingCommand]:
        return self._propose(cmd, conn, self._elect_args)

    def alter(self, cmd: RemotingCommand, conn: RemotingConnection) -> Awaitable[RemotingCommand]:
        return self._propose(cmd, conn, self._alter_args)

    def _register_args(self, cmd: RemotingCommand) -> tuple[object, ...]:
        ext = cmd.ext_fields
        return (
            "register",
            req_str(ext, "clusterName", ResponseCode.INVALID_PARAMETER),
            req_str(ext, "brokerName", ResponseCode.INVALID_PARAMETER),
            req_int(ext, "brokerId", ResponseCode.INVALID_PARAMETER),
            req_str(ext, "brokerAddress", ResponseCode.INVALID_PARAMETER),
        )

    def _elect_args(self, cmd: RemotingCommand) -> tuple[object, ...]:
        ext = cmd.ext_fields
        name = req_str(ext, "brokerName", ResponseCode.INVALID_PARAMETER)
        designated = req_int(ext, "brokerId", ResponseCode.INVALID_PARAMETER)
        designate = ext.get("designateElect", "false").lower() == "true"
        alive = self.liveness.alive(name, time.monotonic())
        return ("elect", name, alive, designated if designate else None, False)

    def _alter_args(self, cmd: RemotingCommand) -> tuple[object, ...]:
        ext = cmd.ext_fields
        name = req_str(ext, "brokerName", ResponseCode.INVALID_PARAMETER)
        try:
            body = json.loads(bytes(cmd.body) or b"{}")
            new_set = {int(x) for x in body["syncStateSet"]}
            ss_epoch = int(body["syncStateSetEpoch"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BadRequest(f"bad SyncStateSet body: {exc}", ResponseCode.INVALID_PARAMETER) from None
        alive = set(self.liveness.alive(name, time.monotonic()))
        return (
            "alter",
            name,
            req_int(ext, "masterBrokerId", ResponseCode.INVALID_PARAMETER),
            req_int(ext, "masterEpoch", ResponseCode.INVALID_PARAMETER),
            new_set,
            ss_epoch,
            alive,
        )

    async def _propose(
        self,
        cmd: RemotingCommand,
        conn: RemotingConnection,
        parse: object,
        *,
        alive_only: bool = False,
    ) -> RemotingCommand:
        assert callable(parse)
        try:
            args = parse(cmd)
        except BadRequest as exc:
            log.info("controller request %s from %s rejected: %s", cmd.code, conn.peer, exc.remark)
            return exc.response(cmd)
        try:
            r = await self.node.propose(*args)
        except NotLeader as exc:
            return self._not_leader(cmd, exc)
        except TimeoutError:
            return cmd.response(
                ResponseCode.SYSTEM_ERROR, "the controller could not commit the change in time"
            )
        return self._answer(cmd, r, alive_only=alive_only)

    @guarded
    def replica_info(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        if not self.node.is_leader:
            return self._not_leader(cmd)
        name = req_str(cmd.ext_fields, "brokerName", ResponseCode.INVALID_PARAMETER)
        g = self.node.state().group(name)
        if g is None:
            return cmd.response(int(ControllerCode.BROKER_METADATA_NOT_EXIST), f"no broker group {name}")
        return self._answer(cmd, Result(ControllerCode.SUCCESS, g), alive_only=True)

    def metadata(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        resp = cmd.response(ResponseCode.SUCCESS)
        leader = self.node.leader
        resp.ext_fields.update(
            {
                "group": "ferrymq-controller",
                "controllerLeaderId": leader or "",
                "controllerLeaderAddress": leader or "",
                "isLeader": "true" if self.node.is_leader else "false",
                "peers": ";".join(p.remoting for p in self.node.peers),
            }
        )
        return resp

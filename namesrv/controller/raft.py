"""The controller's state replicated by Raft (pysyncobj), so that any one controller node may
fail and a new leader knows every master epoch and in-sync set decided before.

Each command is a method of ``ControllerState`` applied in log order on every node; the node
that proposed it gets the ``Result`` back through an asyncio future. Only the Raft leader
proposes (``ControllerNode.is_leader``); the others answer brokers NOT_LEADER with the leader's
name-server address. The log and snapshots are kept under ``data_dir`` so that epochs never go
backwards across a restart of every node.

Peers are given as ``remotingHost:remotingPort@raftPort``: brokers talk to the controller on
the name server's remoting port, the nodes talk Raft among themselves on the raft port. The
raft port carries pickled commands: keep it on a trusted network (it is not authenticated yet).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferrymq.namesrv.controller._pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from ferrymq.namesrv.controller.state import Candidate, ControllerState, Result

log = logging.getLogger("ferrymq.controller")


@dataclass(frozen=True, slots=True)
class Peer:
    remoting: str  # host:port brokers reach the name server (and its controller) on
    raft: str  # host:port the controller nodes replicate on

    @classmethod
    def parse(cls, text: str) -> Peer:
        """``host:port@raftPort``; ValueError naming the text if it is not that."""
        remoting, sep, raft_port = text.strip().partition("@")
        host, _, port = remoting.rpartition(":")
        if not sep or not host or not port.isdigit() or not raft_port.isdigit():
            raise ValueError(f"controller peer {text!r} is not host:port@raftPort")
        return cls(remoting, f"{host}:{raft_port}")


def parse_peers(text: str) -> list[Peer]:
    return [Peer.parse(p) for p in text.replace(",", ";").split(";") if p.strip()]


class _ReplicatedState(SyncObj):
    """The pysyncobj object: its non-private attributes are what snapshots hold."""

    def __init__(self, self_raft: str, others: list[str], conf: SyncObjConf) -> None:
        # set before SyncObj.__init__, so snapshots leave it out; commands are applied on
        # pysyncobj's thread and read on the event loop: both hold it
        self._apply_lock = threading.Lock()
        super().__init__(self_raft, others, conf)
        self.state = ControllerState()

    def read(self) -> ControllerState:
        with self._apply_lock:
            return copy.deepcopy(self.state)

    def _applied(self, result: Result) -> Result:
        """What the proposer gets: a copy, since the next command may change the group."""
        return copy.deepcopy(result)

    @replicated
    def register(self, cluster: str, broker_name: str, broker_id: int, addr: str) -> Result:
        with self._apply_lock:
            return self._applied(self.state.register(cluster, broker_name, broker_id, addr))

    @replicated
    def elect(
        self, broker_name: str, alive: dict[int, Candidate], designated: int | None, allow_unclean: bool
    ) -> Result:
        with self._apply_lock:
            r = self.state.elect(broker_name, alive, designated=designated, allow_unclean=allow_unclean)
            return self._applied(r)

    @replicated
    def alter(
        self,
        broker_name: str,
        master_id: int,
        master_epoch: int,
        new_set: set[int],
        sync_state_set_epoch: int,
        alive: set[int],
    ) -> Result:
        with self._apply_lock:
            r = self.state.alter_sync_state_set(
                broker_name, master_id, master_epoch, new_set, sync_state_set_epoch, alive
            )
            return self._applied(r)


class NotLeader(Exception):
    """This node is not the Raft leader; ``leader`` is the leader's remoting address, if known."""

    def __init__(self, leader: str | None) -> None:
        super().__init__(f"not the controller leader (leader: {leader or 'unknown'})")
        self.leader = leader


class ControllerNode:
    """One controller node; ``propose`` runs a command through Raft and returns its result."""

    def __init__(self, peers: list[Peer], self_remoting: str, data_dir: Path) -> None:
        by_remoting = {p.remoting: p for p in peers}
        if self_remoting not in by_remoting:
            raise ValueError(f"this name server ({self_remoting}) is not among the controller peers")
        self.peers = peers
        self.me = by_remoting[self_remoting]
        self._remoting_of = {p.raft: p.remoting for p in peers}
        data_dir.mkdir(parents=True, exist_ok=True)
        conf = SyncObjConf(
            journalFile=str(data_dir / "raft.journal"),
            fullDumpFile=str(data_dir / "raft.dump"),
            dynamicMembershipChange=False,
            appendEntriesUseBatch=True,
            useFork=False,  # a forked dump of a process running asyncio threads is not safe
            raftMinTimeout=0.4,
            raftMaxTimeout=1.4,
        )
        others = [p.raft for p in peers if p != self.me]
        self._obj = _ReplicatedState(self.me.raft, others, conf)
        self.leader_since: float | None = None

    def state(self) -> ControllerState:
        """A copy of the applied state (pysyncobj applies commands on its own thread: a read may
        miss the newest one, never see half of one)."""
        state: ControllerState = self._obj.read()
        return state

    @property
    def is_leader(self) -> bool:
        return bool(self._obj._isLeader())

    @property
    def leader(self) -> str | None:
        """The leader's remoting address (None during an election)."""
        node = self._obj._getLeader()
        if node is None:
            return None
        return self._remoting_of.get(getattr(node, "address", str(node)))

    async def propose(self, command: str, *args: Any, timeout: float = 5.0) -> Result:
        """Replicate ``command`` (register / elect / alter) and return what applying it gave."""
        if not self.is_leader:
            raise NotLeader(self.leader)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Result] = loop.create_future()

        def done(result: Result | None, error: int) -> None:
            def settle() -> None:
                if fut.done():
                    return
                if error == FAIL_REASON.SUCCESS and result is not None:
                    fut.set_result(result)
                else:
                    fut.set_exception(NotLeader(self.leader) if error else RuntimeError("no result"))

            loop.call_soon_threadsafe(settle)

        getattr(self._obj, command)(*args, callback=done)
        async with asyncio.timeout(timeout):
            return await fut

    def close(self) -> None:
        self._obj.destroy()

"""The failover controller's replicated state machine (RocketMQ 5's ReplicasInfoManager, sans-IO).

One ``GroupState`` per broker group (cluster, brokerName): its replicas, which one is master,
the master epoch, and the in-sync replica set with its own epoch. Every change is a command
applied in the same order on every controller node (the consensus layer around this module
replicates the commands; this module never does I/O and never reads the clock: time and
liveness come in as arguments), so ``apply`` must be deterministic.

Rules, as RocketMQ's controller has them (../shared/reference/rocketmq-ha.md §3.3):

* an election picks only from alive members of the in-sync set: the current master if it is
  still alive, else the one with the highest epoch, then the highest max offset, then the
  lowest election priority, then the lowest broker id; a new master gets epoch + 1 and an
  in-sync set of itself alone;
* no alive in-sync member: no election (``MASTER_NOT_AVAILABLE``; the group keeps its old master,
  which is still the one to come back to) unless unclean election is allowed, which ferrymq never
  turns on by default (it can lose acknowledged messages);
* only the current master, at the current master epoch and in-sync-set epoch, may change the
  in-sync set, which must contain it and only registered, alive brokers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class ControllerCode(IntEnum):
    """RocketMQ's controller response codes (ResponseCode 2000-2016)."""

    SUCCESS = 0
    FENCED_MASTER_EPOCH = 2000
    FENCED_SYNC_STATE_SET_EPOCH = 2001
    INVALID_MASTER = 2002
    INVALID_REPLICAS = 2003
    MASTER_NOT_AVAILABLE = 2004
    BROKER_NOT_ALIVE = 2006
    NOT_LEADER = 2007
    BROKER_METADATA_NOT_EXIST = 2008
    MASTER_STILL_EXIST = 2011
    ELECT_MASTER_FAILED = 2012


@dataclass(slots=True)
class Candidate:
    """What a broker's heartbeat told the controller leader (not replicated: leader-local)."""

    broker_id: int
    epoch: int  # the last epoch in its epoch file
    max_offset: int  # its commit-log max offset
    priority: int = 0  # electionPriority: lower is preferred


@dataclass
class GroupState:
    cluster: str
    broker_name: str
    #: broker id -> remoting address
    replicas: dict[int, str] = field(default_factory=dict)
    master_id: int | None = None
    master_epoch: int = 0
    sync_state_set: set[int] = field(default_factory=set)
    sync_state_set_epoch: int = 0
    next_id: int = 1

    @property
    def master_addr(self) -> str | None:
        return None if self.master_id is None else self.replicas.get(self.master_id)

    def to_json(self) -> dict[str, object]:
        return {
            "cluster": self.cluster,
            "brokerName": self.broker_name,
            "replicas": {str(k): v for k, v in sorted(self.replicas.items())},
            "masterBrokerId": self.master_id,
            "masterEpoch": self.master_epoch,
            "syncStateSet": sorted(self.sync_state_set),
            "syncStateSetEpoch": self.sync_state_set_epoch,
        }


@dataclass(slots=True)
class Result:
    code: ControllerCode
    group: GroupState | None = None
    remark: str = ""
    #: ids of the group's other replicas to notify of a new master (NOTIFY_BROKER_ROLE_CHANGED)
    notify: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code == ControllerCode.SUCCESS


class ControllerState:
    """Every broker group the controller knows; mutated only through the command methods."""

    def __init__(self) -> None:
        self.groups: dict[str, GroupState] = {}

    def group(self, broker_name: str) -> GroupState | None:
        return self.groups.get(broker_name)

    # ---- commands (replicated) ---------------------------------------------------------------

    def register(self, cluster: str, broker_name: str, broker_id: int, addr: str) -> Result:
        """A broker joins its group (CONTROLLER_REGISTER_BROKER); an address moving to another id
        leaves its old one, as the name server's route does."""
        g = self.groups.get(broker_name)
        if g is None:
            g = self.groups[broker_name] = GroupState(cluster, broker_name)
        for bid, a in list(g.replicas.items()):
            if a == addr and bid != broker_id:
                del g.replicas[bid]
        g.replicas[broker_id] = addr
        g.next_id = max(g.next_id, broker_id + 1)
        return Result(ControllerCode.SUCCESS, g)

    def elect(
        self,
        broker_name: str,
        alive: dict[int, Candidate],
        *,
        designated: int | None = None,
        allow_unclean: bool = False,
    ) -> Result:
        """Choose a master from the alive in-sync replicas (CONTROLLER_ELECT_MASTER).

        ``alive`` is the leader's view of live brokers of the group with their heartbeat facts.
        A live current master stays (MASTER_STILL_EXIST) unless another one is designated.
        """
        g = self.groups.get(broker_name)
        if g is None:
            return Result(ControllerCode.BROKER_METADATA_NOT_EXIST, None, f"no broker group {broker_name}")
        if g.master_id is not None and g.master_id in alive and designated in (None, g.master_id):
            return Result(ControllerCode.MASTER_STILL_EXIST, g, "the master is alive")
        in_sync = g.sync_state_set if g.sync_state_set else set(g.replicas)  # a new group
        pool = [c for bid, c in alive.items() if bid in in_sync and bid in g.replicas]
        if designated is not None:
            pool = [c for c in pool if c.broker_id == designated]
        if not pool and allow_unclean and designated is None:
            pool = [c for bid, c in alive.items() if bid in g.replicas]
        if not pool:  # nothing changes: the old master, if it returns, is still the one in sync
            return Result(ControllerCode.MASTER_NOT_AVAILABLE, g, "no alive in-sync replica")
        best = min(pool, key=lambda c: (-c.epoch, -c.max_offset, c.priority, c.broker_id))
        g.master_id = best.broker_id
        g.master_epoch += 1
        g.sync_state_set = {best.broker_id}
        g.sync_state_set_epoch += 1
        others = sorted(bid for bid in alive if bid != best.broker_id and bid in g.replicas)
        return Result(ControllerCode.SUCCESS, g, notify=others)

    def alter_sync_state_set(
        self,
        broker_name: str,
        master_id: int,
        master_epoch: int,
        new_set: set[int],
        sync_state_set_epoch: int,
        alive: set[int],
    ) -> Result:
        """The master reports a grown or shrunk in-sync set (CONTROLLER_ALTER_SYNC_STATE_SET)."""
        g = self.groups.get(broker_name)
        if g is None:
            return Result(ControllerCode.BROKER_METADATA_NOT_EXIST, None, f"no broker group {broker_name}")
        if g.master_id != master_id:
            return Result(ControllerCode.INVALID_MASTER, g, f"{master_id} is not the master")
        if g.master_epoch != master_epoch:
            return Result(
                ControllerCode.FENCED_MASTER_EPOCH, g, f"master epoch {master_epoch} != {g.master_epoch}"
            )
        if g.sync_state_set_epoch != sync_state_set_epoch:
            return Result(
                ControllerCode.FENCED_SYNC_STATE_SET_EPOCH,
                g,
                f"in-sync set epoch {sync_state_set_epoch} != {g.sync_state_set_epoch}",
            )
        if master_id not in new_set:
            return Result(ControllerCode.INVALID_REPLICAS, g, "the in-sync set must hold the master")
        unknown = new_set - set(g.replicas)
        if unknown:
            return Result(ControllerCode.INVALID_REPLICAS, g, f"unknown replicas {sorted(unknown)}")
        dead = new_set - alive - {master_id}
        if dead:
            return Result(ControllerCode.BROKER_NOT_ALIVE, g, f"replicas not alive {sorted(dead)}")
        if new_set == g.sync_state_set:
            return Result(ControllerCode.SUCCESS, g, "unchanged")
        g.sync_state_set = set(new_set)
        g.sync_state_set_epoch += 1
        return Result(ControllerCode.SUCCESS, g)

    # ---- snapshots (for the consensus layer's log compaction) ------------------------------

    def snapshot(self) -> dict[str, object]:
        return {name: g.to_json() for name, g in sorted(self.groups.items())}

    @classmethod
    def restore(cls, data: dict[str, dict[str, object]]) -> ControllerState:
        st = cls()
        for name, raw in data.items():
            replicas = raw["replicas"]
            sset = raw["syncStateSet"]
            assert isinstance(replicas, dict) and isinstance(sset, list)
            g = GroupState(str(raw["cluster"]), name)
            g.replicas = {int(k): str(v) for k, v in replicas.items()}
            master = raw["masterBrokerId"]
            g.master_id = None if master is None else int(str(master))
            g.master_epoch = int(str(raw["masterEpoch"]))
            g.sync_state_set = {int(x) for x in sset}
            g.sync_state_set_epoch = int(str(raw["syncStateSetEpoch"]))
            g.next_id = max(g.replicas, default=0) + 1
            st.groups[name] = g
        return st

"""What the broker knows of its group's replication, and the SYNC_MASTER wait (sans-IO but for
the asyncio futures it resolves)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from ferrymq.core.config import BrokerConfig


class SlaveWait(Enum):
    """How a wait for the slaves ended (RocketMQ's PutMessageStatus names)."""

    OK = "PUT_OK"
    SLAVE_NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"
    FLUSH_SLAVE_TIMEOUT = "FLUSH_SLAVE_TIMEOUT"


@dataclass(slots=True)
class ReplicaInfo:
    """One slave as its master sees it."""

    addr: str  # the slave's HA connection peer, host:port
    ack_offset: int  # the last commit-log offset it reported
    lag_bytes: int  # master max offset - ack_offset
    in_sync: bool  # connected and lag < haMaxGapNotInSync
    last_ack_ms: int  # wall clock of its last report


class ReplicationState:
    """Role, slaves (on a master) and master link (on a slave) of one broker.

    The HA services write it (``slave_acked``, ``slave_gone``, ``master_link``); everything else
    reads it. ``wait_for_slaves`` is the SYNC_MASTER wait: resolved when any in-sync slave has
    acknowledged ``end_offset``, or in controller mode every slave of the in-sync set.
    """

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.slaves: dict[str, ReplicaInfo] = {}
        #: on a slave: the master's HA and remoting addresses, and whether the HA link is up
        self.master_ha_addr: str | None = config.ha_master_address
        self.master_addr: str | None = None
        self.master_connected = False
        self._waiters: list[tuple[int, asyncio.Future[SlaveWait]]] = []
        #: set at the next ack or departure of a slave; None while nobody waits for one
        self._change: asyncio.Event | None = None
        #: on a master: HA peers not (yet) identified as ferrymq slaves, e.g. Apache RocketMQ
        #: slaves, which cannot read Kafka batch entries (core/ha/master.py)
        self.foreign: set[str] = set()
        #: readers stop at ``confirm_offset`` (allAckInSyncStateSet; README "Controller mode")
        self.gate_reads = config.gate_reads
        #: controller mode, on a master: HA link (host:port) -> broker id, from HA_SLAVE_HELLO
        self.peer_ids: dict[str, int] = {}
        #: controller mode, on a master: the slaves of the in-sync set (the controller's, united
        #: with the one being reported while a report is in flight, as RocketMQ after #5663)
        self.sync_state_ids: frozenset[int] = frozenset()
        #: the group high watermark: the commit-log offset below which every entry is on each
        #: in-sync replica (None: not gated, every stored entry is readable)
        self.confirm_offset: int | None = None
        #: SYNC_MASTER waits for every member of the in-sync set, not for one slave (RocketMQ 5)
        self._all_ack = config.enable_controller_mode and config.gate_reads
        #: told of each new ``confirm_offset`` (the store gates its reads with it)
        self.confirm_listeners: list[Callable[[int | None], None]] = []

    @property
    def role(self) -> str:
        return self.config.broker_role

    @property
    def is_slave(self) -> bool:
        return self.config.is_slave

    def max_ack_offset(self) -> int:
        """The furthest offset any connected slave acknowledged (RocketMQ's push2SlaveMaxOffset)."""
        return max((s.ack_offset for s in self.slaves.values()), default=0)

    def in_sync_count(self) -> int:
        """Slaves in sync: in controller mode the members of the in-sync set (the controller's,
        united with a report in flight), else the connected slaves within haMaxGapNotInSync."""
        if self.config.enable_controller_mode:
            return len(self.sync_state_ids)
        return sum(1 for s in self.slaves.values() if s.in_sync)

    def set_acked(self, end_offset: int) -> bool:
        """Controller mode: every slave of the in-sync set acknowledged ``end_offset``."""
        return self._set_ack_offset() >= end_offset

    def _set_ack_offset(self) -> int:
        """What every slave of the in-sync set holds: all while the master is alone in the set,
        nothing while a member is not connected (it acknowledges nothing)."""
        if not self.sync_state_ids:
            return 1 << 63
        acks: dict[int, int] = {}
        for addr, s in self.slaves.items():
            sid = self.peer_ids.get(addr)
            if sid in self.sync_state_ids:
                acks[sid] = max(acks.get(sid, -1), s.ack_offset)
        return min(acks.values()) if len(acks) == len(self.sync_state_ids) else -1

    def replicas(self) -> list[ReplicaInfo]:
        return sorted(self.slaves.values(), key=lambda s: s.addr)

    # ---- written by the HA master service ----------------------------------------------------

    def slave_acked(self, addr: str, offset: int, master_max: int) -> None:
        lag = max(0, master_max - offset)
        self.slaves[addr] = ReplicaInfo(
            addr, offset, lag, lag < self.config.ha_max_gap_not_in_sync, int(time.time() * 1000)
        )
        self._resolve(offset)
        self._recompute(master_max)
        self._notify()

    def slave_gone(self, addr: str) -> None:
        self.slaves.pop(addr, None)
        self._notify()

    def _resolve(self, offset: int) -> None:
        """Answer the SYNC_MASTER waits now replicated: up to ``offset`` (any one slave's ack),
        or in controller mode with allAckInSyncStateSet up to what every set member holds."""
        if not self._waiters:
            return
        if self._all_ack:
            offset = self._set_ack_offset()
        still = []
        for end, fut in self._waiters:
            if fut.done():
                continue
            if offset >= end:
                fut.set_result(SlaveWait.OK)
            else:
                still.append((end, fut))
        self._waiters = still

    # ---- the group high watermark (confirmOffset) ----------------------------------------------

    def set_sync_state(self, slave_ids: Iterable[int], master_max: int) -> None:
        """Controller mode, on a master: the in-sync set's slaves changed (the controller's answer,
        or its union with a report in flight)."""
        self.sync_state_ids = frozenset(slave_ids)
        self._resolve(0)
        self._recompute(master_max)
        self._notify()

    def _recompute(self, master_max: int) -> None:
        """confirmOffset as RocketMQ's AutoSwitchHAService.computeConfirmOffset: the least ack of
        the connected in-sync slaves; unchanged while one of them is not connected; not gated
        while the master is alone. It never goes back within a term (a slave joins the set only
        once it acknowledged the current watermark, ``may_join``)."""
        if not self.gate_reads or self.is_slave:
            return
        if self.config.enable_controller_mode:
            ids = self.sync_state_ids
            acks = {self.peer_ids[a]: s.ack_offset for a, s in self.slaves.items() if a in self.peer_ids}
            if not ids:
                new: int | None = None
            elif not ids <= acks.keys():
                new = master_max if self.confirm_offset is None else self.confirm_offset
            else:
                new = min(min(acks[i] for i in ids), master_max)
        else:  # classic mode with allAckInSyncStateSet: the slaves in sync by lag
            in_sync = [s.ack_offset for s in self.slaves.values() if s.in_sync]
            new = min(min(in_sync), master_max) if in_sync else None
        if new is not None and self.confirm_offset is not None:
            new = max(new, self.confirm_offset)
        self._publish(new)

    def may_join(self, replica: ReplicaInfo, master_max: int) -> bool:
        """Whether an in-sync slave may enter the in-sync set now: it holds everything readers may
        already have seen (RocketMQ's expansion rule: ack >= confirmOffset, which is the master's
        end while it is alone), so the watermark never goes back and nothing read is lost if it
        is elected."""
        seen = master_max if self.confirm_offset is None else self.confirm_offset
        return replica.in_sync and replica.ack_offset >= seen

    def master_confirmed(self, offset: int) -> None:
        """On a slave: the master's high watermark as last learnt; reads stop there."""
        if self.gate_reads and (self.confirm_offset is None or offset > self.confirm_offset):
            self._publish(offset)

    def reset_confirm(self, offset: int | None) -> None:
        """A role change or a restart: start from ``offset`` (the persisted watermark)."""
        self._publish(offset if self.gate_reads else None)

    def truncated(self, offset: int) -> None:
        """The store was cut at ``offset`` (a replica rejoining a master): what follows is the
        new master's, readable only once it confirms it."""
        if self.gate_reads and (self.confirm_offset is None or self.confirm_offset > offset):
            self._publish(offset)

    def _publish(self, offset: int | None) -> None:
        if offset == self.confirm_offset:
            return
        self.confirm_offset = offset
        for listener in self.confirm_listeners:
            listener(offset)

    def _notify(self) -> None:
        ev = self._change
        if ev is not None:
            self._change = None
            ev.set()

    async def changed(self) -> None:
        """Return at the next ack or departure of any slave: for waits that no single ack can
        end (Kafka acks=all waits for every in-sync slave, or for one to leave the set)."""
        if self._change is None:
            self._change = asyncio.Event()
        await self._change.wait()

    # ---- the SYNC_MASTER wait ----------------------------------------------------------------

    async def wait_for_slaves(self, end_offset: int, timeout_ms: int | None = None) -> SlaveWait:
        """Wait until a slave has acknowledged ``end_offset`` (the end of a stored entry); in
        controller mode with allAckInSyncStateSet, every slave of the in-sync set (none while the
        master is alone in it: OK at once), re-read at each change of the set.

        SLAVE_NOT_AVAILABLE at once when no slave is in sync (classic mode); FLUSH_SLAVE_TIMEOUT
        after ``timeout_ms`` (slaveTimeout). Either way the entry stays stored, as in RocketMQ.
        """
        if self._all_ack:
            if self.set_acked(end_offset):
                return SlaveWait.OK
        elif self.max_ack_offset() >= end_offset and self.in_sync_count():
            return SlaveWait.OK
        elif not self.in_sync_count():
            return SlaveWait.SLAVE_NOT_AVAILABLE
        fut: asyncio.Future[SlaveWait] = asyncio.get_running_loop().create_future()
        self._waiters.append((end_offset, fut))
        timeout = (timeout_ms if timeout_ms is not None else self.config.slave_timeout) / 1000
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                return await fut
        return SlaveWait.FLUSH_SLAVE_TIMEOUT

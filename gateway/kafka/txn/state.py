"""The transaction coordinator's state machine: pure code, time passed in (wall-clock ms).

One ``TxnMeta`` per transactional id, as Kafka's TransactionMetadata: the current producer id and
epoch, the previous ones (KIP-360 retries), the timeout, the state, the partitions and groups of
the open transaction and when it started. ``TxnStates`` applies the requests and answers them as
the reference table says (reference §2.3); what must be written elsewhere (markers, then the
completion) comes back as a ``Finish`` for the driver (coordinator.py) to carry out.

States: Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, Dead. A fence
(InitProducerId on an Ongoing transaction, or its timeout) bumps the epoch and goes straight to
PrepareAbort with the new epoch, so markers carry it and the zombie is fenced at the partitions;
Kafka's transient PrepareEpochFence is never stored, so it never shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from kio.schema.errors import ErrorCode

#: Kafka's transaction.max.timeout.ms (the default of BrokerConfig kafkaTransactionMaxTimeoutMs)
MAX_TIMEOUT_MS = 900_000
#: Kafka's transactional.id.expiration.ms: an idle finished transactional id is forgotten after it
EXPIRATION_MS = 7 * 24 * 3600 * 1000
#: an epoch at or above this gets a new producer id instead of a bump (Kafka's isEpochExhausted)
EPOCH_EXHAUSTED = 32766
MAX_EPOCH = 32767

Partition = tuple[str, int]


class TxnState(IntEnum):
    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def label(self) -> str:
        """The name Kafka's admin APIs show (DescribeTransactions, ListTransactions)."""
        return "".join(w.capitalize() for w in self.name.split("_"))


PREPARING = (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT, TxnState.PREPARE_EPOCH_FENCE)
FINISHED = (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT, TxnState.DEAD)
STATE_LABELS = {s.label: s for s in TxnState}


@dataclass(slots=True)
class TxnMeta:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState = TxnState.EMPTY
    last_producer_id: int = -1
    last_producer_epoch: int = -1
    partitions: set[Partition] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    start_ms: int = -1
    update_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.transactional_id,
            "pid": self.producer_id,
            "epoch": self.producer_epoch,
            "lastPid": self.last_producer_id,
            "lastEpoch": self.last_producer_epoch,
            "timeoutMs": self.timeout_ms,
            "state": int(self.state),
            "partitions": sorted([t, p] for t, p in self.partitions),
            "groups": sorted(self.groups),
            "startMs": self.start_ms,
            "updateMs": self.update_ms,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TxnMeta:
        return cls(
            transactional_id=str(d["id"]),
            producer_id=int(d["pid"]),
            producer_epoch=int(d["epoch"]),
            timeout_ms=int(d["timeoutMs"]),
            state=TxnState(int(d["state"])),
            last_producer_id=int(d.get("lastPid", -1)),
            last_producer_epoch=int(d.get("lastEpoch", -1)),
            partitions={(str(t), int(p)) for t, p in d.get("partitions", [])},
            groups={str(g) for g in d.get("groups", [])},
            start_ms=int(d.get("startMs", -1)),
            update_ms=int(d.get("updateMs", 0)),
        )


@dataclass(frozen=True, slots=True)
class Finish:
    """Markers to write for a transaction in Prepare*, then :meth:`TxnStates.complete`."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    commit: bool
    partitions: tuple[Partition, ...]
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InitResult:
    error: ErrorCode
    producer_id: int = -1
    producer_epoch: int = -1
    finish: Finish | None = None  # a fenced Ongoing transaction to abort


def fenced(api_version: int, first_with_fenced: int) -> ErrorCode:
    """PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for versions before the one that knows it."""
    if api_version >= first_with_fenced:
        return ErrorCode.producer_fenced
    return ErrorCode.invalid_producer_epoch


class TxnStates:
    """Every transactional id this coordinator serves. ``new_producer_id`` hands out fresh ids."""

    def __init__(
        self,
        new_producer_id: Callable[[], int],
        max_timeout_ms: int = MAX_TIMEOUT_MS,
        expiration_ms: int = EXPIRATION_MS,
    ) -> None:
        self._new_pid = new_producer_id
        self.max_timeout_ms = max_timeout_ms
        self.expiration_ms = expiration_ms
        self.txns: dict[str, TxnMeta] = {}
        self._by_pid: dict[int, str] = {}

    # ---- persistence -----------------------------------------------------------------------

    def to_json(self) -> list[dict[str, Any]]:
        return [m.to_json() for m in self.txns.values()]

    def load(self, items: Iterable[dict[str, Any]], *, replace: bool = False) -> None:
        """Add the ids of ``to_json``; ``replace``: forget every other id first (a slave's copy)."""
        if replace:
            self.txns.clear()
            self._by_pid.clear()
        for d in items:
            meta = TxnMeta.from_json(d)
            self.txns[meta.transactional_id] = meta
            self._by_pid[meta.producer_id] = meta.transactional_id

    # ---- lookups ----------------------------------------------------------------------------

    def get(self, transactional_id: str) -> TxnMeta | None:
        return self.txns.get(transactional_id)

    def by_producer(self, producer_id: int) -> TxnMeta | None:
        tid = self._by_pid.get(producer_id)
        return self.txns.get(tid) if tid is not None else None

    def preparing(self) -> list[Finish]:
        """Transactions whose markers are still to write (after a restart: every Prepare*)."""
        return [_finish(m) for m in self.txns.values() if m.state in PREPARING]

    def _check(self, tid: str, pid: int, epoch: int, version: int, first_fenced: int) -> TxnMeta | ErrorCode:
        meta = self.txns.get(tid)
        if meta is None or meta.producer_id != pid:
            return ErrorCode.invalid_producer_id_mapping
        if meta.producer_epoch != epoch:
            return fenced(version, first_fenced)
        return meta

    # ---- requests ---------------------------------------------------------------------------

    def init_producer(
        self, tid: str, timeout_ms: int, pid: int, epoch: int, now_ms: int, version: int
    ) -> InitResult:
        """InitProducerId with a transactional id (v3+: the producer's current id and epoch)."""
        if not tid:
            return InitResult(ErrorCode.invalid_request)
        if not 0 < timeout_ms <= self.max_timeout_ms:
            return InitResult(ErrorCode.invalid_transaction_timeout)
        meta = self.txns.get(tid)
        if meta is None or meta.state is TxnState.DEAD:
            meta = TxnMeta(tid, self._new_pid(), 0, timeout_ms, update_ms=now_ms)
            self._put(meta)
            return InitResult(ErrorCode.none, meta.producer_id, 0)
        if meta.state in PREPARING:
            return InitResult(ErrorCode.concurrent_transactions)
        if pid >= 0:  # KIP-360: the caller must be the current producer, or retry its last init
            if (pid, epoch) == (meta.last_producer_id, meta.last_producer_epoch) and meta.state in FINISHED:
                return InitResult(ErrorCode.none, meta.producer_id, meta.producer_epoch)
            if (pid, epoch) != (meta.producer_id, meta.producer_epoch):
                return InitResult(fenced(version, 4))
        meta.timeout_ms = timeout_ms
        meta.update_ms = now_ms
        if meta.state is TxnState.ONGOING:  # fence the zombie: new epoch, abort its transaction
            self._bump(meta, fence=True)
            meta.state = TxnState.PREPARE_ABORT
            return InitResult(ErrorCode.concurrent_transactions, finish=_finish(meta))
        self._bump(meta, fence=False)
        meta.state = TxnState.EMPTY
        meta.partitions.clear()
        meta.groups.clear()
        meta.start_ms = -1
        return InitResult(ErrorCode.none, meta.producer_id, meta.producer_epoch)

    def _bump(self, meta: TxnMeta, *, fence: bool) -> None:
        """Next epoch, or a new producer id once the epoch is exhausted. A fence leaves no previous
        epoch to retry with (so the zombie cannot init its way back) and keeps the id while the
        abort markers are still to be written under it."""
        if fence:
            meta.last_producer_id, meta.last_producer_epoch = meta.producer_id, -1
            meta.producer_epoch = min(meta.producer_epoch + 1, MAX_EPOCH)
            return
        meta.last_producer_id, meta.last_producer_epoch = meta.producer_id, meta.producer_epoch
        if meta.producer_epoch < EPOCH_EXHAUSTED:
            meta.producer_epoch += 1
        else:
            self._by_pid.pop(meta.producer_id, None)
            meta.producer_id, meta.producer_epoch = self._new_pid(), 0
            self._by_pid[meta.producer_id] = meta.transactional_id

    def add(
        self,
        tid: str,
        pid: int,
        epoch: int,
        now_ms: int,
        version: int,
        partitions: Iterable[Partition] = (),
        groups: Iterable[str] = (),
    ) -> tuple[ErrorCode, bool]:
        """AddPartitionsToTxn / AddOffsetsToTxn: (error, whether the state changed and must be logged)."""
        got = self._check(tid, pid, epoch, version, 2)
        if isinstance(got, ErrorCode):
            return got, False
        meta = got
        if meta.state in PREPARING:
            return ErrorCode.concurrent_transactions, False
        if meta.state is TxnState.DEAD:
            return ErrorCode.invalid_txn_state, False
        new_parts = set(partitions) - meta.partitions
        new_groups = set(groups) - meta.groups
        if meta.state is TxnState.ONGOING and not new_parts and not new_groups:
            return ErrorCode.none, False
        if meta.state is not TxnState.ONGOING:
            meta.state = TxnState.ONGOING
            meta.partitions.clear()
            meta.groups.clear()
            meta.start_ms = now_ms
        meta.partitions |= new_parts
        meta.groups |= new_groups
        meta.update_ms = now_ms
        return ErrorCode.none, True

    def verify(
        self, tid: str, pid: int, epoch: int, partitions: Iterable[Partition]
    ) -> dict[Partition, ErrorCode]:
        """AddPartitionsToTxn v4+ verify_only (KIP-890 part 1, from another broker): NONE for each
        partition in the Ongoing transaction, INVALID_TXN_STATE for the others; the producer's
        error (as for add) on every partition."""
        wanted = list(partitions)
        got = self._check(tid, pid, epoch, 4, 2)
        if isinstance(got, ErrorCode):
            return dict.fromkeys(wanted, got)
        if got.state in PREPARING:
            return dict.fromkeys(wanted, ErrorCode.concurrent_transactions)
        ongoing = got.state is TxnState.ONGOING
        return {
            p: ErrorCode.none if ongoing and p in got.partitions else ErrorCode.invalid_txn_state
            for p in wanted
        }

    def end(
        self, tid: str, pid: int, epoch: int, commit: bool, now_ms: int, version: int
    ) -> tuple[ErrorCode, Finish | None]:
        """EndTxn: the error, and for an Ongoing transaction what to finish (log Prepare* first)."""
        got = self._check(tid, pid, epoch, version, 2)
        if isinstance(got, ErrorCode):
            return got, None
        meta = got
        if meta.state is TxnState.ONGOING:
            meta.state = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
            meta.update_ms = now_ms
            return ErrorCode.none, _finish(meta)
        if meta.state in PREPARING:
            return ErrorCode.concurrent_transactions, None
        if (meta.state, commit) in ((TxnState.COMPLETE_COMMIT, True), (TxnState.COMPLETE_ABORT, False)):
            return ErrorCode.none, None  # a retry of an end that went through
        return ErrorCode.invalid_txn_state, None

    def complete(self, tid: str, now_ms: int) -> bool:
        """The markers of a Prepare* transaction are written: Complete*. False if it was not preparing."""
        meta = self.txns.get(tid)
        if meta is None or meta.state not in PREPARING:
            return False
        meta.state = (
            TxnState.COMPLETE_COMMIT if meta.state is TxnState.PREPARE_COMMIT else TxnState.COMPLETE_ABORT
        )
        meta.partitions.clear()
        meta.groups.clear()
        meta.start_ms = -1
        meta.update_ms = now_ms
        return True

    def timed_out(self, now_ms: int) -> list[Finish]:
        """Abort every Ongoing transaction past its timeout, fencing its producer with a new epoch."""
        out = []
        for meta in self.txns.values():
            if meta.state is TxnState.ONGOING and meta.start_ms + meta.timeout_ms < now_ms:
                self._bump(meta, fence=True)
                meta.state = TxnState.PREPARE_ABORT
                meta.update_ms = now_ms
                out.append(_finish(meta))
        return out

    def expire(self, now_ms: int, expiration_ms: int | None = None) -> list[str]:
        """Forget finished transactional ids idle for the expiration; the ids forgotten."""
        expiration_ms = self.expiration_ms if expiration_ms is None else expiration_ms
        gone = [
            m.transactional_id
            for m in self.txns.values()
            if m.state in FINISHED and m.update_ms + expiration_ms < now_ms
        ]
        for tid in gone:
            meta = self.txns.pop(tid)
            if self._by_pid.get(meta.producer_id) == tid:
                del self._by_pid[meta.producer_id]
        return gone

    def partition_in_transaction(self, pid: int, epoch: int, partition: Partition) -> bool | None:
        """KIP-890 part 1: whether ``partition`` is in the producer's Ongoing transaction at ``epoch``
        (None: not a producer of this coordinator)."""
        meta = self.by_producer(pid)
        if meta is None:
            return None
        return (
            meta.state is TxnState.ONGOING and meta.producer_epoch == epoch and partition in meta.partitions
        )

    def _put(self, meta: TxnMeta) -> None:
        self.txns[meta.transactional_id] = meta
        self._by_pid[meta.producer_id] = meta.transactional_id


def _finish(meta: TxnMeta) -> Finish:
    return Finish(
        meta.transactional_id,
        meta.producer_id,
        meta.producer_epoch,
        meta.state is TxnState.PREPARE_COMMIT,
        tuple(sorted(meta.partitions)),
        tuple(sorted(meta.groups)),
    )

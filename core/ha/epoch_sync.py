"""Controller mode, on a slave: cut a diverged tail before following a master, and record the
master's epochs as the log reaches them (RocketMQ's AutoSwitchHAClient.doTruncate and its
per-epoch bookkeeping, over ferrymq's classic HA link plus one remoting request).

Before each HA connection the slave asks the master for its epoch history and max offset
(GET_BROKER_EPOCH_CACHE, 1007, RocketMQ's EpochEntryCache body), finds the consistent point
(:func:`find_consistent_point`), cuts its log there durably (``MessageStore.truncate_to``) and
drops its epoch entries from there on; then it follows from the point. Histories with no common
epoch are never cut (nothing says which bytes agree): the link is refused, logged as an error,
and tried again. A master that has not recorded the epoch the controller named yet is not ready.

While following, the master's entries newer than the slave's last one wait in a list; each time
the slave's log grows (once per received chunk, not per message) those whose start it reached
are appended to its epoch file, so the slave's history matches the bytes it holds and stays
comparable with the others' when it is elected itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ferrymq.core.ha.epoch import (
    EpochEntry,
    EpochFile,
    decode_epoch_cache,
    find_consistent_point,
    to_adopt,
)
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.outbound import Outbound
from ferrymq.core.remoting.transport import RemotingError
from ferrymq.core.store import MessageStore

log = logging.getLogger("ferrymq.ha")


class NoConsistentPoint(Exception):
    """This store's and the master's histories share no epoch: nothing can be cut safely."""


class MasterNotReady(Exception):
    """The master cannot say its history yet (not master at the named epoch, or unreachable)."""


async def fetch_epoch_cache(
    master_addr: str, outbound: Outbound, timeout: float = 5.0
) -> tuple[list[EpochEntry], int]:
    """GET_BROKER_EPOCH_CACHE on ``master_addr``: its epoch entries and commit-log max offset."""
    try:
        conn = await outbound.connect(master_addr)
        try:
            resp = await conn.invoke(RemotingCommand(code=RequestCode.GET_BROKER_EPOCH_CACHE), timeout)
        finally:
            conn.close()
    except (RemotingError, OSError, TimeoutError) as exc:
        raise MasterNotReady(f"cannot ask {master_addr} for its epochs: {exc}") from None
    if resp.code != ResponseCode.SUCCESS:
        raise MasterNotReady(f"{master_addr} answered {resp.code}: {resp.remark}")
    return decode_epoch_cache(bytes(resp.body or b""))


class EpochFollower:
    """A slave's epoch bookkeeping while it follows the master of ``master_epoch``."""

    def __init__(
        self, store: MessageStore, epochs: EpochFile, master_epoch: int, outbound: Outbound | None = None
    ) -> None:
        self.store = store
        self.outbound = outbound or Outbound()
        self.epochs = epochs
        self.master_epoch = master_epoch
        self._pending: list[EpochEntry] = []

    async def prepare(self, master_addr: str) -> int:
        """Fetch the master's history, then :meth:`align`; the offset to follow from."""
        entries, master_max = await fetch_epoch_cache(master_addr, self.outbound)
        return await self.align(entries, master_max)

    async def align(self, master_entries: Sequence[EpochEntry], master_max: int) -> int:
        """Cut this store back to where it agrees with a master holding ``master_entries`` up to
        ``master_max``; the offset to follow from. An empty local history is a new replica (or
        one from before epochs): nothing is cut, the HA link itself checks where the logs meet."""
        if not master_entries or master_entries[-1].epoch < self.master_epoch:
            last = master_entries[-1].epoch if master_entries else None
            raise MasterNotReady(f"the master's last epoch is {last}, not yet {self.master_epoch}")
        local = self.epochs.entries
        local_max = self.store.commit_log_max_offset
        if local:
            point = find_consistent_point(local, local_max, master_entries, master_max)
            if point is None:
                raise NoConsistentPoint(
                    f"no common epoch: this store's history {_fmt(local)} (max {local_max}), the "
                    f"master's {_fmt(master_entries)} (max {master_max})"
                )
            if point < local_max:
                log.warning(
                    "cutting this store's diverged tail: commit log %d -> %d (what the old master "
                    "wrote that the master of epoch %d never had)",
                    local_max,
                    point,
                    self.master_epoch,
                )
            await self.store.truncate_to(point)
            self.epochs.truncate_from(point)
        self._pending = to_adopt(self.epochs.entries, master_entries)
        offset = self.store.replication_offset
        self.reached(offset)
        return offset

    def reached(self, offset: int) -> None:
        """The log now ends at ``offset``: record the master's epochs that start at or before it."""
        while self._pending and self._pending[0].start <= offset:
            e = self._pending.pop(0)
            self.epochs.append(e.epoch, e.start)


def _fmt(entries: Sequence[EpochEntry]) -> str:
    return "[" + ", ".join(f"{e.epoch}@{e.start}" for e in entries) + "]"

"""MessageStore: puts and gets over the commit log, consume queues and index.

Layout under the store root (RocketMQ's)::

    commitlog/<20-digit offset>            segments of the commit log
    consumequeue/<topic>/<queueId>/<pos>   consume queue files
    index/<timestamp>                      key index files
    checkpoint                             commit-log offset whose dispatch is durable
    abort                                  present while running: its presence at start = crash

Everything runs on the event-loop thread except fdatasync and the allocation of the next
commit-log segment, which run in worker threads. The commit log is the source of truth: at start
after a crash, entries from the checkpoint on are validated (CRC included) and re-dispatched into
consume queues (idempotently: a unit's position is its queue offset) and the index; a torn tail
is cut off, so no message is lost or doubled.

When the store cannot keep its promise it refuses writes (``writable`` False, the reason in
``unwritable_reason``; puts return SERVICE_NOT_AVAILABLE) and keeps serving reads:

* a failed sync poisons the store until a restart (PostgreSQL's and Kafka's answer to fsyncgate):
  the pages that failed may be gone, and a later sync would report success over them. Waiting
  SYNC_FLUSH puts get ``StoreUnavailable``, never success.
* a full disk (ENOSPC when a segment is allocated, or the disk fuller than
  diskSpaceWarningLevelRatio) refuses writes until space is free again; retention deletes the
  oldest segments early once the disk is fuller than diskSpaceCleanForciblyRatio.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import re
import shutil
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ferrymq.core.config import BrokerConfig
from ferrymq.core.histogram import LatencyHistogram
from ferrymq.core.remoting.message import BLANK_MAGIC, encode_stored_message, ip_bytes, stored_size
from ferrymq.core.store import compacted_log, fileio
from ferrymq.core.store.commit_log import (
    END_FILE_MIN_BLANK_LENGTH,
    CommitLog,
    DispatchRequest,
    describe_entry,
)
from ferrymq.core.store.consume_queue import UNIT, UNIT_SIZE, ConsumeQueue
from ferrymq.core.store.entry import (
    BATCH_FLAG_TAG_CODES,
    BATCH_HEAD,
    BATCH_MAGIC,
    CorruptRecord,
    EntryKind,
    StoredEntry,
    encode_batch_entry,
    entry_of,
    read_entry,
)
from ferrymq.core.store.index_file import IndexService

log = logging.getLogger("ferrymq.store")

ArrivalListener = Callable[[str, int, int, int], None]  # topic, queue id, last queue offset, tag code
#: told of every entry a slave's store dispatched from replicated bytes
DispatchListener = Callable[[DispatchRequest], None]
#: (batch entry, first queue offset wanted, tag codes wanted or None) -> stored RocketMQ
#: messages, back to back, for the messages of the entry at or after that offset which match
#: told of a truncation (``truncate_to``) with the commit-log offset everything from was cut
TruncateListener = Callable[[int], None]
BatchConverter = Callable[[StoredEntry, int, "frozenset[int] | set[int] | None"], bytes]
#: consume-queue units read at a time when walking entries
_UNITS_PER_READ = 64
#: finds the batch magic in a buffer without copying it (re reads any buffer)
_BATCH_MAGIC_SEARCH = re.compile(re.escape(struct.pack(">i", BATCH_MAGIC))).search


class PutStatus(Enum):
    OK = "PUT_OK"
    FLUSH_DISK_TIMEOUT = "FLUSH_DISK_TIMEOUT"
    MESSAGE_ILLEGAL = "MESSAGE_ILLEGAL"
    SERVICE_NOT_AVAILABLE = "SERVICE_NOT_AVAILABLE"


@dataclass(slots=True)
class PutResult:
    status: PutStatus
    phys_offset: int = 0
    queue_offset: int = 0
    store_timestamp: int = 0
    size: int = 0
    count: int = 1
    #: commit-log offset of each stored message, for a batch of separate records
    offsets: list[int] = field(default_factory=list)
    end_offset: int = 0  # commit-log offset just after what this put wrote
    #: a half message's transaction id (UNIQ_KEY), for the send reply (core/broker/transaction.py)
    transaction_id: str | None = None


class GetStatus(Enum):
    FOUND = "FOUND"
    NO_MATCHED_MESSAGE = "NO_MATCHED_MESSAGE"
    NO_MESSAGE_IN_QUEUE = "NO_MESSAGE_IN_QUEUE"
    NO_MATCHED_LOGIC_QUEUE = "NO_MATCHED_LOGIC_QUEUE"
    OFFSET_TOO_SMALL = "OFFSET_TOO_SMALL"
    OFFSET_OVERFLOW_ONE = "OFFSET_OVERFLOW_ONE"
    OFFSET_OVERFLOW_BADLY = "OFFSET_OVERFLOW_BADLY"


@dataclass(slots=True)
class GetResult:
    status: GetStatus
    next_begin_offset: int
    min_offset: int
    max_offset: int
    buffers: list[memoryview] = field(default_factory=list)
    message_count: int = 0
    byte_count: int = 0

    def finish(self, next_begin_offset: int, found: int, total: int) -> GetResult:
        """The result of a read that took ``found`` entries of ``total`` bytes."""
        self.next_begin_offset = next_begin_offset
        self.message_count = found
        self.byte_count = total
        if found:
            self.status = GetStatus.FOUND
        return self


class StoreError(Exception):
    """A put that cannot be stored (illegal message, store not writable)."""


class ReplicationMismatch(Exception):
    """Replicated bytes that cannot go where they are meant to (not the slave's end offset, an
    empty slave not at a segment start, another segment size, no entry) or an offset a master's
    log does not hold: the HA link is closed, loudly."""


class NoRoom(Exception):
    """A write (not a sync) found the disk full: refuse writes until there is room, without
    poisoning the store, since nothing that was synced is in doubt."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class StoreUnavailable(Exception):
    """The store cannot make a write durable (a failed sync): the put must not be acknowledged."""


#: commit-log segments retention deletes early in one run when the disk is too full (RocketMQ's
#: deleteFileBatchMax)
_FORCED_DELETES_PER_RUN = 10


class MessageStore:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.root = Path(config.store_path_root_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.commit_log = CommitLog(self.root / "commitlog", config.mapped_file_size_commit_log)
        self.index = IndexService(self.root / "index", config.max_hash_slot_num, config.max_index_num)
        self.consume_queues: dict[tuple[str, int], ConsumeQueue] = {}
        #: told of every stored entry at once (the HA master streams it)
        self.arrival_listeners: list[ArrivalListener] = []
        #: told when a stored entry becomes readable: at once, or when ``read_limit`` passes its
        #: end (long polls, Kafka fetches)
        self.visible_listeners: list[ArrivalListener] = []
        #: the group high watermark (confirmOffset): readers see only entries ending at or below
        #: it; None = every entry (not gated). Recorded with the checkpoint.
        self.read_limit: int | None = None
        #: per queue, wake-ups held back by ``read_limit``: [least entry end, greatest entry end,
        #: last queue offset, tag codes]
        self._held_wakeups: dict[tuple[str, int], list[Any]] = {}
        #: how RocketMQ consumers read batch entries, by FORMAT (a frontend registers its own)
        self.batch_converters: dict[int, BatchConverter] = {}
        #: a frontend's per-queue pull limit below the high watermark, None for none (Kafka's last
        #: stable offset: pulls stop at the first offset of an open transaction)
        self.stable_offset: Callable[[str, int], int | None] | None = None
        self.store_host = ip_bytes(config.broker_ip1)
        self.store_port = config.listen_port
        self.flushed_offset = 0
        self.dispatched_durable = 0
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._flush_wakeup: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._flush_lock: asyncio.Lock | None = None
        # Flushes run in worker threads that a cancelled task does not stop: every file write
        # or fdatasync outside the loop, and close(), hold this lock, so close() waits for an
        # in-flight flush instead of racing it on the checkpoint file and the fds.
        self._io_lock = threading.RLock()
        self.recovered_crash = False
        #: False while writes are refused; ``unwritable_reason`` says why
        self.writable = True
        self.unwritable_reason: str | None = None
        self._sync_failure: str | None = None  # set once, never cleared: see the module docstring
        #: /metrics: time each commit-log sync took, and syncs that failed (each poisons)
        self.flush_latency = LatencyHistogram()
        self.sync_errors = 0
        self._disk_full: str | None = None
        self._preparing = False
        self.commit_log.on_roll = self._prepare_next_segment
        #: a slave's store is written by replication only (``append_replicated``)
        self.replica_only = config.is_slave
        #: on a slave: told of every entry dispatched from replicated bytes (Kafka's state)
        self.dispatch_listeners: list[DispatchListener] = []
        #: told of each consume queue first opened after start-up (topic, queue id): a slave
        #: learns of a new topic from replicated bytes before its config arrives
        self.queue_opened_listeners: list[Callable[[str, int], None]] = []
        #: told when ``truncate_to`` cut the log (the Kafka frontend rebuilds its producer state)
        self.truncate_listeners: list[TruncateListener] = []
        self._prepare_task: asyncio.Task[None] | None = None
        #: queues of compacted topics with a cleaned part (offsets below its ``end`` are read from
        #: it, not from the commit log): core/store/compacted_log.py
        self.compacted_root = self.root / "compacted"
        self.compacted: dict[tuple[str, int], compacted_log.CompactedLog] = compacted_log.load_all(
            self.compacted_root
        )
        self._load()
        #: on a slave: where the replicated bytes received so far end (a partial entry included)
        self._replicated_end = self.commit_log.write_offset

    # ---- start-up and recovery ---------------------------------------------------------------

    @property
    def _abort_file(self) -> Path:
        return self.root / "abort"

    @property
    def _checkpoint_file(self) -> Path:
        return self.root / "checkpoint"

    def _load(self) -> None:
        cq_root = self.root / "consumequeue"
        if cq_root.is_dir():
            for topic_dir in sorted(cq_root.iterdir()):
                for qdir in sorted(topic_dir.iterdir()):
                    if qdir.name.isdigit():
                        self._open_cq(topic_dir.name, int(qdir.name))
        checkpoint = self._read_checkpoint()
        if self.config.gate_reads:  # never expose more after a restart than was confirmed
            self.read_limit = checkpoint.get("confirm")
        crashed = self._abort_file.exists()
        self.recovered_crash = crashed
        start = checkpoint.get("dispatched", self.commit_log.min_offset)
        if crashed:
            log.warning("store was not shut down cleanly: recovering from commit-log offset %d", start)
        else:
            start = checkpoint.get("end", start)
        redispatch: list[DispatchRequest] = list(self.commit_log.scan(start))
        end = self.commit_log.write_offset
        if not crashed and end != checkpoint.get("end", end):
            log.warning("commit log continues past the clean-shutdown checkpoint; re-dispatching")
        self.commit_log.truncate_tail()
        self.index.forget_from(end)
        for cq in self.consume_queues.values():
            cq.truncate_after_phys(end)
        for req in redispatch:
            self._dispatch(req)
        damaged = self._damaged_queues(checkpoint.get("queues"))
        if damaged:
            # a consume queue lost units that were durable at the checkpoint (its directory was
            # deleted, its tail zeroed): rebuild those queues from the whole commit log
            log.warning(
                "rebuilding %d consume queue(s) from the commit log: %s",
                len(damaged),
                ", ".join(f"{t}/{q}" for t, q in sorted(damaged)[:10]),
            )
            for key in damaged:  # start them afresh: what is left of them may be out of order
                old = self.consume_queues.pop(key, None)
                if old is not None:
                    old.close()
                shutil.rmtree(self.root / "consumequeue" / key[0] / str(key[1]), ignore_errors=True)
            for req in self.commit_log.scan(self.commit_log.min_offset):
                if (req.topic, req.queue_id) in damaged:
                    self._dispatch_cq(req)
            assert self.commit_log.write_offset == end
        self._correct_min_offsets()
        if crashed and redispatch:
            log.warning("recovered %d commit-log entries up to offset %d", len(redispatch), end)
        self.flushed_offset = end
        self.dispatched_durable = end
        fd = os.open(self._abort_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            fileio.write(fd, str(os.getpid()).encode())
            fileio.fsync(fd)
        finally:
            os.close(fd)
        fileio.fsync_dir(self.root)

    def _damaged_queues(self, recorded: object) -> set[tuple[str, int]]:
        """Queues shorter than the checkpoint recorded them, or missing their last durable unit."""
        damaged: set[tuple[str, int]] = set()
        if not isinstance(recorded, list):
            return damaged
        for item in recorded:
            try:
                topic, queue_id, max_offset = str(item[0]), int(item[1]), int(item[2])
            except (TypeError, ValueError, IndexError):
                continue
            if max_offset <= 0:
                continue
            cq = self.consume_queues.get((topic, queue_id))
            if cq is None or cq.max_offset < max_offset:
                damaged.add((topic, queue_id))
                continue
            last = cq.unit(max_offset - 1)
            if (last is None or last[1] <= 0) and max_offset - 1 >= cq.min_offset:
                damaged.add((topic, queue_id))
        return damaged

    def _read_checkpoint(self) -> dict[str, Any]:
        try:
            data = json.loads(self._checkpoint_file.read_text())
            out: dict[str, Any] = {k: int(data[k]) for k in ("dispatched", "end", "confirm") if k in data}
            out["queues"] = data.get("queues")
            return out
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def _queue_snapshot(self) -> list[tuple[str, int, int]]:
        """Every consume queue's max offset, recorded with the checkpoint to detect lost queues."""
        return [(t, q, cq.max_offset) for (t, q), cq in self.consume_queues.items()]

    def _write_checkpoint(
        self,
        dispatched: int,
        end: int | None = None,
        queues: list[tuple[str, int, int]] | None = None,
        sync_name: bool = False,
    ) -> None:
        """Replace the checkpoint (fsynced); ``sync_name`` also syncs the directory, so the new
        one survives a power loss too (the flush loop's next checkpoint does not need it)."""
        data: dict[str, Any] = {"dispatched": dispatched}
        if self.config.gate_reads:  # not gated means everything up to here was readable
            data["confirm"] = dispatched if self.read_limit is None else min(self.read_limit, dispatched)
        if end is not None:
            data["end"] = end
        if queues is not None:
            data["queues"] = queues
        tmp = self._checkpoint_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            try:
                fileio.write(fd, json.dumps(data).encode())
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise NoRoom(exc) from exc
                raise
            fileio.fsync(fd)  # a failure here is a failed sync: the caller poisons
        finally:
            os.close(fd)
        os.replace(tmp, self._checkpoint_file)
        if sync_name:
            fileio.fsync_dir(self.root)

    def _open_cq(self, topic: str, queue_id: int) -> ConsumeQueue:
        cq = ConsumeQueue(
            self.root / "consumequeue" / topic / str(queue_id),
            topic,
            queue_id,
            self.config.mapped_file_size_consume_queue,
        )
        self.consume_queues[(topic, queue_id)] = cq
        for listener in self.queue_opened_listeners:
            listener(topic, queue_id)
        return cq

    def _correct_min_offsets(self) -> None:
        """Queues start after what deleted commit-log segments held, except those with a compacted
        part: their old offsets are read from it, so segment retention does not move their start."""
        min_phys = self.commit_log.min_offset
        for key, cq in self.consume_queues.items():
            if key not in self.compacted:
                cq.correct_min_offset(min_phys)

    def install_compacted(self, topic: str, queue_id: int, part: compacted_log.CompactedLog) -> None:
        """Serve offsets below ``part.end`` from a compacted part just written (on the loop)."""
        self.compacted[(topic, queue_id)] = part

    def _dispatch(self, req: DispatchRequest) -> None:
        self._dispatch_cq(req)
        self.index.put(req.topic, req.keys, req.uniq_key, req.offset, req.store_timestamp)

    def _dispatch_cq(self, req: DispatchRequest) -> None:
        cq = self.consume_queues.get((req.topic, req.queue_id)) or self._open_cq(req.topic, req.queue_id)
        if req.tags_codes is not None:
            units = b"".join([UNIT.pack(req.offset, req.size, c) for c in req.tags_codes])
            cq.put_units(req.queue_offset, units)
        elif req.count == 1:
            cq.put(req.queue_offset, req.offset, req.size, req.tags_code)
        else:
            cq.put_units(req.queue_offset, UNIT.pack(req.offset, req.size, 0) * req.count)

    # ---- background services -----------------------------------------------------------------

    def start_services(self) -> None:
        """Start flushing and retention on the running loop."""
        self._flush_wakeup = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._tasks.append(asyncio.create_task(self._flush_loop(), name="store-flush"))
        self._tasks.append(asyncio.create_task(self._clean_loop(), name="store-clean"))
        self._prepare_next_segment()

    # ---- refusing writes ---------------------------------------------------------------------

    def _refuse(self) -> None:
        self.unwritable_reason = self._sync_failure or self._disk_full
        self.writable = self.unwritable_reason is None

    def poison(self, what: str, exc: OSError) -> None:
        """A sync of a file that belongs with the store failed (core/ha's epoch file): as for the
        store's own files, refuse writes until a restart."""
        self._poison(what, exc)

    def _poison(self, what: str, exc: OSError) -> None:
        """A sync failed: refuse every write until a restart and fail every waiting SYNC_FLUSH put."""
        self.sync_errors += 1
        if self._sync_failure is None:
            self._sync_failure = f"{what} failed ({exc}): writes refused until the broker restarts"
            log.critical("STORE POISONED: %s", self._sync_failure)
            self._refuse()
        self._fail_waiters()

    def _fail_waiters(self) -> None:
        assert self._sync_failure is not None
        err = StoreUnavailable(self._sync_failure)
        waiters, self._flush_waiters = self._flush_waiters, []
        for _off, fut in waiters:
            if not fut.done():
                fut.set_exception(err)
                fut.exception()  # retrieved: a waiter that timed out already must not warn

    def _out_of_space(self, exc: OSError) -> None:
        if self._disk_full is None:
            log.error("store out of disk space (%s): writes refused until space is freed", exc)
        self._disk_full = f"disk full: {exc}"
        self._refuse()

    def _prepare_next_segment(self) -> None:
        """Allocate the next commit-log segment in a worker thread (after a roll and at start),
        so the roll itself finds it ready and produce never waits for an allocation."""
        if self._preparing or self._flush_lock is None:
            return  # one at a time; none before start_services (recovery, tests without a loop)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # services stopped: the roll allocates inline
        self._preparing = True
        task = self._prepare_task = loop.create_task(self._prepare_in_thread())
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    async def _prepare_in_thread(self) -> None:
        try:
            await asyncio.to_thread(self.commit_log.prepare_next)
        except OSError as exc:
            log.warning("could not allocate the next commit-log segment ahead of time: %s", exc)
        finally:
            self._preparing = False

    async def check_space(self) -> None:
        """Refuse writes while the disk is fuller than diskSpaceWarningLevelRatio; take them
        again once it is not and the next segment could be allocated."""
        ratio = self.disk_used_ratio()
        limit = self.config.disk_space_warning_level_ratio
        if ratio > limit:
            if self._disk_full is None:
                log.error("disk %.1f%% used, over diskSpaceWarningLevelRatio=%d: no writes", ratio, limit)
            self._disk_full = f"disk {ratio:.1f}% used, over diskSpaceWarningLevelRatio={limit}"
            self._refuse()
            return
        if self._disk_full is None:
            return
        try:
            await asyncio.to_thread(self.commit_log.prepare_next)
        except OSError as exc:
            self._disk_full = f"disk full: {exc}"
            self._refuse()
            return
        log.warning("disk space available again (%.1f%% used): the store takes writes", ratio)
        self._disk_full = None
        self._refuse()

    def disk_used_ratio(self) -> float:
        total, used = fileio.disk_usage(self.root)
        return used * 100 / max(total, 1)

    async def _flush_loop(self) -> None:
        assert self._flush_wakeup is not None
        interval = self.config.flush_interval_commit_log / 1000
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._flush_wakeup.wait()
            self._flush_wakeup.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("flush failed")

    async def flush(self) -> None:
        """Flush the commit log, then consume queues and index, then record the checkpoint.

        A failed sync poisons the store (``_poison``); a poisoned store flushes no more."""
        assert self._flush_lock is not None
        async with self._flush_lock:
            if self._sync_failure is not None:
                self._fail_waiters()  # one that came in since fails too
                return
            target = self.commit_log.write_offset
            if target == self.flushed_offset and target == self.dispatched_durable:
                return
            queues = self._queue_snapshot()  # consistent with target: dispatch is synchronous
            started = time.perf_counter()
            try:
                await asyncio.to_thread(self._flush_commit_log)
            except OSError as exc:
                self._poison("syncing the commit log", exc)
                return
            self.flush_latency.observe(time.perf_counter() - started)
            self.flushed_offset = target
            waiters = self._flush_waiters
            self._flush_waiters = [w for w in waiters if w[0] > target]
            for off, fut in waiters:
                if off <= target and not fut.done():
                    fut.set_result(None)
            cqs = list(self.consume_queues.values())
            try:
                await asyncio.to_thread(self._flush_derived, cqs, target, queues)
            except NoRoom as exc:  # the checkpoint's bytes found no room: nothing synced was lost
                self._out_of_space(exc.error)
                return
            except OSError as exc:
                self._poison("syncing consume queues, index or checkpoint", exc)
                return
            self.dispatched_durable = target

    def _flush_commit_log(self) -> None:
        with self._io_lock:
            self.commit_log.flush()

    def _flush_derived(
        self, cqs: list[ConsumeQueue], target: int, queues: list[tuple[str, int, int]]
    ) -> None:
        with self._io_lock:
            for cq in cqs:
                cq.flush()
            self.index.flush()
            self._write_checkpoint(target, queues=queues)

    async def wait_durable(self, end_offset: int) -> bool:
        """SYNC_FLUSH: wait until the commit log is on disk up to ``end_offset`` (group commit).

        False after syncFlushTimeout; StoreUnavailable if a sync failed (never success then)."""
        if self.flushed_offset >= end_offset:
            return True
        if self._sync_failure is not None:
            raise StoreUnavailable(self._sync_failure)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flush_waiters.append((end_offset, fut))
        if self._flush_wakeup is not None:
            self._flush_wakeup.set()
        try:
            async with asyncio.timeout(self.config.sync_flush_timeout / 1000):
                await asyncio.shield(fut)
            return True
        except TimeoutError:
            return False

    async def _clean_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.clean_resource_interval / 1000)
            try:
                self.clean_expired()
                await self.check_space()
            except Exception:
                log.exception("retention clean-up failed")

    def clean_expired(self, now: float | None = None, force: bool = False) -> int:
        """Delete commit-log segments older than fileReservedTime; returns how many went.

        Runs at the deleteWhen hours, when the disk is fuller than diskMaxUsedSpaceRatio, or when
        forced. When the disk is fuller than diskSpaceCleanForciblyRatio (and
        cleanFileForciblyEnable), the oldest segments go whatever their age, up to 10 a run,
        until it is not (RocketMQ's cleanImmediately). The segment being written never goes.
        """
        now = time.time() if now is None else now
        cfg = self.config
        ratio = self.disk_used_ratio()
        if not force:
            hour = time.localtime(now).tm_hour
            hours = {int(h) for h in cfg.delete_when.split(";")}
            if hour not in hours and ratio <= cfg.disk_max_used_space_ratio:
                return 0
        forcibly = cfg.clean_file_forcibly_enable and ratio > cfg.disk_space_clean_forcibly_ratio
        reserved = cfg.file_reserved_time * 3600
        deleted = 0
        files = self.commit_log.files
        while len(files.files) > 1:
            first = files.files[0]
            if now - os.stat(first.path).st_mtime < reserved:
                if not forcibly or deleted >= _FORCED_DELETES_PER_RUN:
                    break
                log.warning(
                    "retention: disk %.1f%% used, over diskSpaceCleanForciblyRatio=%d: deleting "
                    "commit-log segment %s before its time",
                    ratio,
                    cfg.disk_space_clean_forcibly_ratio,
                    first.path.name,
                )
            else:
                log.info("retention: deleting commit-log segment %s", first.path.name)
            files.delete_first()
            deleted += 1
            if forcibly:
                forcibly = self.disk_used_ratio() > cfg.disk_space_clean_forcibly_ratio
        if deleted:
            min_phys = self.commit_log.min_offset
            self._correct_min_offsets()
            self.index.delete_before(min_phys)
        return deleted

    async def shutdown(self) -> None:
        """Stop services, flush everything and mark the shutdown clean."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        self.close()

    def close(self) -> None:
        if self._sync_failure is not None:
            # no clean-shutdown mark: the next start validates everything from the checkpoint on
            log.critical("store closed after a failed sync: the next start recovers as after a crash")
            with self._io_lock:
                for cq in self.consume_queues.values():
                    cq.close()
                self.index.close()
                self.commit_log.close()
            return
        end = self.commit_log.write_offset
        queues = self._queue_snapshot()
        with self._io_lock:
            self.commit_log.flush()
            self._flush_derived(list(self.consume_queues.values()), end, queues)
            self._write_checkpoint(end, end, queues)
            for cq in self.consume_queues.values():
                cq.close()
            self.index.close()
            self.commit_log.close()
            self._abort_file.unlink(missing_ok=True)

    # ---- writes ------------------------------------------------------------------------------

    def check_message(self, topic: bytes, body_len: int, properties: bytes) -> int:
        """The stored size of such a message; StoreError if it cannot be stored at all."""
        if len(properties) > 32767:
            raise StoreError(f"properties of {len(properties)} bytes exceed 32767")
        size = stored_size(body_len, len(topic), len(properties))
        if size + END_FILE_MIN_BLANK_LENGTH > self.commit_log.file_size:
            raise StoreError(
                f"a message of {size} bytes does not fit a commit-log segment "
                f"(mappedFileSizeCommitLog={self.commit_log.file_size})"
            )
        return size

    def consume_queue(self, topic: str, queue_id: int) -> ConsumeQueue:
        return self.consume_queues.get((topic, queue_id)) or self._open_cq(topic, queue_id)

    def put_message(
        self,
        topic: str,
        queue_id: int,
        body: bytes,
        properties: str,
        *,
        tags_code: int = 0,
        keys: list[str] | None = None,
        uniq_key: str | None = None,
        flag: int = 0,
        sys_flag: int = 0,
        born_timestamp: int = 0,
        born_host: bytes = b"\x7f\x00\x00\x01",
        born_port: int = 0,
        reconsume_times: int = 0,
        prepared_transaction_offset: int = 0,
    ) -> PutResult:
        """Append one message; its queue offset is the queue's next one."""
        if not self.writable or self.replica_only:
            return PutResult(PutStatus.SERVICE_NOT_AVAILABLE)
        props = properties.encode()
        tb = topic.encode()
        size = self.check_message(tb, len(body), props)
        try:
            cq = self.consume_queue(topic, queue_id)
            f, phys = self.commit_log.reserve(size)
            queue_offset = cq.max_offset
            cq.put(queue_offset, phys, size, tags_code)  # before the entry: it may need a new file
        except OSError as exc:  # a segment could not be allocated (ENOSPC): nothing was stored
            self._out_of_space(exc)
            return PutResult(PutStatus.SERVICE_NOT_AVAILABLE)
        now = int(time.time() * 1000)
        record = encode_stored_message(
            topic=tb,
            body=body,
            properties=props,
            queue_id=queue_id,
            queue_offset=queue_offset,
            physical_offset=phys,
            flag=flag,
            sys_flag=sys_flag,
            born_timestamp=born_timestamp or now,
            born_host=born_host,
            born_port=born_port,
            store_timestamp=now,
            store_host=self.store_host,
            store_port=self.store_port,
            reconsume_times=reconsume_times,
            prepared_transaction_offset=prepared_transaction_offset,
        )
        self.commit_log.append(f, phys, record)
        if keys or uniq_key:
            self._index(topic, keys or [], uniq_key, phys, now)
        for listener in self.arrival_listeners:
            listener(topic, queue_id, queue_offset, tags_code)
        self._readable(topic, queue_id, queue_offset, (tags_code,), phys + size)
        return PutResult(PutStatus.OK, phys, queue_offset, now, size, 1, [phys], phys + size)

    def put_batch_entry(
        self,
        topic: str,
        queue_id: int,
        count: int,
        fmt: int,
        payload: bytes | memoryview,
        tags_codes: Sequence[int] | None = None,
    ) -> PutResult:
        """Append ``count`` messages as one verbatim entry (e.g. a Kafka record batch).

        With ``tags_codes`` (one per message) the entry carries them (BATCH_FLAG_TAG_CODES) and
        each consume-queue unit gets its message's tag code, so native tag filters apply.
        """
        if not self.writable or self.replica_only:
            return PutResult(PutStatus.SERVICE_NOT_AVAILABLE)
        if tags_codes is not None:
            if len(tags_codes) != count:
                raise StoreError(f"{len(tags_codes)} tag codes for {count} messages")
            fmt |= BATCH_FLAG_TAG_CODES
            payload = b"".join((struct.pack(f">{count}q", *tags_codes), payload))
        tb = topic.encode()
        size = BATCH_HEAD.size + len(tb) + len(payload)
        try:
            cq = self.consume_queue(topic, queue_id)
            f, phys = self.commit_log.reserve(size)
            base = cq.max_offset
            # the units before the entry: they may need a new file (ENOSPC stores nothing)
            if tags_codes is None:
                cq.put_units(base, UNIT.pack(phys, size, 0) * count)
            else:
                cq.put_units(base, b"".join([UNIT.pack(phys, size, code) for code in tags_codes]))
        except OSError as exc:
            self._out_of_space(exc)
            return PutResult(PutStatus.SERVICE_NOT_AVAILABLE)
        now = int(time.time() * 1000)
        entry = encode_batch_entry(
            topic=tb,
            queue_id=queue_id,
            base_queue_offset=base,
            physical_offset=phys,
            store_timestamp=now,
            count=count,
            fmt=fmt,
            payload=payload,
        )
        self.commit_log.append(f, phys, entry)
        codes = (0,) if tags_codes is None else set(tags_codes)  # wake waiters on any of its tags
        for code in codes:
            for listener in self.arrival_listeners:
                listener(topic, queue_id, base + count - 1, code)
        self._readable(topic, queue_id, base + count - 1, codes, phys + size)
        return PutResult(PutStatus.OK, phys, base, now, size, count, [phys], phys + size)

    def _index(self, topic: str, keys: list[str], uniq_key: str | None, phys: int, now: int) -> None:
        """Index a stored message's keys; a full disk leaves it unindexed (the message is stored:
        the put still succeeds) and refuses the next writes."""
        try:
            self.index.put(topic, keys, uniq_key, phys, now)
        except OSError as exc:
            self._out_of_space(exc)

    # ---- replication (core/ha) ---------------------------------------------------------------

    @property
    def replication_offset(self) -> int:
        """What a slave reports to its master: the end of its last complete entry."""
        return self.commit_log.write_offset

    def replication_start(self, reported: int) -> int:
        """Where a master starts sending to a slave that reported ``reported``: an empty slave (0)
        gets the start of the last segment, as in RocketMQ; older segments are never sent."""
        if reported:
            return reported
        end = self.commit_log.write_offset
        return end - end % self.commit_log.file_size

    def read_for_replication(self, offset: int, max_bytes: int) -> bytes:
        """A master's bytes from ``offset`` for a slave (one segment at most, up to the write
        offset). ReplicationMismatch if the log does not hold ``offset``."""
        try:
            return self.commit_log.read_for_replication(offset, max_bytes)
        except KeyError:
            raise ReplicationMismatch(
                f"offset {offset} is not in this commit log ({self.commit_log.min_offset}.."
                f"{self.commit_log.write_offset}): the slave's store must be wiped"
            ) from None

    def find_batch_entry(self, start: int, end: int) -> tuple[int | None, int]:
        """Walk the entries from ``start`` (an entry boundary) over ``[start, end)``: the offset of
        the first batch entry met, if any, and the boundary the walk reached (the next entry to
        look at). For a master feeding a slave that cannot read batch entries (Apache RocketMQ's),
        so a few header reads per entry, on that path only."""
        clog = self.commit_log
        pos = start
        while pos < end and pos + 8 <= clog.write_offset:
            f = clog.files.file_for(pos)
            if f is None:
                break
            size, magic = struct.unpack_from(">ii", f.view, pos - f.start)
            if magic == BATCH_MAGIC:
                return pos, pos
            if magic == BLANK_MAGIC:
                pos = f.end
            elif size <= 0:
                break
            else:
                pos += size
        return None, pos

    def append_replicated(self, offset: int, data: bytes) -> int:
        """Write a master's bytes at the same commit-log offset and dispatch every entry they
        complete (consume queues at the entries' own queue offsets, index, arrival and dispatch
        listeners). A frame may end mid-entry: the rest comes with the next one. Returns the
        new ``replication_offset``.

        ``offset`` must be where the received bytes end, or the last complete entry's end (a
        resend after a reconnect); an empty store takes any segment start. Anything else is a
        ReplicationMismatch, as is a frame crossing a segment end (another mappedFileSizeCommitLog)
        or bytes that are no entry.
        """
        clog = self.commit_log
        if not clog.files.files:
            if offset % clog.file_size:
                raise ReplicationMismatch(f"an empty slave starts at a segment start, not at {offset}")
            clog.write_offset = self._replicated_end = offset
        elif offset != self._replicated_end and offset != clog.write_offset:
            raise ReplicationMismatch(
                f"the master sent offset {offset}, this slave's commit log ends at {self._replicated_end}"
            )
        try:
            clog.write_replicated(offset, data)
        except ValueError as exc:
            raise ReplicationMismatch(str(exc)) from None
        except OSError as exc:
            self._out_of_space(exc)
            raise
        self._replicated_end = offset + len(data)
        try:
            for req in clog.scan_replicated(self._replicated_end):
                self._dispatch_replicated(req)
        except CorruptRecord as exc:
            self._replicated_end = clog.write_offset
            raise ReplicationMismatch(f"replicated bytes are no entry: {exc}") from None
        return clog.write_offset

    def _dispatch_replicated(self, req: DispatchRequest) -> None:
        """Dispatch an entry at its own queue offsets, then wake readers (recovery's dispatch)."""
        cq = self.consume_queue(req.topic, req.queue_id)
        if cq.max_offset == cq.min_offset < req.queue_offset:  # an empty slave: the queue starts here
            cq.min_offset = cq.max_offset = req.queue_offset
        self._dispatch_cq(req)
        if req.keys or req.uniq_key:
            self._index(req.topic, req.keys, req.uniq_key, req.offset, req.store_timestamp)
        last = req.queue_offset + req.count - 1
        codes = set(req.tags_codes) if req.tags_codes else (req.tags_code,)
        for code in codes:
            for listener in self.arrival_listeners:
                listener(req.topic, req.queue_id, last, code)
        self._readable(req.topic, req.queue_id, last, codes, req.offset + req.size)
        for dispatched in self.dispatch_listeners:
            dispatched(req)

    # ---- truncation (automatic failover, core/ha/epoch.py) -----------------------------------

    def is_entry_boundary(self, offset: int) -> bool:
        """Whether an entry (or a segment's BLANK filler) starts at ``offset``, or the log ends
        there: the only places the log can be cut."""
        clog = self.commit_log
        if offset == clog.write_offset:
            return True
        f = clog.files.file_for(offset) if clog.min_offset <= offset < clog.write_offset else None
        if f is None:
            return False
        pos = offset - f.start
        if pos + 8 > f.size:
            return False
        size, magic = struct.unpack_from(">ii", f.view, pos)
        if magic == BLANK_MAGIC and size == f.size - pos:
            return True
        try:
            describe_entry(f.view, pos, offset, f.size - pos)  # it says it is stored at ``offset``
        except CorruptRecord:
            return False
        return True

    async def truncate_to(self, offset: int) -> None:
        """Cut the log at ``offset`` (an entry boundary): every entry at or after it is gone from
        the commit log (later segments deleted), the consume queues (their max offsets go back,
        a batch entry's units all go), the index, waiting SYNC_FLUSH puts and, durably, the
        checkpoint, so neither a restart, a kill -9 nor a power loss brings a cut entry back. The
        next put at a queue then reuses the offsets of the cut messages, which exist nowhere any
        more (reference pitfall 7). ``truncate_listeners`` are told.

        For a replica rejoining a master (the consistent point of their epochs): call it with
        puts stopped. At or past the end: nothing to do. ValueError for an offset that is no
        entry boundary; StoreUnavailable if a sync failed (the store is poisoned).
        """
        clog = self.commit_log
        async with self._flush_lock or asyncio.Lock():  # no flush may checkpoint the old end
            if offset >= clog.write_offset and (offset > clog.write_offset or offset >= self._replicated_end):
                return
            if offset < 0 or not self.is_entry_boundary(offset):
                raise ValueError(f"commit-log offset {offset} is not an entry boundary: nothing was cut")
            if self._sync_failure is not None:
                raise StoreUnavailable(self._sync_failure)
            # First a checkpoint before the cut, synced: recovery after a crash in the middle must
            # not start past the new end (it would take the zeroed bytes for the log's end).
            start = min(self.dispatched_durable, offset)
            try:
                await asyncio.to_thread(self._checkpoint_before_cut, start)
            except OSError as exc:
                self._poison("syncing the checkpoint before a truncation", exc)
                raise StoreUnavailable(self._sync_failure) from exc
            while self._prepare_task is not None and not self._prepare_task.done():
                await asyncio.shield(self._prepare_task)  # a spare made for the old end, then gone
            log.warning("truncating the commit log from %d to %d", clog.write_offset, offset)
            self._cut(offset)
            try:
                await asyncio.to_thread(self._flush_cut, list(self.consume_queues.values()), offset)
            except OSError as exc:
                self._poison("syncing a truncation", exc)
                raise StoreUnavailable(self._sync_failure) from exc
            finally:
                for listener in self.truncate_listeners:
                    listener(offset)
            self.dispatched_durable = offset

    def _checkpoint_before_cut(self, start: int) -> None:
        with self._io_lock:
            self._write_checkpoint(start, sync_name=True)

    def _cut(self, offset: int) -> None:
        """The in-memory and page-cache part of ``truncate_to``, all at once on the loop."""
        clog = self.commit_log
        clog.write_offset = offset
        clog.truncate_tail()
        self._replicated_end = offset
        self.index.forget_from(offset)
        for cq in self.consume_queues.values():
            cq.truncate_after_phys(offset)
        self.flushed_offset = min(self.flushed_offset, offset)
        err = StoreUnavailable(f"the commit log was truncated to {offset}: the entry is gone")
        waiters, self._flush_waiters = self._flush_waiters, []
        for end, fut in waiters:
            if end <= offset:
                self._flush_waiters.append((end, fut))
            elif not fut.done():
                fut.set_exception(err)
                fut.exception()

    def _flush_cut(self, cqs: list[ConsumeQueue], offset: int) -> None:
        """Make the cut durable: commit log (zeroed tail, deleted segments), then what derives
        from it, then the checkpoint at the new end."""
        with self._io_lock:
            self.commit_log.flush()
            queues = [(cq.topic, cq.queue_id, cq.max_offset) for cq in cqs]
            for cq in cqs:
                cq.flush()
            self.index.flush()
            self._write_checkpoint(offset, queues=queues, sync_name=True)

    # ---- the read gate (group high watermark) -------------------------------------------------

    def _readable(self, topic: str, queue_id: int, last: int, codes: Iterable[int], end: int) -> None:
        """Wake readers of an entry ending at ``end``, now or once ``read_limit`` reaches it
        (wake-ups held back coalesce per queue: one pending record, however many puts)."""
        limit = self.read_limit
        if limit is None or end <= limit:
            for code in codes:
                for listener in self.visible_listeners:
                    listener(topic, queue_id, last, code)
            return
        held = self._held_wakeups.get((topic, queue_id))
        if held is None:
            self._held_wakeups[(topic, queue_id)] = [end, end, last, set(codes)]
        else:
            held[1], held[2] = end, last
            held[3].update(codes)

    def set_read_limit(self, limit: int | None) -> None:
        """Move the high watermark (``ReplicationState.confirm_listeners``) and wake the readers
        of queues whose held-back entries it reached."""
        self.read_limit = limit
        if not self._held_wakeups:
            return
        for key, held in list(self._held_wakeups.items()):
            if limit is not None and held[0] > limit:
                continue
            if limit is None or held[1] <= limit:
                del self._held_wakeups[key]
            else:
                held[0] = held[1]  # the rest wakes them once the watermark passes the newest
            for code in held[3]:
                for listener in self.visible_listeners:
                    listener(key[0], key[1], held[2], code)

    def _readable_max(self, cq: ConsumeQueue) -> int:
        """The queue offset readers stop at (``read_limit``)."""
        return cq.max_offset if self.read_limit is None else self._queue_end_at(cq, self.read_limit)

    def queue_offset_at(self, topic: str, queue_id: int, phys: int) -> int:
        """The first queue offset whose entry ends past commit-log offset ``phys`` (where a
        master epoch starting at ``phys`` begins in this queue)."""
        cq = self.consume_queues.get((topic, queue_id))
        return self._queue_end_at(cq, phys) if cq else 0

    def messages_after(self, phys: int) -> int:
        """How many consume-queue entries end past commit-log offset ``phys`` (a slave's lag in
        messages): per queue O(1) when it holds nothing past ``phys``, else a search back from
        its end, O(log of the entries past it)."""
        return sum(cq.max_offset - self._queue_end_at(cq, phys) for cq in list(self.consume_queues.values()))

    @staticmethod
    def _queue_end_at(cq: ConsumeQueue, limit: int) -> int:
        """The first unit whose entry ends past ``limit`` (units' commit-log offsets grow with
        queue offsets). O(1) when the queue's last entry is within it; else a search back from
        the end, O(log of the units past it)."""
        lo, hi = cq.min_offset, cq.max_offset
        if hi <= lo:
            return hi
        u = cq.unit(hi - 1)
        if u is None or u[0] + u[1] <= limit:
            return hi
        step, top = 1, hi - 1  # the unit at ``top`` is past the limit
        while True:  # gallop back to a unit within the limit
            probe = top - step
            if probe < lo:
                probe = lo - 1
                break
            u = cq.unit(probe)
            if u is not None and u[0] + u[1] <= limit:
                break
            top, step = probe, step * 2
        bottom = probe  # within the limit (or lo - 1); binary search in (bottom, top]
        while top - bottom > 1:
            mid = (bottom + top) // 2
            u = cq.unit(mid)
            if u is not None and u[0] + u[1] <= limit:
                bottom = mid
            else:
                top = mid
        return top

    def readable_bounds(self, topic: str, queue_id: int) -> tuple[int, int]:
        """(min offset, high watermark) of a queue: what consumers may read."""
        cq = self.consume_queues.get((topic, queue_id))
        return (cq.min_offset, self._readable_max(cq)) if cq else (0, 0)

    # ---- reads -------------------------------------------------------------------------------

    def get_messages(
        self,
        topic: str,
        queue_id: int,
        offset: int,
        max_nums: int,
        max_bytes: int = 64 * 1024 * 1024,
        tag_codes: frozenset[int] | set[int] | None = None,
    ) -> GetResult:
        """Stored entries from ``offset``: up to ``max_nums`` messages matching ``tag_codes``,
        as many as fit in ``max_bytes`` (the first always, so a queue cannot stall).

        Adjacent entries are served as one buffer, so an unfiltered pull of a busy queue costs
        a few slices, not one per message. At most maxFilterMessageCount units are scanned,
        whatever ``max_nums`` asks for: a filter matching nothing costs one bounded step, and
        the caller goes on from ``next_begin_offset``.
        """
        cq = self.consume_queues.get((topic, queue_id))
        if cq is None:
            return GetResult(GetStatus.NO_MATCHED_LOGIC_QUEUE, 0, 0, 0)
        lo, hi = cq.min_offset, self._readable_max(cq)
        if self.stable_offset is not None:
            stable = self.stable_offset(topic, queue_id)
            if stable is not None and stable < hi:
                hi = max(stable, lo)
        if lo <= hi <= offset <= cq.max_offset and hi < cq.max_offset:  # stored, not yet confirmed
            return GetResult(GetStatus.OFFSET_OVERFLOW_ONE, offset, lo, hi)
        if hi == 0:  # never written; a queue emptied by retention keeps its offsets (below)
            return GetResult(GetStatus.NO_MESSAGE_IN_QUEUE, 0, lo, hi)
        if offset < lo:
            return GetResult(GetStatus.OFFSET_TOO_SMALL, lo, lo, hi)
        if offset == hi:
            return GetResult(GetStatus.OFFSET_OVERFLOW_ONE, offset, lo, hi)
        if offset > hi:
            return GetResult(GetStatus.OFFSET_OVERFLOW_BADLY, lo if lo == 0 else hi, lo, hi)
        result = GetResult(GetStatus.NO_MATCHED_MESSAGE, offset, lo, hi)
        if self.compacted:
            part = self.compacted.get((topic, queue_id))
            if part is not None and offset < part.end:
                return self._get_compacted(part, result, offset, max_nums, max_bytes)
        buffers = result.buffers
        clog = self.commit_log
        min_phys = clog.min_offset
        budget = self.config.max_filter_message_count
        cursor = offset
        span_start = span_end = -1
        found = total = 0
        last_phys = -1
        done = False
        while not done and cursor < hi and budget > 0:
            units = cq.read_units(cursor, min(budget, 1024, hi - cursor))
            if not units:
                break
            for phys, size, tag in UNIT.iter_unpack(units):
                cursor += 1
                budget -= 1
                if phys == last_phys or size <= 0:  # more of a batch entry taken; a unit never written
                    continue
                if phys < min_phys or (tag_codes is not None and tag not in tag_codes):
                    continue
                if found and total + size > max_bytes:  # the next one would not fit
                    cursor -= 1
                    done = True
                    break
                last_phys = phys
                if span_end == phys:
                    span_end += size
                else:
                    if span_start >= 0:
                        buffers.append(clog.read(span_start, span_end - span_start))
                    span_start, span_end = phys, phys + size
                found += 1
                total += size
                if found >= max_nums:
                    done = True
                    break
        if span_start >= 0:
            buffers.append(clog.read(span_start, span_end - span_start))
        # a batch entry taken above counts every message it holds: continue past its units
        if last_phys >= 0:
            while cursor < hi:
                u = cq.unit(cursor)
                if u is None or u[0] != last_phys:
                    break
                cursor += 1
        return result.finish(cursor, found, total)

    @staticmethod
    def _get_compacted(
        part: compacted_log.CompactedLog, result: GetResult, offset: int, max_nums: int, max_bytes: int
    ) -> GetResult:
        """A pull below the cleaned point: whole entries of the compacted part (the batch
        converter leaves out records before ``offset``; tag filters apply to batch entries there)."""
        found = total = 0
        cursor = offset
        for entry in part.entries(offset, result.max_offset):
            if found and (found >= max_nums or total + entry.size > max_bytes):
                break
            result.buffers.append(entry.view)
            found += 1
            total += entry.size
            cursor = entry.next_queue_offset
        else:
            cursor = max(cursor, min(part.end, result.max_offset))
        return result.finish(cursor, found, total)

    def as_stored_messages(
        self,
        buffers: list[memoryview],
        from_offset: int,
        tag_codes: frozenset[int] | set[int] | None = None,
    ) -> list[memoryview | bytes]:
        """``get_messages`` buffers as RocketMQ clients read them: batch entries become stored
        messages through their format's converter (messages before ``from_offset`` or not
        matching ``tag_codes`` left out). Buffers without the batch magic anywhere (found at
        C speed) are returned as they are, so native-only pulls do no per-message work.
        """
        if not any(_BATCH_MAGIC_SEARCH(buf) for buf in buffers):
            return list(buffers)
        out: list[memoryview | bytes] = []
        for buf in buffers:
            pos, n, plain = 0, len(buf), 0
            while pos + 8 <= n:
                size, magic = struct.unpack_from(">ii", buf, pos)
                if size <= 0 or pos + size > n:
                    break
                if magic == BATCH_MAGIC:
                    if plain < pos:
                        out.append(buf[plain:pos])
                    entry = read_entry(buf, pos)
                    convert = self.batch_converters.get(entry.format)
                    if convert is None:
                        log.warning(
                            "no converter for batch entries of format %d: skipped in a pull", entry.format
                        )
                    else:
                        out.append(convert(entry, from_offset, tag_codes))
                    plain = pos + size
                pos += size
            if plain < n:
                out.append(buf[plain:])
        return out

    def advance_min_offset(self, topic: str, queue_id: int, offset: int) -> int:
        """Make a queue start at ``offset`` (Kafka DeleteRecords, retention.ms): earlier messages
        are gone for every reader. Never moves backwards or past the max offset; returns the
        queue's min offset. Kept in memory: the caller persists and re-applies it."""
        cq = self.consume_queues.get((topic, queue_id))
        if cq is None:
            return 0
        cq.min_offset = max(cq.min_offset, min(offset, cq.max_offset))
        return cq.min_offset

    def max_offset(self, topic: str, queue_id: int) -> int:
        cq = self.consume_queues.get((topic, queue_id))
        return cq.max_offset if cq else 0

    def min_offset(self, topic: str, queue_id: int) -> int:
        cq = self.consume_queues.get((topic, queue_id))
        return cq.min_offset if cq else 0

    def queue_bounds(self, topic: str, queue_id: int) -> tuple[int, int]:
        """(min offset, max offset) of a queue; (0, 0) for a queue never written."""
        cq = self.consume_queues.get((topic, queue_id))
        return (cq.min_offset, cq.max_offset) if cq else (0, 0)

    # ---- typed entry reads (no copies: views of the mapped commit log) ----------------------

    def entry_at(self, phys: int) -> StoredEntry:
        """The entry starting at commit-log offset ``phys`` (headers checked, not the CRC);
        KeyError if ``phys`` is outside the log, CorruptRecord if no entry starts there."""
        if phys < self.commit_log.min_offset:
            raise KeyError(phys)
        return entry_of(self.commit_log.read_entry(phys))

    def _unit_entry(self, phys: int, size: int) -> StoredEntry | None:
        """The entry a consume-queue unit points at; None for a unit never written, one whose
        segment retention deleted, or bytes that are no entry."""
        if size <= 0 or phys < self.commit_log.min_offset:
            return None
        try:
            return entry_of(self.commit_log.read(phys, size))
        except CorruptRecord:
            return None

    def entry_for(self, topic: str, queue_id: int, queue_offset: int) -> StoredEntry | None:
        """The entry holding ``queue_offset`` (a batch entry may start before it), if readable."""
        cq = self.consume_queues.get((topic, queue_id))
        if self.compacted and cq is not None and cq.min_offset <= queue_offset:
            part = self.compacted.get((topic, queue_id))
            if part is not None and queue_offset < part.end:
                return part.entry_for(queue_offset)
        unit = cq.unit(queue_offset) if cq else None
        return None if unit is None else self._unit_entry(unit[0], unit[1])

    def entries(
        self, topic: str, queue_id: int, from_offset: int, end_offset: int | None = None
    ) -> Iterator[StoredEntry]:
        """The entries holding queue offsets from ``from_offset`` (or the queue's min offset) on,
        in queue order, each once: a batch entry holding ``from_offset`` comes whole, then the
        walk goes on after its last message. Unreadable units are skipped. Lazy: a reader stops
        iterating once it has enough, and only what it took was read. ``end_offset`` (a high
        watermark) stops the walk there."""
        cq = self.consume_queues.get((topic, queue_id))
        if cq is None:
            return
        clog = self.commit_log
        cursor = max(from_offset, cq.min_offset)
        if self.compacted:
            part = self.compacted.get((topic, queue_id))
            if part is not None and cursor < part.end:
                stop = cq.max_offset if end_offset is None else min(end_offset, cq.max_offset)
                yield from part.entries(cursor, stop)
                cursor = part.end
        while cursor < (stop := cq.max_offset if end_offset is None else min(end_offset, cq.max_offset)):
            units = cq.read_units(cursor, min(_UNITS_PER_READ, stop - cursor))
            if not units:
                return
            for phys, size, _tag in UNIT.iter_unpack(units):
                if size <= 0 or phys < clog.min_offset:  # never written; its segment deleted
                    cursor += 1
                    continue
                try:
                    entry = entry_of(clog.read(phys, size))
                except CorruptRecord:
                    cursor += 1
                    continue
                yield entry
                if entry.kind is EntryKind.BATCH:  # its other units point at it too: jump past them
                    after = entry.queue_offset + entry.message_count
                    cursor = after if after > cursor else cursor + 1
                    break
                cursor += 1

    def entries_before(
        self, topic: str, queue_id: int, end_offset: int, stop_offset: int = 0
    ) -> Iterator[StoredEntry]:
        """The entries holding queue offsets below ``end_offset`` down to ``stop_offset`` (and
        the queue's min offset), newest first, each once. Lazy, as ``entries``."""
        cq = self.consume_queues.get((topic, queue_id))
        if cq is None:
            return
        stop = max(stop_offset, cq.min_offset)
        cursor = min(end_offset, cq.max_offset) - 1
        part = self.compacted.get((topic, queue_id)) if self.compacted else None
        floor = stop if part is None else max(stop, part.end)
        while cursor >= floor:
            unit = cq.unit(cursor)
            entry = None if unit is None else self._unit_entry(unit[0], unit[1])
            if entry is None:
                cursor -= 1
                continue
            yield entry
            cursor = min(cursor, entry.queue_offset) - 1
        if part is not None and cursor >= stop:
            yield from part.entries_before(cursor + 1, stop)

    @property
    def commit_log_min_offset(self) -> int:
        return self.commit_log.min_offset

    @property
    def commit_log_max_offset(self) -> int:
        """Where the next entry goes."""
        return self.commit_log.write_offset

    @property
    def commit_log_bytes(self) -> int:
        """Bytes of the commit log retained (what retention has not deleted yet)."""
        return self.commit_log.write_offset - self.commit_log.min_offset

    @property
    def max_batch_payload(self) -> int:
        """The largest payload ``put_batch_entry`` takes: one commit-log segment less the entry
        header and 1 KiB for the topic and tag codes."""
        return self.commit_log.file_size - BATCH_HEAD.size - 1024

    def entry_store_timestamp(self, phys: int) -> int:
        return self.entry_at(phys).store_timestamp

    def queue_store_timestamp(self, topic: str, queue_id: int, queue_offset: int) -> int | None:
        entry = self.entry_for(topic, queue_id, queue_offset)
        return None if entry is None else entry.store_timestamp

    def offset_by_time(self, topic: str, queue_id: int, timestamp: int) -> int:
        """The first queue offset stored at or after ``timestamp``; the max offset if none."""
        cq = self.consume_queues.get((topic, queue_id))
        if cq is None:
            return 0
        lo, hi = cq.min_offset, cq.max_offset
        while lo < hi:
            mid = (lo + hi) // 2
            ts = self.queue_store_timestamp(topic, queue_id, mid)
            if ts is not None and ts >= timestamp:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def look_message(self, phys: int) -> bytes | None:
        """The entry starting at commit-log offset ``phys``, if one does (checked, CRC included)."""
        if phys < self.commit_log.min_offset or phys >= self.commit_log.write_offset:
            return None
        f = self.commit_log.files.file_for(phys)
        if f is None:
            return None
        try:
            req = describe_entry(f.view, phys - f.start, phys, f.size - (phys - f.start))
        except CorruptRecord:
            return None
        return bytes(self.commit_log.read(phys, req.size))

    def query_by_key(
        self, topic: str, key: str, max_num: int, begin_ms: int, end_ms: int, unique: bool = False
    ) -> list[bytes]:
        """Messages of ``topic`` whose KEYS (or UNIQ_KEY, when ``unique``) contain ``key``."""
        out: list[bytes] = []
        seen: set[int] = set()
        for phys in self.index.lookup(topic, key, max_num * 2, begin_ms, end_ms):
            # an offset can be indexed twice: a stale entry from before a cut tail, and the
            # message written there afterwards
            if phys in seen or phys < self.commit_log.min_offset or phys >= self.commit_log.write_offset:
                continue
            seen.add(phys)
            f = self.commit_log.files.file_for(phys)
            if f is None:
                continue
            try:
                req = describe_entry(f.view, phys - f.start, phys, f.size - (phys - f.start))
            except CorruptRecord:
                continue
            matched = req.uniq_key == key if unique else key in req.keys
            if req.topic == topic and matched:
                out.append(bytes(self.commit_log.read(phys, req.size)))
                if len(out) >= max_num:
                    break
        return out

    def topics_in_store(self) -> set[str]:
        return {t for t, _ in self.consume_queues}

    def delete_topic(self, topic: str) -> None:
        """Forget a topic's consume queues (its commit-log bytes age out with retention)."""
        for key in [k for k in self.consume_queues if k[0] == topic]:
            cq = self.consume_queues.pop(key)
            cq.close()
        shutil.rmtree(self.root / "consumequeue" / topic, ignore_errors=True)
        for key in [k for k in self.compacted if k[0] == topic]:
            del self.compacted[key]
        shutil.rmtree(self.compacted_root / topic, ignore_errors=True)
        # the next flush must rewrite the checkpoint even without new messages: it still lists
        # these queues, and a recovery would take them for damaged ones and rebuild them
        self.dispatched_durable = -1

    @property
    def disk_used_bytes(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.stat(os.path.join(dirpath, name)).st_blocks * 512
                except OSError:
                    pass
        return total


__all__ = [
    "UNIT_SIZE",
    "GetResult",
    "GetStatus",
    "MessageStore",
    "PutResult",
    "PutStatus",
    "ReplicationMismatch",
    "StoreError",
    "StoreUnavailable",
]

"""A slave copies its master's metadata (RocketMQ's ``SlaveSynchronize``), and refuses metadata
writes of its own.

While ``broker.ha.master_addr`` is known (REGISTER_BROKER results, ``namesrv_registrar.py``), the
slave pulls from the master right after it learns the address and then every
``slaveSyncInterval``: GET_ALL_TOPIC_CONFIG (topics: upsert, delete what the master no longer has,
persist, take the master's data version), GET_ALL_CONSUMER_OFFSET, GET_ALL_DELAY_OFFSET and
GET_ALL_SUBSCRIPTIONGROUP_CONFIG, and REPLICATED_STATE for each frontend state registered in
``broker.replicated_states`` (the Kafka transaction coordinator's). Consumer offsets are merged by
maximum per queue, never overwritten: while the master is gone consumers commit to the slave, and
a master that comes back with older offsets must not move them backwards (RocketMQ's ``putAll``
does: apache/rocketmq #1094, #2181). A failed pull is logged and retried next round; a Java
master's bodies (fastjson's bare integer keys) are read too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ferrymq.core.broker.subscription_group import SubscriptionGroupConfig
from ferrymq.core.broker.topic_config import validate_topic
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import DataVersion, RouteCodecError, TopicConfig, loads_fastjson
from ferrymq.core.remoting.transport import RemotingConnection, RemotingError
from ferrymq.core.store import compacted_log

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.slave_sync")

#: the answer to a topic or group change on a slave: SYSTEM_ERROR with the remark of RocketMQ
#: 4.9-5.1 ``AdminBrokerProcessor.validateSlave`` (5.2 dropped the check, #7351; the next sync
#: would undo such a change anyway)
SLAVE_REFUSES_REMARK = (
    "Can't modify topic or subscription group from slave broker, please execute it from master broker."
)
#: metadata pulls may carry every topic of the master: as long as Java's 30 s topic pull
PULL_TIMEOUT = 30.0
#: bytes of a compacted part asked per COMPACTED_PART read
PART_CHUNK = 4 * 1024 * 1024


class SyncError(Exception):
    """A metadata pull the master refused or answered with an unusable body."""


class NotFerryMaster(SyncError):
    """The master does not serve REPLICATED_STATE (an Apache RocketMQ master): nothing to copy."""


def refuse_on_slave(broker: Broker, cmd: RemotingCommand) -> RemotingCommand | None:
    """SYSTEM_ERROR for a metadata write to a slave (its master owns topics and groups); else None."""
    if not broker.config.is_slave:
        return None
    return cmd.response(ResponseCode.SYSTEM_ERROR, SLAVE_REFUSES_REMARK)


def replication_runtime_info(broker: Broker) -> dict[str, str]:
    """GET_BROKER_RUNTIME_INFO fields saying what a slave knows of its master (empty: none)."""
    info = {"brokerRole": broker.config.broker_role}
    if broker.config.is_slave:
        info["masterAddr"] = broker.ha.master_addr or ""
        info["masterHaAddr"] = broker.ha.master_ha_addr or ""
    return info


class SlaveSyncService:
    """The slave's periodic metadata pull from its master; idle on a master."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._conn: RemotingConnection | None = None
        self._conn_addr: str | None = None
        self._kick = asyncio.Event()
        #: masters that do not serve REPLICATED_STATE (Apache RocketMQ): asked once, not every round
        self._no_replicated_state: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="slave-sync")

    def kick(self) -> None:
        """Sync now (the master address was just learnt or changed)."""
        self._kick.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            self._conn.close()

    async def _loop(self) -> None:
        interval = self.broker.config.slave_sync_interval / 1000
        while True:
            self._kick.clear()
            try:
                await self.sync_all()
            except Exception:  # a bug must not end the sync: the slave would silently go stale
                log.exception("slave metadata sync failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._kick.wait()

    async def sync_all(self) -> bool:
        """One round; True if every part was copied (False: no master, or something failed)."""
        master = self.broker.ha.master_addr
        if not master or master == self.broker.config.broker_addr:
            return False
        ok = True
        for what, code, apply in (
            ("topic config", RequestCode.GET_ALL_TOPIC_CONFIG, self._apply_topics),
            ("consumer offsets", RequestCode.GET_ALL_CONSUMER_OFFSET, self._apply_offsets),
            ("delay offsets", RequestCode.GET_ALL_DELAY_OFFSET, self._apply_delay_offsets),
            ("subscription groups", RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG, self._apply_groups),
        ):
            try:
                apply(await self._pull(master, code))
            except (
                RemotingError,
                SyncError,
                RouteCodecError,
                OSError,
                ValueError,
                TypeError,
                KeyError,
            ) as exc:
                log.warning("cannot copy the %s of master %s: %s; retrying next round", what, master, exc)
                ok = False
        for name, provider in list(self.broker.replicated_states.providers.items()):
            if master in self._no_replicated_state:
                break
            try:
                provider.load(await self._pull_raw(master, RequestCode.REPLICATED_STATE, {"name": name}))
            except NotFerryMaster:
                log.info("master %s is not ferrymq (no REPLICATED_STATE): frontend state not copied", master)
                self._no_replicated_state.add(master)
            except (RemotingError, SyncError, OSError, ValueError, TypeError, KeyError) as exc:
                log.warning(
                    "cannot copy the %s state of master %s: %s; retrying next round", name, master, exc
                )
                ok = False
        if master not in self._no_replicated_state:
            try:
                await self.sync_compacted(master)
            except NotFerryMaster:
                self._no_replicated_state.add(master)
            except (RemotingError, SyncError, OSError, ValueError, TypeError, KeyError) as exc:
                log.warning(
                    "cannot copy the compacted parts of master %s: %s; retrying next round", master, exc
                )
                ok = False
        return ok

    async def sync_compacted(self, master: str) -> int:
        """Copy the master's compacted parts this slave lacks or holds older (the master's log
        cleaner decides what survives; a slave serves the same view and never cleans on its
        own); how many were copied. A part replaced on the master mid-copy is retried next round."""
        body = await self._pull(master, RequestCode.COMPACTED_PART)
        parts = body.get("parts")
        if not isinstance(parts, list):
            raise SyncError("no parts list")
        store = self.broker.store
        copied = 0
        for topic, queue_id, end, size in parts:
            topic, queue_id, end, size = str(topic), int(queue_id), int(end), int(size)
            if (why := validate_topic(topic)) is not None or queue_id < 0 or size < 0:
                raise SyncError(f"bad compacted part {topic!r}-{queue_id}: {why or 'negative numbers'}")
            local = store.compacted.get((topic, queue_id))
            if local is not None and (local.end, local.size) == (end, size):
                continue
            store.install_compacted(
                topic, queue_id, await self._copy_part(master, topic, queue_id, end, size)
            )
            copied += 1
            log.info(
                "copied the compacted part of %s-%d below offset %d from %s", topic, queue_id, end, master
            )
        return copied

    async def _copy_part(
        self, master: str, topic: str, queue_id: int, end: int, size: int
    ) -> compacted_log.CompactedLog:
        directory = compacted_log.queue_dir(self.broker.store.compacted_root, topic, queue_id)
        writer = await asyncio.to_thread(compacted_log.PartWriter, directory, end)
        try:
            while writer.written < size:
                ext = {
                    "topic": topic,
                    "queueId": str(queue_id),
                    "end": str(end),
                    "position": str(writer.written),
                    "length": str(min(PART_CHUNK, size - writer.written)),
                }
                chunk = await self._pull_raw(master, RequestCode.COMPACTED_PART, ext)
                if not chunk:
                    raise SyncError(f"the compacted part of {topic}-{queue_id} ended early")
                await asyncio.to_thread(writer.append, chunk)
            return await asyncio.to_thread(writer.commit)
        except BaseException:
            writer.abort()
            raise

    async def _pull(self, master: str, code: int) -> dict[str, Any]:
        obj = loads_fastjson(await self._pull_raw(master, code))
        if not isinstance(obj, dict):
            raise SyncError("the body is not a JSON object")
        return obj

    async def _pull_raw(self, master: str, code: int, ext: dict[str, str] | None = None) -> bytes:
        if self._conn is None or not self._conn.is_open or self._conn_addr != master:
            if self._conn is not None:
                self._conn.close()
            self._conn = await self.broker.outbound.connect(master)
            self._conn_addr = master
        cmd = RemotingCommand(code=code, ext_fields=ext or {})  # signed by the connection
        resp = await self._conn.invoke(cmd, timeout=PULL_TIMEOUT)
        if resp.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED and code in (
            RequestCode.REPLICATED_STATE,
            RequestCode.COMPACTED_PART,
        ):
            raise NotFerryMaster(master)
        if resp.code != ResponseCode.SUCCESS:
            raise SyncError(f"answered {resp.code} {resp.remark}")
        return bytes(resp.body)

    def _apply_topics(self, body: dict[str, Any]) -> None:
        version = DataVersion.from_json(_mapping(body, "dataVersion"))
        topics = self.broker.topics
        if version == topics.data_version:
            return
        table = {
            name: TopicConfig.from_json(obj, name) for name, obj in _mapping(body, "topicConfigTable").items()
        }
        if topics.assign(table, version):
            log.info("topic config copied from master %s: %d topics", self.broker.ha.master_addr, len(table))

    def _apply_offsets(self, body: dict[str, Any]) -> None:
        table: dict[str, dict[int, int]] = {}
        for key, queues in _mapping(body, "offsetTable").items():
            if isinstance(queues, dict):
                table[key] = {int(q): int(o) for q, o in queues.items()}
        raised = self.broker.offsets.merge_max(table)
        if raised:
            log.info("%d consumer offsets raised to the master's", raised)

    def _apply_delay_offsets(self, body: dict[str, Any]) -> None:
        offsets = {int(level): int(o) for level, o in _mapping(body, "offsetTable").items()}
        schedule = self.broker.schedule
        if offsets != schedule.offsets:
            schedule.offsets = offsets
            schedule.persist()

    def _apply_groups(self, body: dict[str, Any]) -> None:
        version = DataVersion.from_json(_mapping(body, "dataVersion"))
        groups = self.broker.subscription_groups
        if version == groups.data_version:
            return
        table = {}
        for name, obj in _mapping(body, "subscriptionGroupTable").items():
            try:
                table[name] = SubscriptionGroupConfig.model_validate(obj)
            except ValidationError as exc:
                log.warning("master's subscription group %s ignored: %s", name, exc)
        groups.assign(table, version)


def _mapping(body: dict[str, Any], key: str) -> dict[str, Any]:
    """``body[key]``, a JSON object; SyncError when missing (an empty table must be said so, not
    implied: taking a body without its table for "none" would delete every topic)."""
    value = body.get(key)
    if not isinstance(value, dict):
        raise SyncError(f"{key} is {'missing' if value is None else 'not a JSON object'}")
    return value

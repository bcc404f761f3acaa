"""Admin requests a broker sends to a consumer: RESET_CONSUMER_CLIENT_OFFSET (220, oneway:
move the group's positions, as ``MQClientInstance.resetOffset``; push consumers only, as in Java,
where a lite-pull consumer ignores it) and GET_CONSUMER_RUNNING_INFO (307: what the consumer
subscribes to and holds per queue, as ``ConsumerRunningInfo``; mqadmin consumerStatus shows it;
push and lite-pull consumers both answer, as Java's do).

Leaves out the jstack text (there is no JVM; a Python thread dump is not what the tool expects)
and the consume TPS figures of ``statusTable``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ferrymq import __version__
from ferrymq.client.message import MessageQueue
from ferrymq.client.process_queue import ProcessQueue
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.mq_json import loads_mq_offsets, with_mq_map
from ferrymq.core.remoting.route import RouteCodecError
from ferrymq.core.remoting.subscription import SubscriptionData
from ferrymq.core.remoting.transport import RemotingConnection

log = logging.getLogger("ferrymq.client")


@dataclass(slots=True)
class QueueInfo:
    """One row of ``mqTable`` (Java's ProcessQueueInfo), whatever kind of consumer holds it."""

    cached_min: int = 0
    cached_max: int = 0
    cached_count: int = 0
    cached_bytes: int = 0
    locked: bool = False
    last_lock_ms: int = 0
    dropped: bool = False


def process_queue_info(pq: ProcessQueue) -> QueueInfo:
    """A push consumer's process queue as a running-info row."""
    cached = sorted(pq.msgs)
    return QueueInfo(
        cached[0] if cached else 0,
        cached[-1] if cached else 0,
        pq.count,
        pq.size,
        pq.locked,
        int(pq.last_lock * 1000),
        pq.dropped,
    )


@dataclass(slots=True)
class ConsumerSnapshot:
    """What a running-info answer is made of (read on the consumer's loop)."""

    group: str
    namesrv_addr: str
    orderly: bool
    consume_type: str
    #: a push consumer's thread pool (None for lite pull, whose Java info has no such property)
    thread_max: int | None
    start_ms: int
    subscriptions: list[SubscriptionData]
    queues: dict[MessageQueue, QueueInfo]
    committed: dict[MessageQueue, int]


def running_info_body(snap: ConsumerSnapshot) -> bytes:
    """ConsumerRunningInfo as JSON (fastjson's MessageQueue-keyed ``mqTable``)."""
    now = int(time.time() * 1000)
    mq_table: dict[tuple[str, str, int], Any] = {}
    for mq, q in snap.queues.items():
        mq_table[(mq.topic, mq.broker_name, mq.queue_id)] = {
            "commitOffset": snap.committed.get(mq, -1),
            "cachedMsgMinOffset": q.cached_min,
            "cachedMsgMaxOffset": q.cached_max,
            "cachedMsgCount": q.cached_count,
            "cachedMsgSizeInMiB": q.cached_bytes // (1024 * 1024),
            "transactionMsgMinOffset": 0,
            "transactionMsgMaxOffset": 0,
            "transactionMsgCount": 0,
            "locked": q.locked,
            "tryUnlockTimes": 0,
            "lastLockTimestamp": q.last_lock_ms,
            "droped": q.dropped,
            "lastPullTimestamp": now,
            "lastConsumeTimestamp": now,
        }
    props = {
        "PROP_NAMESERVER_ADDR": snap.namesrv_addr,
        "PROP_CONSUME_TYPE": snap.consume_type,
        "PROP_CLIENT_VERSION": f"ferrymq.client {__version__}",
        "PROP_CONSUMER_START_TIMESTAMP": str(snap.start_ms),
        "consumerGroup": snap.group,
        "language": "PYTHON",
    }
    if snap.thread_max is not None:
        props["PROP_THREADPOOL_CORE_SIZE"] = str(snap.thread_max)
        props["PROP_CONSUMEORDERLY"] = "true" if snap.orderly else "false"
    obj = {
        "properties": props,
        "subscriptionSet": [s.to_json() for s in snap.subscriptions],
        "statusTable": {},
        "userConsumerInfo": {},
        "mqPopTable": {},
    }
    return with_mq_map(obj, "mqTable", mq_table)


def register(
    remote: Any,
    group: str,
    snapshot: Callable[[], ConsumerSnapshot],
    reset: Callable[[dict[MessageQueue, int]], Coroutine[Any, Any, None]] | None,
) -> None:
    """Answer 307 and, given ``reset``, apply 220 for ``group`` on the client's connections."""

    def on_running_info(cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        if cmd.ext_fields.get("consumerGroup") not in (None, group):
            asked = cmd.ext_fields.get("consumerGroup")
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"no consumer of group {asked}")
        return cmd.response(body=running_info_body(snapshot()))

    def on_reset(cmd: RemotingCommand, conn: RemotingConnection) -> None:
        if cmd.ext_fields.get("group") != group or reset is None:
            return
        try:
            table = loads_mq_offsets(bytes(cmd.body))
        except (RouteCodecError, ValueError) as exc:
            log.warning("malformed RESET_CONSUMER_CLIENT_OFFSET from %s: %s", conn.peer, exc)
            return
        offsets = {MessageQueue(t, b, q): o for (t, b, q), o in table.items()}
        log.info("group %s: broker %s resets %d queue(s)", group, conn.peer, len(offsets))
        task = asyncio.ensure_future(reset(offsets))
        task.add_done_callback(_log_failure)

    remote.register_handler(RequestCode.GET_CONSUMER_RUNNING_INFO, on_running_info)
    if reset is not None:
        remote.register_handler(RequestCode.RESET_CONSUMER_CLIENT_OFFSET, on_reset)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("offset reset failed: %s", task.exception())

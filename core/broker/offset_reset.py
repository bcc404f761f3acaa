"""Moving a group's committed offsets while its consumers run.

A live consumer keeps its position in memory and would overwrite a reset with its next commit,
so a reset is also pushed to every member of the group as RESET_CONSUMER_CLIENT_OFFSET (220,
oneway, a ResetOffsetBody), which the Java client and ferrymq.client apply before committing
again. Used by INVOKE_BROKER_TO_RESET_OFFSET (mqadmin resetOffsetByTime) and by the admin API's
forced reset.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.mq_json import with_mq_map

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.broker")


def offsets_by_time(broker: Broker, group: str, topic: str, timestamp: int, force: bool) -> dict[int, int]:
    """Per queue, the first offset stored at or after ``timestamp`` (-1: the end of the queue).

    Without ``force`` a queue only moves back: a group already before that point keeps its place
    (RocketMQ's rule).
    """
    tc = broker.topics.get(topic)
    if tc is None:
        return {}
    store = broker.store
    committed = broker.offsets.offsets_of(group, topic)
    out: dict[int, int] = {}
    for qid in range(tc.write_queue_nums):
        if timestamp == -1:
            target = store.max_offset(topic, qid)
        else:
            target = store.offset_by_time(topic, qid, timestamp)
        target = max(target, 0)
        done = committed.get(qid)
        out[qid] = target if force or done is None or target < done else done
    return out


def apply_reset(broker: Broker, group: str, topic: str, offsets: dict[int, int], timestamp: int) -> int:
    """Commit ``offsets`` and push them to the group's live members; the number of members told."""
    for qid, offset in offsets.items():
        broker.offsets.commit(group, topic, qid, offset)
    broker.offsets.persist()
    info = broker.clients.consumer_group(group)
    channels = list(info.channels.values()) if info is not None else []
    if not channels:
        return 0
    name = broker.config.broker_name
    body = with_mq_map({}, "offsetTable", {(topic, name, q): o for q, o in offsets.items()})
    for ch in channels:
        ch.conn.invoke_oneway(
            RemotingCommand(
                code=RequestCode.RESET_CONSUMER_CLIENT_OFFSET,
                ext_fields={"topic": topic, "group": group, "timestamp": str(timestamp), "isForce": "true"},
                body=body,
            )
        )
    log.info("reset offsets of group %s on %s pushed to %d member(s)", group, topic, len(channels))
    return len(channels)

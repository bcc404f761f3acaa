"""Offsets and lag as RocketMQ's admin tools ask for them: TopicStatsTable (per queue min/max
offset and last store time), ConsumeStats (per queue broker offset, committed offset, last
consumed store time) and the broker-wide ConsumeStatsList, plus which groups consume a topic.

Pure reads of the broker's topic table, offset table and store; the bodies are built in
``processors/admin_stats.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ferrymq.core.broker.topic_config import RETRY_GROUP_TOPIC_PREFIX
from ferrymq.core.remoting.mq_json import QueueKey

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker


@dataclass(slots=True)
class QueueOffsets:
    broker_offset: int
    consumer_offset: int
    last_timestamp: int


def topic_stats(broker: Broker, topic: str) -> dict[QueueKey, dict[str, int]]:
    """Per queue ``minOffset``, ``maxOffset`` and ``lastUpdateTimestamp`` (TopicOffset)."""
    tc = broker.topics.get(topic)
    if tc is None:
        return {}
    store = broker.store
    name = broker.config.broker_name
    out: dict[QueueKey, dict[str, int]] = {}
    for qid in range(tc.write_queue_nums):
        hi = store.max_offset(topic, qid)
        lo = store.min_offset(topic, qid)
        last = store.queue_store_timestamp(topic, qid, hi - 1) if hi > lo else None
        out[(topic, name, qid)] = {"minOffset": lo, "maxOffset": hi, "lastUpdateTimestamp": last or 0}
    return out


def group_topics(broker: Broker, group: str) -> list[str]:
    """Topics the group has committed offsets on or subscribes to now."""
    topics = set(broker.offsets.topics_of_group(group))
    info = broker.clients.consumer_group(group)
    if info is not None:
        topics.update(info.subscriptions)
    return sorted(topics)


def consume_stats(broker: Broker, group: str, topic: str | None) -> dict[QueueKey, QueueOffsets]:
    """Per queue of the group's topics (or of ``topic``): where the broker is, where the group is."""
    store = broker.store
    name = broker.config.broker_name
    out: dict[QueueKey, QueueOffsets] = {}
    for t in [topic] if topic else group_topics(broker, group):
        tc = broker.topics.get(t)
        if tc is None:
            continue
        committed = broker.offsets.offsets_of(group, t)
        for qid in range(tc.write_queue_nums):
            hi = max(store.max_offset(t, qid), 0)
            done = max(committed.get(qid, 0), 0)
            last = store.queue_store_timestamp(t, qid, done - 1) if done > store.min_offset(t, qid) else None
            out[(t, name, qid)] = QueueOffsets(hi, done, last or 0)
    return out


def groups_of_topic(broker: Broker, topic: str) -> list[str]:
    """Groups with committed offsets on ``topic`` or an online member subscribed to it."""
    groups = {g for g in broker.offsets.groups() if topic in broker.offsets.topics_of_group(g)}
    for name, info in broker.clients.consumers.items():
        if topic in info.subscriptions:
            groups.add(name)
    return sorted(groups)


def all_groups(broker: Broker) -> list[str]:
    """Every consumer group this broker knows (offsets, members, subscription group configs)."""
    names = set(broker.offsets.groups()) | set(broker.clients.consumers)
    names.update(broker.subscription_groups.groups)
    return sorted(n for n in names if not n.startswith(RETRY_GROUP_TOPIC_PREFIX))

"""Priority consumption for push consumers (RocketMQ has no message priority).

As RocketMQ users do, keep priorities apart in separate topics, or in separate queues of one
topic, and let the consumer prefer them: give :class:`~ferrymq.client.push_consumer.PushConsumer`
a ranking of its queues as ``priority=`` (0 is the highest). A concurrent consumer then hands a
batch of a queue to the listener only while none of its higher-ranked queues has messages waiting
-- pulled and not yet consumed, still on the broker beyond what was last pulled, or not pulled
yet at all. Lower-ranked messages wait in the consumer, unacknowledged (their offsets do not
move), so nothing is lost; pulling them stays bounded by the usual flow control.

    consumer = PushConsumer(ns, group="orders", priority=by_topic("OrdersUrgent", "Orders"))
    consumer.subscribe("OrdersUrgent")
    consumer.subscribe("Orders")

    # one topic, queues 0-1 for urgent orders (producers pick them with a queue selector)
    consumer = PushConsumer(ns, group="orders", priority=by_queue_set("Orders", {0, 1}))

The preference is per consumer instance (each member drains the high-priority queues it owns
before its normal ones) and per batch (a batch already handed to the listener finishes). Orderly
listeners ignore it: order within a queue comes first. Retry-topic messages rank like the topics
not named (lowest).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from ferrymq.client.message import MessageQueue

Ranking = Callable[[MessageQueue], int]


def by_topic(*topics: str) -> Ranking:
    """Rank queues by topic: the first topic named is drained first; others come last."""
    order = {topic: rank for rank, topic in enumerate(topics)}
    lowest = len(topics)

    def rank(mq: MessageQueue) -> int:
        return order.get(mq.topic, lowest)

    return rank


def by_queue_set(topic: str, high_queue_ids: Collection[int]) -> Ranking:
    """Queues ``high_queue_ids`` of ``topic`` first, then everything else."""
    high = frozenset(high_queue_ids)

    def rank(mq: MessageQueue) -> int:
        return 0 if mq.topic == topic and mq.queue_id in high else 1

    return rank

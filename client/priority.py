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

:class:`PriorityGate` is how a concurrent consumer applies the ranking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping

from ferrymq.client.message import MessageQueue
from ferrymq.client.process_queue import ProcessQueue

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


class PriorityGate:
    """Holds a concurrent batch back while a higher-ranked owned queue has messages waiting.

    ``queues`` is the consumer's live table of owned queues; :meth:`notify` is called whenever
    what waits may have changed (a pull, a consumed batch, a rebalance) and wakes the waiters to
    look again. Without a ranking (``enabled`` False) nobody waits.
    """

    def __init__(self, queues: Mapping[MessageQueue, ProcessQueue], enabled: bool) -> None:
        self.queues = queues
        self.enabled = enabled
        self._changed: asyncio.Future[None] | None = None

    def start(self) -> None:
        """Called on the consumer's loop before anything waits."""
        self._changed = asyncio.get_running_loop().create_future()

    def _higher_ranked_pending(self, rank: int) -> bool:
        return any(
            pq.rank < rank and not pq.dropped and (pq.count or pq.backlog) for pq in self.queues.values()
        )

    def notify(self) -> None:
        fut = self._changed
        if not self.enabled or fut is None:
            return
        if not fut.done():
            fut.set_result(None)
        self._changed = asyncio.get_running_loop().create_future()

    async def wait_turn(self, pq: ProcessQueue, running: Callable[[], bool]) -> None:
        """Return once no higher-ranked queue has messages waiting (or ``pq`` or the consumer stops)."""
        while running() and not pq.dropped and self._higher_ranked_pending(pq.rank):
            assert self._changed is not None
            await self._changed

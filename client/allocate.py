"""Queue allocation among the members of a consumer group (clustering mode).

Every member computes the same answer from the same inputs: all queues of the topic sorted by
(topic, broker name, queue id) and all member client ids sorted as strings, as Java's
``RebalanceImpl`` sorts them. Only Java's default strategy is here,
``AllocateMessageQueueAveragely``: member ``i`` takes one contiguous block, the first
``len(queues) % len(members)`` members one queue more. Other strategies plug in through the
:class:`AllocateStrategy` protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ferrymq.client.message import MessageQueue


class AllocateStrategy(Protocol):
    name: str

    def allocate(
        self, group: str, current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]
    ) -> list[MessageQueue]: ...


def allocate_averagely(
    current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]
) -> list[MessageQueue]:
    """The block of ``mq_all`` (already sorted) that ``current_cid`` owns; [] if it is not a member."""
    if not current_cid or not mq_all or current_cid not in cid_all:
        return []
    index = list(cid_all).index(current_cid)
    n, members = len(mq_all), len(cid_all)
    mod = n % members
    average = 1 if n <= members else n // members + (1 if index < mod else 0)
    start = index * average if index < mod else index * average + mod
    count = min(average, n - start)
    return [mq_all[(start + i) % n] for i in range(max(0, count))]


class AllocateMessageQueueAveragely:
    """Java's default strategy (``AllocateMessageQueueAveragely``, name "AVG")."""

    name = "AVG"

    def allocate(
        self, group: str, current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]
    ) -> list[MessageQueue]:
        return allocate_averagely(current_cid, mq_all, cid_all)

"""POP consumption: messages a group receives are invisible for a while, then redelivered unless
acked (RocketMQ 5's POP_MESSAGE model), shared by the remoting protocol and the gRPC service.

``broker.pop`` is a :class:`~ferrymq.core.broker.pop.service.PopService`. Its typed API::

    req = PopRequest(group, topic, queue_id, max_nums, invisible_ms,
                     fifo=False, tag_codes=None, init_mode=INIT_MIN)   # queue_id -1: all queues
    batch = broker.pop.pop(req)                    # at once
    batch = await broker.pop.pop_wait(req, poll_ms)  # parked until a message arrives or revives
    for m in batch.messages:       # PoppedMessage: queue_id, offset, reconsume_times,
        m.data                     #   data (the stored record), receipt (a Receipt)
        handle = m.receipt.encode()    # the extraInfo string Java clients carry as POP_CK
    broker.pop.ack(group, topic, Receipt.parse(handle))                       # -> bool
    broker.pop.change_invisible(group, topic, Receipt.parse(handle), ms)      # -> new Receipt | None
    broker.pop.forward_to_dlq(group, topic, Receipt.parse(handle))          # -> bool (acked, to %DLQ%)

``ack``/``change_invisible`` return False/None for a receipt that is unknown or spent (acked,
changed, or revived already). Modules: ``receipt.py`` (Java's ExtraInfoUtil format),
``state.py`` (sans-IO checkpoints, acks, revive, FIFO locks, offsets), ``journal.py`` (on disk),
``service.py`` (the store, offsets, DLQ, long polling, the revive timer).
"""

from ferrymq.core.broker.pop.receipt import Receipt
from ferrymq.core.broker.pop.service import (
    INIT_MAX,
    INIT_MIN,
    PopBatch,
    PoppedMessage,
    PopRequest,
    PopService,
)

__all__ = ["INIT_MAX", "INIT_MIN", "PopBatch", "PopRequest", "PopService", "PoppedMessage", "Receipt"]

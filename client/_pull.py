"""What both consumers do around a pull (Java's ``PullAPIWrapper``).

* :func:`pull_addr` -- the broker member to pull a queue from: the one the broker last suggested
  (``suggestWhichBrokerId``), else any member of the group (a slave while the master is gone),
  refreshing the route once. Offsets are never committed through a pull to a slave.
* :func:`pulled_messages` -- ``processPullResult``: the messages of a FOUND result that match the
  subscription's exact tags (the broker filtered by hash only), stamped with their broker name and
  the queue's min/max offsets, compressed bodies (zlib, LZ4, ZSTD) inflated.
"""

from __future__ import annotations

import logging
from typing import Protocol

from ferrymq.client import _api, compression
from ferrymq.client.errors import ClientError
from ferrymq.client.message import MessageQueue
from ferrymq.client.route import RouteManager
from ferrymq.core.remoting.message import (
    PROPERTY_MAX_OFFSET,
    PROPERTY_MIN_OFFSET,
    SYSFLAG_COMPRESSED,
    MessageExt,
)

log = logging.getLogger("ferrymq.client")


async def pull_addr(routes: RouteManager, mq: MessageQueue, broker_id: int) -> tuple[str, bool]:
    """Where to pull ``mq`` from and whether that is a slave (``findBrokerAddressInSubscribe``:
    with the master gone from the route, a slave); raises ClientError."""
    found = routes.find_subscribe_addr(mq.broker_name, broker_id)
    if found is None:
        await routes.refresh([mq.topic])
        found = routes.find_subscribe_addr(mq.broker_name, broker_id)
        if found is None:
            raise ClientError(f"The broker[{mq.broker_name}] not exist")
    return found


class TagFilter(Protocol):
    """What :func:`pulled_messages` needs of a subscription: the exact tag re-check."""

    def matches(self, tags: str | None) -> bool: ...


def pulled_messages(result: _api.PullResult, mq: MessageQueue, sub: TagFilter | None) -> list[MessageExt]:
    """The deliverable messages of a FOUND ``result`` (see the module docstring)."""
    min_s, max_s = str(result.min_offset), str(result.max_offset)
    msgs = []
    for m in result.messages:
        if sub is not None and not sub.matches(m.tags):
            continue
        m.broker_name = mq.broker_name
        m.properties[PROPERTY_MIN_OFFSET] = min_s
        m.properties[PROPERTY_MAX_OFFSET] = max_s
        inflate(m)
        msgs.append(m)
    return msgs


def inflate(m: MessageExt) -> None:
    """Inflate a compressed body in place (zlib, LZ4 or ZSTD: client/compression.py); one that
    does not inflate is delivered as stored, with a warning."""
    if not m.sys_flag & SYSFLAG_COMPRESSED:
        return
    try:
        m.body = compression.inflate(m.body, m.sys_flag)
    except ValueError as exc:
        log.warning("message %s: %s; delivered as stored", m.msg_id, exc)

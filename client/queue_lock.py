"""Queue locks for orderly consumption in clustering mode (Java's ``RebalanceImpl.lock``/``lockAll``/
``unlock`` over LOCK_BATCH_MQ and UNLOCK_BATCH_MQ).

A member consumes an orderly queue only while it holds the queue's lock on the queue's broker;
:class:`QueueLocks` takes the lock of a queue newly owned, renews every owned queue's lock broker by
broker, and releases the locks of queues given up.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable

from ferrymq.client._instance import ClientInstance
from ferrymq.client._remote import check_response, request
from ferrymq.client.errors import ClientError, MQError
from ferrymq.client.message import MessageQueue
from ferrymq.client.process_queue import ProcessQueue
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.command import RemotingCommand

log = logging.getLogger("ferrymq.client")


def _mq_json(mq: MessageQueue) -> dict[str, object]:
    return {"brokerName": mq.broker_name, "queueId": mq.queue_id, "topic": mq.topic}


def _lock_body(group: str, client_id: str, mqs: Iterable[MessageQueue]) -> bytes:
    body = {
        "consumerGroup": group,
        "clientId": client_id,
        "onlyThisBroker": False,
        "mqSet": [_mq_json(mq) for mq in mqs],
    }
    return json.dumps(body, separators=(",", ":")).encode()


class QueueLocks:
    """The broker locks of one orderly consumer's queues; state is kept on each ProcessQueue."""

    def __init__(self, instance: ClientInstance, group: str, timeout: float) -> None:
        self.instance = instance
        self.group = group
        self.timeout = timeout

    async def _request(self, code: int, mqs: list[MessageQueue]) -> tuple[RemotingCommand, str]:
        """LOCK_BATCH_MQ (41) or UNLOCK_BATCH_MQ (42) for ``mqs`` of one broker group, at its master."""
        addr = await self.instance.master_addr(mqs[0])
        cmd = request(code, body=_lock_body(self.group, self.instance.client_id, mqs))
        return check_response(await self.instance.remote.invoke(addr, cmd, self.timeout), addr=addr), addr

    async def _lock(self, mqs: list[MessageQueue]) -> set[MessageQueue]:
        """Lock or renew ``mqs``; the ones this client now holds."""
        resp, addr = await self._request(RequestCode.LOCK_BATCH_MQ, mqs)
        try:
            data = json.loads(bytes(resp.body) or b"{}")
            return {
                MessageQueue(str(m["topic"]), str(m["brokerName"]), int(m["queueId"]))
                for m in data.get("lockOKMQSet") or []
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ClientError(f"malformed lock response from {addr}") from None

    async def lock(self, pq: ProcessQueue) -> bool:
        """Take (or renew) the lock of one queue; True if this member holds it now."""
        try:
            held = await self._lock([pq.mq])
        except MQError as exc:
            log.warning("locking %s failed: %s", pq.mq, exc)
            return False
        if pq.mq in held:
            pq.locked = True
            pq.last_lock = time.monotonic()
            pq.space.set()
            return True
        log.info("%s is still locked by another member of group %s", pq.mq, self.group)
        return False

    async def lock_all(self, pqs: Iterable[ProcessQueue]) -> None:
        """Renew the locks of every owned queue, broker by broker (``RebalanceImpl.lockAll``)."""
        by_broker: dict[str, list[ProcessQueue]] = {}
        for pq in pqs:
            by_broker.setdefault(pq.mq.broker_name, []).append(pq)
        for broker, batch in by_broker.items():
            try:
                held = await self._lock([pq.mq for pq in batch])
            except MQError as exc:
                log.warning("renewing the locks of group %s on %s failed: %s", self.group, broker, exc)
                continue
            now = time.monotonic()
            for pq in batch:
                if pq.mq in held:
                    pq.locked = True
                    pq.last_lock = now
                    pq.space.set()
                else:
                    if pq.locked:
                        log.warning("lost the lock of %s (group %s)", pq.mq, self.group)
                    pq.locked = False

    async def unlock(self, mqs: Iterable[MessageQueue]) -> None:
        """Release the locks of ``mqs``, broker by broker; failures are logged (locks expire)."""
        by_broker: dict[str, list[MessageQueue]] = {}
        for mq in mqs:
            by_broker.setdefault(mq.broker_name, []).append(mq)
        for batch in by_broker.values():
            try:
                await self._request(RequestCode.UNLOCK_BATCH_MQ, batch)
            except MQError as exc:
                log.warning("unlocking %s failed (the locks expire): %s", batch, exc)

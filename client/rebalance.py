"""Rebalancing of a push consumer (Java's ``RebalanceImpl`` / ``RebalancePushImpl``) and the
broker requests it needs beyond ``_api``: LOCK_BATCH_MQ, UNLOCK_BATCH_MQ, and where a newly owned
queue starts.

* :func:`allocate_topic` -- the queues of one topic this member should own: in CLUSTERING mode the
  strategy's share of the topic's queues (sorted) among the group's members (sorted, from
  GET_CONSUMER_LIST_BY_GROUP on a broker of the topic); in BROADCASTING mode all of them. None
  means "cannot tell now" (no route yet, broker unreachable): the caller keeps what it has.
* :func:`compute_pull_from_where` -- the first offset of a queue taken over: the group's stored
  offset, else per consume-from (``computePullFromWhereWithException``): LAST_OFFSET = the queue's
  end (retry topics from 0), FIRST_OFFSET = 0, TIMESTAMP = the first message stored at or after the
  timestamp (retry topics from the end).
* :func:`lock_batch` / :func:`unlock_batch` -- queue locks for orderly consumption.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from ferrymq.client import _api
from ferrymq.client._instance import ClientInstance
from ferrymq.client._remote import RemotingClient, check_response, request
from ferrymq.client.allocate import AllocateStrategy
from ferrymq.client.errors import ClientError, MQError
from ferrymq.client.message import MessageQueue
from ferrymq.client.validators import RETRY_GROUP_TOPIC_PREFIX
from ferrymq.core.remoting.codes import RequestCode

log = logging.getLogger("ferrymq.client")

CLUSTERING = "CLUSTERING"
BROADCASTING = "BROADCASTING"


async def allocate_topic(
    instance: ClientInstance,
    group: str,
    topic: str,
    message_model: str,
    strategy: AllocateStrategy,
    timeout: float,
) -> set[MessageQueue] | None:
    """The queues of ``topic`` this member should own now; None when that cannot be known."""
    routes = instance.routes
    mq_all = routes.cached_subscribe_queues(topic)
    if not mq_all:
        try:
            mq_all = await routes.subscribe_queues(topic, refresh=True)
        except MQError as exc:
            log.warning("no route for topic %s of group %s: %s", topic, group, exc)
            return None
    if not mq_all:
        log.info("topic %s of group %s has no route (yet)", topic, group)
        return None
    if message_model == BROADCASTING:
        return set(mq_all)
    addr = routes.any_broker_addr_of(topic)
    if addr is None:
        return None
    try:
        cids = await _api.get_consumer_list(instance.remote, addr, group, timeout)
    except MQError as exc:
        log.warning("cannot list the members of group %s at %s: %s", group, addr, exc)
        return None
    if instance.client_id not in cids:  # Java's strategies then allocate nothing: let go
        log.info("client %s is not (yet) a member of group %s at %s", instance.client_id, group, addr)
        return set()
    try:
        return set(strategy.allocate(group, instance.client_id, sorted(mq_all), sorted(cids)))
    except Exception:
        log.exception("allocation strategy %s failed for group %s", strategy.name, group)
        return None


async def compute_pull_from_where(
    read_offset: Callable[[MessageQueue], Awaitable[int | None]],
    remote: RemotingClient,
    addr: str,
    mq: MessageQueue,
    consume_from: str,
    consume_timestamp: int | None,
    timeout: float,
) -> int:
    """Where a newly owned queue starts (see the module docstring)."""
    stored = await read_offset(mq)
    if stored is not None and stored >= 0:
        return stored
    retry = mq.topic.startswith(RETRY_GROUP_TOPIC_PREFIX)
    if consume_from == "FIRST_OFFSET" or (consume_from == "LAST_OFFSET" and retry):
        return 0
    if consume_from == "TIMESTAMP" and not retry:
        ts = consume_timestamp if consume_timestamp is not None else int(time.time() * 1000) - 30 * 60_000
        return await _api.search_offset(remote, addr, mq, ts, timeout)
    return await _api.get_max_offset(remote, addr, mq, timeout)


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


async def lock_batch(
    remote: RemotingClient,
    addr: str,
    group: str,
    client_id: str,
    mqs: Iterable[MessageQueue],
    timeout: float,
) -> set[MessageQueue]:
    """LOCK_BATCH_MQ (41): lock or renew ``mqs``; returns the ones this client now holds."""
    cmd = request(RequestCode.LOCK_BATCH_MQ, body=_lock_body(group, client_id, mqs))
    resp = check_response(await remote.invoke(addr, cmd, timeout), addr=addr)
    try:
        data = json.loads(bytes(resp.body) or b"{}")
        return {
            MessageQueue(str(m["topic"]), str(m["brokerName"]), int(m["queueId"]))
            for m in data.get("lockOKMQSet") or []
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ClientError(f"malformed lock response from {addr}") from None


async def unlock_batch(
    remote: RemotingClient,
    addr: str,
    group: str,
    client_id: str,
    mqs: Iterable[MessageQueue],
    timeout: float,
) -> None:
    """UNLOCK_BATCH_MQ (42)."""
    cmd = request(RequestCode.UNLOCK_BATCH_MQ, body=_lock_body(group, client_id, mqs))
    check_response(await remote.invoke(addr, cmd, timeout), addr=addr)

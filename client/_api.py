"""Broker requests of the client, one coroutine each (the role of Java's ``MQClientAPIImpl``).

Each builds the request header as the Java client does, invokes it through the connection pool,
and maps the response: success values are returned, error codes raise BrokerError, transport
failures raise NetworkError. Policy (retries, which broker to ask, what an offset means) is the
caller's. Covered: SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE, PULL_MESSAGE / LITE_PULL_MESSAGE,
QUERY_CONSUMER_OFFSET, UPDATE_CONSUMER_OFFSET, GET_MAX_OFFSET, GET_MIN_OFFSET,
SEARCH_OFFSET_BY_TIMESTAMP, HEART_BEAT, UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum

from ferrymq.client._remote import RemotingClient, check_response, request
from ferrymq.client.errors import BrokerError, ClientError
from ferrymq.client.message import MessageQueue, SendResult, SendStatus
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.frame import DEFAULT_MAX_FRAME
from ferrymq.core.remoting.heartbeat import ConsumerData, HeartbeatData
from ferrymq.core.remoting.message import MessageExt, decode_stored_messages
from ferrymq.core.remoting.subscription import SubscriptionData

# PullSysFlag bits
PULL_FLAG_COMMIT_OFFSET = 1
PULL_FLAG_SUSPEND = 2
PULL_FLAG_SUBSCRIPTION = 4
PULL_FLAG_CLASS_FILTER = 8
PULL_FLAG_LITE = 16
#: maxMsgBytes of every pull: a response must fit in the frame this client accepts (a broker
#: that is told nothing may answer up to 64 MiB, and the connection would be dropped on it)
PULL_MAX_BYTES = DEFAULT_MAX_FRAME // 2


def send_header_v2(
    *,
    group: str,
    topic: str,
    default_topic: str,
    default_topic_queue_nums: int,
    queue_id: int,
    sys_flag: int,
    born_timestamp: int,
    flag: int,
    properties: str,
    broker_name: str,
    batch: bool = False,
    reconsume_times: int = 0,
    max_reconsume_times: int | None = None,
) -> dict[str, str]:
    """``SendMessageRequestHeaderV2``'s one-letter fields (``createSendMessageRequestHeaderV2``)."""
    header = {
        "a": group,
        "b": topic,
        "c": default_topic,
        "d": str(default_topic_queue_nums),
        "e": str(queue_id),
        "f": str(sys_flag),
        "g": str(born_timestamp),
        "h": str(flag),
        "i": properties,
        "j": str(reconsume_times),
        "k": "false",
        "m": "true" if batch else "false",
        "n": broker_name,
    }
    if max_reconsume_times is not None:
        header["l"] = str(max_reconsume_times)
    return header


async def send_message(
    remote: RemotingClient,
    addr: str,
    mq: MessageQueue,
    header: dict[str, str],
    body: bytes,
    uniq_id: str,
    timeout: float,
    *,
    batch: bool = False,
) -> SendResult:
    """SEND_MESSAGE_V2 (310) or SEND_BATCH_MESSAGE (320); ``processSendResponse``."""
    code = RequestCode.SEND_BATCH_MESSAGE if batch else RequestCode.SEND_MESSAGE_V2
    resp = await remote.invoke(addr, request(code, header, body), timeout)
    status = SendStatus.from_response_code(resp.code)
    if status is None:
        raise BrokerError(resp.code, resp.remark, addr=addr)
    ext = resp.ext_fields or {}
    try:
        queue_id = int(ext.get("queueId", mq.queue_id))
        queue_offset = int(ext.get("queueOffset", -1))
    except ValueError:
        raise ClientError(f"malformed send response from {addr}: {ext}") from None
    return SendResult(
        status=status,
        msg_id=uniq_id,
        offset_msg_id=ext.get("msgId", ""),
        queue=MessageQueue(mq.topic, mq.broker_name, queue_id),
        queue_offset=queue_offset,
        region_id=ext.get("MSG_REGION") or "DefaultRegion",
    )


async def send_message_oneway(
    remote: RemotingClient, addr: str, header: dict[str, str], body: bytes, *, batch: bool = False
) -> None:
    code = RequestCode.SEND_BATCH_MESSAGE if batch else RequestCode.SEND_MESSAGE_V2
    await remote.invoke_oneway(addr, request(code, header, body))


class PullStatus(Enum):
    FOUND = "FOUND"
    NO_NEW_MSG = "NO_NEW_MSG"
    NO_MATCHED_MSG = "NO_MATCHED_MSG"
    OFFSET_ILLEGAL = "OFFSET_ILLEGAL"


_PULL_STATUS = {
    ResponseCode.SUCCESS: PullStatus.FOUND,
    ResponseCode.PULL_NOT_FOUND: PullStatus.NO_NEW_MSG,
    ResponseCode.PULL_RETRY_IMMEDIATELY: PullStatus.NO_MATCHED_MSG,
    ResponseCode.PULL_OFFSET_MOVED: PullStatus.OFFSET_ILLEGAL,
}


@dataclass(slots=True)
class PullResult:
    status: PullStatus
    next_begin_offset: int
    min_offset: int
    max_offset: int
    suggest_which_broker_id: int = 0
    messages: list[MessageExt] = field(default_factory=list)


async def pull_message(
    remote: RemotingClient,
    addr: str,
    *,
    group: str,
    mq: MessageQueue,
    offset: int,
    max_nums: int,
    sys_flag: int,
    subscription: str,
    sub_version: int,
    suspend_timeout_ms: int,
    timeout: float,
    expression_type: str = "TAG",
    commit_offset: int = 0,
    lite_code: bool = True,
) -> PullResult:
    """LITE_PULL_MESSAGE (361) when ``lite_code`` (the lite flag set), else PULL_MESSAGE (11)."""
    header = {
        "consumerGroup": group,
        "topic": mq.topic,
        "queueId": str(mq.queue_id),
        "queueOffset": str(offset),
        "maxMsgNums": str(max_nums),
        "maxMsgBytes": str(PULL_MAX_BYTES),
        "sysFlag": str(sys_flag),
        "commitOffset": str(commit_offset),
        "suspendTimeoutMillis": str(suspend_timeout_ms),
        "subscription": subscription,
        "subVersion": str(sub_version),
        "expressionType": expression_type,
    }
    code = RequestCode.LITE_PULL_MESSAGE if lite_code else RequestCode.PULL_MESSAGE
    resp = await remote.invoke(addr, request(code, header), timeout)
    status = _PULL_STATUS.get(resp.code)
    if status is None:
        raise BrokerError(resp.code, resp.remark, addr=addr)
    ext = resp.ext_fields or {}
    try:
        result = PullResult(
            status=status,
            next_begin_offset=int(ext.get("nextBeginOffset", offset)),
            min_offset=int(ext.get("minOffset", 0)),
            max_offset=int(ext.get("maxOffset", 0)),
            suggest_which_broker_id=int(ext.get("suggestWhichBrokerId", 0)),
        )
        if status is PullStatus.FOUND and resp.body:
            result.messages = decode_stored_messages(resp.body)
    except ValueError as exc:
        raise ClientError(f"malformed pull response from {addr}: {exc}") from None
    return result


def _offset_header(ext: dict[str, str], addr: str) -> int:
    try:
        return int(ext["offset"])
    except (KeyError, ValueError):
        raise ClientError(f"response from {addr} has no offset") from None


async def query_consumer_offset(
    remote: RemotingClient,
    addr: str,
    group: str,
    mq: MessageQueue,
    timeout: float,
    *,
    set_zero_if_not_found: bool | None = None,
) -> int | None:
    """QUERY_CONSUMER_OFFSET (14); None for QUERY_NOT_FOUND."""
    header = {"consumerGroup": group, "topic": mq.topic, "queueId": str(mq.queue_id)}
    if set_zero_if_not_found is not None:
        header["setZeroIfNotFound"] = "true" if set_zero_if_not_found else "false"
    resp = await remote.invoke(addr, request(RequestCode.QUERY_CONSUMER_OFFSET, header), timeout)
    if resp.code == ResponseCode.QUERY_NOT_FOUND:
        return None
    check_response(resp, addr=addr)
    return _offset_header(resp.ext_fields or {}, addr)


async def update_consumer_offset(
    remote: RemotingClient,
    addr: str,
    group: str,
    mq: MessageQueue,
    offset: int,
    timeout: float,
    *,
    oneway: bool = False,
) -> None:
    """UPDATE_CONSUMER_OFFSET (15), oneway as Java's offset store sends it, or acknowledged."""
    header = {
        "consumerGroup": group,
        "topic": mq.topic,
        "queueId": str(mq.queue_id),
        "commitOffset": str(offset),
    }
    cmd = request(RequestCode.UPDATE_CONSUMER_OFFSET, header)
    if oneway:
        await remote.invoke_oneway(addr, cmd)
    else:
        check_response(await remote.invoke(addr, cmd, timeout), addr=addr)


async def _offset_query(
    remote: RemotingClient, addr: str, code: int, header: dict[str, str], timeout: float
) -> int:
    resp = check_response(await remote.invoke(addr, request(code, header), timeout), addr=addr)
    return _offset_header(resp.ext_fields or {}, addr)


async def get_max_offset(remote: RemotingClient, addr: str, mq: MessageQueue, timeout: float) -> int:
    """GET_MAX_OFFSET (30): the offset after the last message of the queue."""
    header = {"topic": mq.topic, "queueId": str(mq.queue_id)}
    return await _offset_query(remote, addr, RequestCode.GET_MAX_OFFSET, header, timeout)


async def get_min_offset(remote: RemotingClient, addr: str, mq: MessageQueue, timeout: float) -> int:
    """GET_MIN_OFFSET (31): the offset of the first message still kept."""
    header = {"topic": mq.topic, "queueId": str(mq.queue_id)}
    return await _offset_query(remote, addr, RequestCode.GET_MIN_OFFSET, header, timeout)


async def search_offset(
    remote: RemotingClient, addr: str, mq: MessageQueue, timestamp_ms: int, timeout: float
) -> int:
    """SEARCH_OFFSET_BY_TIMESTAMP (29)."""
    header = {"topic": mq.topic, "queueId": str(mq.queue_id), "timestamp": str(timestamp_ms)}
    return await _offset_query(remote, addr, RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, header, timeout)


def heartbeat_data(
    client_id: str,
    *,
    producer_group: str | None = None,
    consumer_group: str | None = None,
    consume_type: str = "CONSUME_PASSIVELY",
    message_model: str = "CLUSTERING",
    consume_from_where: str = "CONSUME_FROM_LAST_OFFSET",
    subscriptions: list[SubscriptionData] | None = None,
) -> HeartbeatData:
    """A HEART_BEAT body (HeartbeatData, reference section 1.4) for one producer or consumer group."""
    consumers = []
    if consumer_group is not None:
        consumers.append(
            ConsumerData(consumer_group, consume_type, message_model, consume_from_where, subscriptions or [])
        )
    return HeartbeatData(client_id, [producer_group] if producer_group is not None else [], consumers)


async def heartbeat(remote: RemotingClient, addr: str, data: HeartbeatData, timeout: float) -> int:
    """HEART_BEAT (34) with a HeartbeatData body; returns the broker's version."""
    resp = check_response(
        await remote.invoke(addr, request(RequestCode.HEART_BEAT, body=data.encode()), timeout), addr=addr
    )
    return resp.version


async def check_client_config(
    remote: RemotingClient, addr: str, client_id: str, group: str, sub: SubscriptionData, timeout: float
) -> None:
    """CHECK_CLIENT_CONFIG (46): may the broker filter by ``sub``? BrokerError if not (an SQL92
    expression it cannot parse: SUBSCRIPTION_PARSE_FAILED; property filters off: SYSTEM_ERROR)."""
    body = {"clientId": client_id, "group": group, "subscriptionData": sub.to_json()}
    cmd = request(RequestCode.CHECK_CLIENT_CONFIG, body=json.dumps(body).encode())
    check_response(await remote.invoke(addr, cmd, timeout), addr=addr)


async def unregister_client(
    remote: RemotingClient,
    addr: str,
    client_id: str,
    timeout: float,
    *,
    producer_group: str | None = None,
    consumer_group: str | None = None,
) -> None:
    """UNREGISTER_CLIENT (35)."""
    header = {"clientID": client_id}
    if producer_group:
        header["producerGroup"] = producer_group
    if consumer_group:
        header["consumerGroup"] = consumer_group
    check_response(
        await remote.invoke(addr, request(RequestCode.UNREGISTER_CLIENT, header), timeout), addr=addr
    )


async def get_consumer_list(remote: RemotingClient, addr: str, group: str, timeout: float) -> list[str]:
    """GET_CONSUMER_LIST_BY_GROUP (38): client ids of the group's members known to that broker."""
    resp = check_response(
        await remote.invoke(
            addr, request(RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": group}), timeout
        ),
        addr=addr,
    )
    try:
        data = json.loads(bytes(resp.body) or b"{}")
        ids = data.get("consumerIdList") or []
    except (ValueError, AttributeError):
        raise ClientError(f"malformed consumer list from {addr}") from None
    return [str(cid) for cid in ids]

"""A gRPC ``apache.rocketmq.v2.Message`` as RocketMQ properties, and a stored message back (sans-IO).

What the proxy's ``SendMessageActivity.buildMessageProperty`` does, read for facts:

- user properties are kept as they are; a key RocketMQ reserves (``SYSTEM_PROPERTIES``, the
  properties below) or control characters are ILLEGAL_MESSAGE_PROPERTY_KEY; more than
  ``MAX_USER_PROPERTIES`` or more than ``MAX_USER_PROPERTY_BYTES`` (with tag and keys) is
  MESSAGE_PROPERTIES_TOO_LARGE;
- ``tag`` -> TAGS (no ``|``, no blank, no control characters: ILLEGAL_MESSAGE_TAG), ``keys`` ->
  KEYS joined by a space, ``message_id`` -> UNIQ_KEY (required: ILLEGAL_MESSAGE_ID);
- ``message_group`` -> __SHARDINGKEY (FIFO; the queue is chosen by the client from its hash);
- ``delivery_timestamp`` -> TIMER_DELIVER_MS (ferrymq's timer service; the proxy's default too);
- TRANSACTION -> TRAN_MSG=true and ``orphaned_transaction_recovery_duration`` ->
  CHECK_IMMUNITY_TIME_IN_SECONDS; the producer group is the topic (PGROUP), as the proxy sets it,
  so the transaction checker asks whichever producer of that topic is connected;
- ``delivery_attempt`` -> RECONSUME_TIME, ``trace_context`` -> TRACE_CONTEXT, ``born_host`` ->
  __BORNHOST (the peer when empty), ``born_timestamp`` -> BORN_TIMESTAMP; GZIP body encoding sets
  the sys flag's compressed bit.

A message type that contradicts its fields (FIFO without a group, DELAY without a time, a group
with a delivery time) is MESSAGE_PROPERTY_CONFLICT_WITH_TYPE. ``to_proto`` is the reverse, for the
message a transaction check carries (RecoverOrphanedTransactionCommand), with a CRC32 body digest.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from ferrymq.core.remoting.message import (
    PROPERTY_DELAY_TIME_LEVEL,
    PROPERTY_KEYS,
    PROPERTY_PRODUCER_GROUP,
    PROPERTY_RECONSUME_TIME,
    PROPERTY_TAGS,
    PROPERTY_TIMER_DELIVER_MS,
    PROPERTY_UNIQ_KEY,
    SYSTEM_PROPERTIES,
    MessageExt,
)
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb

PROPERTY_SHARDING_KEY = "__SHARDINGKEY"
PROPERTY_TRACE_CONTEXT = "TRACE_CONTEXT"
PROPERTY_BORN_HOST = "__BORNHOST"
PROPERTY_BORN_TIMESTAMP = "BORN_TIMESTAMP"
PROPERTY_TRANSACTION_PREPARED = "TRAN_MSG"
PROPERTY_CHECK_IMMUNITY = "CHECK_IMMUNITY_TIME_IN_SECONDS"
#: keys a user property may not take (Java's MessageConst.STRING_HASH_SET, as far as ferrymq uses it)
RESERVED_KEYS = SYSTEM_PROPERTIES | {
    PROPERTY_SHARDING_KEY,
    PROPERTY_TRACE_CONTEXT,
    PROPERTY_BORN_HOST,
    PROPERTY_BORN_TIMESTAMP,
    PROPERTY_CHECK_IMMUNITY,
    "TRANSACTION_CHECK_TIMES",
}
#: the proxy's userPropertyMaxNum and maxUserPropertySize defaults
MAX_USER_PROPERTIES = 128
MAX_USER_PROPERTY_BYTES = 16 * 1024
#: the proxy's maxMessageGroupSize default
MAX_MESSAGE_GROUP_BYTES = 64
SYSFLAG_COMPRESSED = 0x1
SYSFLAG_TRANSACTION_PREPARED = 0x1 << 2


class MessageRefused(Exception):
    """A message the proxy would refuse: its ``apache.rocketmq.v2.Code`` and a reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class Outgoing:
    """One message ready for the broker's send path (SEND_MESSAGE_V2's fields)."""

    topic: str
    body: bytes
    properties: dict[str, str]
    sys_flag: int
    born_timestamp: int
    message_type: int


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _millis(ts: Any) -> int:
    return int(ts.seconds) * 1000 + int(ts.nanos) // 1_000_000


def from_proto(msg: Any, peer_host: str, now_ms: int) -> Outgoing:
    """RocketMQ's view of one gRPC message; MessageRefused with the proxy's code if it is not valid."""
    sp = msg.system_properties
    size = 0
    users = dict(msg.user_properties)
    if len(users) > MAX_USER_PROPERTIES:
        raise MessageRefused(
            pb.MESSAGE_PROPERTIES_TOO_LARGE, f"too many user properties, max is {MAX_USER_PROPERTIES}"
        )
    for key, value in users.items():
        if key in RESERVED_KEYS:
            raise MessageRefused(pb.ILLEGAL_MESSAGE_PROPERTY_KEY, f"property is used by system: {key}")
        if _has_control(key) or _has_control(value):
            raise MessageRefused(
                pb.ILLEGAL_MESSAGE_PROPERTY_KEY, "a property cannot contain control characters"
            )
        size += len(key.encode()) + len(value.encode())
    props = users
    tag = sp.tag
    if tag:
        if not tag.strip() or "|" in tag or _has_control(tag):
            raise MessageRefused(
                pb.ILLEGAL_MESSAGE_TAG, "tag cannot be blank, contain '|' or control characters"
            )
        props[PROPERTY_TAGS] = tag
        size += len(tag.encode())
    keys = list(sp.keys)
    for key in keys:
        if not key.strip() or _has_control(key):
            raise MessageRefused(
                pb.ILLEGAL_MESSAGE_KEY, "a key cannot be blank or contain control characters"
            )
        size += len(key.encode())
    if keys:
        props[PROPERTY_KEYS] = " ".join(keys)
    if size > MAX_USER_PROPERTY_BYTES:
        raise MessageRefused(
            pb.MESSAGE_PROPERTIES_TOO_LARGE,
            f"the total size of user property is too large, max is {MAX_USER_PROPERTY_BYTES}",
        )
    if not sp.message_id.strip():
        raise MessageRefused(pb.ILLEGAL_MESSAGE_ID, "message id cannot be empty")
    props[PROPERTY_UNIQ_KEY] = sp.message_id
    mtype = sp.message_type
    group = sp.message_group
    has_delivery = sp.HasField("delivery_timestamp")
    _check_type(mtype, group, has_delivery)
    sys_flag = SYSFLAG_COMPRESSED if sp.body_encoding == pb.GZIP else 0
    if mtype == pb.TRANSACTION:
        sys_flag |= SYSFLAG_TRANSACTION_PREPARED
        props[PROPERTY_TRANSACTION_PREPARED] = "true"
        if sp.HasField("orphaned_transaction_recovery_duration"):
            props[PROPERTY_CHECK_IMMUNITY] = str(int(sp.orphaned_transaction_recovery_duration.seconds))
    if has_delivery:
        deliver_ms = _millis(sp.delivery_timestamp)
        if deliver_ms > now_ms:  # a time already past is an ordinary message (delivered at once)
            props[PROPERTY_TIMER_DELIVER_MS] = str(deliver_ms)
    props[PROPERTY_RECONSUME_TIME] = str(sp.delivery_attempt)
    props[PROPERTY_PRODUCER_GROUP] = msg.topic.name
    if group:
        if not group.strip() or _has_control(group) or len(group.encode()) >= MAX_MESSAGE_GROUP_BYTES:
            raise MessageRefused(
                pb.ILLEGAL_MESSAGE_GROUP,
                f"message group must be shorter than {MAX_MESSAGE_GROUP_BYTES} bytes, not blank, "
                "without control characters",
            )
        props[PROPERTY_SHARDING_KEY] = group
    if sp.trace_context:
        props[PROPERTY_TRACE_CONTEXT] = sp.trace_context
    props[PROPERTY_BORN_HOST] = sp.born_host.strip() or peer_host
    born = _millis(sp.born_timestamp) if sp.HasField("born_timestamp") else now_ms
    props[PROPERTY_BORN_TIMESTAMP] = str(born)
    return Outgoing(msg.topic.name, bytes(msg.body), props, sys_flag, born, mtype)


def _check_type(mtype: int, group: str, has_delivery: bool) -> None:
    conflict = (
        (mtype == pb.FIFO and not group)
        or (mtype == pb.DELAY and not has_delivery)
        or (mtype in (pb.NORMAL, pb.TRANSACTION) and (group or has_delivery))
        or (group and has_delivery)
    )
    if conflict:
        raise MessageRefused(
            pb.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
            f"message type {pb.MessageType.Name(mtype)} conflicts with its message group or delivery time",
        )
    if mtype in (pb.LITE, pb.PRIORITY):
        raise MessageRefused(pb.UNSUPPORTED, f"message type {pb.MessageType.Name(mtype)} is not supported")


def message_type_of(props: dict[str, str]) -> int:
    """The gRPC type of a stored message, from its properties."""
    if props.get(PROPERTY_TRANSACTION_PREPARED) == "true":
        return pb.TRANSACTION
    if PROPERTY_SHARDING_KEY in props:
        return pb.FIFO
    if PROPERTY_TIMER_DELIVER_MS in props or PROPERTY_DELAY_TIME_LEVEL in props:
        return pb.DELAY
    return pb.NORMAL


def to_proto(msg: MessageExt, topic: str) -> Any:
    """A stored message as ``apache.rocketmq.v2.Message`` (the body digest is CRC32, as the proxy's)."""
    props = msg.properties
    out = pb.Message()
    out.topic.name = topic
    out.body = msg.body
    out.user_properties.update({k: v for k, v in props.items() if k not in RESERVED_KEYS})
    sp = out.system_properties
    if props.get(PROPERTY_TAGS):
        sp.tag = props[PROPERTY_TAGS]
    if props.get(PROPERTY_KEYS):
        sp.keys.extend(props[PROPERTY_KEYS].split())
    sp.message_id = msg.msg_id
    sp.body_digest.type = pb.CRC32
    sp.body_digest.checksum = f"{zlib.crc32(msg.body):08X}"
    sp.body_encoding = pb.IDENTITY
    sp.message_type = message_type_of(props)
    sp.born_timestamp.FromMilliseconds(msg.born_timestamp)
    sp.born_host = props.get(PROPERTY_BORN_HOST, msg.born_host.rpartition(":")[0])
    sp.store_timestamp.FromMilliseconds(msg.store_timestamp)
    sp.store_host = msg.store_host
    sp.queue_id = msg.queue_id
    sp.queue_offset = msg.queue_offset
    sp.delivery_attempt = msg.reconsume_times + 1
    if props.get(PROPERTY_SHARDING_KEY):
        sp.message_group = props[PROPERTY_SHARDING_KEY]
    if props.get(PROPERTY_TRACE_CONTEXT):
        sp.trace_context = props[PROPERTY_TRACE_CONTEXT]
    return out

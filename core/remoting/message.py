"""Message layouts: the stored message (commit-log record and pull-body record), the client batch
body, the properties string, and the two message ids.

Source of truth: apache/rocketmq ``common/.../message/MessageDecoder.java`` (encode, decode,
decodesBatch, encodeMessage, createMessageId, messageProperties2String), ``MessageConst.java``,
``MessageClientIDSetter.java`` and ``sysflag/MessageSysFlag.java``. All integers are big-endian.

Stored record (IPv4 hosts; the v6 variants grow the host fields as sysflag bits 4/5 say)::

    TOTALSIZE i | MAGICCODE i | BODYCRC i | QUEUEID i | FLAG i | QUEUEOFFSET q | PHYSICALOFFSET q |
    SYSFLAG i | BORNTIMESTAMP q | BORNHOST 4s+i | STORETIMESTAMP q | STOREHOST 4s+i |
    RECONSUMETIMES i | PREPARED_TRANSACTION_OFFSET q | BODYLEN i + BODY |
    TOPICLEN b (h for magic v2) + TOPIC | PROPLEN h + PROPERTIES
"""

from __future__ import annotations

import socket
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

MAGIC_V1 = -626843481  # 0xDAA320A7: 1-byte topic length
MAGIC_V2 = -626843477  # 0xDAA320AB: 2-byte topic length
BLANK_MAGIC = -875286124  # 0xCBD43194: end-of-segment filler in the commit log

NAME_VALUE_SEPARATOR = "\x01"
PROPERTY_SEPARATOR = "\x02"

# MessageSysFlag
SYSFLAG_COMPRESSED = 0x1
SYSFLAG_MULTI_TAGS = 0x2
SYSFLAG_TRANSACTION_MASK = 0xC  # transaction state: NOT 0, PREPARED 0x4, COMMIT 0x8, ROLLBACK 0xC
SYSFLAG_TRANSACTION_PREPARED = 0x4
SYSFLAG_TRANSACTION_COMMIT = 0x8
SYSFLAG_TRANSACTION_ROLLBACK = 0xC
SYSFLAG_BORNHOST_V6 = 0x10
SYSFLAG_STOREHOST_V6 = 0x20
SYSFLAG_INNER_BATCH = 0x80

# MessageConst property names used by ferrymq
PROPERTY_TAGS = "TAGS"
PROPERTY_KEYS = "KEYS"
PROPERTY_UNIQ_KEY = "UNIQ_KEY"  # MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX
PROPERTY_WAIT_STORE_MSG_OK = "WAIT"
PROPERTY_DELAY_TIME_LEVEL = "DELAY"
PROPERTY_MAX_OFFSET = "MAX_OFFSET"
PROPERTY_MIN_OFFSET = "MIN_OFFSET"
PROPERTY_PRODUCER_GROUP = "PGROUP"
PROPERTY_CLUSTER = "CLUSTER"
PROPERTY_RETRY_TOPIC = "RETRY_TOPIC"
PROPERTY_REAL_TOPIC = "REAL_TOPIC"
PROPERTY_REAL_QUEUE_ID = "REAL_QID"
PROPERTY_MSG_REGION = "MSG_REGION"
#: the region a broker stamps on what it stores (brokerConfig.regionId's default)
DEFAULT_REGION = "DefaultRegion"
PROPERTY_TRACE_SWITCH = "TRACE_ON"
PROPERTY_RECONSUME_TIME = "RECONSUME_TIME"
PROPERTY_MAX_RECONSUME_TIMES = "MAX_RECONSUME_TIMES"
PROPERTY_ORIGIN_MESSAGE_ID = "ORIGIN_MESSAGE_ID"
PROPERTY_TIMER_DELIVER_MS = "TIMER_DELIVER_MS"
PROPERTY_TIMER_DELAY_MS = "TIMER_DELAY_MS"
PROPERTY_TIMER_DELAY_SEC = "TIMER_DELAY_SEC"
#: a stored timer message's delivery time (epoch ms), set by the broker
PROPERTY_TIMER_OUT_MS = "TIMER_OUT_MS"
KEY_SEPARATOR = " "

#: Fixed part before BODYLEN for IPv4 born and store hosts.
_FIXED = struct.Struct(">iiiiiqqiq4siq4siiq")
FIXED_SIZE_V4 = _FIXED.size  # 84: everything before BODYLEN
_I32 = struct.Struct(">i")
_H16 = struct.Struct(">h")
_HEAD = struct.Struct(">ii")  # TOTALSIZE, MAGICCODE

#: offsets of fields in a stored record (IPv4 hosts), for in-place patching and fast peeks
OFF_QUEUEID = 12
OFF_QUEUEOFFSET = 20
OFF_PHYSOFFSET = 28
OFF_SYSFLAG = 36
OFF_STORETIMESTAMP = 56  # valid only when BORNHOST is IPv4


def body_crc(body: bytes | bytearray | memoryview) -> int:
    """``UtilAll.crc32``: zlib CRC-32 masked to 31 bits."""
    return zlib.crc32(body) & 0x7FFFFFFF


def properties_to_string(props: dict[str, str]) -> str:
    """``MessageDecoder.messageProperties2String``."""
    if not props:
        return ""
    return "".join(f"{k}{NAME_VALUE_SEPARATOR}{v}{PROPERTY_SEPARATOR}" for k, v in props.items())


def string_to_properties(text: str) -> dict[str, str]:
    """``MessageDecoder.string2messageProperties``: tolerant of a missing final separator."""
    props: dict[str, str] = {}
    if not text:
        return props
    for item in text.split(PROPERTY_SEPARATOR):
        if not item:
            continue
        name, sep, value = item.partition(NAME_VALUE_SEPARATOR)
        if sep:
            props[name] = value
    return props


_HASH_CACHE: dict[str, int] = {}


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode`` (over UTF-16 code units) as a signed 32-bit int.

    The consume queue stores the tag hash as Java computes it, so that a Java client's
    subscription ``codeSet`` matches. Tags repeat, so results are cached.
    """
    cached = _HASH_CACHE.get(text)
    if cached is not None:
        return cached
    h = 0
    if text.isascii():
        for ch in text.encode():
            h = (31 * h + ch) & 0xFFFFFFFF
    else:
        units = text.encode("utf-16-be")
        for (unit,) in struct.iter_unpack(">H", units):
            h = (31 * h + unit) & 0xFFFFFFFF
    if h >= 0x80000000:
        h -= 0x100000000
    if len(_HASH_CACHE) < 65536:
        _HASH_CACHE[text] = h
    return h


def tags_code(tags: str | None) -> int:
    """The consume-queue tag code of a message: hash of its TAGS property, 0 when untagged."""
    if not tags:
        return 0
    return java_string_hash(tags)


def create_offset_msg_id(store_ip: bytes, store_port: int, commit_log_offset: int) -> str:
    """``MessageDecoder.createMessageId``: uppercase hex of ip | port | commit-log offset."""
    return (store_ip + struct.pack(">iq", store_port, commit_log_offset)).hex().upper()


def decode_offset_msg_id(msg_id: str) -> tuple[str, int, int]:
    """Inverse of :func:`create_offset_msg_id`: (ip, port, commit-log offset)."""
    raw = bytes.fromhex(msg_id)
    if len(raw) == 16:
        ip = socket.inet_ntop(socket.AF_INET, raw[:4])
        port, offset = struct.unpack(">iq", raw[4:])
    elif len(raw) == 28:
        ip = socket.inet_ntop(socket.AF_INET6, raw[:16])
        port, offset = struct.unpack(">iq", raw[16:])
    else:
        raise ValueError(f"not an offset message id: {msg_id!r}")
    return ip, port, offset


def ip_bytes(host: str) -> bytes:
    """4 bytes of an IPv4 address (hostnames resolve to 127.0.0.1 only if they are localhost)."""
    try:
        return socket.inet_aton(host)
    except OSError:
        return socket.inet_aton("127.0.0.1")


@dataclass(slots=True)
class Message:
    """A message as a producer builds it."""

    topic: str
    body: bytes
    tags: str | None = None
    keys: str | list[str] | None = None
    properties: dict[str, str] = field(default_factory=dict)
    flag: int = 0

    def all_properties(self) -> dict[str, str]:
        """User properties plus TAGS and KEYS, as they travel on the wire."""
        props = dict(self.properties)
        if self.tags:
            props[PROPERTY_TAGS] = self.tags
        if self.keys:
            props[PROPERTY_KEYS] = self.keys if isinstance(self.keys, str) else KEY_SEPARATOR.join(self.keys)
        return props


@dataclass(slots=True)
class MessageExt:
    """A stored message as a consumer receives it."""

    topic: str
    body: bytes
    properties: dict[str, str]
    queue_id: int
    queue_offset: int
    commit_log_offset: int
    sys_flag: int
    born_timestamp: int
    born_host: str
    store_timestamp: int
    store_host: str
    reconsume_times: int
    flag: int
    body_crc: int
    offset_msg_id: str
    store_size: int
    #: The broker group the message was pulled from; not in the stored record, a consumer sets it
    #: (Java's ``MessageExt.brokerName``, filled in by ``PullAPIWrapper.processPullResult``).
    broker_name: str | None = None

    @property
    def tags(self) -> str | None:
        return self.properties.get(PROPERTY_TAGS)

    @property
    def keys(self) -> str | None:
        return self.properties.get(PROPERTY_KEYS)

    @property
    def msg_id(self) -> str:
        """``MessageClientExt.getMsgId``: the client's unique key when present."""
        return self.properties.get(PROPERTY_UNIQ_KEY) or self.offset_msg_id

    @property
    def user_properties(self) -> dict[str, str]:
        return {k: v for k, v in self.properties.items() if k not in SYSTEM_PROPERTIES}


SYSTEM_PROPERTIES = frozenset(
    {
        PROPERTY_TAGS,
        PROPERTY_KEYS,
        PROPERTY_UNIQ_KEY,
        PROPERTY_WAIT_STORE_MSG_OK,
        PROPERTY_DELAY_TIME_LEVEL,
        PROPERTY_MAX_OFFSET,
        PROPERTY_MIN_OFFSET,
        PROPERTY_PRODUCER_GROUP,
        PROPERTY_CLUSTER,
        PROPERTY_RETRY_TOPIC,
        PROPERTY_REAL_TOPIC,
        PROPERTY_REAL_QUEUE_ID,
        PROPERTY_MSG_REGION,
        PROPERTY_TRACE_SWITCH,
        PROPERTY_RECONSUME_TIME,
        PROPERTY_MAX_RECONSUME_TIMES,
        PROPERTY_ORIGIN_MESSAGE_ID,
        "CONSUME_START_TIME",
        "__transactionId__",
        "TRAN_MSG",
        "INNER_NUM",
        "INNER_BASE",
        "TIMER_OUT_MS",
        PROPERTY_TIMER_DELIVER_MS,
        PROPERTY_TIMER_DELAY_MS,
        PROPERTY_TIMER_DELAY_SEC,
    }
)


def stored_size(body_len: int, topic_len: int, properties_len: int) -> int:
    """Size of a stored record with IPv4 hosts (``CommitLog.calMsgLength``)."""
    return FIXED_SIZE_V4 + 4 + body_len + (2 if topic_len > 127 else 1) + topic_len + 2 + properties_len


def encode_stored_message(
    *,
    topic: bytes,
    body: bytes | bytearray | memoryview,
    properties: bytes,
    queue_id: int,
    queue_offset: int,
    physical_offset: int,
    flag: int = 0,
    sys_flag: int = 0,
    born_timestamp: int,
    born_host: bytes,
    born_port: int,
    store_timestamp: int,
    store_host: bytes,
    store_port: int,
    reconsume_times: int = 0,
    prepared_transaction_offset: int = 0,
    crc: int | None = None,
) -> bytes:
    """One stored record with IPv4 hosts (``CommitLog.DefaultAppendMessageCallback``)."""
    topic_len = len(topic)
    v2 = topic_len > 127
    total = stored_size(len(body), topic_len, len(properties))
    head = _FIXED.pack(
        total,
        MAGIC_V2 if v2 else MAGIC_V1,
        body_crc(body) if crc is None else crc,
        queue_id,
        flag,
        queue_offset,
        physical_offset,
        sys_flag & ~(SYSFLAG_BORNHOST_V6 | SYSFLAG_STOREHOST_V6),
        born_timestamp,
        born_host,
        born_port,
        store_timestamp,
        store_host,
        store_port,
        reconsume_times,
        prepared_transaction_offset,
    )
    topic_field = (_H16.pack(topic_len) if v2 else bytes((topic_len,))) + topic
    return b"".join((head, _I32.pack(len(body)), body, topic_field, _H16.pack(len(properties)), properties))


def _host(buf: bytes | memoryview, pos: int, v6: bool) -> tuple[str, bytes, int]:
    """A stored host field: ("ip:port", the raw address, port)."""
    n = 16 if v6 else 4
    raw = bytes(buf[pos : pos + n])
    (port,) = _I32.unpack_from(buf, pos + n)
    return f"{socket.inet_ntop(socket.AF_INET6 if v6 else socket.AF_INET, raw)}:{port}", raw, port


class StoredFields(NamedTuple):
    """The fixed fields of one stored record and where its variable parts lie.

    The one reader of the stored-message layout: decoding (``decode_stored_message``) and the
    store's validation of commit-log entries both start here. Positions are in the buffer given.
    """

    total: int
    magic: int
    crc: int
    queue_id: int
    flag: int
    queue_offset: int
    phys: int
    sys_flag: int
    born_timestamp: int
    born_host_at: int
    store_timestamp: int
    store_host_at: int
    reconsume_times: int
    body_at: int
    body_len: int
    topic_at: int
    topic_len: int
    props_at: int
    props_len: int


_LEAD = struct.Struct(">iiiiiqqiq")  # TOTALSIZE .. BORNTIMESTAMP
_I64 = struct.Struct(">q")
_U8 = struct.Struct(">B")
_TAIL = struct.Struct(">iqi")  # RECONSUMETIMES, PREPARED_TRANSACTION_OFFSET, BODYLEN
_new_tuple = tuple.__new__


def read_stored_fields(buf: bytes | memoryview, pos: int = 0) -> StoredFields:
    """Read the stored record at ``pos`` (``MessageDecoder.decode``'s walk, nothing copied).

    ValueError (or ``struct.error``) when the magic is not a message's or the body does not fit
    the record's TOTALSIZE.
    """
    # tuple.__new__ skips the NamedTuple's Python-level __new__: this runs once per message read
    return _new_tuple(StoredFields, _walk(buf, pos))


def _walk(buf: bytes | memoryview, pos: int) -> tuple[int, ...]:
    """The walk itself, as a plain tuple in StoredFields' order (decoding skips the NamedTuple)."""
    total, magic, crc, queue_id, flag, queue_offset, phys, sys_flag, born_ts = _LEAD.unpack_from(buf, pos)
    if magic != MAGIC_V1 and magic != MAGIC_V2:
        raise ValueError(f"bad magic code {magic:#x} at {pos}")
    born_at = pos + 48
    p = born_at + (20 if sys_flag & SYSFLAG_BORNHOST_V6 else 8)
    (store_ts,) = _I64.unpack_from(buf, p)
    store_at = p + 8
    p = store_at + (20 if sys_flag & SYSFLAG_STOREHOST_V6 else 8)
    reconsume, _prepared, body_len = _TAIL.unpack_from(buf, p)
    body_at = p + 16
    # TOPICLEN (1 byte at least) and PROPLEN (2) follow the body inside the record
    if body_len < 0 or body_at + body_len + 3 > pos + total:
        raise ValueError(f"body length {body_len} at {pos}")
    p = body_at + body_len
    if magic == MAGIC_V2:
        (topic_len,) = _H16.unpack_from(buf, p)
        p += 2
    else:
        (topic_len,) = _U8.unpack_from(buf, p)  # struct.error, not IndexError, past the buffer
        p += 1
    topic_at = p
    (prop_len,) = _H16.unpack_from(buf, p + topic_len)
    return (
        total,
        magic,
        crc,
        queue_id,
        flag,
        queue_offset,
        phys,
        sys_flag,
        born_ts,
        born_at,
        store_ts,
        store_at,
        reconsume,
        body_at,
        body_len,
        topic_at,
        topic_len,
        topic_at + topic_len + 2,
        prop_len,
    )


def stored_properties(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int, dict[str, str]]:
    """The size, queue offset and properties of the stored record at ``pos``, nothing else
    decoded (what a property filter needs)."""
    f = _walk(buf, pos)
    props_at, props_len = f[17], f[18]
    text = bytes(buf[props_at : props_at + props_len]).decode() if props_len > 0 else ""
    return f[0], f[5], string_to_properties(text)


def decode_stored_message(buf: bytes | memoryview, pos: int = 0) -> MessageExt:
    """Decode the stored record at ``pos`` (``MessageDecoder.decode``)."""
    return decode_stored_fields(buf, _walk(buf, pos))


def decode_stored_fields(buf: bytes | memoryview, f: StoredFields | tuple[int, ...]) -> MessageExt:
    """The message whose fields ``read_stored_fields`` read from ``buf``."""
    (total, _, crc, queue_id, flag, queue_offset, phys, sys_flag, born_ts, born_at, store_ts, store_at,
     reconsume, body_at, body_len, topic_at, topic_len, props_at, props_len) = f  # fmt: skip
    born_host, _, _ = _host(buf, born_at, bool(sys_flag & SYSFLAG_BORNHOST_V6))
    store_host, store_ip, store_port = _host(buf, store_at, bool(sys_flag & SYSFLAG_STOREHOST_V6))
    props = (
        string_to_properties(bytes(buf[props_at : props_at + props_len]).decode()) if props_len > 0 else {}
    )
    return MessageExt(
        topic=bytes(buf[topic_at : topic_at + topic_len]).decode(),
        body=bytes(buf[body_at : body_at + body_len]),
        properties=props,
        queue_id=queue_id,
        queue_offset=queue_offset,
        commit_log_offset=phys,
        sys_flag=sys_flag,
        born_timestamp=born_ts,
        born_host=born_host,
        store_timestamp=store_ts,
        store_host=store_host,
        reconsume_times=reconsume,
        flag=flag,
        body_crc=crc,
        offset_msg_id=create_offset_msg_id(store_ip, store_port, phys),
        store_size=total,
    )


def decode_stored_messages(buf: bytes | memoryview) -> list[MessageExt]:
    """Decode a pull-response body: stored records back to back (``decodesBatch``)."""
    out = []
    pos = 0
    n = len(buf)
    while pos + 8 <= n:
        (total,) = _I32.unpack_from(buf, pos)
        if total <= 0 or pos + total > n:
            raise ValueError(f"truncated record at {pos}")
        out.append(decode_stored_message(buf, pos))
        pos += total
    return out


@dataclass(slots=True)
class BatchItem:
    """One message of a client batch body (SEND_BATCH_MESSAGE)."""

    body: bytes
    flag: int
    properties: str


def decode_batch_body(buf: bytes | memoryview) -> list[BatchItem]:
    """``MessageDecoder.decodeMessages`` over ``encodeMessage`` records; ValueError on garbage."""
    items: list[BatchItem] = []
    pos = 0
    n = len(buf)
    while pos < n:
        if n - pos < 22:
            raise ValueError(f"truncated batch record at {pos}")
        total, _magic, _crc, flag, body_len = struct.unpack_from(">iiiii", buf, pos)
        if total < 22 or pos + total > n or body_len < 0 or 20 + body_len + 2 > total:
            raise ValueError(f"bad batch record size at {pos}")
        p = pos + 20
        body = bytes(buf[p : p + body_len])
        p += body_len
        (prop_len,) = _H16.unpack_from(buf, p)
        p += 2
        if prop_len < 0 or p + prop_len > pos + total:
            raise ValueError(f"bad batch record properties at {pos}")
        props = bytes(buf[p : p + prop_len]).decode()
        items.append(BatchItem(body=body, flag=flag, properties=props))
        pos += total
    return items


def encode_batch_body(messages: list[tuple[bytes, int, str]]) -> bytes:
    """``MessageDecoder.encodeMessages``: (body, flag, properties string) records."""
    parts = []
    for body, flag, props in messages:
        pb = props.encode()
        total = 4 + 4 + 4 + 4 + 4 + len(body) + 2 + len(pb)
        parts.append(struct.pack(">iiiii", total, 0, 0, flag, len(body)))
        parts.append(body)
        parts.append(_H16.pack(len(pb)))
        parts.append(pb)
    return b"".join(parts)


def iter_record_spans(buf: bytes | memoryview) -> Iterator[tuple[int, int]]:
    """(position, size) of each stored record in a buffer of back-to-back records."""
    pos = 0
    n = len(buf)
    while pos + 8 <= n:
        (total,) = _I32.unpack_from(buf, pos)
        if total <= 0 or pos + total > n:
            return
        yield pos, total
        pos += total

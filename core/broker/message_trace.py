"""Message trace: what RocketMQ clients with trace on write to RMQ_SYS_TRACE_TOPIC, read back.

The Java client (``DefaultMQProducer(group, true)``, ``enableMsgTrace``) sends trace messages
whose KEYS are the traced message ids and whose body is records of fields separated by
``\\x01``, each record ended by ``\\x02`` (``TraceDataEncoder``). Serves the record types
Pub (a send: group, topic, msgId, tags, keys, storeHost, bodyLength, costTime, msgType,
offsetMsgId, success[, clientHost]), SubBefore (a push consumer about to hand a message to its
listener: timestamp, group, requestId, msgId, retryTimes) and SubAfter (the listener's return:
requestId, msgId, costTime, success, contextCode[, timestamp[, group]]). Leaves out
EndTransaction records (decoded as nothing) and any trace topic other than the default.
Pure code over bytes and strings; ``find_trace`` reads the broker's key index.
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass

from ferrymq.core.broker.topic_config import TRACE_TOPIC
from ferrymq.core.remoting.message import SYSFLAG_COMPRESSED, decode_stored_message
from ferrymq.core.store.message_store import MessageStore

log = logging.getLogger("ferrymq.trace")

CONTENT_SPLITOR = "\x01"
FIELD_SPLITOR = "\x02"
#: at most this many trace messages are read for one message id
MAX_TRACE_MESSAGES = 256


@dataclass(slots=True)
class PubRecord:
    timestamp: int
    group: str
    topic: str
    msg_id: str
    store_host: str
    cost_ms: int
    offset_msg_id: str | None
    success: bool
    client_host: str | None


@dataclass(slots=True)
class SubBeforeRecord:
    timestamp: int
    group: str
    request_id: str
    msg_id: str
    retry_times: int


@dataclass(slots=True)
class SubAfterRecord:
    request_id: str
    msg_id: str
    cost_ms: int
    success: bool
    timestamp: int | None
    group: str | None


TraceRecord = PubRecord | SubBeforeRecord | SubAfterRecord


def _opt(fields: list[str], i: int) -> str | None:
    v = fields[i] if len(fields) > i else ""
    return v if v and v != "null" else None


def decode_trace_data(text: str) -> list[TraceRecord]:
    """The records of one trace message body; a record that does not parse is skipped (logged)."""
    out: list[TraceRecord] = []
    for raw in text.split(FIELD_SPLITOR):
        f = raw.split(CONTENT_SPLITOR)
        try:
            if f[0] == "Pub" and len(f) >= 13:
                success_at = 12 if len(f) == 13 else 13
                out.append(
                    PubRecord(
                        int(f[1]),
                        f[3],
                        f[4],
                        f[5],
                        f[8],
                        int(f[10]),
                        _opt(f, 12) if len(f) > 13 else None,
                        f[success_at].lower() == "true",
                        _opt(f, 14),
                    )
                )
            elif f[0] == "SubBefore" and len(f) >= 8:
                out.append(SubBeforeRecord(int(f[1]), f[3], f[4], f[5], int(f[6])))
            elif f[0] == "SubAfter" and len(f) >= 6:
                ts = _opt(f, 7)
                out.append(
                    SubAfterRecord(
                        f[1], f[2], int(f[3]), f[4].lower() == "true", int(ts) if ts else None, _opt(f, 8)
                    )
                )
        except ValueError:
            log.info("trace: skipped a record that does not parse: %r", raw[:200])
    return out


def find_trace(store: MessageStore, msg_id: str, trace_topic: str = TRACE_TOPIC) -> list[TraceRecord]:
    """Every trace record about ``msg_id`` (its unique key or offset message id) in the store."""
    now = int(time.time() * 1000) + 60_000
    out: list[TraceRecord] = []
    for data in store.query_by_key(trace_topic, msg_id, MAX_TRACE_MESSAGES, 0, now):
        m = decode_stored_message(data)
        body = m.body
        if m.sys_flag & SYSFLAG_COMPRESSED:
            try:
                body = zlib.decompress(body)
            except zlib.error:
                continue
        records = decode_trace_data(body.decode("utf-8", "replace"))
        out.extend(r for r in records if r.msg_id == msg_id or getattr(r, "offset_msg_id", None) == msg_id)
    return out

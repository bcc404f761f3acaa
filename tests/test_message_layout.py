"""Message layouts (core/remoting/message.py) against the reference §2.1-2.2, built independently.

The golden records are assembled field by field with ``struct`` from the §2.1 table
(MessageDecoder.encode), not with ferrymq's encoder, so both sides can't share a mistake.
"""

from __future__ import annotations

import socket
import struct
import zlib

import pytest

from ferrymq.core.remoting.message import (
    MAGIC_V1,
    MAGIC_V2,
    PROPERTY_KEYS,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
    body_crc,
    create_offset_msg_id,
    decode_batch_body,
    decode_offset_msg_id,
    decode_stored_message,
    decode_stored_messages,
    encode_batch_body,
    encode_stored_message,
    ip_bytes,
    java_string_hash,
    properties_to_string,
    stored_size,
    string_to_properties,
    tags_code,
)

BORN_IP = socket.inet_aton("192.168.1.20")
STORE_IP = socket.inet_aton("10.0.0.5")


def golden_record(
    *,
    topic: bytes,
    body: bytes,
    props: bytes,
    queue_id: int = 3,
    flag: int = 7,
    queue_offset: int = 42,
    phys: int = 123456789,
    sys_flag: int = 0,
    born_ts: int = 1_700_000_000_123,
    born_port: int = 54321,
    store_ts: int = 1_700_000_000_456,
    store_port: int = 10911,
    reconsume: int = 2,
    prepared: int = 0,
) -> bytes:
    """MessageDecoder.encode, field by field as the §2.1 table lists them (IPv4 hosts)."""
    v2 = len(topic) > 127
    fields = [
        struct.pack(">i", 0xDAA320AB - 2**32 if v2 else 0xDAA320A7 - 2**32),  # 2 MAGICCODE
        struct.pack(">i", zlib.crc32(body) & 0x7FFFFFFF),  # 3 BODYCRC
        struct.pack(">i", queue_id),  # 4 QUEUEID
        struct.pack(">i", flag),  # 5 FLAG
        struct.pack(">q", queue_offset),  # 6 QUEUEOFFSET
        struct.pack(">q", phys),  # 7 PHYSICALOFFSET
        struct.pack(">i", sys_flag),  # 8 SYSFLAG
        struct.pack(">q", born_ts),  # 9 BORNTIMESTAMP
        BORN_IP + struct.pack(">i", born_port),  # 10 BORNHOST
        struct.pack(">q", store_ts),  # 11 STORETIMESTAMP
        STORE_IP + struct.pack(">i", store_port),  # 12 STOREHOST
        struct.pack(">i", reconsume),  # 13 RECONSUMETIMES
        struct.pack(">q", prepared),  # 14 PREPARED_TRANSACTION_OFFSET
        struct.pack(">i", len(body)) + body,  # 15 BODYLEN + BODY
        (struct.pack(">h", len(topic)) if v2 else struct.pack(">b", len(topic))) + topic,  # 16
        struct.pack(">h", len(props)) + props,  # 17 PROPLEN + PROPERTIES
    ]
    rest = b"".join(fields)
    return struct.pack(">i", 4 + len(rest)) + rest  # 1 TOTALSIZE


def ours(*, topic: bytes, body: bytes, props: bytes, **kw: int) -> bytes:
    return encode_stored_message(
        topic=topic,
        body=body,
        properties=props,
        queue_id=kw.get("queue_id", 3),
        queue_offset=kw.get("queue_offset", 42),
        physical_offset=kw.get("phys", 123456789),
        flag=kw.get("flag", 7),
        sys_flag=kw.get("sys_flag", 0),
        born_timestamp=kw.get("born_ts", 1_700_000_000_123),
        born_host=BORN_IP,
        born_port=kw.get("born_port", 54321),
        store_timestamp=kw.get("store_ts", 1_700_000_000_456),
        store_host=STORE_IP,
        store_port=kw.get("store_port", 10911),
        reconsume_times=kw.get("reconsume", 2),
    )


PROPS = b"TAGS\x01TagA\x02KEYS\x01order-1 order-2\x02UNIQ_KEY\x01C0A8011400002A9F0000000000000001\x02"


def test_magic_constants_match_the_reference() -> None:
    assert MAGIC_V1 == -626843481 == 0xDAA320A7 - 2**32
    assert MAGIC_V2 == -626843477 == 0xDAA320AB - 2**32


def test_stored_record_golden_bytes() -> None:
    body = b"Hello RocketMQ \x00\xff" * 3
    golden = golden_record(topic=b"TopicTest", body=body, props=PROPS)
    assert ours(topic=b"TopicTest", body=body, props=PROPS) == golden
    # TOTALSIZE = 84 fixed (4+4+4+4+4+8+8+4+8+8+8+8+4+8) + 4+body + 1+topic + 2+props
    assert len(golden) == 88 + len(body) + 1 + 9 + 2 + len(PROPS)
    assert stored_size(len(body), 9, len(PROPS)) == len(golden)


@pytest.mark.parametrize("body", [b"", b"x", bytes(range(256)) * 20])
def test_stored_record_golden_bytes_various_bodies_and_no_properties(body: bytes) -> None:
    assert ours(topic=b"T", body=body, props=b"") == golden_record(topic=b"T", body=body, props=b"")


def test_stored_record_v2_magic_for_topic_longer_than_127() -> None:
    for n, magic, topic_field in ((127, MAGIC_V1, 1), (128, MAGIC_V2, 2), (300, MAGIC_V2, 2)):
        topic = b"t" * n
        rec = ours(topic=topic, body=b"b", props=b"")
        assert rec == golden_record(topic=topic, body=b"b", props=b"")
        assert struct.unpack_from(">i", rec, 4)[0] == magic
        assert len(rec) == 88 + 1 + topic_field + n + 2
        assert stored_size(1, n, 0) == len(rec)
        m = decode_stored_message(rec)
        assert m.topic == topic.decode()
        assert m.body == b"b"


def test_body_crc_is_zlib_crc32_masked_to_31_bits() -> None:
    for body in (b"", b"a", b"hello world", bytes(range(256)) * 100):
        assert body_crc(body) == zlib.crc32(body) & 0x7FFFFFFF
    # a body whose CRC-32 has the top bit set: the mask matters
    body = next(b for b in (str(i).encode() for i in range(1000)) if zlib.crc32(b) & 0x80000000)
    assert body_crc(body) == zlib.crc32(body) - 0x80000000
    rec = ours(topic=b"T", body=body, props=b"")
    assert struct.unpack_from(">i", rec, 8)[0] == zlib.crc32(body) & 0x7FFFFFFF


def test_decode_roundtrip_including_properties() -> None:
    body = "payload ✓".encode()
    rec = golden_record(topic=b"TopicTest", body=body, props=PROPS)
    m = decode_stored_message(rec)
    assert m.topic == "TopicTest"
    assert m.body == body
    assert m.queue_id == 3
    assert m.flag == 7
    assert m.queue_offset == 42
    assert m.commit_log_offset == 123456789
    assert m.sys_flag == 0
    assert m.born_timestamp == 1_700_000_000_123
    assert m.born_host == "192.168.1.20:54321"
    assert m.store_timestamp == 1_700_000_000_456
    assert m.store_host == "10.0.0.5:10911"
    assert m.reconsume_times == 2
    assert m.body_crc == zlib.crc32(body) & 0x7FFFFFFF
    assert m.store_size == len(rec)
    assert m.properties == {
        "TAGS": "TagA",
        "KEYS": "order-1 order-2",
        "UNIQ_KEY": "C0A8011400002A9F0000000000000001",
    }
    assert m.tags == "TagA"
    assert m.keys == "order-1 order-2"
    # offsetMsgId: store ip | store port | commit-log offset
    assert m.offset_msg_id == "0A000005" + "00002A9F" + f"{123456789:016X}"


def test_unique_key_property_is_uniq_key_as_java_names_it() -> None:
    # MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX = "UNIQ_KEY": Java clients put the
    # client message id under this name, and MessageClientExt.getMsgId reads it from there.
    assert PROPERTY_UNIQ_KEY == "UNIQ_KEY"
    m = decode_stored_message(golden_record(topic=b"T", body=b"x", props=PROPS))
    assert m.msg_id == "C0A8011400002A9F0000000000000001"
    m2 = decode_stored_message(golden_record(topic=b"T", body=b"x", props=b"TAGS\x01a\x02"))
    assert m2.msg_id == m2.offset_msg_id


def test_decode_stored_messages_back_to_back_and_truncated() -> None:
    recs = [golden_record(topic=b"T", body=f"m{i}".encode(), props=b"", queue_offset=i) for i in range(5)]
    buf = b"".join(recs)
    ms = decode_stored_messages(buf)
    assert [m.body for m in ms] == [f"m{i}".encode() for i in range(5)]
    assert [m.queue_offset for m in ms] == list(range(5))
    with pytest.raises(ValueError):
        decode_stored_messages(buf[:-3])


def test_decode_rejects_bad_magic() -> None:
    rec = bytearray(golden_record(topic=b"T", body=b"x", props=b""))
    rec[4:8] = struct.pack(">i", 0x12345678)
    with pytest.raises(ValueError):
        decode_stored_message(bytes(rec))


def test_properties_string_roundtrip() -> None:
    props = {"TAGS": "TagA", "KEYS": "a b c", "custom": "välue", "empty": ""}
    text = properties_to_string(props)
    assert text == "TAGS\x01TagA\x02KEYS\x01a b c\x02custom\x01välue\x02empty\x01\x02"
    assert string_to_properties(text) == props
    assert properties_to_string({}) == ""
    assert string_to_properties("") == {}
    # tolerant of a missing final separator, as Java's string2messageProperties
    assert string_to_properties("A\x011\x02B\x012") == {"A": "1", "B": "2"}


# ---- message ids -----------------------------------------------------------------------------


def test_offset_msg_id_create_and_decode() -> None:
    msg_id = create_offset_msg_id(ip_bytes("10.0.0.5"), 10911, 0x1E240)
    assert msg_id == "0A00000500002A9F000000000001E240"
    assert len(msg_id) == 32 and msg_id == msg_id.upper()
    assert decode_offset_msg_id(msg_id) == ("10.0.0.5", 10911, 0x1E240)
    assert decode_offset_msg_id(msg_id.lower()) == ("10.0.0.5", 10911, 0x1E240)
    big = create_offset_msg_id(ip_bytes("255.255.255.255"), 65535, 2**62)
    assert decode_offset_msg_id(big) == ("255.255.255.255", 65535, 2**62)


def test_offset_msg_id_ipv6_is_56_hex() -> None:
    ip6 = socket.inet_pton(socket.AF_INET6, "fe80::1")
    msg_id = create_offset_msg_id(ip6, 10911, 99)
    assert len(msg_id) == 56
    assert decode_offset_msg_id(msg_id) == ("fe80::1", 10911, 99)


@pytest.mark.parametrize("bad", ["", "ZZ", "0A000005", "0A00000500002A9F000000000001E24", "0A" * 17])
def test_offset_msg_id_garbage_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_offset_msg_id(bad)


# ---- client batch body ------------------------------------------------------------------------


def golden_batch_record(body: bytes, flag: int, props: bytes) -> bytes:
    """MessageDecoder.encodeMessage: TOTALSIZE MAGIC(0) BODYCRC(0) FLAG BODYLEN BODY PROPLEN PROPS."""
    total = 4 + 4 + 4 + 4 + 4 + len(body) + 2 + len(props)
    return struct.pack(">iiiii", total, 0, 0, flag, len(body)) + body + struct.pack(">h", len(props)) + props


def test_batch_body_encode_golden_and_decode() -> None:
    items = [(b"first", 0, "TAGS\x01a\x02"), (b"", 5, ""), ("dritte ✓".encode(), 1, "KEYS\x01k1 k2\x02")]
    golden = b"".join(golden_batch_record(b, f, p.encode()) for b, f, p in items)
    assert encode_batch_body(items) == golden
    decoded = decode_batch_body(golden)
    assert [(d.body, d.flag, d.properties) for d in decoded] == items
    assert decode_batch_body(b"") == []


def _rec(total: int, body_len: int, body: bytes, prop_len: int, props: bytes) -> bytes:
    return struct.pack(">iiiii", total, 0, 0, 0, body_len) + body + struct.pack(">h", prop_len) + props


GOOD = golden_batch_record(b"ok", 0, b"A\x01b\x02")


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00",
        b"\x00" * 21,
        GOOD[:-1],  # truncated record
        GOOD + GOOD[:10],  # a good record then a partial one
        _rec(10, 0, b"", 0, b""),  # TOTALSIZE below the minimum record
        _rec(-1, 0, b"", 0, b""),
        _rec(1000, 2, b"ok", 0, b""),  # TOTALSIZE past the end
        _rec(24, -5, b"ok", 0, b""),  # negative body length
        _rec(24, 200, b"ok", 0, b""),  # body length past the record
        _rec(26, 2, b"ok", -2, b"ab"),  # negative properties length
        _rec(26, 2, b"ok", 50, b"ab"),  # properties length past the record
        _rec(26, 2, b"ok", 2, b"\xff\xfe"),  # properties not UTF-8
        b"garbage garbage garbage garbage",
    ],
)
def test_batch_body_garbage_raises_value_error(garbage: bytes) -> None:
    with pytest.raises(ValueError):
        decode_batch_body(garbage)


# ---- Java's String.hashCode (consume-queue tag codes) -----------------------------------------


def _utf16_hash(text: str) -> int:
    units = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i : i + 2], "big")) % 2**32
    return h - 2**32 if h >= 2**31 else h


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TagA", 2598919),
        ("", 0),
        ("hello world", 1794106052),
        ("a", 97),
        ("TagB", 2598920),
        ("polygenelubricants", -(2**31)),  # a famous Java string hashing to Integer.MIN_VALUE
        ("中文", 646394),
    ],
)
def test_java_string_hash_known_values(text: str, expected: int) -> None:
    assert java_string_hash(text) == expected
    assert java_string_hash(text) == expected  # cached path
    assert _utf16_hash(text) == expected


def test_java_string_hash_non_bmp_uses_utf16_code_units() -> None:
    text = "tag-😀"  # U+1F600 is two UTF-16 units: D83D DE00
    expected = _utf16_hash(text)
    h = java_string_hash("tag-")
    for unit in (0xD83D, 0xDE00):
        h = (31 * h + unit) % 2**32
    h = h - 2**32 if h >= 2**31 else h
    assert expected == h
    assert java_string_hash(text) == expected
    assert java_string_hash("😀") == 0xD83D * 31 + 0xDE00 == 1772899


def test_tags_code_of_untagged_is_zero() -> None:
    assert tags_code(None) == 0
    assert tags_code("") == 0
    assert tags_code("TagA") == 2598919


def test_property_names() -> None:
    assert PROPERTY_TAGS == "TAGS"
    assert PROPERTY_KEYS == "KEYS"

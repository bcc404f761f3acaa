"""The remoting codec (core/remoting/command.py, frame.py): headers, frames, the decoder state machine.

Golden frames are the two examples of docs reference §1.1 (RemotingCommand.encode and
RocketMQSerializable.rocketMQProtocolEncode), compared byte for byte.
"""

from __future__ import annotations

import json
import random
import struct

import pytest

from ferrymq.core.remoting.codes import FLAG_ONEWAY, FLAG_RESPONSE, SERVER_VERSION, RequestCode, ResponseCode
from ferrymq.core.remoting.command import HeaderError, RemotingCommand, SerializeType, decode_header
from ferrymq.core.remoting.frame import (
    DEFAULT_MAX_FRAME,
    FrameDecoder,
    FrameError,
    encode_frame,
    encode_frame_bytes,
)

GOLDEN_JSON_HEADER = (
    b'{"code":105,"extFields":{"topic":"TopicTest"},"flag":0,"language":"PYTHON","opaque":1,'
    b'"serializeTypeCurrentRPC":"JSON","version":479}'
)
GOLDEN_JSON_FRAME = bytes.fromhex("0000008900000085") + GOLDEN_JSON_HEADER
GOLDEN_BINARY_FRAME = bytes.fromhex(
    "0000002d 01000029 0069 03 01df 00000001 00000000 00000000 00000014 "
    "0005 746f706963 00000009 546f70696354657374".replace(" ", "")
)


def _golden_command(serialize_type: SerializeType) -> RemotingCommand:
    return RemotingCommand(
        code=RequestCode.GET_ROUTEINFO_BY_TOPIC,
        opaque=1,
        flag=0,
        ext_fields={"topic": "TopicTest"},
        language="PYTHON",
        version=479,
        serialize_type=serialize_type,
    )


def _frame(ser_type: int, header: bytes, body: bytes = b"", length: int | None = None) -> bytes:
    """A raw frame built by hand, so that bad ones can be made."""
    if length is None:
        length = 4 + len(header) + len(body)
    return struct.pack(">ii", length, (ser_type << 24) | len(header)) + header + body


def _roundtrip(cmd: RemotingCommand) -> RemotingCommand:
    decoder = FrameDecoder()
    out = decoder.feed(encode_frame_bytes(cmd))
    assert len(out) == 1
    assert decoder.buffered == 0
    return out[0]


# ---- golden frames ---------------------------------------------------------------------------


def test_golden_json_frame_byte_for_byte() -> None:
    assert len(GOLDEN_JSON_FRAME) == 141
    frame = encode_frame_bytes(_golden_command(SerializeType.JSON))
    assert frame == GOLDEN_JSON_FRAME
    # the header is fastjson-compatible: sorted keys, extFields values are strings
    assert list(json.loads(GOLDEN_JSON_HEADER)) == sorted(json.loads(GOLDEN_JSON_HEADER))


def test_golden_binary_frame_byte_for_byte() -> None:
    assert len(GOLDEN_BINARY_FRAME) == 49
    frame = encode_frame_bytes(_golden_command(SerializeType.ROCKETMQ))
    assert frame == GOLDEN_BINARY_FRAME


@pytest.mark.parametrize("frame", [GOLDEN_JSON_FRAME, GOLDEN_BINARY_FRAME], ids=["json", "binary"])
def test_golden_frames_decode(frame: bytes) -> None:
    (cmd,) = FrameDecoder().feed(frame)
    assert cmd.code == RequestCode.GET_ROUTEINFO_BY_TOPIC
    assert cmd.opaque == 1
    assert cmd.flag == 0
    assert cmd.language == "PYTHON"
    assert cmd.version == 479
    assert cmd.ext_fields == {"topic": "TopicTest"}
    assert cmd.remark is None
    assert cmd.body == b""
    assert not cmd.is_response and not cmd.is_oneway


# ---- header round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("ser", [SerializeType.JSON, SerializeType.ROCKETMQ])
@pytest.mark.parametrize(
    "remark",
    [None, "plain remark", "unicode: héllo wörld, 日本語, emoji 🚀 (non-BMP)", 'quotes " and \\ and \n'],
)
def test_header_roundtrip(ser: SerializeType, remark: str | None) -> None:
    ext = {
        "topic": "TopicTest",
        "queueId": "3",
        "empty": "",
        "unicode-ключ": "значение ✓ 🚀",
        "props": "TAGS\x01TagA\x02KEYS\x01k1 k2\x02",
    }
    body = bytes(range(256)) * 3
    cmd = RemotingCommand(
        code=RequestCode.SEND_MESSAGE_V2,
        opaque=0x7FFFFFFF,
        flag=FLAG_ONEWAY,
        remark=remark,
        ext_fields=ext,
        body=body,
        language="GO",
        version=317,
        serialize_type=ser,
    )
    got = _roundtrip(cmd)
    assert got.code == RequestCode.SEND_MESSAGE_V2
    assert got.opaque == 0x7FFFFFFF
    assert got.flag == FLAG_ONEWAY and got.is_oneway and not got.is_response
    assert got.remark == remark
    if ser == SerializeType.ROCKETMQ:
        # a zero-length value is null in the binary form (RocketMQSerializable); the key survives
        assert got.ext_fields.pop("empty", "") in ("", None)
        ext = {k: v for k, v in ext.items() if k != "empty"}
    assert got.ext_fields == ext
    assert got.body == body
    assert got.language == "GO"
    assert got.version == 317
    assert got.serialize_type == ser


@pytest.mark.parametrize("ser", [SerializeType.JSON, SerializeType.ROCKETMQ])
def test_response_roundtrip_echoes_opaque(ser: SerializeType) -> None:
    req = RemotingCommand(
        code=RequestCode.PULL_MESSAGE, opaque=4242, ext_fields={"topic": "T"}, serialize_type=ser
    )
    resp = req.response(ResponseCode.PULL_NOT_FOUND, "no new message", {"nextBeginOffset": "7"}, b"x")
    got = _roundtrip(resp)
    assert got.is_response and got.flag == FLAG_RESPONSE
    assert got.opaque == 4242
    assert got.code == ResponseCode.PULL_NOT_FOUND
    assert got.remark == "no new message"
    assert got.ext_fields == {"nextBeginOffset": "7"}
    assert got.body == b"x"
    # responses are encoded in JSON whatever the request used, with the server's version
    assert got.serialize_type == SerializeType.JSON
    assert got.version == SERVER_VERSION


def test_negative_code_and_opaque_roundtrip_binary() -> None:
    cmd = RemotingCommand(code=-1, opaque=-5, flag=3, serialize_type=SerializeType.ROCKETMQ)
    got = _roundtrip(cmd)
    assert (got.code, got.opaque, got.flag) == (-1, -5, 3)


def test_body_is_not_part_of_header_length() -> None:
    cmd = RemotingCommand(code=RequestCode.SEND_MESSAGE, ext_fields={"a": "b"}, body=b"B" * 1000)
    parts = encode_frame(cmd)
    frame = b"".join(parts)
    length, ser_hdr = struct.unpack_from(">ii", frame)
    header_len = ser_hdr & 0xFFFFFF
    assert ser_hdr >> 24 == 0
    assert length == len(frame) - 4
    assert length == 4 + header_len + 1000
    assert frame[8 + header_len :] == b"B" * 1000
    json.loads(frame[8 : 8 + header_len])  # the header alone is valid JSON


def test_json_header_tolerates_non_string_extfield_values_and_integer_language() -> None:
    header = json.dumps(
        {
            "code": 11,
            "language": 9,  # some clients send the enum ordinal
            "version": 317,
            "opaque": 12,
            "flag": 0,
            "extFields": {
                "queueId": 3,
                "commitOffset": -1,
                "unitMode": False,
                "batch": True,
                "ratio": 1.5,
                "name": "x",
            },
        }
    ).encode()
    (cmd,) = FrameDecoder().feed(_frame(0, header))
    assert cmd.language == "GO"
    assert cmd.ext_fields["queueId"] == "3"
    assert cmd.ext_fields["commitOffset"] == "-1"
    assert cmd.ext_fields["unitMode"] == "false"
    assert cmd.ext_fields["batch"] == "true"
    assert cmd.ext_fields["ratio"] == "1.5"
    assert cmd.ext_fields["name"] == "x"
    assert all(isinstance(v, str) for v in cmd.ext_fields.values())


def test_json_header_null_extfield_value_is_absent_not_the_string_none() -> None:
    # fastjson maps a JSON null to a null value: the field reads as missing, never as "None"
    header = b'{"code":11,"opaque":1,"flag":0,"extFields":{"topic":null,"queueId":"1"}}'
    (cmd,) = FrameDecoder().feed(_frame(0, header))
    assert cmd.ext_fields.get("topic") is None
    assert cmd.ext_fields["queueId"] == "1"


def test_json_header_minimal_and_missing_extfields() -> None:
    (cmd,) = FrameDecoder().feed(_frame(0, b'{"code":34}'))
    assert cmd.code == RequestCode.HEART_BEAT
    assert cmd.ext_fields == {}
    assert cmd.opaque == 0 and cmd.flag == 0


# ---- the decoder state machine ---------------------------------------------------------------


def _sample_commands() -> list[RemotingCommand]:
    return [
        RemotingCommand(code=RequestCode.GET_ROUTEINFO_BY_TOPIC, opaque=1, ext_fields={"topic": "TopicTest"}),
        RemotingCommand(
            code=RequestCode.SEND_MESSAGE_V2,
            opaque=2,
            ext_fields={"b": "T", "e": "0"},
            body=b"hello" * 50,
            serialize_type=SerializeType.ROCKETMQ,
        ),
        RemotingCommand(code=RequestCode.HEART_BEAT, opaque=3, remark="日本語", body=b"{}"),
        RemotingCommand(
            code=ResponseCode.SLAVE_NOT_AVAILABLE, opaque=4, flag=FLAG_RESPONSE, body=bytes(range(256))
        ),
        RemotingCommand(
            code=RequestCode.UPDATE_CONSUMER_OFFSET,
            opaque=5,
            flag=FLAG_ONEWAY,
            serialize_type=SerializeType.ROCKETMQ,
        ),
    ]


def _same(a: RemotingCommand, b: RemotingCommand) -> None:
    assert (a.code, a.opaque, a.flag, a.remark, a.ext_fields, bytes(a.body)) == (
        b.code,
        b.opaque,
        b.flag,
        b.remark,
        b.ext_fields,
        bytes(b.body),
    )


def test_decoder_fed_byte_by_byte() -> None:
    cmds = _sample_commands()
    stream = b"".join(encode_frame_bytes(c) for c in cmds)
    decoder = FrameDecoder()
    got: list[RemotingCommand] = []
    for i in range(len(stream)):
        out = decoder.feed(stream[i : i + 1])
        got.extend(out)
        # nothing is returned before the frame's last byte arrived
        assert decoder.buffered <= len(stream)
    assert len(got) == len(cmds)
    for a, b in zip(got, cmds, strict=True):
        _same(a, b)
    assert decoder.buffered == 0


def test_decoder_returns_frame_only_on_its_last_byte() -> None:
    frame = encode_frame_bytes(RemotingCommand(code=RequestCode.SEND_MESSAGE, body=b"xyz"))
    decoder = FrameDecoder()
    for i in range(len(frame) - 1):
        assert decoder.feed(frame[i : i + 1]) == []
    (cmd,) = decoder.feed(frame[-1:])
    assert cmd.body == b"xyz"


@pytest.mark.parametrize("seed", range(20))
def test_decoder_random_chunks(seed: int) -> None:
    rng = random.Random(seed)
    cmds = _sample_commands() * 4
    rng.shuffle(cmds)
    stream = b"".join(encode_frame_bytes(c) for c in cmds)
    decoder = FrameDecoder()
    got: list[RemotingCommand] = []
    pos = 0
    while pos < len(stream):
        n = rng.randint(1, 300)
        chunk = stream[pos : pos + n]
        got.extend(decoder.feed(memoryview(bytearray(chunk))))
        pos += n
    assert len(got) == len(cmds)
    for a, b in zip(got, cmds, strict=True):
        _same(a, b)
    assert decoder.buffered == 0


def test_several_frames_in_one_chunk_plus_a_partial_one() -> None:
    cmds = _sample_commands()
    stream = b"".join(encode_frame_bytes(c) for c in cmds)
    extra = encode_frame_bytes(RemotingCommand(code=99, body=b"tail"))
    decoder = FrameDecoder()
    got = decoder.feed(stream + extra[:10])
    assert [c.opaque for c in got] == [1, 2, 3, 4, 5]
    assert decoder.buffered == 10
    (last,) = decoder.feed(extra[10:])
    assert last.code == 99 and last.body == b"tail"
    assert decoder.buffered == 0


def test_decoded_body_is_independent_of_decoder_buffer() -> None:
    decoder = FrameDecoder()
    (a,) = decoder.feed(encode_frame_bytes(RemotingCommand(code=1, body=b"first")))
    decoder.feed(encode_frame_bytes(RemotingCommand(code=2, body=b"second")))
    assert bytes(a.body) == b"first"


# ---- garbage ---------------------------------------------------------------------------------


def test_frame_longer_than_max_raises() -> None:
    decoder = FrameDecoder(max_frame=1024)
    with pytest.raises(FrameError):
        # only the length prefix has arrived: the decoder must not wait for 1 MiB first
        decoder.feed(struct.pack(">i", 1024 * 1024))


def test_max_frame_counts_the_length_field_as_java_does() -> None:
    # Netty's LengthFieldBasedFrameDecoder(max, 0, 4, 0, 4): length + 4 must not exceed max
    cmd = RemotingCommand(code=RequestCode.SEND_MESSAGE, body=b"x" * 100)
    wire = encode_frame_bytes(cmd)
    assert len(FrameDecoder(max_frame=len(wire)).feed(wire)) == 1
    with pytest.raises(FrameError):
        FrameDecoder(max_frame=len(wire) - 1).feed(wire)


def test_frames_before_garbage_travel_with_the_error() -> None:
    good = encode_frame_bytes(RemotingCommand(code=RequestCode.GET_ROUTEINFO_BY_TOPIC, opaque=5))
    with pytest.raises(FrameError) as err:
        FrameDecoder().feed(good + good + struct.pack(">ii", 20, 16) + b"{not json}......")
    assert [c.opaque for c in err.value.commands] == [5, 5]


def test_frame_length_2_31_minus_1_raises_at_once() -> None:
    with pytest.raises(FrameError):
        FrameDecoder().feed(struct.pack(">i", 2**31 - 1) + b"\x00\x00\x00\x10")


def test_default_max_frame_is_16_mib() -> None:
    assert DEFAULT_MAX_FRAME == 16 * 1024 * 1024
    big = RemotingCommand(code=RequestCode.SEND_MESSAGE, body=b"\0" * (DEFAULT_MAX_FRAME - 1000))
    (cmd,) = FrameDecoder().feed(encode_frame_bytes(big))
    assert len(cmd.body) == DEFAULT_MAX_FRAME - 1000
    with pytest.raises(FrameError):
        FrameDecoder().feed(struct.pack(">i", DEFAULT_MAX_FRAME + 1))


@pytest.mark.parametrize("length", [-1, -(2**31), 0, 1, 2, 3])
def test_frame_length_below_4_raises(length: int) -> None:
    with pytest.raises(FrameError):
        FrameDecoder().feed(struct.pack(">i", length) + b"\x00" * 8)


def test_header_length_greater_than_frame_raises() -> None:
    header = b'{"code":1}'
    frame = struct.pack(">ii", 4 + len(header), len(header) + 50) + header
    with pytest.raises(FrameError):
        FrameDecoder().feed(frame)


@pytest.mark.parametrize(
    "header",
    [
        b"not json at all",
        b"{",
        b"",
        b"[1,2,3]",
        b'"a string"',
        b"null",
        b'{"opaque":1}',  # no code
        b'{"code":"abc"}',
        b'{"code":1,"extFields":[1,2]}',
        b'{"code":1,"opaque":"x"}',
        b"\xff\xfe\xfd",
        # integers Java's int fields cannot hold (orjson reads those past 64 bits as floats)
        b'{"code":9999,"opaque":1180591620717411303424,"flag":0,"version":1}',
        b'{"code":9999,"opaque":7,"flag":0,"version":1180591620717411303424}',
        b'{"code":1180591620717411303424,"opaque":7}',
        b'{"code":9999,"opaque":2147483648}',
        b'{"code":9999,"opaque":7,"flag":1e400}',
    ],
)
def test_garbage_json_header_raises(header: bytes) -> None:
    with pytest.raises(FrameError):
        FrameDecoder().feed(_frame(0, header, b"body"))
    with pytest.raises(HeaderError):
        decode_header(0, header)


def test_unknown_serialize_type_raises() -> None:
    with pytest.raises(FrameError):
        FrameDecoder().feed(_frame(7, b'{"code":1}'))


def _binary_header(remark_len: int, remark: bytes, ext_len: int, ext: bytes) -> bytes:
    return struct.pack(">hbhiii", 105, 3, 479, 1, 0, remark_len) + remark + struct.pack(">i", ext_len) + ext


_GOOD_EXT = struct.pack(">h", 5) + b"topic" + struct.pack(">i", 9) + b"TopicTest"


@pytest.mark.parametrize(
    "header",
    [
        _binary_header(1000, b"short", 0, b""),  # remark longer than the header
        _binary_header(-5, b"", 0, b""),  # negative remark length
        _binary_header(0, b"", 1000, _GOOD_EXT),  # extFields longer than the header
        _binary_header(0, b"", -1, _GOOD_EXT),  # negative extFields length
        # a key length running past the extFields
        _binary_header(0, b"", 20, struct.pack(">h", 500) + b"topic" + struct.pack(">i", 9) + b"TopicTest"),
        # a value length running past the extFields
        _binary_header(0, b"", 20, struct.pack(">h", 5) + b"topic" + struct.pack(">i", 900) + b"TopicTest"),
        # negative key / value lengths
        _binary_header(0, b"", 20, struct.pack(">h", -3) + b"topic" + struct.pack(">i", 9) + b"TopicTest"),
        _binary_header(0, b"", 20, struct.pack(">h", 5) + b"topic" + struct.pack(">i", -9) + b"TopicTest"),
        _binary_header(2, b"\xff\xfe", 0, b""),  # remark not UTF-8
        b"\x00\x69\x03",  # shorter than the fixed part
        b"",
    ],
)
def test_binary_header_out_of_range_lengths_raise(header: bytes) -> None:
    with pytest.raises(FrameError):
        FrameDecoder().feed(_frame(1, header, b"body"))


def test_binary_header_valid_variant_of_the_above_decodes() -> None:
    (cmd,) = FrameDecoder().feed(_frame(1, _binary_header(2, b"hi", 20, _GOOD_EXT), b"body"))
    assert cmd.remark == "hi"
    assert cmd.ext_fields == {"topic": "TopicTest"}
    assert cmd.body == b"body"


def test_decoder_after_error_does_not_swallow_good_frames_before_it() -> None:
    good = encode_frame_bytes(RemotingCommand(code=1, opaque=1))
    decoder = FrameDecoder()
    assert len(decoder.feed(good)) == 1
    with pytest.raises(FrameError):
        decoder.feed(_frame(0, b"garbage"))

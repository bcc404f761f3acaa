"""Bad input against a real ``ferrymq serve``: garbage closes only its own connection, bad requests
get Java's error codes and remarks, and the server keeps serving everyone else, data intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import FLAG_ONEWAY, RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand, SerializeType
from ferrymq.core.remoting.frame import encode_frame_bytes
from ferrymq.core.remoting.message import decode_stored_messages, encode_batch_body
from ferrymq.core.remoting.transport import RemotingConnection, connect
from tests.remoting_helpers import pull, pull_all, send_v2

TOPIC = "BadInputTopic"
QUEUES = 4


def _addr(server: FerryServer) -> tuple[str, int]:
    host, port = server.broker_addr.rsplit(":", 1)
    return host, int(port)


def run(server: FerryServer, fn: Callable[[RemotingConnection], Awaitable[None]]) -> None:
    """Run ``fn`` with a fresh client connection to the broker."""

    async def main() -> None:
        conn = await connect(*_addr(server))
        with contextlib.closing(conn):
            await fn(conn)

    asyncio.run(main())


def store_baseline(server: FerryServer) -> list[bytes]:
    tag = time.monotonic_ns()
    bodies = [f"baseline-{tag}-{i}".encode() * (i + 1) for i in range(8)]

    async def go(conn: RemotingConnection) -> None:
        for i, body in enumerate(bodies):
            resp = await conn.invoke(send_v2(TOPIC, body, i % QUEUES, {"KEYS": f"b{i}"}, QUEUES))
            assert resp.code == ResponseCode.SUCCESS, resp.remark

    run(server, go)
    return bodies


def assert_still_serving(server: FerryServer, baseline: list[bytes]) -> None:
    """A new connection sends and pulls; everything stored before reads back intact."""

    async def go(conn: RemotingConnection) -> None:
        marker = f"alive-{time.monotonic_ns()}".encode()
        resp = await conn.invoke(send_v2(TOPIC, marker, 0, None, QUEUES))
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        offset = int(resp.ext_fields["queueOffset"])
        got = await conn.invoke(pull(TOPIC, 0, offset))
        assert got.code == ResponseCode.SUCCESS, got.remark
        assert decode_stored_messages(got.body)[0].body == marker
        messages = await pull_all(conn, TOPIC, range(QUEUES))
        bodies = [m.body for m in messages]
        for body in baseline:
            assert bodies.count(body) == 1
        for m in messages:
            assert m.topic == TOPIC

    run(server, go)


def raw_socket(server: FerryServer) -> socket.socket:
    sock = socket.create_connection(_addr(server), timeout=5)
    sock.settimeout(5)
    return sock


def assert_closed_by_server(sock: socket.socket) -> None:
    """The server closes (or resets) the connection without answering."""
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return
    except TimeoutError:
        raise AssertionError("the server kept a garbage connection open") from None
    assert data == b"", f"unexpected reply {data!r}"


def assert_logged_peer(server: FerryServer, sock_name: tuple[str, int]) -> None:
    """The server log names the peer whose connection it closed (bounded wait for the write)."""
    peer = f"{sock_name[0]}:{sock_name[1]}"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = server.log_path.read_text(errors="replace")
        if any(peer in line and "closing connection" in line for line in text.splitlines()):
            return
        time.sleep(0.02)
    raise AssertionError(f"no log line names {peer}:\n{server.log_tail()}")


def frame(ser_type: int, header: bytes, body: bytes = b"", length: int | None = None) -> bytes:
    if length is None:
        length = 4 + len(header) + len(body)
    return struct.pack(">ii", length, (ser_type << 24) | len(header)) + header + body


# ---- garbage on the wire -----------------------------------------------------------------------


def test_truncated_frame_then_close(ferrymq_server: FerryServer) -> None:
    baseline = store_baseline(ferrymq_server)
    whole = encode_frame_bytes(send_v2(TOPIC, b"never-complete", 1, None, QUEUES))
    for cut in (2, 6, len(whole) // 2, len(whole) - 1):
        sock = raw_socket(ferrymq_server)
        sock.sendall(whole[:cut])
        sock.close()
    assert_still_serving(ferrymq_server, baseline)

    async def check(conn: RemotingConnection) -> None:
        messages = await pull_all(conn, TOPIC, range(QUEUES))
        assert all(m.body != b"never-complete" for m in messages)

    run(ferrymq_server, check)


def test_huge_frame_length_closes_the_connection(shared_server: FerryServer) -> None:
    baseline = store_baseline(shared_server)
    sock = raw_socket(shared_server)
    with sock:
        name = sock.getsockname()
        sock.sendall(struct.pack(">i", 2**31 - 1) + b"\x00\x00\x00\x10" + b"x" * 100)
        assert_closed_by_server(sock)
    assert_logged_peer(shared_server, name)
    for length in (-1, 0, 3):
        with raw_socket(shared_server) as sock:
            sock.sendall(struct.pack(">ii", length, 0))
            assert_closed_by_server(sock)
    assert_still_serving(shared_server, baseline)


def test_garbage_headers_close_the_connection(shared_server: FerryServer) -> None:
    baseline = store_baseline(shared_server)
    garbage = [
        frame(0, b"this is not json", b"body"),
        frame(0, b'{"code":'),
        frame(0, b"[1,2,3]"),
        frame(1, b"\x00\x0a"),  # binary header shorter than its fixed part
        frame(1, struct.pack(">hbhiii", 10, 0, 479, 1, 0, 10_000)),  # remark length out of range
        frame(9, b'{"code":10}'),  # unknown serialize type
        struct.pack(">ii", 10, 500) + b"x" * 6,  # header length beyond the frame
    ]
    names = []
    for data in garbage:
        with raw_socket(shared_server) as sock:
            names.append(sock.getsockname())
            sock.sendall(data)
            assert_closed_by_server(sock)
    for name in names:
        assert_logged_peer(shared_server, name)
    assert_still_serving(shared_server, baseline)


def test_good_request_on_a_raw_socket_is_answered(shared_server: FerryServer) -> None:
    # the control for the garbage tests: the same raw socket path, a well-formed (binary) header
    cmd = RemotingCommand(code=9999, opaque=77, serialize_type=SerializeType.ROCKETMQ)
    with raw_socket(shared_server) as sock:
        sock.sendall(encode_frame_bytes(cmd))
        (length,) = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))
        data = sock.recv(length, socket.MSG_WAITALL)
    (ser_hdr,) = struct.unpack_from(">i", data)
    header = data[4 : 4 + (ser_hdr & 0xFFFFFF)]
    assert b'"opaque":77' in header
    assert b'"code":3' in header


def test_good_frame_before_garbage_is_answered_then_closed(shared_server: FerryServer) -> None:
    good = encode_frame_bytes(RemotingCommand(code=9999, opaque=78, serialize_type=SerializeType.ROCKETMQ))
    with raw_socket(shared_server) as sock:
        sock.sendall(good + frame(0, b"{garbage"))  # one write: the good frame, then garbage
        (length,) = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))
        data = sock.recv(length, socket.MSG_WAITALL)
        assert b'"opaque":78' in data
        assert_closed_by_server(sock)


# ---- bad requests get errors, not closed connections ---------------------------------------------


def test_unknown_request_code(shared_server: FerryServer) -> None:
    async def go(conn: RemotingConnection) -> None:
        resp = await conn.invoke(RemotingCommand(code=9999, ext_fields={"x": "y"}))
        assert resp.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED
        assert resp.remark is not None and "9999" in resp.remark and "not supported" in resp.remark
        # oneway: no answer at all; the next request's answer is the next frame on the wire
        conn.invoke_oneway(RemotingCommand(code=9998))
        resp = await conn.invoke(RemotingCommand(code=9997))
        assert resp.remark is not None and "9997" in resp.remark
        # the connection stays usable
        resp = await conn.invoke(send_v2(TOPIC, b"after-unknown", 0, None, QUEUES))
        assert resp.code == ResponseCode.SUCCESS

    run(shared_server, go)


def test_negative_queue_id_send_accepted_pull_refused(shared_server: FerryServer) -> None:
    baseline = store_baseline(shared_server)

    async def go(conn: RemotingConnection) -> None:
        resp = await conn.invoke(send_v2(TOPIC, b"any-queue", -1, None, QUEUES))
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        qid = int(resp.ext_fields["queueId"])
        assert 0 <= qid < QUEUES  # the broker picked a queue, as Java does
        got = await conn.invoke(pull(TOPIC, qid, int(resp.ext_fields["queueOffset"])))
        assert decode_stored_messages(got.body)[0].body == b"any-queue"

        resp = await conn.invoke(pull(TOPIC, -1, 0))
        assert resp.code == ResponseCode.SYSTEM_ERROR
        assert resp.remark is not None and "queueId[-1]" in resp.remark
        resp = await conn.invoke(pull(TOPIC, QUEUES, 0))
        assert resp.code == ResponseCode.SYSTEM_ERROR
        assert resp.remark is not None and f"queueId[{QUEUES}]" in resp.remark
        resp = await conn.invoke(send_v2(TOPIC, b"x", 1000, None, QUEUES))
        assert resp.code == ResponseCode.SYSTEM_ERROR
        assert resp.remark is not None and "queueId[1000]" in resp.remark

    run(shared_server, go)
    assert_still_serving(shared_server, [*baseline, b"any-queue"])


def test_illegal_topic_name(shared_server: FerryServer) -> None:
    baseline = store_baseline(shared_server)

    async def go(conn: RemotingConnection) -> None:
        for bad in ("bad topic!", "a/b", "x" * 128, ""):
            resp = await conn.invoke(send_v2(bad, b"x", 0, None, QUEUES))
            assert resp.code == ResponseCode.SYSTEM_ERROR, bad
            assert resp.remark, bad
            if bad and len(bad) <= 127:
                assert bad in resp.remark
        resp = await conn.invoke(pull("bad topic!", 0, 0))
        assert resp.code != ResponseCode.SUCCESS

    run(shared_server, go)
    assert_still_serving(shared_server, baseline)


def test_missing_or_bad_required_header_field(shared_server: FerryServer) -> None:
    baseline = store_baseline(shared_server)

    async def go(conn: RemotingConnection) -> None:
        for short, name in (("b", "topic"), ("a", "producerGroup"), ("e", "queueId"), ("g", "bornTimestamp")):
            cmd = send_v2(TOPIC, b"x", 0, None, QUEUES)
            del cmd.ext_fields[short]
            resp = await conn.invoke(cmd)
            assert resp.code == ResponseCode.SYSTEM_ERROR, name
            assert resp.remark is not None and name in resp.remark, resp.remark
        cmd = send_v2(TOPIC, b"x", 0, None, QUEUES)
        cmd.ext_fields["e"] = "abc"
        resp = await conn.invoke(cmd)
        assert resp.code != ResponseCode.SUCCESS
        assert resp.remark is not None and "queueId" in resp.remark and "abc" in resp.remark
        for name in ("queueOffset", "consumerGroup", "maxMsgNums"):
            cmd = pull(TOPIC, 0, 0)
            del cmd.ext_fields[name]
            resp = await conn.invoke(cmd)
            assert resp.code != ResponseCode.SUCCESS, name
            assert resp.remark is not None and name in resp.remark, resp.remark

    run(shared_server, go)
    assert_still_serving(shared_server, baseline)


def test_json_null_field_is_reported_missing(shared_server: FerryServer) -> None:
    header = (
        b'{"code":11,"opaque":5,"flag":0,"language":"JAVA","version":479,"extFields":'
        b'{"consumerGroup":"g","topic":null,"queueId":"0","queueOffset":"0","maxMsgNums":"1",'
        b'"sysFlag":"4","commitOffset":"0","suspendTimeoutMillis":"0","subscription":"*"}}'
    )
    with raw_socket(shared_server) as sock:
        sock.sendall(frame(0, header))
        (length,) = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))
        data = sock.recv(length, socket.MSG_WAITALL)
    assert b"<topic> is null" in data
    assert b'"code":1,' in data


def test_body_over_max_message_size(server_factory: type[FerryServer], tmp_path: Path) -> None:
    server = server_factory(tmp_path / "small", "maxMessageSize=1024\n").start()
    baseline = store_baseline(server)

    async def go(conn: RemotingConnection) -> None:
        resp = await conn.invoke(send_v2(TOPIC, b"x" * 1025, 0, None, QUEUES))
        assert resp.code == ResponseCode.MESSAGE_ILLEGAL
        assert resp.remark is not None and "1024" in resp.remark
        resp = await conn.invoke(send_v2(TOPIC, b"y" * 1024, 0, None, QUEUES))
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        batch = send_v2(TOPIC, encode_batch_body([(b"z" * 600, 0, ""), (b"z" * 600, 0, "")]), 0)
        batch.code = RequestCode.SEND_BATCH_MESSAGE
        resp = await conn.invoke(batch)
        assert resp.code == ResponseCode.MESSAGE_ILLEGAL

    run(server, go)
    assert_still_serving(server, [*baseline, b"y" * 1024])

    async def none_too_big(conn: RemotingConnection) -> None:
        messages = await pull_all(conn, TOPIC, range(QUEUES))
        assert all(len(m.body) <= 1024 for m in messages)

    run(server, none_too_big)


def test_pull_on_unknown_topic(shared_server: FerryServer) -> None:
    async def go(conn: RemotingConnection) -> None:
        resp = await conn.invoke(pull("NoSuchTopic", 0, 0))
        assert resp.code == ResponseCode.TOPIC_NOT_EXIST
        assert resp.remark is not None and "NoSuchTopic" in resp.remark

    run(shared_server, go)


def test_malformed_batch_body(shared_server: FerryServer) -> None:
    baseline = store_baseline(shared_server)
    good = encode_batch_body([(b"batch-1", 0, "KEYS\x01k\x02"), (b"batch-2", 0, "")])
    bad_bodies = [
        b"garbage",
        good[:-3],
        struct.pack(">iiiii", 10, 0, 0, 0, 0) + b"\x00\x00",
        struct.pack(">iiiii", 30, 0, 0, 0, 500) + b"x" * 10,
        b"",
    ]

    async def go(conn: RemotingConnection) -> None:
        for body in bad_bodies:
            cmd = send_v2(TOPIC, body, 2, None, QUEUES)
            cmd.code = RequestCode.SEND_BATCH_MESSAGE
            resp = await conn.invoke(cmd)
            assert resp.code == ResponseCode.MESSAGE_ILLEGAL, body
            assert resp.remark
        # nothing of a refused batch was stored: a good batch gets the next offsets in queue 2
        before = await conn.invoke(pull(TOPIC, 2, 0, 1))
        count = int(before.ext_fields["maxOffset"])
        cmd = send_v2(TOPIC, good, 2, None, QUEUES)
        cmd.code = RequestCode.SEND_BATCH_MESSAGE
        resp = await conn.invoke(cmd)
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        assert int(resp.ext_fields["queueOffset"]) == count
        assert len(resp.ext_fields["msgId"].split(",")) == 2

    run(shared_server, go)
    assert_still_serving(shared_server, [*baseline, b"batch-1", b"batch-2"])


def test_oneway_bad_request_gets_no_reply(shared_server: FerryServer) -> None:
    async def go(conn: RemotingConnection) -> None:
        bad = send_v2("bad topic!", b"x", 0, None, QUEUES)
        bad.flag |= FLAG_ONEWAY
        conn.send(bad)
        resp = await conn.invoke(send_v2(TOPIC, b"after-oneway", 0, None, QUEUES))
        assert resp.code == ResponseCode.SUCCESS

    run(shared_server, go)


def test_message_larger_than_a_commit_log_segment(server_factory: type[FerryServer], tmp_path: Path) -> None:
    # maxMessageSize (4 MiB by default) allows it, but a record never spans two segments
    server = server_factory(tmp_path / "seg", "mappedFileSizeCommitLog=65536\n").start()
    baseline = store_baseline(server)

    async def go(conn: RemotingConnection) -> None:
        resp = await conn.invoke(send_v2(TOPIC, b"x" * 70_000, 1, None, QUEUES))
        assert resp.code == ResponseCode.MESSAGE_ILLEGAL, (resp.code, resp.remark)
        assert resp.remark
        # a batch whose second message cannot be stored is refused whole: nothing of it is kept
        before = int((await conn.invoke(pull(TOPIC, 1, 0, 64))).ext_fields["maxOffset"])
        batch = send_v2(TOPIC, encode_batch_body([(b"first", 0, ""), (b"y" * 70_000, 0, "")]), 1)
        batch.code = RequestCode.SEND_BATCH_MESSAGE
        resp = await conn.invoke(batch)
        assert resp.code == ResponseCode.MESSAGE_ILLEGAL, (resp.code, resp.remark)
        big_props = "K\x01" + "v" * 32_750 + "\x02"  # fits the batch format, not once the broker adds its own
        batch = send_v2(TOPIC, encode_batch_body([(b"first", 0, ""), (b"z", 0, big_props)]), 1)
        batch.code = RequestCode.SEND_BATCH_MESSAGE
        resp = await conn.invoke(batch)
        assert resp.code == ResponseCode.MESSAGE_ILLEGAL, (resp.code, resp.remark)
        after = await conn.invoke(pull(TOPIC, 1, 0, 64))
        assert int(after.ext_fields["maxOffset"]) == before
        assert b"first" not in [m.body for m in decode_stored_messages(after.body)]

    run(server, go)
    assert_still_serving(server, baseline)


def test_non_numeric_optional_fields_are_named(shared_server: FerryServer) -> None:
    async def go(conn: RemotingConnection) -> None:
        for short, name in (("j", "reconsumeTimes"), ("d", "defaultTopicQueueNums")):
            cmd = send_v2(f"NewTopic{short}", b"x", 0, None, QUEUES)
            cmd.ext_fields[short] = "lots"
            resp = await conn.invoke(cmd)
            assert resp.code != ResponseCode.SUCCESS, name
            assert resp.remark is not None and name in resp.remark, resp.remark

    run(shared_server, go)


def test_send_message_v1_full_field_names(shared_server: FerryServer) -> None:
    async def go(conn: RemotingConnection) -> None:
        v2 = send_v2(TOPIC, b"v1-body", 3, {"TAGS": "TagA"}, QUEUES)
        names = {"a": "producerGroup", "b": "topic", "c": "defaultTopic", "d": "defaultTopicQueueNums"}
        names |= {"e": "queueId", "f": "sysFlag", "g": "bornTimestamp", "h": "flag", "i": "properties"}
        cmd = RemotingCommand(
            code=RequestCode.SEND_MESSAGE,
            ext_fields={names[k]: v for k, v in v2.ext_fields.items()},
            body=v2.body,
            serialize_type=SerializeType.ROCKETMQ,
        )
        resp = await conn.invoke(cmd)
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        got = await conn.invoke(pull(TOPIC, 3, int(resp.ext_fields["queueOffset"])))
        (m,) = decode_stored_messages(got.body)[:1]
        assert m.body == b"v1-body" and m.tags == "TagA"
        assert m.offset_msg_id == resp.ext_fields["msgId"]

    run(shared_server, go)


def test_view_and_query_with_bogus_arguments(shared_server: FerryServer) -> None:
    async def go(conn: RemotingConnection) -> None:
        # a Java client's message: its id travels in the UNIQ_KEY property
        props = {"UNIQ_KEY": "AC11000100002A9F0000000000000001", "KEYS": "order-7"}
        sent = await conn.invoke(send_v2(TOPIC, b"findable", 1, props, QUEUES))
        assert sent.code == ResponseCode.SUCCESS
        offset = int(sent.ext_fields["msgId"][-16:], 16)
        view = RemotingCommand(code=RequestCode.VIEW_MESSAGE_BY_ID, ext_fields={"offset": str(offset)})
        resp = await conn.invoke(view)
        assert resp.code == ResponseCode.SUCCESS
        assert decode_stored_messages(resp.body)[0].body == b"findable"
        for bogus in ("-1", str(offset + 1), str(2**62), "abc", None):
            ext = {} if bogus is None else {"offset": bogus}
            resp = await conn.invoke(RemotingCommand(code=RequestCode.VIEW_MESSAGE_BY_ID, ext_fields=ext))
            assert resp.code == ResponseCode.SYSTEM_ERROR, bogus
            assert resp.remark and (bogus is None or "offset" in resp.remark), resp.remark

        def query(key: str, unique: bool) -> RemotingCommand:
            ext = {"topic": TOPIC, "key": key, "maxNum": "32", "beginTimestamp": "0"}
            ext["endTimestamp"] = str(int(time.time() * 1000) + 60_000)
            if unique:
                ext["_UNIQUE_KEY_QUERY"] = "true"
            return RemotingCommand(code=RequestCode.QUERY_MESSAGE, ext_fields=ext)

        resp = await conn.invoke(query("AC11000100002A9F0000000000000001", True))
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        (m,) = decode_stored_messages(resp.body)
        assert m.body == b"findable" and m.msg_id == "AC11000100002A9F0000000000000001"
        resp = await conn.invoke(query("order-7", False))
        assert [m.body for m in decode_stored_messages(resp.body)] == [b"findable"]
        resp = await conn.invoke(query("no-such-key", False))
        assert resp.code == ResponseCode.QUERY_NOT_FOUND
        bad = query("order-7", False)
        bad.ext_fields["maxNum"] = "many"
        resp = await conn.invoke(bad)
        assert resp.code == ResponseCode.SYSTEM_ERROR and resp.remark and "maxNum" in resp.remark

    run(shared_server, go)

"""One fuzz target per decoder of untrusted bytes, shared by atheris (``make fuzz``) and the short
hypothesis runs in tests/fuzz/.

A target takes any bytes and returns normally when the decoder either decoded them or raised the
error its module documents (the one its caller maps to the protocol's answer: a closed connection,
CORRUPT_MESSAGE, CorruptRecord...). Anything else escapes the target, and is a finding. Hangs and
memory blow-ups are caught by the runners (libFuzzer's -timeout/-rss_limit_mb, hypothesis' run).
"""

from __future__ import annotations

import functools
import ssl
import struct
from collections.abc import Callable

from ferrymq.core.ha import codec as ha_codec
from ferrymq.core.remoting import frame as remoting_frame
from ferrymq.core.remoting.command import HeaderError, decode_header
from ferrymq.core.remoting.message import decode_stored_messages, read_stored_fields
from ferrymq.core.remoting.tls import ServerTls, TlsFiles, server_context
from ferrymq.core.store import entry as store_entry
from ferrymq.gateway.kafka import apis, framing, legacy_produce, mapping
from ferrymq.gateway.kafka import records as rb

Target = Callable[[bytes], None]

#: what a stored-message read may raise (read_stored_fields documents ValueError or struct.error)
_STORED_ERRORS = (ValueError, struct.error)
#: a small frame limit, so that "frame too large" is reachable with short inputs
_SMALL_FRAME = 4096


def _pieces(data: bytes) -> list[bytes]:
    """Split ``data`` into feeds at cut points its first byte chooses (exercises partial frames)."""
    if not data:
        return [data]
    step = data[0] % 13 + 1
    body = data[1:]
    return [body[i : i + step] for i in range(0, len(body), step)] or [body]


def remoting_frames(data: bytes) -> None:
    """core/remoting/frame.py FrameDecoder, fed in pieces: commands or FrameError."""
    decoder = remoting_frame.FrameDecoder(max_frame=_SMALL_FRAME)
    try:
        for piece in _pieces(data):
            for cmd in decoder.feed(piece):
                assert isinstance(cmd.ext_fields, dict)
    except remoting_frame.FrameError:
        return
    assert decoder.buffered < _SMALL_FRAME


def remoting_header(data: bytes) -> None:
    """core/remoting/command.py decode_header, JSON or ROCKETMQ by the first byte: HeaderError."""
    if not data:
        return
    try:
        cmd = decode_header(data[0] & 1, data[1:])
    except HeaderError:
        return
    # the decoded command must encode again (a server answers it)
    cmd.response(ext_fields=cmd.ext_fields, remark=cmd.remark).encode_header()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in cmd.ext_fields.items())


def stored_messages(data: bytes) -> None:
    """core/remoting/message.py: a pull body of stored records (decode_stored_messages) and the
    one-record walk (read_stored_fields)."""
    try:
        read_stored_fields(data)
    except _STORED_ERRORS:
        pass
    try:
        decode_stored_messages(data)
    except _STORED_ERRORS:
        pass


def store_entries(data: bytes) -> None:
    """core/store/entry.py read_entry and iter_entries: StoredEntry or CorruptRecord, and what a
    reader then asks of an entry (topic, tag codes, the message)."""
    try:
        store_entry.read_entry(data)
    except store_entry.CorruptRecord:
        pass
    for e in store_entry.iter_entries(data):
        _use_entry(e)


def _use_entry(e: store_entry.StoredEntry) -> None:
    try:
        _ = e.topic, e.tag_codes, e.next_queue_offset
        if e.kind is store_entry.EntryKind.MESSAGE:
            e.message()
    except store_entry.CorruptRecord:
        pass


def kafka_frames(data: bytes) -> None:
    """gateway/kafka/framing.py FrameDecoder fed in pieces, then each frame's header parsed."""
    decoder = framing.FrameDecoder(max_size=_SMALL_FRAME)
    frames: list[bytes] = []
    try:
        for piece in _pieces(data):
            frames += decoder.feed(piece)
    except framing.FrameError:
        pass
    assert decoder.buffered <= _SMALL_FRAME + 4
    for frame in frames:
        try:
            framing.peek_header(frame)
            framing.parse_header(frame, flexible=bool(len(frame) & 1))
        except framing.FrameError:
            pass


def kafka_produce_batches(data: bytes) -> None:
    """What Produce does with a partition's records: split_batches, then the tag scan (which
    decompresses). CorruptBatch answers CORRUPT_MESSAGE, InvalidBatch/ValueError INVALID_RECORD."""
    try:
        for info in rb.split_batches(data):
            mapping.batch_tag_codes(data, info)
    except (rb.CorruptBatch, rb.InvalidBatch, ValueError):
        pass


def kafka_stored_batch(data: bytes) -> None:
    """Reading a stored batch (read_header, records_bytes, iter_records), as the cross-protocol
    views do; the CRC is not checked there, so any header must still end in CorruptBatch."""
    try:
        info = rb.read_header(data)
        for _ in rb.iter_records(rb.records_bytes(data, info), info.count, info.base_timestamp):
            pass
    except (rb.CorruptBatch, rb.InvalidBatch, rb.InflateLimit, struct.error):
        pass


def kafka_request(data: bytes) -> None:
    """The body of a served Kafka request decoded as the connection does. kio raises assorted
    errors on garbage (the connection closes on any Exception); not MemoryError, and no hang."""
    try:
        key, version, _corr = framing.peek_header(data)
    except framing.FrameError:
        return
    spec = apis.API_HANDLERS.get(key)
    if spec is None or not 0 <= version <= spec.max_version:
        return
    if version < spec.min_version:
        if key == 0:
            try:
                header = framing.parse_header(data, flexible=False)
                legacy_produce.unsupported_response(data, version, header.body_offset)
            except (framing.FrameError, ValueError, struct.error):
                pass
        return
    try:
        header = framing.parse_header(data, spec.flexible(version))
        spec.reader(version)(data, header.body_offset)
    except MemoryError:
        raise
    except Exception:
        return


def ha_stream(data: bytes) -> None:
    """core/ha/codec.py, both directions fed in pieces: the slave's FrameDecoder (frames whose
    bodies never exceed the limit, or HaProtocolError) and the master's ReportDecoder (offsets
    >= 0, or HaProtocolError)."""
    frames = ha_codec.FrameDecoder(max_body=_SMALL_FRAME)
    try:
        for piece in _pieces(data):
            for fr in frames.feed(piece):
                assert 0 <= len(fr.body) <= _SMALL_FRAME and fr.offset >= 0
    except ha_codec.HaProtocolError:
        pass
    reports = ha_codec.ReportDecoder()
    try:
        for piece in _pieces(data):
            offset = reports.feed(piece)
            assert offset is None or offset >= 0
    except ha_codec.HaProtocolError:
        return


@functools.cache
def _tls_server_context() -> ssl.SSLContext:
    """The listeners' server context (core/remoting/tls.py) with a throwaway certificate."""
    import trustme  # a dev dependency, as hypothesis and atheris

    leaf = trustme.CA().issue_cert("127.0.0.1")
    with leaf.private_key_and_cert_chain_pem.tempfile() as pem:
        return server_context(TlsFiles(pem, pem))


def tls_hello(data: bytes) -> None:
    """What a TLS listener (transport.SniffingServer: remoting, Kafka SSL, HA, admin HTTPS) does with
    a new connection's bytes: the first byte decides TLS or plaintext in each mode (ServerTls.accepts),
    then the server side of the handshake is fed the bytes in pieces and a closed stream. It may want
    more bytes, answer (a ServerHello or an alert) or fail with ssl.SSLError, which the listener
    logs with the peer before closing; anything else escapes."""
    if len(data) < 2:
        return
    body = data[1:]
    for mode in ("disabled", "permissive", "enforcing"):
        context = None if mode == "disabled" else _tls_server_context()
        is_tls, refused = ServerTls(mode, context).accepts(body[0])
        assert is_tls == (body[0] == 0x16)
        assert refused is None or isinstance(refused, str)
        assert not (mode == "enforcing" and not is_tls and refused is None)
    if body[0] != 0x16:
        return
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = _tls_server_context().wrap_bio(incoming, outgoing, server_side=True)
    step = (data[0] % 8 + 1) * 16  # records arrive in pieces; byte by byte costs time, finds nothing more
    try:
        for at in range(0, len(body), step):
            incoming.write(body[at : at + step])
            try:
                server.do_handshake()
                return  # a garbled hello cannot finish a handshake alone, but stop if it did
            except ssl.SSLWantReadError:
                outgoing.read()
        incoming.write_eof()
        server.do_handshake()
    except ssl.SSLWantReadError:
        pass
    except ssl.SSLError:
        pass


TARGETS: dict[str, Target] = {
    "remoting_frames": remoting_frames,
    "remoting_header": remoting_header,
    "stored_messages": stored_messages,
    "store_entries": store_entries,
    "kafka_frames": kafka_frames,
    "kafka_produce_batches": kafka_produce_batches,
    "kafka_stored_batch": kafka_stored_batch,
    "kafka_request": kafka_request,
    "ha_stream": ha_stream,
    "tls_hello": tls_hello,
}

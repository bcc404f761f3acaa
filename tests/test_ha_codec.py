"""The classic HA wire format (reference §1.3), byte for byte."""

from __future__ import annotations

import pytest

from ferrymq.core.ha.codec import (
    Frame,
    FrameDecoder,
    HaProtocolError,
    ReportDecoder,
    encode_frame_header,
    encode_report,
)


def test_report_golden_bytes() -> None:
    assert encode_report(0) == b"\x00" * 8
    assert encode_report(0x0102030405060708) == bytes.fromhex("0102030405060708")


def test_report_decoder_takes_the_last_complete_aligned_report() -> None:
    dec = ReportDecoder()
    assert dec.feed(bytes.fromhex("00000000000000")) is None  # 7 bytes: nothing complete
    # the 8th byte completes 0x10, then 0x20 complete and half of the next
    got = dec.feed(bytes.fromhex("10000000000000002000000000"))
    assert got == 0x20
    assert dec.feed(bytes.fromhex("00000030")) == 0x30
    assert dec.feed(b"") is None


def test_report_decoder_refuses_a_negative_offset() -> None:
    with pytest.raises(HaProtocolError):
        ReportDecoder().feed(b"\xff" * 8)


def test_frame_header_golden_bytes() -> None:
    assert encode_frame_header(0x1000, 5) == bytes.fromhex("000000000000100000000005")
    assert encode_frame_header(7, 0) == bytes.fromhex("000000000000000700000000")  # heartbeat


def test_frame_decoder_splits_frames_cut_anywhere() -> None:
    wire = (
        bytes.fromhex("000000000000100000000005")
        + b"hello"
        + bytes.fromhex("000000000000100500000000")  # heartbeat
        + bytes.fromhex("000000000000100500000003")
        + b"abc"
    )
    for cut in range(len(wire) + 1):
        dec = FrameDecoder()
        frames = dec.feed(wire[:cut]) + dec.feed(wire[cut:])
        assert frames == [Frame(0x1000, b"hello"), Frame(0x1005, b""), Frame(0x1005, b"abc")]
        assert frames[1].heartbeat and not frames[0].heartbeat


def test_frame_decoder_refuses_a_body_over_its_limit() -> None:
    dec = FrameDecoder(max_body=16)
    with pytest.raises(HaProtocolError):
        dec.feed(bytes.fromhex("000000000000000000000011"))
    with pytest.raises(HaProtocolError):
        FrameDecoder().feed(bytes.fromhex("0000000000000000ffffffff"))

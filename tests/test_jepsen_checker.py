"""The Jepsen-style checker (tests/jepsen.py) catches each fault it exists for, and passes a clean
history."""

from __future__ import annotations

from tests.jepsen import Ack, Read, check, missing


def history() -> tuple[list[Ack], list[Read]]:
    acks = [Ack(b"a", 0, 0), Ack(b"b", 1, 0), Ack(b"c", 0, 1), Ack(b"d", 1, 1)]
    final = [Read(0, 0, b"a"), Read(0, 1, b"c"), Read(1, 0, b"b"), Read(1, 1, b"d"), Read(1, 2, b"unacked")]
    return acks, final


def test_a_clean_history_passes() -> None:
    acks, final = history()
    observed = [Read(0, 0, b"a", "c1"), Read(0, 1, b"c", "c1"), Read(0, 0, b"a", "c2")]
    report = check(acks, final, observed)
    assert report.ok, str(report)
    assert missing(acks, observed) == [Ack(b"b", 1, 0), Ack(b"d", 1, 1)]


def test_a_lost_acknowledged_message_is_caught() -> None:
    acks, final = history()
    final = [r for r in final if r.value != b"d"]
    report = check(acks, final)
    assert report.lost == [Ack(b"d", 1, 1)] and not report.ok
    assert "LOST 1" in str(report)


def test_a_duplicate_is_caught() -> None:
    acks, final = history()
    final.append(Read(1, 3, b"a"))
    report = check(acks, final)
    assert report.duplicates == {b"a": [(0, 0), (1, 3)]} and not report.ok


def test_two_messages_at_one_offset_are_caught_whoever_saw_them() -> None:
    acks, final = history()
    # a consumer read x at queue 0 offset 1, where the final log holds c
    report = check(acks, final, [Read(0, 1, b"x", "consumer")])
    assert report.conflicts == {(0, 1): {b"c", b"x"}}
    assert report.vanished == [Read(0, 1, b"x", "consumer")]
    # an acknowledgement named an offset that holds another message
    report = check([*acks, Ack(b"y", 1, 2)], final)
    assert report.conflicts == {(1, 2): {b"unacked", b"y"}}
    assert report.lost == [Ack(b"y", 1, 2)]


def test_out_of_order_offsets_are_caught() -> None:
    acks, final = history()
    swapped = [final[1], final[0], *final[2:]]
    report = check(acks, swapped)
    assert report.out_of_order == ["final read of queue 0: offset 0 after 1"]
    # acknowledgements of one queue, in arrival order, must name growing offsets
    report = check([Ack(b"c", 0, 1), Ack(b"a", 0, 0)], final)
    assert report.out_of_order == ["acknowledgements of queue 0: offset 0 after 1"]


def test_a_read_of_a_later_truncated_message_is_caught() -> None:
    acks, final = history()
    report = check(acks, final, [Read(0, 2, b"tail", "consumer")])
    assert report.vanished == [Read(0, 2, b"tail", "consumer")] and not report.conflicts

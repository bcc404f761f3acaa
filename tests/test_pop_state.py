"""POP consumption's state machine (core/broker/pop/state.py) and receipts, time passed in."""

from __future__ import annotations

import pytest

from ferrymq.core.broker.pop.receipt import Receipt, msg_offset_info, start_offset_info
from ferrymq.core.broker.pop.state import PopState, QueueKey

K = QueueKey("g", "t", 0)


def pop_new(
    state: PopState, key: QueueKey, n: int, now: int, inv: int = 1000, fifo: bool = False
) -> list[int]:
    """Pop up to ``n`` offsets: redeliveries first, then new ones (as the service does)."""
    ready = state.ready(key, n)
    cursor = state.cursor(key)
    new = list(range(cursor, cursor + n - len(ready)))
    entries = ready + [(o, 0) for o in new]
    state.add_checkpoint(key, now, inv, entries, cursor + len(new), fifo)
    return [o for o, _ in entries]


def test_receipt_round_trips_java_extra_info() -> None:
    # ExtraInfoUtil.buildExtraInfo(ck, popTime, invisible, reviveQid, topic, broker, qid) + " " + offset
    text = "12 1700000000000 60000 0 0 broker-a 3 14"
    r = Receipt.parse(text)
    assert (r.ck_offset, r.pop_time, r.invisible_ms, r.revive_qid, r.retry, r.broker_name) == (
        12,
        1700000000000,
        60000,
        0,
        "0",
        "broker-a",
    )
    assert (r.queue_id, r.offset) == (3, 14)
    assert r.encode() == text
    with pytest.raises(ValueError):
        Receipt.parse("12 17 60000")
    assert start_offset_info([(0, 5), (2, 9)]) == "0 0 5;0 2 9"
    assert msg_offset_info([(0, [5, 6]), (2, [9])]) == "0 0 5,6;0 2 9"


def test_popped_messages_are_invisible_until_acked_or_revived() -> None:
    s = PopState()
    s.open(K, 0)
    assert pop_new(s, K, 3, now=100) == [0, 1, 2]
    assert s.cursor(K) == 3 and s.ready(K, 10) == []
    assert s.revive(now=1099, max_reconsume=lambda g: 16) == []  # not yet due
    assert s.ack(K, ck_offset=0, pop_time=100, offset=1)
    assert not s.ack(K, ck_offset=0, pop_time=100, offset=1)  # acked twice: gone
    assert not s.ack(K, ck_offset=0, pop_time=999, offset=0)  # unknown receipt
    assert s.revive(now=1100, max_reconsume=lambda g: 16) == []  # nothing dead-lettered
    assert s.ready(K, 10) == [(0, 1), (2, 1)]  # back with reconsume times + 1
    assert pop_new(s, K, 5, now=2000) == [0, 2, 3, 4, 5]
    assert s.next_deadline() == 3000


def test_consume_offset_advances_past_fully_acked_checkpoints_only() -> None:
    s = PopState()
    s.open(K, 10)
    pop_new(s, K, 2, now=0)  # 10, 11
    pop_new(s, K, 2, now=1)  # 12, 13
    assert s.commit_offset(K) == 10
    s.ack(K, 12, 1, 12)
    s.ack(K, 12, 1, 13)
    assert s.commit_offset(K) == 10  # the first checkpoint still holds 10 and 11
    s.ack(K, 10, 0, 10)
    assert s.commit_offset(K) == 11
    s.ack(K, 10, 0, 11)
    assert s.commit_offset(K) == 14


def test_change_invisible_moves_one_message_to_a_new_checkpoint() -> None:
    s = PopState()
    s.open(K, 0)
    pop_new(s, K, 2, now=0, inv=1000)
    ck = s.change_invisible(K, 0, 0, 1, now=500, invisible_ms=5000)
    assert ck is not None and (ck.start, ck.pop_time, ck.invisible_ms) == (1, 500, 5000)
    s.revive(now=1000, max_reconsume=lambda g: 16)
    assert s.ready(K, 10) == [(0, 1)]  # offset 1 is still invisible
    assert s.change_invisible(K, 0, 0, 1, now=600, invisible_ms=1) is None  # the old receipt is spent
    s.revive(now=5500, max_reconsume=lambda g: 16)
    assert s.ready(K, 10) == [(0, 1), (1, 1)]
    assert s.ack(K, 1, 500, 1) is False


def test_dead_letter_after_max_reconsume_times() -> None:
    s = PopState()
    s.open(K, 0)
    now = 0
    pop_new(s, K, 1, now=now)
    for attempt in range(1, 3):  # max 2: delivered with reconsume times 0, 1, 2
        now += 1000
        assert s.revive(now, max_reconsume=lambda g: 2) == []
        assert s.ready(K, 1) == [(0, attempt)]
        pop_new(s, K, 1, now=now)
    now += 1000
    assert s.revive(now, max_reconsume=lambda g: 2) == [(K, 0, 2)]  # to %DLQ%g
    assert s.ready(K, 1) == []
    assert s.commit_offset(K) == 1


def test_fifo_queue_is_locked_until_its_messages_are_acked() -> None:
    s = PopState()
    s.open(K, 0)
    assert s.fifo_blocked(K) is False
    pop_new(s, K, 2, now=0, fifo=True)
    assert s.fifo_blocked(K) is True
    s.ack(K, 0, 0, 0)
    assert s.fifo_blocked(K) is True  # offset 1 is still out
    s.revive(now=1000, max_reconsume=lambda g: 16)
    assert s.fifo_blocked(K) is False
    assert pop_new(s, K, 3, now=1000, fifo=True) == [1, 2, 3]  # in order, the redelivery first


def test_state_survives_a_snapshot_and_a_replayed_journal() -> None:
    s = PopState()
    s.open(K, 0)
    pop_new(s, K, 3, now=0)
    s.ack(K, 0, 0, 1)
    snap = s.snapshot()
    s2 = PopState.restore(snap)
    assert s2.snapshot() == snap
    assert s2.commit_offset(K) == 0 and s2.cursor(K) == 3
    s2.revive(1000, max_reconsume=lambda g: 16)
    assert s2.ready(K, 10) == [(0, 1), (2, 1)]


def test_acl_checks_pop_codes_like_a_pull() -> None:
    """With aclEnable a POP, ACK or CHANGE_MESSAGE_INVISIBLETIME needs READ on the topic and the
    group, as a pull does (ACL 2.0's SUB), and SET_MESSAGE_REQUEST_MODE is an admin request."""
    from ferrymq.core.auth.acl import Operation, ResourceType
    from ferrymq.core.broker.remoting_acl import needs
    from ferrymq.core.remoting.codes import RequestCode
    from ferrymq.core.remoting.command import RemotingCommand

    for code in (RequestCode.POP_MESSAGE, RequestCode.ACK_MESSAGE, RequestCode.CHANGE_MESSAGE_INVISIBLETIME):
        cmd = RemotingCommand(code=code, ext_fields={"topic": "T", "consumerGroup": "G"})
        got = {(t, n) for t, n, op in needs(cmd) if op == Operation.READ}
        assert (ResourceType.TOPIC, "T") in got and (ResourceType.GROUP, "G") in got, code
    admin = list(needs(RemotingCommand(code=RequestCode.SET_MESSAGE_REQUEST_MODE)))
    assert admin and admin[0][2] == Operation.ALTER


def test_a_change_in_the_millisecond_of_the_pop_spends_the_old_receipt() -> None:
    """The new checkpoint of a single message starts at its offset: made in the pop's own millisecond
    it must not take the old receipt's (offset, pop time), or the spent receipt would work again."""
    s = PopState()
    s.open(K, 0)
    pop_new(s, K, 1, now=100, inv=50)
    ck = s.change_invisible(K, 0, 100, 0, now=100, invisible_ms=60_000)
    assert ck is not None and (ck.start, ck.pop_time) == (0, 101)
    assert s.change_invisible(K, 0, 100, 0, now=100, invisible_ms=1) is None
    assert s.ack(K, 0, 101, 0) is True

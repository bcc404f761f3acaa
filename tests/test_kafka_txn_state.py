"""The transaction coordinator's state machine (gateway/kafka/txn/state.py), time passed in: every
row of the reference's reply table (§2.3), InitProducerId's epoch bumps and fences, the timeout
abort, expiry, the KIP-890 partition check and the state's round trip through JSON."""

from __future__ import annotations

import itertools

import pytest
from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.txn.state import EPOCH_EXHAUSTED, MAX_TIMEOUT_MS, TxnState, TxnStates

T0 = 1_000_000
TID = "tx-1"
P0, P1 = ("t", 0), ("t", 1)


def states() -> TxnStates:
    ids = itertools.count(100)
    return TxnStates(lambda: next(ids))


def started(s: TxnStates, timeout_ms: int = 60_000) -> tuple[int, int]:
    r = s.init_producer(TID, timeout_ms, -1, -1, T0, 4)
    assert r.error == ErrorCode.none
    return r.producer_id, r.producer_epoch


def ongoing(s: TxnStates) -> tuple[int, int]:
    pid, epoch = started(s)
    assert s.add(TID, pid, epoch, T0, 3, partitions=[P0]) == (ErrorCode.none, True)
    return pid, epoch


def test_init_gives_a_new_id_then_bumps_the_epoch_of_a_finished_transaction() -> None:
    s = states()
    assert started(s) == (100, 0)
    r = s.init_producer(TID, 60_000, -1, -1, T0, 4)
    assert (r.error, r.producer_id, r.producer_epoch) == (ErrorCode.none, 100, 1)
    assert s.get(TID) is not None and s.get(TID).state is TxnState.EMPTY  # type: ignore[union-attr]


@pytest.mark.parametrize("timeout", [0, -1, MAX_TIMEOUT_MS + 1])
def test_init_with_a_bad_timeout_is_invalid_transaction_timeout(timeout: int) -> None:
    assert states().init_producer(TID, timeout, -1, -1, T0, 4).error == ErrorCode.invalid_transaction_timeout


def test_init_with_an_empty_transactional_id_is_invalid_request() -> None:
    assert states().init_producer("", 60_000, -1, -1, T0, 4).error == ErrorCode.invalid_request


def test_init_at_an_exhausted_epoch_gets_a_new_producer_id() -> None:
    s = states()
    pid, _ = started(s)
    s.get(TID).producer_epoch = EPOCH_EXHAUSTED  # type: ignore[union-attr]
    r = s.init_producer(TID, 60_000, -1, -1, T0, 4)
    assert (r.error, r.producer_epoch) == (ErrorCode.none, 0)
    assert r.producer_id != pid
    assert s.by_producer(r.producer_id) is s.get(TID)
    assert s.by_producer(pid) is None
    # KIP-360: a retry of that init with the old id and epoch gets the same answer
    again = s.init_producer(TID, 60_000, pid, EPOCH_EXHAUSTED, T0, 4)
    assert (again.error, again.producer_id, again.producer_epoch) == (ErrorCode.none, r.producer_id, 0)


def test_init_on_an_ongoing_transaction_fences_and_aborts_it_and_the_retry_bumps_again() -> None:
    s = states()
    pid, epoch = ongoing(s)
    r = s.init_producer(TID, 60_000, -1, -1, T0, 4)
    assert r.error == ErrorCode.concurrent_transactions
    assert r.finish is not None and not r.finish.commit
    assert (r.finish.producer_id, r.finish.producer_epoch, r.finish.partitions) == (pid, epoch + 1, (P0,))
    assert s.get(TID).state is TxnState.PREPARE_ABORT  # type: ignore[union-attr]
    # the zombie is fenced at once
    assert s.end(TID, pid, epoch, True, T0, 3) == (ErrorCode.producer_fenced, None)
    assert s.init_producer(TID, 60_000, -1, -1, T0, 4).error == ErrorCode.concurrent_transactions
    assert s.complete(TID, T0)
    r2 = s.init_producer(TID, 60_000, -1, -1, T0, 4)
    assert (r2.error, r2.producer_id, r2.producer_epoch) == (ErrorCode.none, pid, epoch + 2)


@pytest.mark.parametrize(
    ("version", "error"), [(3, ErrorCode.invalid_producer_epoch), (4, ErrorCode.producer_fenced)]
)
def test_init_with_a_stale_current_epoch_is_fenced_by_version(version: int, error: ErrorCode) -> None:
    s = states()
    pid, epoch = started(s)
    s.init_producer(TID, 60_000, -1, -1, T0, 4)  # another producer took over: epoch + 1
    s.init_producer(TID, 60_000, -1, -1, T0, 4)  # and again
    assert s.init_producer(TID, 60_000, pid, epoch, T0, version).error == error


def test_init_with_the_current_id_and_epoch_bumps_it() -> None:
    s = states()
    pid, epoch = started(s)
    r = s.init_producer(TID, 60_000, pid, epoch, T0, 4)
    assert (r.error, r.producer_id, r.producer_epoch) == (ErrorCode.none, pid, epoch + 1)


# ---- the reply table, row by row ----------------------------------------------------------------


def test_end_txn_accepted_goes_to_prepare_and_hands_back_the_markers_to_write() -> None:
    s = states()
    pid, epoch = ongoing(s)
    s.add(TID, pid, epoch, T0, 3, groups=["g"])
    error, finish = s.end(TID, pid, epoch, True, T0, 3)
    assert error == ErrorCode.none and finish is not None
    assert (finish.commit, finish.partitions, finish.groups) == (True, (P0,), ("g",))
    assert s.get(TID).state is TxnState.PREPARE_COMMIT  # type: ignore[union-attr]
    assert s.preparing() == [finish]
    assert s.complete(TID, T0)
    assert s.get(TID).state is TxnState.COMPLETE_COMMIT  # type: ignore[union-attr]
    assert not s.get(TID).partitions  # type: ignore[union-attr]


@pytest.mark.parametrize("commit", [True, False])
def test_any_request_while_prepare_is_concurrent_transactions(commit: bool) -> None:
    s = states()
    pid, epoch = ongoing(s)
    s.end(TID, pid, epoch, commit, T0, 3)
    assert s.add(TID, pid, epoch, T0, 3, partitions=[P1]) == (ErrorCode.concurrent_transactions, False)
    assert s.add(TID, pid, epoch, T0, 3, groups=["g"]) == (ErrorCode.concurrent_transactions, False)
    assert s.end(TID, pid, epoch, commit, T0, 3) == (ErrorCode.concurrent_transactions, None)
    assert s.end(TID, pid, epoch, not commit, T0, 3) == (ErrorCode.concurrent_transactions, None)
    assert s.init_producer(TID, 60_000, -1, -1, T0, 4).error == ErrorCode.concurrent_transactions


@pytest.mark.parametrize("commit", [True, False])
def test_end_txn_repeating_the_completed_result_is_none_the_other_is_invalid_txn_state(commit: bool) -> None:
    s = states()
    pid, epoch = ongoing(s)
    s.end(TID, pid, epoch, commit, T0, 3)
    s.complete(TID, T0)
    assert s.end(TID, pid, epoch, commit, T0, 3) == (ErrorCode.none, None)
    assert s.end(TID, pid, epoch, not commit, T0, 3) == (ErrorCode.invalid_txn_state, None)


@pytest.mark.parametrize("commit", [True, False])
def test_end_txn_in_empty_is_invalid_txn_state(commit: bool) -> None:
    s = states()
    pid, epoch = started(s)
    assert s.end(TID, pid, epoch, commit, T0, 3) == (ErrorCode.invalid_txn_state, None)


def test_unknown_transactional_id_or_other_producer_id_is_invalid_producer_id_mapping() -> None:
    s = states()
    pid, epoch = ongoing(s)
    bad = ErrorCode.invalid_producer_id_mapping
    assert s.add("nope", pid, epoch, T0, 3, partitions=[P0]) == (bad, False)
    assert s.add(TID, pid + 1, epoch, T0, 3, groups=["g"]) == (bad, False)
    assert s.end("nope", pid, epoch, True, T0, 3) == (bad, None)
    assert s.end(TID, pid + 1, epoch, True, T0, 3) == (bad, None)


@pytest.mark.parametrize(
    ("version", "error"), [(1, ErrorCode.invalid_producer_epoch), (2, ErrorCode.producer_fenced)]
)
def test_other_epoch_is_producer_fenced_from_v2_and_invalid_producer_epoch_before(
    version: int, error: ErrorCode
) -> None:
    s = states()
    pid, epoch = ongoing(s)
    assert s.add(TID, pid, epoch + 1, T0, version, partitions=[P1]) == (error, False)
    assert s.add(TID, pid, epoch - 1, T0, version, groups=["g"]) == (error, False)
    assert s.end(TID, pid, epoch + 1, True, T0, version) == (error, None)


def test_add_partitions_already_in_the_transaction_is_none_and_changes_nothing() -> None:
    s = states()
    pid, epoch = ongoing(s)
    assert s.add(TID, pid, epoch, T0 + 5, 3, partitions=[P0]) == (ErrorCode.none, False)
    assert s.add(TID, pid, epoch, T0 + 5, 3, partitions=[P0, P1]) == (ErrorCode.none, True)
    assert s.get(TID).partitions == {P0, P1}  # type: ignore[union-attr]
    assert s.get(TID).start_ms == T0  # type: ignore[union-attr]


def test_a_new_transaction_after_a_completed_one_starts_afresh() -> None:
    s = states()
    pid, epoch = ongoing(s)
    s.end(TID, pid, epoch, False, T0, 3)
    s.complete(TID, T0)
    assert s.add(TID, pid, epoch, T0 + 7, 3, partitions=[P1]) == (ErrorCode.none, True)
    meta = s.get(TID)
    assert meta is not None
    assert (meta.state, meta.partitions, meta.start_ms) == (TxnState.ONGOING, {P1}, T0 + 7)


# ---- timeouts, expiry, KIP-890, persistence ---------------------------------------------------


def test_timeout_aborts_with_an_epoch_fence_only_once_past_the_timeout() -> None:
    s = states()
    pid, epoch = ongoing(s)
    assert s.timed_out(T0 + 60_000) == []
    (finish,) = s.timed_out(T0 + 60_001)
    assert (finish.commit, finish.producer_epoch, finish.partitions) == (False, epoch + 1, (P0,))
    assert s.end(TID, pid, epoch, True, T0, 3)[0] == ErrorCode.producer_fenced
    assert s.timed_out(T0 + 120_000) == []  # already preparing


def test_finished_ids_expire_after_the_expiration() -> None:
    s = states()
    pid, _ = started(s)
    assert s.expire(T0 + 10, expiration_ms=10) == []
    assert s.expire(T0 + 11, expiration_ms=10) == [TID]
    assert s.get(TID) is None and s.by_producer(pid) is None


def test_partition_in_transaction() -> None:
    s = states()
    assert s.partition_in_transaction(100, 0, P0) is None
    pid, epoch = ongoing(s)
    assert s.partition_in_transaction(pid, epoch, P0) is True
    assert s.partition_in_transaction(pid, epoch, P1) is False
    assert s.partition_in_transaction(pid, epoch - 1, P0) is False
    s.end(TID, pid, epoch, True, T0, 3)
    assert s.partition_in_transaction(pid, epoch, P0) is False


def test_state_round_trips_through_json() -> None:
    s = states()
    pid, epoch = ongoing(s)
    s.add(TID, pid, epoch, T0, 3, groups=["g"])
    again = states()
    again.load(s.to_json())
    assert again.get(TID) == s.get(TID)
    assert again.by_producer(pid) is again.get(TID)


def test_verify_only_checks_partitions_without_adding_them() -> None:
    s = states()
    pid, epoch = started(s)
    assert s.verify(TID, pid, epoch, [P0]) == {P0: ErrorCode.invalid_txn_state}  # Empty
    s.add(TID, pid, epoch, T0, 3, partitions=[P0])
    assert s.verify(TID, pid, epoch, [P0, P1]) == {P0: ErrorCode.none, P1: ErrorCode.invalid_txn_state}
    assert s.verify(TID, pid, epoch + 1, [P0]) == {P0: ErrorCode.producer_fenced}
    assert s.get(TID).partitions == {P0}  # type: ignore[union-attr]
    s.end(TID, pid, epoch, True, T0, 3)
    assert s.verify(TID, pid, epoch, [P0]) == {P0: ErrorCode.concurrent_transactions}

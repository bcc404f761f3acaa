"""Incremental fetch sessions (KIP-227): the cache's rules, then the wire as a client sees it.

Before: every Fetch got session_id 0 and an incremental one FETCH_SESSION_ID_NOT_FOUND, so a consumer of
many partitions sent and received every partition on every fetch.
"""

from __future__ import annotations

import random
from pathlib import Path

from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic, ForgottenTopic

from ferrymq.core.broker.broker import Broker
from ferrymq.gateway.kafka.fetch_sessions import FetchSessionCache, SessionPartition
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.test_kafka_frontend import TOPIC, Wire, batch, ms, produced, records_of, run


def parts(*ps: int, offset: int = 0) -> list[SessionPartition]:
    return [SessionPartition("t", p, offset, 1 << 20) for p in ps]


# ---- the cache (pure) ---------------------------------------------------------------------------


def test_full_fetch_with_epoch_zero_creates_a_session_and_epochs_must_follow() -> None:
    cache = FetchSessionCache(rng=random.Random(1))
    plan = cache.plan(0, 0, parts(0, 1), [], now=0.0)
    assert plan.session_id != 0 and not plan.incremental and len(plan.partitions) == 2
    sid = plan.session_id
    plan = cache.plan(sid, 1, parts(1, offset=7), [("t", 0)], now=1.0)  # new offset for 1, forget 0
    assert plan.incremental and [(p.partition, p.fetch_offset) for p in plan.partitions] == [(1, 7)]
    assert cache.plan(sid, 1, [], [], now=2.0).error == "invalid_fetch_session_epoch"  # epoch 1 is spent
    assert cache.plan(sid, 2, [], [], now=2.0).incremental
    assert cache.plan(12345, 1, [], [], now=2.0).error == "fetch_session_id_not_found"


def test_final_epoch_closes_the_session_and_is_a_sessionless_fetch() -> None:
    cache = FetchSessionCache()
    sid = cache.plan(0, 0, parts(0), [], now=0.0).session_id
    plan = cache.plan(sid, -1, parts(3), [], now=1.0)
    assert plan.session_id == 0 and [p.partition for p in plan.partitions] == [3]
    assert cache.plan(sid, 1, [], [], now=1.0).error == "fetch_session_id_not_found"
    assert FetchSessionCache(max_slots=0).plan(0, 0, parts(0), [], now=0.0).session_id == 0


def test_a_full_cache_evicts_stale_then_smaller_sessions_only() -> None:
    cache = FetchSessionCache(max_slots=2, eviction_ms=60_000)
    small = cache.plan(0, 0, parts(0), [], now=0.0).session_id
    big = cache.plan(0, 0, parts(0, 1, 2), [], now=10.0).session_id
    assert cache.plan(0, 0, parts(0), [], now=20.0).session_id == 0  # not larger than the smallest: no slot
    newer = cache.plan(0, 0, parts(0, 1), [], now=20.0).session_id  # larger than `small`: takes its slot
    assert newer and small not in cache.sessions and big in cache.sessions
    cache.plan(newer, 1, [], [], now=65.0)  # `big` last used at 10 s: stale at 71 s
    assert cache.plan(0, 0, parts(0), [], now=71.0).session_id
    assert big not in cache.sessions and newer in cache.sessions and cache.evicted == 2


def test_an_incremental_answer_keeps_only_partitions_with_news() -> None:
    part = SessionPartition("t", 0, 0, 100)
    assert part.must_answer(0, 5, 5, 0, has_records=True)
    assert not part.must_answer(0, 5, 5, 0, has_records=False)  # nothing moved
    assert part.must_answer(0, 6, 5, 0, has_records=False)  # high watermark moved
    assert part.must_answer(3, -1, -1, -1, has_records=False)  # an error
    assert part.must_answer(0, 6, 5, 0, has_records=False)  # the error cleared: sent again


# ---- the wire -----------------------------------------------------------------------------------


def session_fetch(
    session_id: int,
    epoch: int,
    offsets: dict[int, int],
    forgotten: tuple[int, ...] = (),
    wait_ms: int = 0,
) -> FetchRequest:
    fps = tuple(
        FetchPartition(partition=p, fetch_offset=o, partition_max_bytes=1 << 20) for p, o in offsets.items()
    )
    return FetchRequest(
        max_wait=ms(wait_ms),
        min_bytes=1,
        session_id=session_id,
        session_epoch=epoch,
        topics=(FetchTopic(topic=TOPIC, partitions=fps),) if fps else (),
        forgotten_topics_data=(ForgottenTopic(topic=TOPIC, partitions=forgotten),) if forgotten else (),
    )


def answered(response: object) -> dict[int, list[bytes]]:
    return {
        p.partition_index: [r.key for r in records_of(p.records)]
        for t in response.responses  # type: ignore[attr-defined]
        for p in t.partitions
    }


def test_a_session_over_the_wire_answers_only_what_changed(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        assert await produced(w, batch(2), partition=0) == (ErrorCode.none, 0)
        full = await w.call(session_fetch(0, 0, {0: 0, 1: 0}))
        assert full.error_code == ErrorCode.none and full.session_id != 0
        assert answered(full) == {0: [b"k0", b"k1"], 1: []}  # a full answer names every partition
        sid = full.session_id
        idle = await w.call(session_fetch(sid, 1, {0: 2}))  # only partition 0's offset changed
        assert idle.session_id == sid and answered(idle) == {}  # nothing new anywhere
        await produced(w, batch(1, first=5), partition=1)
        news = await w.call(session_fetch(sid, 2, {}, wait_ms=5000))  # the session still reads partition 1
        assert answered(news) == {1: [b"k5"]}
        gone = await w.call(session_fetch(sid, 3, {1: 1}, forgotten=(0,)))
        assert answered(gone) == {}
        await produced(w, batch(1, first=9), partition=0)  # partition 0 was forgotten: not answered
        assert answered(await w.call(session_fetch(sid, 4, {}))) == {}
        stale = await w.call(session_fetch(sid, 4, {}))
        assert stale.error_code == ErrorCode.invalid_fetch_session_epoch
        unknown = await w.call(session_fetch(sid + 1, 1, {}))
        assert unknown.error_code == ErrorCode.fetch_session_id_not_found
        w.close()

    run(tmp_path, body)


def test_a_broker_that_keeps_no_sessions_answers_sessionless(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        full = await w.call(session_fetch(0, 0, {0: 0}))
        assert full.error_code == ErrorCode.none and full.session_id == 0
        w.close()

    run(tmp_path, body, kafka_fetch_session_cache_slots=0)

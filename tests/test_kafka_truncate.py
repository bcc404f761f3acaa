"""The Kafka frontend after ``MessageStore.truncate_to`` (a rejoining old master cut its diverged
tail): idempotent producers' state is rebuilt from the log as it now is, so a batch whose first
copy was cut is written again, not acknowledged as a duplicate at an offset that holds nothing
(or, once the new master's entries arrive, another message)."""

from __future__ import annotations

from pathlib import Path

from kio.schema.errors import ErrorCode

from ferrymq.core.broker.broker import Broker
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.test_kafka_frontend import TOPIC, Wire, batch, init_producer, produced, run


def test_a_cut_batch_is_written_again_not_taken_for_a_duplicate(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        pid = (await w.call(init_producer())).producer_id
        assert await produced(w, batch(3, pid=pid, epoch=0, seq=0)) == (ErrorCode.none, 0)
        cut = broker.store.commit_log_max_offset
        assert await produced(w, batch(2, pid=pid, epoch=0, seq=3)) == (ErrorCode.none, 3)
        await broker.store.truncate_to(cut)
        assert broker.store.max_offset(TOPIC, 0) == 3
        # the producer retries seq 3-4 (its ack may have been lost with the old master)
        assert await produced(w, batch(2, pid=pid, epoch=0, seq=3, first=3)) == (ErrorCode.none, 3)
        assert broker.store.max_offset(TOPIC, 0) == 5  # written, not a "duplicate" of nothing
        assert await produced(w, batch(2, pid=pid, epoch=0, seq=3, first=3)) == (ErrorCode.none, 3)
        assert broker.store.max_offset(TOPIC, 0) == 5  # now it is one
        w.close()

    run(tmp_path, body)

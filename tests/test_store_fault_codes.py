"""What clients see when the store fails a sync (in process, through the fault-injecting file
layer): a waiting SYNC_FLUSH send gets SERVICE_NOT_AVAILABLE with the reason, a Kafka acks=-1
produce KAFKA_STORAGE_ERROR — never success — and every later write is refused the same way."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from ferrymq.core.broker.broker import Broker
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.transport import connect
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.fault_fs import FaultyDisk
from tests.remoting_helpers import send_v2
from tests.test_kafka_frontend import TOPIC, Wire, batch, produced, run


def test_a_failed_sync_fails_waiting_sends_and_refuses_later_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FaultyDisk().install(monkeypatch)

    async def body(broker: Broker, f: KafkaFrontend) -> None:
        conn = await connect("127.0.0.1", broker.port)
        wire = await Wire.open(f.port)
        ok = await conn.invoke(send_v2(TOPIC, b"before", 0, queue_nums=2), timeout=10)
        assert ok.code == ResponseCode.SUCCESS
        assert (await produced(wire, batch(1), acks=-1))[0] == ErrorCode.none

        disk.fail["fdatasync"] = errno.EIO
        failed = await conn.invoke(send_v2(TOPIC, b"during", 0, queue_nums=2), timeout=10)
        assert failed.code == ResponseCode.SERVICE_NOT_AVAILABLE and "restart" in (failed.remark or "")
        disk.fail.clear()
        later = await conn.invoke(send_v2(TOPIC, b"after", 1, queue_nums=2), timeout=10)
        assert later.code == ResponseCode.SERVICE_NOT_AVAILABLE and "restart" in (later.remark or "")
        assert (await produced(wire, batch(1), acks=-1))[0] == ErrorCode.kafka_storage_error
        assert not broker.store.writable
        conn.close()

    # small files: the fault layer copies a file's bytes at every sync (for power-loss tests)
    small = {"mapped_file_size_commit_log": 1 << 20, "max_index_num": 1000, "max_hash_slot_num": 100}
    run(tmp_path, body, flush_disk_type="SYNC_FLUSH", flush_interval_commit_log=10, **small)

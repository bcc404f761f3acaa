"""A slave serves its master's compacted view: the master's log cleaner decides what survives, and
the slave copies the master's compacted parts with COMPACTED_PART (slave_sync.py) instead of
cleaning on its own, so reads below the cleaned point match the master's byte for byte."""

from __future__ import annotations

import time
from pathlib import Path

from ferrymq.core.broker.broker import Broker
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.store import BATCH_FORMAT_KAFKA_V2
from ferrymq.gateway.kafka import compaction
from ferrymq.gateway.kafka import records as rb
from tests.test_ha_link import until
from tests.test_slave_meta import ask, broker, client, in_loop, manual_slave

TOPIC = "changelog"
HOUR = 3_600_000


def view(b: Broker) -> list[bytes]:
    return [bytes(e.view) for e in b.store.entries(TOPIC, 0, 0)]


@in_loop
async def test_a_slave_reads_the_masters_compacted_view(tmp_path: Path) -> None:
    async with broker(tmp_path / "m", ha_listen_port=0) as m:
        assert m.ha_master is not None
        m.topics.create_if_absent(TOPIC, 1)
        now = int(time.time() * 1000)
        for base in range(0, 60, 6):
            recs: list[rb.RecordTuple] = [(i, now, f"k{(base + i) % 5}".encode(), b"v", []) for i in range(6)]
            batch = bytearray(rb.build_batch(0, recs))
            rb.patch_base(batch, base)
            m.store.put_batch_entry(TOPIC, 0, 6, BATCH_FORMAT_KAFKA_V2, bytes(batch))
        ha = f"127.0.0.1:{m.ha_master.port}"
        async with manual_slave(tmp_path / "s", ha_master_address=ha) as s, client(m.port) as conn:
            s.ha.master_addr = m.config.broker_addr
            s.ha.master_ha_addr = ha
            await until(lambda: len(view(s)) == 10, timeout=20)
            policy = compaction.CleanPolicy(HOUR, 0, 0.0)
            part = compaction.clean_partition(m.store, TOPIC, 0, policy, int(time.time() * 1000) + 1000)
            assert part is not None
            m.store.install_compacted(TOPIC, 0, part)
            assert len(view(m)) < 10 and view(s) != view(m)  # the slave still serves every record
            assert await s.slave_sync.sync_all()
            assert view(s) == view(m)
            assert (s.store.compacted[(TOPIC, 0)].end, s.store.compacted[(TOPIC, 0)].size) == (60, part.size)
            assert await s.slave_sync.sync_compacted(m.config.broker_addr) == 0  # up to date: nothing copied
            # a read of a part the master replaced (its end moved) is refused, not served stale
            ext = {"topic": TOPIC, "queueId": "0", "end": "59", "position": "0", "length": "10"}
            assert (await ask(conn, RequestCode.COMPACTED_PART, ext)).code == ResponseCode.SYSTEM_ERROR

"""Reference pitfall 8 (apache/rocketmq#9804): a topic created on the master (a send auto-creates
it) reached its slave only with the next metadata round (slaveSyncInterval, 10 s), so a failover
in between left the new master without the topic: pulls answered TOPIC_NOT_EXIST and sends
re-created it with the default queue count. A slave that replicates an entry of a topic it does
not know asks its master for the topic config at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import connect
from tests.cluster_helpers import topic_fields
from tests.remoting_helpers import send_v2
from tests.test_ha_link import until

TOPIC = "LagTopic"


def create(topic: str) -> RemotingCommand:
    return RemotingCommand(code=RequestCode.UPDATE_AND_CREATE_TOPIC, ext_fields=topic_fields(topic))


def test_a_slave_fetches_the_config_of_a_topic_it_replicates_without_knowing_it(tmp_path: Path) -> None:
    def config(name: str, **conf: object) -> BrokerConfig:
        base = {"listen_port": 0, "listen_host": "127.0.0.1", "store_path_root_dir": tmp_path / name}
        return BrokerConfig(**{**base, "slave_sync_interval": 600_000, **conf})

    async def main() -> None:
        master = Broker(config("m", default_topic_queue_nums=3))
        await master.start()
        conn = await connect("127.0.0.1", master.port)
        assert (await conn.invoke(create("Before"), timeout=5)).code == ResponseCode.SUCCESS
        slave = Broker(config("s", broker_role="SLAVE", broker_id=1, ha_master_address=master.ha_addr))
        slave.ha.master_addr = f"127.0.0.1:{master.port}"
        await slave.start()
        try:
            await until(lambda: slave.topics.get("Before") is not None)  # the first round is over
            r = await conn.invoke(send_v2(TOPIC, b"auto-created", 0), timeout=5)
            conn.close()
            assert r.code == ResponseCode.SUCCESS
            await until(lambda: slave.store.max_offset(TOPIC, 0) == 1)
            await until(lambda: slave.topics.get(TOPIC) is not None, 5)
            tc = slave.topics.get(TOPIC)
            assert tc is not None and tc.write_queue_nums == master.topics.get(TOPIC).write_queue_nums == 3
        finally:
            await slave.stop()
            await master.stop()

    asyncio.run(main())

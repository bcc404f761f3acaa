"""mqadmin consumerStatus against a lite-pull group: the broker forwards GET_CONSUMER_RUNNING_INFO
to the member, and ferrymq's lite-pull consumer answers as Java's DefaultLitePullConsumer does
(CONSUME_ACTIVELY, its subscriptions, a row per owned queue). Java's lite pull ignores a pushed
RESET_CONSUMER_CLIENT_OFFSET (MQClientInstance.resetOffset serves push consumers only), and so
does ours."""

from __future__ import annotations

import asyncio
import json
import re
import time

from ferrymq.cli.embedded import EmbeddedBroker
from ferrymq.client import AsyncLitePullConsumer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import connect, split_addr


def test_lite_pull_consumer_answers_running_info(ferrymq_broker: EmbeddedBroker) -> None:
    topic, group = "lite-info", "lite-info-g"
    ferrymq_broker.create_topic(topic, queues=2)

    async def main() -> None:
        consumer = AsyncLitePullConsumer(ferrymq_broker.namesrv_addr, group, consume_from="FIRST_OFFSET")
        consumer.subscribe(topic, "TagA")
        await consumer.start()
        conn = await connect(*split_addr(ferrymq_broker.broker_addr))
        try:
            async with asyncio.timeout(20):
                while not consumer.assignment():
                    await asyncio.sleep(0.05)  # the first rebalance runs in the background
            ask = RemotingCommand(
                code=RequestCode.GET_CONSUMER_RUNNING_INFO,
                ext_fields={"consumerGroup": group, "clientId": consumer.client_id, "jstackEnable": "false"},
            )
            started = time.monotonic()
            r = await conn.invoke(ask, timeout=10)
            assert time.monotonic() - started < 4  # answered, not left to the broker's timeout
            assert r.code == ResponseCode.SUCCESS, (r.code, r.remark)
            body = bytes(r.body).decode()
            props = json.loads(
                body.split(',"mqTable"')[0].split('"properties":', 1)[1].split("}", 1)[0] + "}"
            )
            assert props["PROP_CONSUME_TYPE"] == "CONSUME_ACTIVELY"
            assert props["consumerGroup"] == group
            assert f'"topic":"{topic}"' in body and '"subString":"TagA"' in body
            assert len(re.findall(rf'"topic":"{topic}"}}:{{"cachedMsg', body)) == 2, body
        finally:
            conn.close()
            await consumer.shutdown()

    asyncio.run(main())

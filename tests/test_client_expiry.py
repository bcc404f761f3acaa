"""A consumer that stops heartbeating expires (channelExpiredTimeout); the rest of its group is told."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import RemotingConnection, connect
from tests.remoting_helpers import heartbeat


def test_silent_consumer_expires_and_the_group_is_notified(tmp_path: Path) -> None:
    conf = "channelExpiredTimeout=600\nflushConsumerOffsetInterval=100\n"

    async def scenario(server: FerryServer) -> None:
        host, port = server.broker_addr.split(":")
        notified = asyncio.Event()

        def on_request(cmd: RemotingCommand, conn: RemotingConnection) -> None:
            if (
                cmd.code == RequestCode.NOTIFY_CONSUMER_IDS_CHANGED
                and cmd.ext_fields.get("consumerGroup") == "eg"
            ):
                notified.set()

        silent = await connect(host, int(port))
        alive = await connect(host, int(port), on_request)
        try:
            assert (
                await silent.invoke(heartbeat("silent-1", "eg", "ExpiryTopic"))
            ).code == ResponseCode.SUCCESS
            assert (
                await alive.invoke(heartbeat("alive-1", "eg", "ExpiryTopic"))
            ).code == ResponseCode.SUCCESS
            listed = await alive.invoke(
                RemotingCommand(
                    code=RequestCode.GET_CONSUMER_LIST_BY_GROUP, ext_fields={"consumerGroup": "eg"}
                )
            )
            assert json.loads(listed.body)["consumerIdList"] == ["alive-1", "silent-1"]
            notified.clear()

            async def keep_alive() -> None:
                while True:
                    await alive.invoke(heartbeat("alive-1", "eg", "ExpiryTopic"))
                    await asyncio.sleep(0.1)

            beating = asyncio.create_task(keep_alive())
            try:
                # the silent member's connection is closed by the broker when it expires
                await asyncio.wait_for(silent.closed.wait(), 10)
                await asyncio.wait_for(notified.wait(), 10)
                listed = await alive.invoke(
                    RemotingCommand(
                        code=RequestCode.GET_CONSUMER_LIST_BY_GROUP, ext_fields={"consumerGroup": "eg"}
                    )
                )
                assert json.loads(listed.body)["consumerIdList"] == ["alive-1"]
            finally:
                beating.cancel()
        finally:
            silent.close()
            alive.close()

    with FerryServer(tmp_path / "srv", conf) as server:
        asyncio.run(scenario(server))

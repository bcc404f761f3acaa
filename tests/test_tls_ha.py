"""haTlsEnable: a slave replicates from its master over a TLS HA link (and identifies itself over
a TLS remoting connection when the master enforces TLS); a plaintext HA client gets nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.core.ha.codec import encode_report
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.transport import connect
from tests.remoting_helpers import send_v2
from tests.test_ha_link import until
from tests.tls_certs import make_certs

TOPIC = "TlsHaTopic"


def test_a_slave_replicates_over_tls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    tls: dict[str, Any] = {
        **certs.broker_conf("enforcing"),
        "haTlsEnable": True,
        "tls.enable": True,
        "tls.client.trustCertPath": certs.ca,
    }

    def config(name: str, **conf: object) -> BrokerConfig:
        base = {"listenPort": 0, "listenHost": "127.0.0.1", "storePathRootDir": tmp_path / name}
        return BrokerConfig.build({**base, "mappedFileSizeCommitLog": 65536, **tls, **conf})

    async def main() -> None:
        master = Broker(config("m"))
        await master.start()
        assert master.ha_master is not None and master.ha_addr is not None
        slave = Broker(config("s", brokerRole="SLAVE", brokerId=1, haMasterAddress=master.ha_addr))
        slave.ha.master_addr = f"127.0.0.1:{master.port}"
        await slave.start()
        try:
            conn = await connect("127.0.0.1", master.port, ssl_context=certs.client())
            assert (await conn.invoke(send_v2(TOPIC, b"over tls", 0), timeout=5)).code == ResponseCode.SUCCESS
            conn.close()
            await until(lambda: slave.store.max_offset(TOPIC, 0) == 1)
            await until(lambda: not master.ha.foreign)  # HA_SLAVE_HELLO went over TLS too
            # a plaintext HA client: its report is not TLS, the master never counts it
            host, port = master.ha_addr.rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(encode_report(0))
            await writer.drain()
            try:
                assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, nothing sent
            except ConnectionResetError:  # closed with the report unread
                pass
            writer.close()
        finally:
            await slave.stop()
            await master.stop()

    asyncio.run(asyncio.wait_for(main(), 60))

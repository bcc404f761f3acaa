"""End to end over real replication (core/ha): ``ferrymq serve --slaves 1`` keeps its slave in
sync and the admin API says so; a Kafka acks=all produce to a SYNC_MASTER group is answered once
the slave has the batch; a stopped slave (SIGSTOP) makes acks=all with min.insync.replicas=2
time out while it still counts as in sync, and be refused with NOT_ENOUGH_REPLICAS once the
master dropped it, while acks=1 keeps working; after SIGCONT acks=all succeeds again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
from kio.schema.errors import ErrorCode

from ferrymq.cli.testing import FerryBroker, FerryServer
from ferrymq.core.remoting.codes import RequestCode
from tests.cluster_helpers import call
from tests.test_admin_api import eventually
from tests.test_kafka_acks_all import produce
from tests.test_kafka_frontend import Wire, batch, create_topic


def ha_status(addr: str) -> dict[str, Any]:
    return json.loads(bytes(call(addr, RequestCode.GET_BROKER_HA_STATUS, {}).body))


def slaves_in_sync(h: httpx.Client, n: int = 1) -> bool:
    """The master's admin API shows ``n`` slaves, all in sync with nothing left to acknowledge."""
    master = next(b for b in h.get("/api/cluster").json()["brokers"] if b["local"])
    slaves = (master["replication"] or {}).get("slaves") or []
    return len(slaves) == n and all(s["in_sync"] and s["lag_bytes"] == 0 for s in slaves)


def kafka(srv: FerryServer, requests: list[Any]) -> list[Any]:
    """Each request's response, in order, on one Kafka connection."""

    async def go() -> list[Any]:
        w = await Wire.open(srv.kafka_port)
        try:
            return [await w.call(r) for r in requests]
        finally:
            w.writer.close()

    return asyncio.run(go())


def produce_error(srv: FerryServer, acks: int, timeout_ms: int = 5000) -> ErrorCode:
    """One record produced to partition 0 of "kt" (TOPIC of the Kafka tests)."""
    (r,) = kafka(srv, [produce(batch(1), acks, timeout_ms)])
    return ErrorCode(r.responses[0].partition_responses[0].error_code)


def test_serve_slaves_replicates_and_acks_all_waits_for_the_slave(tmp_path: Path) -> None:
    conf = "brokerRole=SYNC_MASTER\n"
    with FerryServer(tmp_path / "srv", conf, extra_args=["--slaves", "1"]) as srv:
        with httpx.Client(base_url=srv.admin_url, timeout=10) as h:
            h.post("/api/topics", json={"name": "kt", "queues": 1}).raise_for_status()
            assert eventually(lambda: slaves_in_sync(h))
            h.post(
                "/api/topics/kt/messages", json={"body": "hello"}
            ).raise_for_status()  # waits for the slave
            assert slaves_in_sync(h)
            slave = next(b for b in h.get("/api/cluster").json()["brokers"] if b["broker_id"] == 1)
            assert slave["replication"]["master_connected"] is True
        assert produce_error(srv, -1) == ErrorCode.none
        master_end = ha_status(srv.broker_addr)["masterCommitLogMaxOffset"]
        slave_end = ha_status(f"{srv.host}:{srv.ports['slave1']}")["haClientRuntimeInfo"]["maxOffset"]
        assert slave_end >= master_end  # the slave had the batch before the answer


def test_a_stopped_slave_and_min_insync_replicas(tmp_path: Path) -> None:
    conf = "brokerRole=SYNC_MASTER\nhaSendHeartbeatInterval=1000\nhaHousekeepingInterval=4000\n"
    with FerryServer(tmp_path / "srv", conf) as srv:
        assert srv.ha_addr is not None
        slave = FerryBroker(
            tmp_path / "slave",
            srv.namesrv_addr,
            "broker-a",
            conf={
                "brokerRole": "SLAVE",
                "brokerId": "1",
                "haMasterAddress": srv.ha_addr,
                "haSendHeartbeatInterval": "1000",  # an idle slave reports within the 4 s timeout
            },
        )
        assert slave.proc is not None
        pid = slave.proc.pid
        try:
            (created,) = kafka(srv, [create_topic("kt", 1, min_insync_replicas="2")])
            assert created.topics[0].error_code == ErrorCode.none
            with httpx.Client(base_url=srv.admin_url, timeout=10) as h:
                assert eventually(lambda: slaves_in_sync(h))
                assert produce_error(srv, -1) == ErrorCode.none
                os.kill(pid, signal.SIGSTOP)
                # still in the in-sync set until the master's housekeeping drops it: the wait
                # times out (or ends with the set shrunk, if housekeeping struck meanwhile)
                assert produce_error(srv, -1, timeout_ms=1000) in (
                    ErrorCode.request_timed_out,
                    ErrorCode.not_enough_replicas_after_append,
                )
                assert produce_error(srv, 1) == ErrorCode.none
                assert eventually(lambda: slaves_in_sync(h, 0), timeout=20)
                assert produce_error(srv, -1) == ErrorCode.not_enough_replicas
                assert produce_error(srv, 1) == ErrorCode.none
                os.kill(pid, signal.SIGCONT)
                assert eventually(lambda: slaves_in_sync(h), timeout=30)
                assert produce_error(srv, -1) == ErrorCode.none
        finally:
            os.kill(pid, signal.SIGCONT)
            slave.stop()

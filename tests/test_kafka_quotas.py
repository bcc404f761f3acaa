"""Kafka client quotas over real sockets: DescribeClientQuotas / AlterClientQuotas as Kafka answers them,
and a client over its produce or fetch byte rate or its request-time share answered at once with
throttle_time_ms, then not read from for that long (KIP-219).

Windows are 2 x 1 s here (quotaWindowNum=2): a first burst of B bytes is averaged over one second, so the
throttle of a rate bound T is (B - T) / T * 1000 ms, small enough to watch.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from kio.schema.alter_client_quotas.v1.request import AlterClientQuotasRequest, EntityData, EntryData, OpData
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.describe_client_quotas.v1.request import ComponentData, DescribeClientQuotasRequest
from kio.schema.errors import ErrorCode

from ferrymq.core.broker.broker import Broker
from ferrymq.gateway.kafka.framing import encode_request
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from ferrymq.gateway.kafka.responses import millis
from tests.test_kafka_frontend import Wire, batch, fetch, produce, run

CLIENT = "wire-test"  # the client id Wire sends
WINDOWS = {"quota_window_num": 2, "quota_window_size_seconds": 1}


def alter(
    *entries: tuple[dict[str, str | None], dict[str, float | None]], validate_only: bool = False
) -> Any:
    return AlterClientQuotasRequest(
        entries=tuple(
            EntryData(
                entity=tuple(EntityData(entity_type=t, entity_name=n) for t, n in ent.items()),
                ops=tuple(
                    OpData(key=k, value=0.0 if v is None else v, remove=v is None) for k, v in ops.items()
                ),
            )
            for ent, ops in entries
        ),
        validate_only=validate_only,
    )


def describe(*components: tuple[str, int, str | None], strict: bool = False) -> Any:
    return DescribeClientQuotasRequest(
        components=tuple(ComponentData(entity_type=t, match_type=m, match=n) for t, m, n in components),
        strict=strict,
    )


def described(response: Any) -> dict[tuple[tuple[str, str | None], ...], dict[str, float]]:
    assert response.error_code == ErrorCode.none, response
    return {
        tuple((e.entity_type, e.entity_name) for e in entry.entity): {v.key: v.value for v in entry.values}
        for entry in response.entries
    }


def test_alter_and_describe_client_quotas(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        r = await w.call(alter(({"user": "alice"}, {"producer_byte_rate": 1024.0}), validate_only=True))
        assert [e.error_code for e in r.entries] == [ErrorCode.none]
        assert described(await w.call(describe())) == {}
        r = await w.call(
            alter(
                ({"user": "alice"}, {"producer_byte_rate": 1024.0, "consumer_byte_rate": 2048.0}),
                ({"user": None, "client-id": "c1"}, {"request_percentage": 50.0}),
                ({"client-id": None}, {"consumer_byte_rate": 10.0}),
                ({"ip": "1.2.3.4"}, {"producer_byte_rate": 1.0}),
                ({"user": "bob"}, {"producer_byte_rate": -1.0}),
                ({"user": "bob"}, {"no_such_quota": 1.0}),
            )
        )
        codes = [e.error_code for e in r.entries]
        assert codes == [ErrorCode.none] * 3 + [ErrorCode.invalid_request] * 3
        assert "ip" in r.entries[3].error_message
        refused = [
            r.getMessage() for r in caplog.records if "AlterClientQuotas from 127.0.0.1" in r.getMessage()
        ]
        assert len(refused) == 3, refused  # each bad entry logged with its peer
        everything = described(await w.call(describe()))
        assert everything == {
            (("user", "alice"),): {"producer_byte_rate": 1024.0, "consumer_byte_rate": 2048.0},
            (("client-id", "c1"), ("user", None)): {"request_percentage": 50.0},
            (("client-id", None),): {"consumer_byte_rate": 10.0},
        }
        assert set(described(await w.call(describe(("user", 0, "alice"), strict=True)))) == {
            (("user", "alice"),)
        }
        assert set(described(await w.call(describe(("user", 1, None))))) == {
            (("client-id", "c1"), ("user", None))
        }
        assert len(described(await w.call(describe(("client-id", 2, None), strict=True)))) == 1
        bad = await w.call(describe(("ip", 2, None)))
        assert bad.error_code == ErrorCode.invalid_request
        # removal; the file (fsynced) keeps what is left
        await w.call(alter(({"user": "alice"}, {"consumer_byte_rate": None})))
        saved = json.loads((broker.config.store_path_root_dir / "config" / "quotas.json").read_text())
        assert {json.dumps(q["values"], sort_keys=True) for q in saved["quotas"]} == {
            '{"producer_byte_rate": 1024.0}',
            '{"request_percentage": 50.0}',
            '{"consumer_byte_rate": 10.0}',
        }

    with caplog.at_level(logging.INFO, logger="ferrymq.kafka"):
        run(tmp_path, body)


def test_quota_apis_need_cluster_config_permissions(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)  # User:ANONYMOUS, no ACLs
        r = await w.call(alter(({"user": "alice"}, {"producer_byte_rate": 1.0})))
        assert r.entries[0].error_code == ErrorCode.cluster_authorization_failed
        assert (await w.call(describe())).error_code == ErrorCode.cluster_authorization_failed
        assert broker.security.quotas.entries() == {}

    run(tmp_path, body, kafka_authorizer_enable=True)


def test_produce_over_quota_is_answered_with_throttle_then_muted(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await w.call(alter(({"client-id": CLIENT}, {"producer_byte_rate": 100_000.0})))
        request = produce(batch(150, value_size=1000))
        size = len(encode_request(request, 1, CLIENT)) - 4  # the frame, as Kafka's request.sizeInBytes
        r = await w.call(request)
        answered = time.monotonic()
        assert r.responses[0].partition_responses[0].error_code == ErrorCode.none
        expected = round((size - 100_000) / 100_000 * 1000)  # size bytes over a 1 s window
        assert abs(millis(r.throttle_time) - expected) <= 2, (millis(r.throttle_time), expected)
        # muted: the next request is read only once the throttle time is over
        await w.call(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
        assert time.monotonic() - answered >= 0.9 * expected / 1000
        # another client id has no quota
        other = await Wire.open(f.port)
        assert millis((await call_as(other, request, "someone-else")).throttle_time) == 0

    run(tmp_path, body, **WINDOWS)


def test_fetch_over_quota_is_answered_empty_with_throttle(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        for _ in range(10):
            await w.call(produce(batch(10, value_size=1000)))  # ten batches of about 10 kB
        await w.call(alter(({"user": "ANONYMOUS"}, {"consumer_byte_rate": 30_000.0})))
        first = await w.call(fetch(0))
        data = first.responses[0].partitions[0].records
        # max_bytes capped at one window's worth (30 000 B/s x 1 s): within quota, not throttled
        assert 20_000 < len(data) <= 30_000 and millis(first.throttle_time) == 0
        # the next fetch doubles the rate: answered at once with no partitions and a throttle time
        second = await w.call(fetch(30))
        assert millis(second.throttle_time) > 0 and second.responses == ()

    run(tmp_path, body, **WINDOWS)


def test_request_percentage_throttles_every_api(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await w.call(alter(({"client-id": None}, {"request_percentage": 0.0})))
        r = await w.call(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
        assert millis(r.throttle_time) == 1000  # capped at one window (ClientRequestQuotaManager)

    run(tmp_path, body, **WINDOWS)


async def call_as(wire: Wire, request: Any, client_id: str) -> Any:
    corr = next(wire.corr)
    wire.writer.write(encode_request(request, corr, client_id))
    got, response = await wire.receive(type(request))
    assert got == corr
    return response

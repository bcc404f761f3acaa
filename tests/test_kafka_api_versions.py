"""ApiVersions as one Kafka release (4.0, gateway/kafka/release.py) and every advertised version served.

Before: maxima were a mix (Fetch 12 and Metadata 12 next to 3.x/4.x others; DescribeLogDirs, DescribeQuorum,
DescribeTopicPartitions... absent), so a client inferred no single release.
The walk sends each advertised key at its advertised maximum with a minimal body and expects an answer
that is not UNSUPPORTED_VERSION (and no closed connection).
"""

from __future__ import annotations

import dataclasses
import datetime
import typing
import uuid
from pathlib import Path
from typing import Any

from kio.index import load_request_schema
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.errors import ErrorCode

from ferrymq.core.broker.broker import Broker
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from ferrymq.gateway.kafka.release import KAFKA_4_0_MAX, SHARE_GROUP_VERSIONS
from tests.test_kafka_frontend import Wire, run

#: SASL needs a SASL listener (a plaintext one closes on SaslAuthenticate, as Kafka does)
SKIPPED = {17, 36}
#: fields whose zero value means something else than "a minimal request"
OVERRIDES: dict[str, Any] = {"acks": 1, "timeout": datetime.timedelta(seconds=1)}


def minimal(cls: type[Any]) -> Any:
    """``cls`` with every field at its type's empty value (nested entities built the same way)."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        values[f.name] = OVERRIDES.get(f.name, _empty(hints[f.name]))
    return cls(**values)


def _empty(tp: Any) -> Any:
    args = typing.get_args(tp)
    if type(None) in args:
        return None
    origin = typing.get_origin(tp)
    if origin is tuple:
        return ()
    if dataclasses.is_dataclass(tp):
        return minimal(tp)
    base = getattr(tp, "__supertype__", tp)
    while hasattr(base, "__supertype__"):
        base = base.__supertype__
    for kind, value in (
        (bool, False),
        (int, 0),
        (str, ""),
        (bytes, b""),
        (uuid.UUID, uuid.UUID(int=0)),
        (datetime.timedelta, datetime.timedelta(0)),
        (float, 0.0),
    ):
        if isinstance(base, type) and issubclass(base, kind):
            return value
    if isinstance(base, type) and issubclass(base, ErrorCode):
        return ErrorCode.none
    raise TypeError(f"no empty value for {tp!r}")


def _codes(entity: Any) -> list[int]:
    """Every error code anywhere in a response."""
    out = []
    for f in dataclasses.fields(entity):
        value = getattr(entity, f.name)
        if f.name == "error_code":
            out.append(int(value))
        elif dataclasses.is_dataclass(value):
            out += _codes(value)
        elif isinstance(value, tuple):
            out += [c for v in value if dataclasses.is_dataclass(v) for c in _codes(v)]
    return out


def test_every_advertised_key_is_kafka_4_0s_and_served_at_its_maximum(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        r = await wire.call(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
        advertised = {int(k.api_key): (int(k.min_version), int(k.max_version)) for k in r.api_keys}
        share = {k: advertised.pop(k, None) for k in SHARE_GROUP_VERSIONS}
        assert share == SHARE_GROUP_VERSIONS, "share groups as Kafka 4.2 advertises them"
        assert all(lo == 0 for lo, _ in advertised.values())
        wrong = {
            k: (hi, KAFKA_4_0_MAX.get(k)) for k, (_, hi) in advertised.items() if KAFKA_4_0_MAX.get(k) != hi
        }
        assert not wrong, f"advertised max differs from Kafka 4.0's: {wrong}"
        for key, (_, top) in sorted(advertised.items()):
            if key in SKIPPED:
                continue
            request = minimal(load_request_schema(key, top))
            response = await wire.call(request)
            assert ErrorCode.unsupported_version not in _codes(response), (key, top, response)
        wire.close()

    run(tmp_path, body)


def test_the_apis_clients_of_kafka_3_8_to_4_x_call_are_advertised(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        r = await wire.call(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
        keys = {int(k.api_key) for k in r.api_keys}
        wire.close()
        assert {1, 3, 35, 43, 45, 46, 55, 61, 71, 72, 74, 75} <= keys

    run(tmp_path, body)

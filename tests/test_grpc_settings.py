"""What the gRPC listener answers a consumer's Telemetry Settings with (the proxy's
``GrpcClientSettingsManager.mergeSubscriptionData``): the receive batch size and long-polling
limit come from the broker's config, FIFO and attempts from the group. In-process, no sockets."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("grpc")

from ferrymq.core.broker.subscription_group import SubscriptionGroupConfig, SubscriptionGroupManager
from ferrymq.core.config import BrokerConfig
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.telemetry import Clients


def clients(tmp_path: Path, **config: Any) -> Clients:
    groups = SubscriptionGroupManager(tmp_path / "subscriptionGroup.json", auto_create=False)
    groups.update(SubscriptionGroupConfig(groupName="Orderly", consumeMessageOrderly=True, retryMaxTimes=3))
    broker = SimpleNamespace(config=BrokerConfig(**config), subscription_groups=groups)
    return Clients(broker)  # type: ignore[arg-type]


def consumer_settings(group: str) -> Any:
    settings = pb.Settings(client_type=pb.PUSH_CONSUMER)
    settings.subscription.group.name = group
    settings.subscription.receive_batch_size = 7
    settings.subscription.long_polling_timeout.FromSeconds(30)
    return settings


def test_consumer_settings_take_the_configured_batch_size_and_long_polling_limit(tmp_path: Path) -> None:
    config = {
        "grpcClientConsumerMaxLongPollingTimeoutMillis": 2_000,
        "grpcClientConsumerLongPollingBatchSize": 8,
    }
    reply = clients(tmp_path, **config).settings_reply(consumer_settings("Orderly"))
    sub = reply.subscription
    assert (sub.receive_batch_size, sub.long_polling_timeout.ToMilliseconds()) == (8, 2_000)
    assert sub.fifo and reply.backoff_policy.max_attempts == 4


def test_consumer_settings_defaults_are_the_proxys(tmp_path: Path) -> None:
    reply = clients(tmp_path).settings_reply(consumer_settings("Orderly"))
    sub = reply.subscription
    assert (sub.receive_batch_size, sub.long_polling_timeout.ToMilliseconds()) == (32, 20_000)

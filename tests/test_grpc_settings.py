"""What the gRPC listener does with a consumer's Telemetry Settings, as the proxy does: answers with
the receive batch size and long-polling limit from the broker's config, FIFO and attempts from the
group (``GrpcClientSettingsManager.mergeSubscriptionData``), and registers the client as a consumer
of its group with its subscriptions (``ClientActivity.registerConsumer``) until its stream ends or it
terminates. In-process, no sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("grpc")

from ferrymq.core.broker.client_manager import ClientManager
from ferrymq.core.broker.subscription_group import SubscriptionGroupConfig, SubscriptionGroupManager
from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import RemotingError
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.protocol import service_pb2 as spb
from ferrymq.gateway.grpc.telemetry import Clients, ClientSession, GrpcProducerLink


def clients(tmp_path: Path, **config: Any) -> Clients:
    groups = SubscriptionGroupManager(tmp_path / "subscriptionGroup.json", auto_create=False)
    groups.update(SubscriptionGroupConfig(groupName="Orderly", consumeMessageOrderly=True, retryMaxTimes=3))
    broker = SimpleNamespace(
        config=BrokerConfig(**config), subscription_groups=groups, clients=ClientManager()
    )
    return Clients(broker)  # type: ignore[arg-type]


def consumer_settings(group: str, *subscriptions: tuple[str, int, str]) -> Any:
    """A PushConsumer's settings; ``subscriptions`` are (topic, filter type, expression)."""
    settings = pb.Settings(client_type=pb.PUSH_CONSUMER)
    settings.subscription.group.name = group
    for topic, kind, expression in subscriptions:
        entry = settings.subscription.subscriptions.add()
        entry.topic.name, entry.expression.type, entry.expression.expression = topic, kind, expression
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


def telemetry_of(settings: Any) -> Any:
    return spb.TelemetryCommand(settings=settings)


async def _serve_one_settings(clients_: Clients, settings: Any, after: Any) -> None:
    """One Telemetry stream that writes ``settings``, runs ``after()`` once answered, then ends."""
    answered = asyncio.Event()

    async def commands() -> AsyncIterator[Any]:
        yield telemetry_of(settings)
        await answered.wait()

    stream = clients_.stream(ClientSession("cid-1", "10.0.0.7:5555"), commands())
    reply = await anext(stream)
    assert reply.status.code == pb.OK
    after()
    answered.set()
    async for _ in stream:
        pass


def test_a_consumers_settings_register_it_with_its_subscriptions_until_its_stream_ends(
    tmp_path: Path,
) -> None:
    c = clients(tmp_path)
    settings = consumer_settings("Orderly", ("Orders", pb.TAG, "TagA || TagB"))
    seen: list[Any] = []

    def registered() -> None:
        info = c.broker.clients.consumer_group("Orderly")
        assert info is not None
        seen.append((info.client_ids(), info.consume_type, info.subscriptions["Orders"].sub_string))
        c.heartbeat("cid-1")  # a heartbeat keeps it, as the proxy's re-registration does

    asyncio.run(_serve_one_settings(c, settings, registered))
    assert seen == [(["cid-1"], "CONSUME_PASSIVELY", "TagA || TagB")]
    assert c.broker.clients.consumer_group("Orderly") is None


def test_a_simple_consumer_is_consume_actively_and_leaves_on_termination(tmp_path: Path) -> None:
    c = clients(tmp_path)
    settings = consumer_settings("Orderly")
    settings.client_type = pb.SIMPLE_CONSUMER
    seen: list[Any] = []

    def terminate() -> None:
        info = c.broker.clients.consumer_group("Orderly")
        seen.append(info and info.consume_type)
        c.terminate("cid-1")  # NotifyClientTermination
        seen.append(c.broker.clients.consumer_group("Orderly"))

    asyncio.run(_serve_one_settings(c, settings, terminate))
    assert seen == ["CONSUME_ACTIVELY", None]


def test_an_sql92_subscription_is_kept_as_written(tmp_path: Path) -> None:
    c = clients(tmp_path)
    settings = consumer_settings("Orderly", ("Orders", pb.SQL, "a > 1"))
    seen: list[Any] = []

    def registered() -> None:
        info = c.broker.clients.consumer_group("Orderly")
        sub = info.subscriptions["Orders"] if info else None
        seen.append(sub and (sub.sub_string, sub.expression_type))

    asyncio.run(_serve_one_settings(c, settings, registered))
    assert seen == [("a > 1", "SQL92")]


def test_a_remoting_request_to_a_grpc_client_is_refused_not_left_to_time_out() -> None:
    """A request nothing on the stream answers (running info and direct consumption are, see
    test_grpc_client_commands.py)."""
    link = GrpcProducerLink(ClientSession("cid-1", "10.0.0.7:5555", "JAVA"))
    ask = RemotingCommand(code=RequestCode.GET_CONSUMER_CONNECTION_LIST)
    with pytest.raises(RemotingError, match="gRPC client cid-1 does not answer remoting request"):
        asyncio.run(link.invoke(ask, 30))

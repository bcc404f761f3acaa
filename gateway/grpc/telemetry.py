"""Clients: the Telemetry stream, Heartbeat and NotifyClientTermination (the proxy's ``ClientActivity``).

A client is known by its ``x-mq-client-id`` metadata (CLIENT_ID_REQUIRED without it). On its
Telemetry stream it writes its Settings; the broker answers with the settings it will apply, as
``GrpcClientSettingsManager`` merges them: producers get a backoff of 3 attempts (10 ms, doubling,
at most 1 s), ``max_body_size`` = maxMessageSize and ``validate_message_type``; consumers get a
receive batch of grpcClientConsumerLongPollingBatchSize (32), a long-polling limit of
grpcClientConsumerMaxLongPollingTimeoutMillis (20 s), FIFO from the group's consumeMessageOrderly and
retryMaxTimes + 1 attempts. A client that never receives that answer cannot start (the Python SDK
waits 10 s for it).

A producer is registered in the broker's ``ClientManager`` under each topic it publishes to (the
proxy's producer group for transactional messages is the topic), with a ``GrpcProducerLink`` as its
connection: the transaction checker's CHECK_TRANSACTION_STATE to that link becomes a
RecoverOrphanedTransactionCommand on the client's stream; the client answers with EndTransaction
(SOURCE_SERVER_CHECK). A consumer is registered as the proxy's ``registerConsumer`` does: a
member of its group (SIMPLE_CONSUMER as CONSUME_ACTIVELY, PUSH_CONSUMER as CONSUME_PASSIVELY,
CLUSTERING) with the subscriptions of its settings, so consumerConnection lists it beside remoting
consumers (expressions are checked by ReceiveMessage). Heartbeats keep the registrations fresh;
the stream's end or NotifyClientTermination removes them. The link answers mqadmin's
GET_CONSUMER_RUNNING_INFO and CONSUME_MESSAGE_DIRECTLY through the stream (client_commands.py);
other remoting requests are refused at once. Each stream's outgoing commands are
bounded (``OUTBOX``): a client that does not read loses checks (logged), never the broker's memory.
A stream that sends no settings within grpcTelemetrySettingsTimeoutMillis is answered BAD_REQUEST
and closed (logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ferrymq.core.broker.client_manager import ClientChannel
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import decode_stored_message
from ferrymq.core.remoting.subscription import SubscriptionData
from ferrymq.core.remoting.transport import RemotingConnection, RemotingError
from ferrymq.gateway.grpc import client_commands
from ferrymq.gateway.grpc.mapping import to_proto
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.protocol import service_pb2 as spb
from ferrymq.gateway.grpc.route import status

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.grpc")

OUTBOX = 256
LANGUAGE_CODES = frozenset(
    [
        "JAVA",
        "CPP",
        "DOTNET",
        "PYTHON",
        "DELPHI",
        "ERLANG",
        "RUBY",
        "OTHER",
        "HTTP",
        "GO",
        "PHP",
        "OMS",
        "RUST",
        "NODE_JS",
    ]
)
#: the remoting consume type a gRPC consumer is listed with (the proxy's buildConsumeType)
CONSUME_TYPES = {pb.SIMPLE_CONSUMER: "CONSUME_ACTIVELY", pb.PUSH_CONSUMER: "CONSUME_PASSIVELY"}
#: delays a consumer's n-th retry waits (RocketMQ's delay levels 3 and up, the group's default policy)
RETRY_DELAYS_S = [1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200]


@dataclass(eq=False)
class ClientSession:
    """One client's Telemetry stream and what it told us."""

    client_id: str
    peer: str
    #: its ``x-mq-language`` (JAVA, PYTHON, ...), what consumerConnection shows
    language: str = "OTHER"
    outbox: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(OUTBOX))
    topics: set[str] = field(default_factory=set)
    #: a consumer's group, client type and subscriptions, from its settings ("" for a producer)
    group: str = ""
    consume_type: str = ""
    subscriptions: list[SubscriptionData] = field(default_factory=list)
    open: bool = True
    #: the client has sent its settings (a stream that does not in time is closed)
    settled: bool = False
    #: broker-initiated commands waiting for the client's answer, by nonce
    replies: client_commands.Replies = field(default_factory=client_commands.Replies)

    def push(self, command: Any) -> bool:
        try:
            self.outbox.put_nowait(command)
        except asyncio.QueueFull:
            log.warning(
                "gRPC client %s at %s reads no telemetry: a command was dropped",
                self.client_id,
                self.peer,
                extra={"peer": self.peer},
            )
            return False
        return True


class GrpcProducerLink(RemotingConnection):
    """What the broker sees of a gRPC client (producer or consumer): a oneway CHECK_TRANSACTION_STATE
    sent to it becomes a RecoverOrphanedTransactionCommand on the client's Telemetry stream; other
    oneway commands (consumer ids changed, offset resets) are dropped; running info and direct
    consumption are asked on the stream, other requests refused."""

    def __init__(self, session: ClientSession) -> None:
        super().__init__()
        self.session = session
        self.peer = session.peer

    @property
    def is_open(self) -> bool:
        return self.session.open

    async def invoke(self, cmd: RemotingCommand, timeout: float = 3.0) -> RemotingCommand:
        """Running info and direct consumption: asked on the stream, awaited at most ``timeout``; any
        other request is refused at once, not left to time out, since nothing on the stream answers it."""
        if cmd.code in client_commands.ANSWERED:
            return await client_commands.ask(self.session, cmd, timeout)
        raise RemotingError(
            f"gRPC client {self.session.client_id} does not answer remoting request code {cmd.code}"
        )

    def invoke_oneway(self, cmd: RemotingCommand) -> None:
        if cmd.code != RequestCode.CHECK_TRANSACTION_STATE:
            return
        msg = decode_stored_message(bytes(cmd.body))
        command = spb.TelemetryCommand()
        recover = command.recover_orphaned_transaction_command
        recover.message.CopyFrom(to_proto(msg, msg.topic))
        recover.transaction_id = cmd.ext_fields.get("offsetMsgId", "")
        self.session.push(command)


class Clients:
    """Every gRPC client of this listener with an open Telemetry stream."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.sessions: dict[str, ClientSession] = {}
        self.links: dict[str, GrpcProducerLink] = {}

    def settings_reply(self, settings: Any) -> Any:
        out = pb.Settings()
        out.CopyFrom(settings)
        if settings.HasField("publishing"):
            backoff = out.backoff_policy
            backoff.max_attempts = 3
            backoff.exponential_backoff.initial.FromMilliseconds(10)
            backoff.exponential_backoff.max.FromMilliseconds(1000)
            backoff.exponential_backoff.multiplier = 2.0
            out.publishing.max_body_size = self.broker.config.max_message_size
            out.publishing.validate_message_type = True
        elif settings.HasField("subscription"):
            group = self.broker.subscription_groups.find(settings.subscription.group.name)
            cfg = self.broker.config
            out.subscription.receive_batch_size = cfg.grpc_client_consumer_long_polling_batch_size
            out.subscription.long_polling_timeout.FromMilliseconds(
                cfg.grpc_client_consumer_max_long_polling_timeout_millis
            )
            out.subscription.fifo = bool(group and group.consume_message_orderly)
            retries = group.retry_max_times if group else 16
            out.backoff_policy.max_attempts = retries + 1
            out.backoff_policy.customized_backoff.ClearField("next")
            for seconds in RETRY_DELAYS_S:
                out.backoff_policy.customized_backoff.next.add(seconds=seconds)
        out.metric.on = False
        return out

    def _link(self, session: ClientSession) -> GrpcProducerLink:
        link = self.links.get(session.client_id)
        if link is None or link.session is not session:
            link = self.links[session.client_id] = GrpcProducerLink(session)
        return link

    def register_producer(self, session: ClientSession, topics: list[str]) -> None:
        link = self._link(session)
        session.topics.update(topics)
        channel = ClientChannel(session.client_id, link, session.language, 0)
        for topic in session.topics:
            self.broker.clients.register_producer(topic, channel)

    def take_consumer_settings(self, session: ClientSession, settings: Any) -> None:
        """Remember a consumer's group and subscriptions (the proxy's ``FilterAPI.build``: a TAG
        expression split into tags, an SQL92 one kept as written) and register it."""
        version = int(time.time() * 1000)  # newer settings replace what the group had
        session.subscriptions = [
            SubscriptionData.build(e.topic.name, e.expression.expression, version)
            if e.expression.type != pb.SQL
            else SubscriptionData.sql92(e.topic.name, e.expression.expression, version)
            for e in settings.subscription.subscriptions
        ]
        session.group = settings.subscription.group.name
        session.consume_type = CONSUME_TYPES.get(settings.client_type, "CONSUME_PASSIVELY")
        self.register_consumer(session)

    def register_consumer(self, session: ClientSession) -> None:
        """As a remoting consumer's heartbeat does: listed by consumerConnection with what it subscribed."""
        channel = ClientChannel(session.client_id, self._link(session), session.language, 0)
        self.broker.clients.register_consumer(
            session.group,
            channel,
            session.consume_type,
            "CLUSTERING",
            "CONSUME_FROM_LAST_OFFSET",
            session.subscriptions,
        )

    def heartbeat(self, client_id: str) -> None:
        session = self.sessions.get(client_id)
        if session is not None and session.topics:
            self.register_producer(session, [])
        if session is not None and session.group:
            self.register_consumer(session)

    def terminate(self, client_id: str) -> None:
        session = self.sessions.pop(client_id, None)
        link = self.links.pop(client_id, None)
        if session is None:
            return
        session.open = False
        session.replies.fail_all(f"gRPC client {client_id} closed its Telemetry stream")
        if link is not None:
            for topic in session.topics:
                self.broker.clients.unregister_producer(topic, link)
            if session.group:
                self.broker.clients.unregister_consumer(session.group, link)

    async def stream(self, session: ClientSession, commands: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """Serve one Telemetry stream: read the client's commands while writing ours."""
        old = self.sessions.get(session.client_id)
        if old is not None:
            self.terminate(session.client_id)
        self.sessions[session.client_id] = session
        reader = asyncio.ensure_future(self._read(session, commands))
        wait_ms = self.broker.config.grpc_telemetry_settings_timeout_millis
        settle_by = asyncio.get_running_loop().time() + wait_ms / 1000
        try:
            while session.open or not session.outbox.empty():
                try:
                    async with asyncio.timeout_at(None if session.settled else settle_by):
                        item = await session.outbox.get()
                except TimeoutError:
                    log.warning(
                        "gRPC client %s at %s sent no settings within %d ms: its Telemetry stream is closed",
                        session.client_id,
                        session.peer,
                        wait_ms,
                        extra={"peer": session.peer},
                    )
                    reason = f"no settings within {wait_ms} ms of opening the stream"
                    yield spb.TelemetryCommand(status=status(pb.BAD_REQUEST, reason))
                    break
                if item is None:
                    break
                yield item
        finally:
            reader.cancel()
            if self.sessions.get(session.client_id) is session:
                self.terminate(session.client_id)

    async def _read(self, session: ClientSession, commands: AsyncIterator[Any]) -> None:
        try:
            async for command in commands:
                kind = command.WhichOneof("command")
                if kind == "settings":
                    session.settled = True
                    settings = command.settings
                    if settings.HasField("publishing"):
                        self.register_producer(session, [t.name for t in settings.publishing.topics])
                    elif settings.HasField("subscription"):
                        self.take_consumer_settings(session, settings)
                    session.push(
                        spb.TelemetryCommand(status=status(pb.OK), settings=self.settings_reply(settings))
                    )
                elif kind in ("thread_stack_trace", "verify_message_result"):
                    client_commands.on_reply(session, command, kind)
                else:
                    log.info(
                        "gRPC client %s at %s sent telemetry %s: ignored",
                        session.client_id,
                        session.peer,
                        kind,
                        extra={"peer": session.peer},
                    )
        finally:
            session.open = False
            session.replies.fail_all(f"gRPC client {session.client_id} closed its Telemetry stream")
            with contextlib.suppress(asyncio.QueueFull):  # full: the writer drains it and sees closed
                session.outbox.put_nowait(None)


def _header(metadata: Any, name: str) -> str:
    for key, value in metadata or ():
        if key == name:
            return str(value)
    return ""


def client_id_of(metadata: Any) -> str:
    return _header(metadata, "x-mq-client-id")


def language_of(metadata: Any) -> str:
    """The client's ``x-mq-language`` as a remoting ``LanguageCode`` name (OTHER if unknown or absent),
    so mqadmin can read it back."""
    language = _header(metadata, "x-mq-language").upper()
    return language if language in LANGUAGE_CODES else "OTHER"

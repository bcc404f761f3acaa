"""``apache.rocketmq.v2.MessagingService``: which RPC is served by what, and the refusals.

Served: QueryRoute, QueryAssignment (``route.py``), SendMessage, EndTransaction (``send.py``),
Heartbeat, NotifyClientTermination and the Telemetry stream (``telemetry.py``), ReceiveMessage
(server streaming), AckMessage, ChangeInvisibleDuration, ForwardMessageToDeadLetterQueue
(``consume.py``, on core/broker/pop), PullMessage (server streaming), UpdateOffset, GetOffset,
QueryOffset (``pull.py``). Answered with the status NOT_IMPLEMENTED (50100, in the response's
``status``, the gRPC call itself OK, so the SDKs report "not implemented" instead of retrying a
transport error): RecallMessage, SyncLiteSubscription.

Requests arrive as bytes and are parsed here, so a malformed protobuf is answered
INVALID_ARGUMENT and logged with its peer (grpcio's own deserializer would log neither the peer
nor the method); a method the service does not have is UNIMPLEMENTED, logged with the peer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

from ferrymq.core.broker.topic_config import validate_topic
from ferrymq.core.remoting.route import PERM_WRITE
from ferrymq.gateway.grpc import route, send
from ferrymq.gateway.grpc.acl import GrpcAcl
from ferrymq.gateway.grpc.consume import Consume
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.protocol import service_pb2 as spb
from ferrymq.gateway.grpc.pull import Pull
from ferrymq.gateway.grpc.route import status
from ferrymq.gateway.grpc.telemetry import Clients, ClientSession, client_id_of, language_of
from ferrymq.gateway.grpc.tls_front import real_peer

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker
    from ferrymq.core.broker.routes_source import ClusterSource

log = logging.getLogger("ferrymq.grpc")

SERVICE = "/apache.rocketmq.v2.MessagingService/"
Unary = Callable[[Any, "grpc.aio.ServicerContext[Any, Any]"], Awaitable[Any]]

#: RPCs answered NOT_IMPLEMENTED for now: name -> (request class, response class, server-streaming)
NOT_YET: dict[str, tuple[Any, Any, bool]] = {
    "RecallMessage": (spb.RecallMessageRequest, spb.RecallMessageResponse, False),
    "SyncLiteSubscription": (spb.SyncLiteSubscriptionRequest, spb.SyncLiteSubscriptionResponse, False),
}


def peer_of(context: Any) -> str:
    """``ipv4:127.0.0.1:5000`` -> ``127.0.0.1:5000`` (what remoting logs call the peer)."""
    peer = real_peer(str(context.peer() or "?"))
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1:].replace("]", "")
    return rest if kind in ("ipv4", "ipv6") else peer


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


async def _parse(cls: Any, data: bytes, method: str, context: Any) -> Any:
    try:
        return cls.FromString(data)
    except DecodeError as exc:
        peer = peer_of(context)
        log.warning(
            "gRPC %s from %s: malformed request (%s)", method, peer, exc, extra={"peer": peer, "code": method}
        )
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed {cls.DESCRIPTOR.name}")


def _unimplemented(method: str) -> Callable[[AsyncIterator[bytes], Any], AsyncIterator[bytes]]:
    async def refuse(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        peer = peer_of(context)
        log.warning("gRPC call from %s to unknown method %s", peer, method[:200], extra={"peer": peer})
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"unknown method {method[:200]}")
        yield b""  # never reached: makes this an async generator, as a streaming handler must be

    return refuse


def _with_peer(fn: Callable[[Any, str], Any]) -> Unary:
    """A synchronous ``fn(request, peer)`` as a unary handler."""

    async def call(request: Any, context: Any) -> Any:
        return fn(request, peer_of(context))

    return call


class MessagingService(grpc.GenericRpcHandler):
    def __init__(
        self, broker: Broker, advertised_host: str, port: int, routes: ClusterSource | None = None
    ) -> None:
        self.broker = broker
        #: the name servers' routes, for QueryRoute across broker groups (None: this broker only)
        self.routes = routes
        self.clients = Clients(broker)
        self.consume = Consume(broker)
        self.pull = Pull(broker)
        self.broker_message = route.broker_message(broker.config.broker_name, advertised_host, port)
        unary: dict[str, tuple[Any, Unary]] = {
            "QueryRoute": (spb.QueryRouteRequest, self.query_route),
            "QueryAssignment": (spb.QueryAssignmentRequest, self.query_assignment),
            "Heartbeat": (spb.HeartbeatRequest, self.heartbeat),
            "SendMessage": (spb.SendMessageRequest, self.send_message),
            "EndTransaction": (spb.EndTransactionRequest, self.end_transaction),
            "NotifyClientTermination": (spb.NotifyClientTerminationRequest, self.notify_termination),
            "AckMessage": (spb.AckMessageRequest, _with_peer(self.consume.ack)),
            "ChangeInvisibleDuration": (
                spb.ChangeInvisibleDurationRequest,
                _with_peer(self.consume.change_invisible),
            ),
            "ForwardMessageToDeadLetterQueue": (
                spb.ForwardMessageToDeadLetterQueueRequest,
                _with_peer(self.consume.forward_to_dlq),
            ),
            "UpdateOffset": (spb.UpdateOffsetRequest, _with_peer(self.pull.update_offset)),
            "GetOffset": (spb.GetOffsetRequest, _with_peer(self.pull.get_offset)),
            "QueryOffset": (spb.QueryOffsetRequest, _with_peer(self.pull.query_offset)),
        }
        #: ACL 2.0 or aclEnable: every call's signature and resources, as remoting's (gateway/grpc/acl.py)
        self.acl = GrpcAcl(broker.remoting_guard) if broker.remoting_guard is not None else None
        self.handlers: dict[str, grpc.RpcMethodHandler] = {
            SERVICE + name: self._unary(name, cls, fn) for name, (cls, fn) in unary.items()
        }
        for name, (cls, response_cls, streaming) in NOT_YET.items():
            self.handlers[SERVICE + name] = self._not_yet(name, cls, response_cls, streaming)
        self.handlers[SERVICE + "ReceiveMessage"] = self._streaming(
            "ReceiveMessage", spb.ReceiveMessageRequest, self.consume.receive
        )
        self.handlers[SERVICE + "PullMessage"] = self._streaming(
            "PullMessage", spb.PullMessageRequest, self.pull.pull
        )
        self.handlers[SERVICE + "Telemetry"] = grpc.stream_stream_rpc_method_handler(
            self.telemetry, response_serializer=_serialize
        )

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler:
        handler = self.handlers.get(handler_call_details.method)
        return handler or grpc.stream_stream_rpc_method_handler(_unimplemented(handler_call_details.method))

    # ---- plumbing ----------------------------------------------------------------------------

    def refused(self, name: str, request: Any, context: Any) -> Any | None:
        """The UNAUTHORIZED status for a call the ACL refuses (None: go on, or ACL is off);
        every handler asks before it serves."""
        if self.acl is None:
            return None
        reason = self.acl.refusal(name, request, context.invocation_metadata(), peer_of(context))
        return None if reason is None else status(pb.UNAUTHORIZED, reason)

    def _unary(self, name: str, cls: Any, fn: Unary) -> grpc.RpcMethodHandler:
        response_cls = getattr(spb, f"{name}Response")

        async def handle(data: bytes, context: Any) -> Any:
            request = await _parse(cls, data, name, context)
            if (refused := self.refused(name, request, context)) is not None:
                return response_cls(status=refused)
            return await fn(request, context)

        return grpc.unary_unary_rpc_method_handler(handle, response_serializer=_serialize)

    def _streaming(
        self, name: str, cls: Any, fn: Callable[[Any, float | None, str], AsyncIterator[Any]]
    ) -> Any:
        """A server-streaming RPC: ``fn(request, seconds left before the deadline, peer)``, after the
        ACL check (a refusal is the stream's one response)."""
        response_cls = getattr(spb, f"{name}Response")

        async def handle(data: bytes, context: Any) -> AsyncIterator[Any]:
            request = await _parse(cls, data, name, context)
            if (refused := self.refused(name, request, context)) is not None:
                yield response_cls(status=refused)
                return
            async for response in fn(request, context.time_remaining(), peer_of(context)):
                yield response

        return grpc.unary_stream_rpc_method_handler(handle, response_serializer=_serialize)

    def _not_yet(self, name: str, cls: Any, response_cls: Any, streaming: bool) -> grpc.RpcMethodHandler:
        message = f"{name} is not implemented by ferrymq yet"

        async def handle(data: bytes, context: Any) -> Any:
            request = await _parse(cls, data, name, context)
            refused = self.refused(name, request, context)
            return response_cls(status=refused or status(pb.NOT_IMPLEMENTED, message))

        async def handle_stream(data: bytes, context: Any) -> AsyncIterator[Any]:
            yield await handle(data, context)

        if streaming:
            return grpc.unary_stream_rpc_method_handler(handle_stream, response_serializer=_serialize)
        return grpc.unary_unary_rpc_method_handler(handle, response_serializer=_serialize)

    # ---- the RPCs ----------------------------------------------------------------------------

    def _topic_refusal(self, topic: Any) -> Any | None:
        reason = validate_topic(topic.name)
        return status(pb.ILLEGAL_TOPIC, reason) if reason else None

    async def _broker_queues(self, topic: str) -> list[route.BrokerQueues]:
        """The topic's queues in every broker group (route.py): the name servers' route, and this
        broker's own queues (a slave's for reading, when its master is unknown)."""
        tc = self.broker.topics.get(topic)
        slave = self.broker.config.is_slave
        own = None
        if tc is not None:
            perm = tc.perm & ~PERM_WRITE if slave else tc.perm
            own = route.BrokerQueues(self.broker_message, perm, tc.read_queue_nums, tc.write_queue_nums)
        known = await self.routes.topic_route(topic) if self.routes is not None else None
        return route.cluster_queues(known, own, self.broker.config.broker_name, own_wins=not slave)

    async def query_route(self, request: Any, context: Any) -> Any:
        if (refused := self._topic_refusal(request.topic)) is not None:
            return spb.QueryRouteResponse(status=refused)
        tc = self.broker.topics.get(request.topic.name)
        types = route.accepted_types(tc) if tc is not None else route.ALL_TYPES
        return route.query_route(await self._broker_queues(request.topic.name), request.topic, types)

    async def query_assignment(self, request: Any, context: Any) -> Any:
        if (refused := self._topic_refusal(request.topic)) is not None:
            return spb.QueryAssignmentResponse(status=refused)
        group = self.broker.subscription_groups.find(request.group.name)
        orderly = bool(group and group.consume_message_orderly)
        groups = await self._broker_queues(request.topic.name)
        return route.query_assignment(groups, request.topic, orderly)

    async def heartbeat(self, request: Any, context: Any) -> Any:
        client_id = client_id_of(context.invocation_metadata())
        if not client_id:
            return spb.HeartbeatResponse(status=status(pb.CLIENT_ID_REQUIRED, "client id cannot be empty"))
        self.clients.heartbeat(client_id)
        return spb.HeartbeatResponse(status=status(pb.OK))

    async def send_message(self, request: Any, context: Any) -> Any:
        if request.messages and (refused := self._topic_refusal(request.messages[0].topic)) is not None:
            return spb.SendMessageResponse(status=refused)
        return await send.send_message(self.broker, request, peer_of(context))

    async def end_transaction(self, request: Any, context: Any) -> Any:
        return await send.end_transaction(self.broker, request, peer_of(context))

    async def notify_termination(self, request: Any, context: Any) -> Any:
        client_id = client_id_of(context.invocation_metadata())
        if not client_id:
            return spb.NotifyClientTerminationResponse(
                status=status(pb.CLIENT_ID_REQUIRED, "client id cannot be empty")
            )
        self.clients.terminate(client_id)
        return spb.NotifyClientTerminationResponse(status=status(pb.OK))

    async def telemetry(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[Any]:
        peer = peer_of(context)
        client_id = client_id_of(context.invocation_metadata())
        if not client_id:
            yield spb.TelemetryCommand(status=status(pb.CLIENT_ID_REQUIRED, "client id cannot be empty"))
            return

        if (refused := self.refused("Telemetry", spb.TelemetryCommand(), context)) is not None:
            yield spb.TelemetryCommand(status=refused)
            return

        async def commands() -> AsyncIterator[Any]:
            async for data in requests:
                command = await _parse(spb.TelemetryCommand, data, "Telemetry", context)
                if (refused := self.refused("Telemetry", command, context)) is not None:
                    session.push(spb.TelemetryCommand(status=refused))  # its settings are not taken
                    continue
                yield command

        session = ClientSession(client_id, peer, language_of(context.invocation_metadata()))
        log.info("gRPC client %s connected from %s", client_id, peer, extra={"peer": peer})
        started = time.monotonic()
        async for command in self.clients.stream(session, commands()):
            yield command
        log.info(
            "gRPC client %s at %s closed its stream after %.0f s",
            client_id,
            peer,
            time.monotonic() - started,
            extra={"peer": peer},
        )

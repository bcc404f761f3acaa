"""QueryRoute and QueryAssignment (sans-IO: a topic's config and this listener's endpoints in, responses out).

As the proxy's ``RouteActivity``: each broker's queues split into read-only, write-only and
read-write ones (``min(read, write)`` read-write first counted), each with the topic's accepted
message types (the ``message.type`` attribute; a topic without one accepts every type, as MIXED).
Across broker groups: the topic's route from the name servers lists every group's queues, and
each group's broker is named with its master's own gRPC listener (the ``grpcAddr`` it registered),
so an SDK given any one listener's address reaches every group; ids restart at 0 per broker, as
the proxy numbers them. A group whose master has no gRPC listener is left out. This broker's own
queues come from its topic config (fresher than the name server's), named with this listener;
without a route (a standalone broker, the topic not registered yet) they are the whole answer.
QueryAssignment: one assignment per broker with queue id -1 (any queue; a POP consumer pops from
all), or every read queue for a group that consumes orderly; no readable queue is FORBIDDEN.
A missing topic is TOPIC_NOT_FOUND, as the proxy answers (no auto-creation from a route query).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferrymq.core.remoting.route import MASTER_ID, PERM_READ, PERM_WRITE, TopicConfig, TopicRouteData
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.protocol import service_pb2 as spb

ALL_TYPES = [pb.NORMAL, pb.FIFO, pb.DELAY, pb.TRANSACTION]
TYPE_BY_ATTRIBUTE = {
    "NORMAL": [pb.NORMAL],
    "FIFO": [pb.FIFO],
    "DELAY": [pb.DELAY],
    "TRANSACTION": [pb.TRANSACTION],
    "MIXED": ALL_TYPES,
}


def status(code: int, message: str = "") -> Any:
    return pb.Status(code=code, message=message or pb.Code.Name(code))


def broker_message(name: str, host: str, port: int) -> Any:
    broker = pb.Broker(name=name, id=0)
    broker.endpoints.scheme = pb.IPv6 if ":" in host else pb.IPv4
    broker.endpoints.addresses.add(host=host, port=port)
    return broker


def accepted_types(tc: TopicConfig) -> list[int]:
    value = tc.attributes.get("+message.type") or tc.attributes.get("message.type") or "MIXED"
    return TYPE_BY_ATTRIBUTE.get(value.upper(), ALL_TYPES)


def _permission(perm: int) -> int:
    readable, writable = bool(perm & PERM_READ), bool(perm & PERM_WRITE)
    if readable and writable:
        return pb.READ_WRITE
    return pb.READ if readable else pb.WRITE if writable else pb.NONE


@dataclass(frozen=True, slots=True)
class BrokerQueues:
    """One broker group's queues of a topic and the broker (with its endpoint) that serves them."""

    broker: Any
    perm: int
    read_queue_nums: int
    write_queue_nums: int


def endpoint_broker(name: str, addr: str) -> Any:
    """The ``Broker`` of a group whose gRPC listener is ``addr`` ("host:port")."""
    host, _, port = addr.rpartition(":")
    return broker_message(name, host.strip("[]"), int(port))


def cluster_queues(
    route: TopicRouteData | None, own: BrokerQueues | None, own_name: str, own_wins: bool
) -> list[BrokerQueues]:
    """Every group's queues, sorted by broker name: the route's groups whose master has a gRPC
    listener, and ``own`` (this broker's): instead of its group's entry when ``own_wins`` (a
    master), else only when the route has no entry for it (a slave whose master is unknown)."""
    out: dict[str, BrokerQueues] = {}
    if route is not None:
        masters = {bd.broker_name: bd.grpc_addrs.get(MASTER_ID) for bd in route.broker_datas}
        for qd in route.queue_datas:
            addr = masters.get(qd.broker_name)
            if addr:
                try:
                    broker = endpoint_broker(qd.broker_name, addr)
                except ValueError:
                    continue
                out[qd.broker_name] = BrokerQueues(broker, qd.perm, qd.read_queue_nums, qd.write_queue_nums)
    if own is not None and (own_wins or own_name not in out):
        out[own_name] = own
    return [out[name] for name in sorted(out)]


def _add_queues(response: Any, topic: Any, queues: BrokerQueues, types: list[int]) -> None:
    readable, writable = bool(queues.perm & PERM_READ), bool(queues.perm & PERM_WRITE)
    r = w = rw = none = 0
    if readable and writable:
        rw = min(queues.read_queue_nums, queues.write_queue_nums)
        r, w = queues.read_queue_nums - rw, queues.write_queue_nums - rw
    elif writable:
        w = queues.write_queue_nums
    elif readable:
        r = queues.read_queue_nums
    else:
        none = max(1, queues.read_queue_nums, queues.write_queue_nums)
    queue_id = 0
    for count, permission in ((r, pb.READ), (w, pb.WRITE), (rw, pb.READ_WRITE), (none, pb.NONE)):
        for _ in range(count):
            response.message_queues.add(
                topic=topic,
                id=queue_id,
                permission=permission,
                broker=queues.broker,
                accept_message_types=types,
            )
            queue_id += 1


def query_route(groups: list[BrokerQueues], topic: Any, types: list[int]) -> Any:
    if not groups:
        return spb.QueryRouteResponse(status=status(pb.TOPIC_NOT_FOUND, f"topic {topic.name} not found"))
    response = spb.QueryRouteResponse(status=status(pb.OK))
    for queues in groups:
        _add_queues(response, topic, queues, types)
    return response


def query_assignment(groups: list[BrokerQueues], topic: Any, orderly: bool) -> Any:
    if not groups:
        return spb.QueryAssignmentResponse(status=status(pb.TOPIC_NOT_FOUND, f"topic {topic.name} not found"))
    response = spb.QueryAssignmentResponse(status=status(pb.OK))
    for queues in groups:
        if not queues.perm & PERM_READ or queues.read_queue_nums <= 0:
            continue
        permission = _permission(queues.perm)
        for queue_id in range(queues.read_queue_nums) if orderly else (-1,):
            response.assignments.add().message_queue.CopyFrom(
                pb.MessageQueue(topic=topic, id=queue_id, permission=permission, broker=queues.broker)
            )
    if not response.assignments:
        return spb.QueryAssignmentResponse(status=status(pb.FORBIDDEN, "no readable queue"))
    return response

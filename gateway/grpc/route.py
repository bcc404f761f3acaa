"""QueryRoute and QueryAssignment (sans-IO: a topic's config and this listener's endpoints in, responses out).

As the proxy's ``RouteActivity``: each broker's queues split into read-only, write-only and
read-write ones (``min(read, write)`` read-write first counted), each with the topic's accepted
message types (the ``message.type`` attribute; a topic without one accepts every type, as MIXED).
The broker in every queue is this broker with *this listener's* endpoints, so an SDK needs only
one address. Only this broker's own queues are answered: each broker group's listener serves the
queues it stores (a multi-group cluster gives its clients one address per group for now).
QueryAssignment: one assignment per broker with queue id -1 (any queue; a POP consumer pops from
all), or every read queue for a group that consumes orderly; no readable queue is FORBIDDEN.
A missing topic is TOPIC_NOT_FOUND, as the proxy answers (no auto-creation from a route query).
"""

from __future__ import annotations

from typing import Any

from ferrymq.core.remoting.route import PERM_READ, PERM_WRITE, TopicConfig
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


def query_route(tc: TopicConfig | None, topic: Any, broker: Any) -> Any:
    if tc is None:
        return spb.QueryRouteResponse(status=status(pb.TOPIC_NOT_FOUND, f"topic {topic.name} not found"))
    readable, writable = bool(tc.perm & PERM_READ), bool(tc.perm & PERM_WRITE)
    r = w = rw = none = 0
    if readable and writable:
        rw = min(tc.read_queue_nums, tc.write_queue_nums)
        r, w = tc.read_queue_nums - rw, tc.write_queue_nums - rw
    elif writable:
        w = tc.write_queue_nums
    elif readable:
        r = tc.read_queue_nums
    else:
        none = max(1, tc.read_queue_nums, tc.write_queue_nums)
    types = accepted_types(tc)
    response = spb.QueryRouteResponse(status=status(pb.OK))
    queue_id = 0
    for count, permission in ((r, pb.READ), (w, pb.WRITE), (rw, pb.READ_WRITE), (none, pb.NONE)):
        for _ in range(count):
            response.message_queues.add(
                topic=topic, id=queue_id, permission=permission, broker=broker, accept_message_types=types
            )
            queue_id += 1
    return response


def query_assignment(tc: TopicConfig | None, topic: Any, broker: Any, orderly: bool) -> Any:
    if tc is None:
        return spb.QueryAssignmentResponse(status=status(pb.TOPIC_NOT_FOUND, f"topic {topic.name} not found"))
    if not tc.perm & PERM_READ or tc.read_queue_nums <= 0:
        return spb.QueryAssignmentResponse(status=status(pb.FORBIDDEN, "no readable queue"))
    response = spb.QueryAssignmentResponse(status=status(pb.OK))
    permission = _permission(tc.perm)
    for queue_id in range(tc.read_queue_nums) if orderly else (-1,):
        response.assignments.add().message_queue.CopyFrom(
            pb.MessageQueue(topic=topic, id=queue_id, permission=permission, broker=broker)
        )
    return response

"""Broker-initiated requests a gRPC client answers on its Telemetry stream (the proxy's
``GrpcClientChannel`` and ``ClientActivity.reportThreadStackTrace/reportVerifyMessageResult``).

Serves the two remoting requests the broker forwards to a consumer (core/broker/processors/
consumer_admin.py): GET_CONSUMER_RUNNING_INFO (307) with ``jstackEnable`` becomes a
PrintThreadStackTraceCommand and the client's ThreadStackTrace is answered as a ConsumerRunningInfo
whose ``jstack`` is that text; CONSUME_MESSAGE_DIRECTLY (309) becomes a VerifyMessageCommand carrying
the stored message, and the client's VerifyMessageResult is answered as a ConsumeMessageDirectlyResult
(OK: CR_SUCCESS, FAILED_TO_CONSUME_MESSAGE: CR_LATER, MESSAGE_CORRUPTED: CR_RETURN_NULL; other
statuses, such as a FIFO consumer's VERIFY_FIFO_MESSAGE_UNSUPPORTED, as errors). Each command carries a
fresh nonce; the answer is matched by it, and one with an unknown nonce (late, or never asked for) is
logged and dropped. A client that does not answer within the broker's timeout, or whose stream ends
first, fails the request (the admin gets SYSTEM_ERROR, never a hang).

Without ``jstackEnable`` the proxy never answers; ferrymq answers at once with what the broker knows
(group, consume type, language, subscriptions). Leaves out the per-queue tables a remoting client
reports (a gRPC consumer's queues live in the broker's POP state, not in the client).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import decode_stored_message
from ferrymq.core.remoting.transport import RemotingError
from ferrymq.gateway.grpc.mapping import to_proto
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.protocol import service_pb2 as spb

if TYPE_CHECKING:
    from ferrymq.gateway.grpc.telemetry import ClientSession

log = logging.getLogger("ferrymq.grpc")

#: the remoting codes a gRPC client can answer through its stream
ANSWERED = frozenset([RequestCode.GET_CONSUMER_RUNNING_INFO, RequestCode.CONSUME_MESSAGE_DIRECTLY])
#: a client's verify status -> the admin's CMResult (``buildConsumeMessageDirectlyResult``)
CONSUME_RESULTS = {
    pb.OK: "CR_SUCCESS",
    pb.FAILED_TO_CONSUME_MESSAGE: "CR_LATER",
    pb.MESSAGE_CORRUPTED: "CR_RETURN_NULL",
}


class Replies:
    """The nonces a session waits on, each with the future its reply completes."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[tuple[Any, Any]]] = {}

    def expect(self) -> tuple[str, asyncio.Future[tuple[Any, Any]]]:
        nonce = uuid.uuid4().hex
        future = self._waiting[nonce] = asyncio.get_running_loop().create_future()
        return nonce, future

    def forget(self, nonce: str) -> None:
        self._waiting.pop(nonce, None)

    def resolve(self, nonce: str, status: Any, payload: Any) -> bool:
        """Completes the wait of ``nonce`` (False: nobody waits for it)."""
        future = self._waiting.pop(nonce, None)
        if future is None or future.done():
            return False
        future.set_result((status, payload))
        return True

    def fail_all(self, reason: str) -> None:
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(RemotingError(reason))


def on_reply(session: ClientSession, command: Any, kind: str) -> None:
    """A ThreadStackTrace or VerifyMessageResult from the client: to the request that waits for it."""
    payload = getattr(command, kind)
    if not session.replies.resolve(payload.nonce, command.status, payload):
        log.warning(
            "gRPC client %s at %s sent %s with unknown nonce %r: dropped",
            session.client_id,
            session.peer,
            kind,
            payload.nonce,
            extra={"peer": session.peer},
        )


async def ask(session: ClientSession, cmd: RemotingCommand, timeout: float) -> RemotingCommand:
    """Serve one remoting request of ``ANSWERED`` through the client's stream; ``cmd``'s response."""
    if cmd.code == RequestCode.GET_CONSUMER_RUNNING_INFO:
        info = _running_info(session)
        if cmd.ext_fields.get("jstackEnable") != "true":
            return cmd.response(body=json.dumps(info).encode())
        status, reply = await _await_reply(session, _print_stack, timeout)
        if status.code != pb.OK:
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"thread stack failed: {status.message}")
        info["jstack"] = reply.thread_stack_trace
        return cmd.response(body=json.dumps(info).encode())
    msg = decode_stored_message(bytes(cmd.body))
    message = to_proto(msg, msg.topic)
    status, _ = await _await_reply(session, lambda nonce: _verify(nonce, message), timeout)
    result = CONSUME_RESULTS.get(status.code)
    if result is None:
        fifo = status.code == pb.VERIFY_FIFO_MESSAGE_UNSUPPORTED
        code = ResponseCode.NO_PERMISSION if fifo else ResponseCode.SYSTEM_ERROR
        return cmd.response(code, f"verify message failed: {pb.Code.Name(status.code)} {status.message}")
    body = {"order": False, "autoCommit": True, "consumeResult": result, "remark": "from gRPC client"}
    return cmd.response(body=json.dumps({**body, "spentTimeMills": 0}).encode())


async def _await_reply(session: ClientSession, build: Any, timeout: float) -> tuple[Any, Any]:
    nonce, future = session.replies.expect()
    try:
        if not session.open or not session.push(build(nonce)):
            raise RemotingError(f"gRPC client {session.client_id} cannot take a command now")
        async with asyncio.timeout(timeout):
            return await future
    except TimeoutError:
        raise RemotingError(f"gRPC client {session.client_id} did not answer within {timeout:g} s") from None
    finally:
        session.replies.forget(nonce)


def _print_stack(nonce: str) -> Any:
    command = spb.TelemetryCommand()
    command.print_thread_stack_trace_command.nonce = nonce
    return command


def _verify(nonce: str, message: Any) -> Any:
    command = spb.TelemetryCommand()
    command.verify_message_command.nonce = nonce
    command.verify_message_command.message.CopyFrom(message)
    return command


def _running_info(session: ClientSession) -> dict[str, Any]:
    props = {
        "consumerGroup": session.group,
        "PROP_CONSUME_TYPE": session.consume_type,
        "language": session.language,
        "PROP_CLIENT_PROTOCOL": "gRPC",
    }
    return {
        "properties": props,
        "subscriptionSet": [s.to_json() for s in session.subscriptions],
        "mqTable": {},
        "statusTable": {},
        "userConsumerInfo": {},
        "mqPopTable": {},
    }

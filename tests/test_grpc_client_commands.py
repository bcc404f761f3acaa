"""Remoting requests the broker forwards to a gRPC consumer, answered on its Telemetry stream as the
proxy does: GET_CONSUMER_RUNNING_INFO with jstack becomes a PrintThreadStackTraceCommand,
CONSUME_MESSAGE_DIRECTLY a VerifyMessageCommand; answers are matched by nonce, unknown nonces logged
and dropped, and a client that never answers (or whose stream ends) fails the request instead of
hanging it. In-process, no sockets; the Java client's own answers are in compat-tests/test_java_grpc.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest.importorskip("grpc")

from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import RemotingError
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.protocol import service_pb2 as spb
from ferrymq.gateway.grpc.telemetry import Clients, ClientSession
from tests.test_grpc_settings import clients, consumer_settings
from tests.test_message_layout import ours

T = TypeVar("T")


class FakeClient:
    """A consumer's side of one Telemetry stream: what it writes goes through ``say``."""

    def __init__(self, c: Clients) -> None:
        self.session = ClientSession("cid-1", "10.0.0.7:5555", "JAVA")
        self.said: asyncio.Queue[Any] = asyncio.Queue()
        self.stream = c.stream(self.session, self._commands())
        self.link = c._link(self.session)

    async def _commands(self) -> AsyncIterator[Any]:
        yield spb.TelemetryCommand(settings=consumer_settings("G", ("T", pb.TAG, "*")))
        while (command := await self.said.get()) is not None:
            yield command

    async def start(self) -> None:
        assert (await anext(self.stream)).status.code == pb.OK  # its settings answered

    async def close(self) -> None:
        await self.said.put(None)
        async for _ in self.stream:
            pass


async def bounded(step: Coroutine[Any, Any, T]) -> T:
    """A test's steps, failed rather than hung if an awaited command or answer never comes."""
    async with asyncio.timeout(20):
        return await step


def running_info(jstack: bool = True) -> RemotingCommand:
    fields = {"consumerGroup": "G", "clientId": "cid-1", "jstackEnable": str(jstack).lower()}
    return RemotingCommand(code=RequestCode.GET_CONSUMER_RUNNING_INFO, ext_fields=fields)


def consume_directly() -> RemotingCommand:
    record = ours(topic=b"T", body=b"hello", props=b"")
    fields = {"consumerGroup": "G", "clientId": "cid-1", "msgId": "00", "brokerName": "b"}
    return RemotingCommand(code=RequestCode.CONSUME_MESSAGE_DIRECTLY, ext_fields=fields, body=record)


def test_thread_stack_is_asked_on_the_stream_and_an_unknown_nonce_is_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> RemotingCommand:
        client = FakeClient(clients(tmp_path))
        await client.start()
        asked = asyncio.ensure_future(client.link.invoke(running_info(), 30))
        command = await anext(client.stream)
        nonce = command.print_thread_stack_trace_command.nonce
        assert nonce
        stray = spb.TelemetryCommand(status=pb.Status(code=pb.OK))
        stray.thread_stack_trace.nonce, stray.thread_stack_trace.thread_stack_trace = "nope", "wrong"
        answer = spb.TelemetryCommand(status=pb.Status(code=pb.OK))
        answer.thread_stack_trace.nonce, answer.thread_stack_trace.thread_stack_trace = nonce, '"main" at X'
        await client.said.put(stray)
        await client.said.put(answer)
        response = await asked
        assert not client.session.replies._waiting
        await client.close()
        return response

    with caplog.at_level(logging.WARNING, "ferrymq.grpc"):
        response = asyncio.run(bounded(main()))
    assert response.code == ResponseCode.SUCCESS
    info = json.loads(bytes(response.body))
    assert info["jstack"] == '"main" at X'
    assert info["properties"]["consumerGroup"] == "G" and info["subscriptionSet"][0]["topic"] == "T"
    assert "unknown nonce 'nope': dropped" in caplog.text and "10.0.0.7:5555" in caplog.text


def test_running_info_without_jstack_is_answered_by_the_broker(tmp_path: Path) -> None:
    async def main() -> RemotingCommand:
        client = FakeClient(clients(tmp_path))
        await client.start()
        response = await client.link.invoke(running_info(jstack=False), 30)
        assert client.session.outbox.empty()  # nothing asked of the client
        await client.close()
        return response

    info = json.loads(bytes(asyncio.run(bounded(main())).body))
    assert info["properties"]["PROP_CONSUME_TYPE"] == "CONSUME_PASSIVELY" and "jstack" not in info


@pytest.mark.parametrize(
    ("status", "code", "result"),
    [
        (pb.OK, ResponseCode.SUCCESS, "CR_SUCCESS"),
        (pb.FAILED_TO_CONSUME_MESSAGE, ResponseCode.SUCCESS, "CR_LATER"),
        (pb.VERIFY_FIFO_MESSAGE_UNSUPPORTED, ResponseCode.NO_PERMISSION, None),
    ],
)
def test_consume_directly_sends_the_message_and_maps_the_verify_result(
    tmp_path: Path, status: int, code: int, result: str | None
) -> None:
    async def main() -> RemotingCommand:
        client = FakeClient(clients(tmp_path))
        await client.start()
        asked = asyncio.ensure_future(client.link.invoke(consume_directly(), 30))
        verify = (await anext(client.stream)).verify_message_command
        assert verify.message.body == b"hello" and verify.message.topic.name == "T"
        answer = spb.TelemetryCommand(status=pb.Status(code=status))
        answer.verify_message_result.nonce = verify.nonce
        await client.said.put(answer)
        response = await asked
        await client.close()
        return response

    response = asyncio.run(bounded(main()))
    assert response.code == code, response.remark
    if result is not None:
        assert json.loads(bytes(response.body))["consumeResult"] == result


def test_a_client_that_never_answers_fails_the_request_within_the_timeout(tmp_path: Path) -> None:
    async def main() -> None:
        client = FakeClient(clients(tmp_path))
        await client.start()
        with pytest.raises(RemotingError, match=r"cid-1 did not answer within 0\.05 s"):
            await client.link.invoke(running_info(), 0.05)
        assert not client.session.replies._waiting
        await client.close()

    asyncio.run(bounded(main()))


def test_a_stream_that_ends_fails_what_waits_on_it(tmp_path: Path) -> None:
    async def main() -> None:
        client = FakeClient(clients(tmp_path))
        await client.start()
        asked = asyncio.ensure_future(client.link.invoke(consume_directly(), 30))
        await anext(client.stream)  # the verify command, never answered
        await client.close()
        with pytest.raises(RemotingError, match="closed its Telemetry stream"):
            await asked
        with pytest.raises(RemotingError, match="cannot take a command now"):
            await client.link.invoke(running_info(), 30)

    asyncio.run(bounded(main()))

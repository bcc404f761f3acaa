"""Transactional producers: :class:`AsyncTransactionProducer` (asyncio) and
:class:`TransactionProducer` (blocking), as Java's ``TransactionMQProducer``.

``send_message_in_transaction(msg, arg)`` sends a half message (property TRAN_MSG=true, PGROUP,
sysFlag PREPARED) synchronously; the broker keeps it from consumers. After SEND_OK the listener's
``execute_local_transaction(msg, arg)`` decides: COMMIT_MESSAGE, ROLLBACK_MESSAGE or UNKNOW (an
exception or None count as UNKNOW). Any other send status rolls back without asking. The decision
goes to the broker as END_TRANSACTION (37), oneway, as Java sends it.

While a half message stays undecided, the broker asks a live producer of the group with
CHECK_TRANSACTION_STATE (39); ``check_local_transaction(msg)`` answers, again oneway. Every
producer of the group must be able to answer for any transaction, since the one that sent it may
be gone. Listener methods may be coroutines (run on the producer's loop) or plain functions (run
in a worker thread, so they may block).

Unlike Java, a DELAY level (or timer property) is kept: the broker applies it after the commit.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from ferrymq.client._loop import BlockingFacade
from ferrymq.client.errors import ValidationError
from ferrymq.client.message import Message, MessageExt, SendResult, SendStatus
from ferrymq.client.producer import DEFAULT_PRODUCER_GROUP, AsyncProducer
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import (
    PROPERTY_PRODUCER_GROUP,
    SYSFLAG_TRANSACTION_COMMIT,
    SYSFLAG_TRANSACTION_PREPARED,
    SYSFLAG_TRANSACTION_ROLLBACK,
    decode_offset_msg_id,
    decode_stored_message,
)
from ferrymq.core.remoting.transport import RemotingConnection

log = logging.getLogger("ferrymq.client")

PROPERTY_TRANSACTION_PREPARED = "TRAN_MSG"


class LocalTransactionState(Enum):
    """What the local transaction came to (``LocalTransactionState``; UNKNOW is Java's spelling)."""

    COMMIT_MESSAGE = SYSFLAG_TRANSACTION_COMMIT
    ROLLBACK_MESSAGE = SYSFLAG_TRANSACTION_ROLLBACK
    UNKNOW = 0


class TransactionListener(Protocol):
    """Java's ``TransactionListener``; either method may be ``async def``."""

    def execute_local_transaction(self, msg: Message, arg: Any) -> Any:
        """Run the local transaction for the half message just stored; a LocalTransactionState."""
        ...

    def check_local_transaction(self, msg: MessageExt) -> Any:
        """The state of the local transaction of ``msg`` (the broker asks); a LocalTransactionState."""
        ...


@dataclass(frozen=True, slots=True)
class TransactionSendResult:
    """The half message's send result and what the listener decided."""

    send_result: SendResult
    local_transaction_state: LocalTransactionState

    @property
    def transaction_id(self) -> str:
        return self.send_result.msg_id


async def _call(fn: Any, *args: Any) -> LocalTransactionState:
    """A listener method's answer; an exception or anything but a state is UNKNOW."""
    try:
        if inspect.iscoroutinefunction(fn):
            state = await fn(*args)
        else:
            state = await asyncio.to_thread(fn, *args)
    except Exception:
        log.exception("transaction listener %s failed; the state is UNKNOW", getattr(fn, "__name__", fn))
        return LocalTransactionState.UNKNOW
    return state if isinstance(state, LocalTransactionState) else LocalTransactionState.UNKNOW


def end_transaction_header(
    *,
    group: str,
    topic: str,
    queue_offset: int,
    commit_log_offset: int,
    state: LocalTransactionState,
    msg_id: str,
    transaction_id: str,
    from_check: bool,
    broker_name: str | None = None,
) -> dict[str, str]:
    """``EndTransactionRequestHeader`` as ``DefaultMQProducerImpl`` fills it."""
    header = {
        "producerGroup": group,
        "tranStateTableOffset": str(queue_offset),
        "commitLogOffset": str(commit_log_offset),
        "commitOrRollback": str(state.value),
        "fromTransactionCheck": "true" if from_check else "false",
        "msgId": msg_id,
        "transactionId": transaction_id,
        "topic": topic,
    }
    if broker_name is not None:
        header["bname"] = broker_name
    return header


class AsyncTransactionProducer(AsyncProducer):
    """An :class:`AsyncProducer` that also sends messages in transactions (``TransactionMQProducer``).

    ``listener`` implements :class:`TransactionListener`; the other arguments are AsyncProducer's.
    """

    def __init__(
        self,
        namesrv_addr: str | Iterable[str] = "127.0.0.1:9876",
        group: str = DEFAULT_PRODUCER_GROUP,
        *,
        listener: TransactionListener,
        **kw: Any,
    ) -> None:
        super().__init__(namesrv_addr, group, **kw)
        self.listener = listener
        self._checks: set[asyncio.Task[None]] = set()
        self._instance.remote.register_handler(RequestCode.CHECK_TRANSACTION_STATE, self._on_check)

    async def shutdown(self) -> None:
        for task in list(self._checks):
            task.cancel()
        await super().shutdown()

    async def send_message_in_transaction(self, msg: Message, arg: Any = None) -> TransactionSendResult:
        """Send ``msg`` as a half message, run the local transaction, tell the broker the outcome."""
        self._check_running()
        if msg.properties and msg.properties.get(PROPERTY_TRANSACTION_PREPARED):
            raise ValidationError("the message must not carry TRAN_MSG: it is set here")
        props = dict(msg.properties or {})
        props[PROPERTY_TRANSACTION_PREPARED] = "true"
        props[PROPERTY_PRODUCER_GROUP] = self.group
        half = Message(msg.topic, msg.body, tags=msg.tags, keys=msg.keys, properties=props, flag=msg.flag)
        prepared = self._prepare(half)
        prepared.sys_flag |= SYSFLAG_TRANSACTION_PREPARED
        result = await self._send_with_retries(prepared, None)
        assert result is not None
        if result.status is SendStatus.SEND_OK:
            state = await _call(self.listener.execute_local_transaction, half, arg)
        else:
            state = LocalTransactionState.ROLLBACK_MESSAGE
        await self._end(result, state)
        return TransactionSendResult(result, state)

    async def _end(self, result: SendResult, state: LocalTransactionState) -> None:
        """END_TRANSACTION, oneway; a failure is logged (the broker's check settles it later)."""
        try:
            _, _, phys = decode_offset_msg_id(result.offset_msg_id)
            addr = await self._instance.routes.master_addr_or_refresh(
                result.queue.broker_name, result.queue.topic
            )
            if addr is None:
                raise ValueError(f"no master address for broker {result.queue.broker_name}")
            header = end_transaction_header(
                group=self.group,
                topic=result.queue.topic,
                queue_offset=result.queue_offset,
                commit_log_offset=phys,
                state=state,
                msg_id=result.msg_id,
                transaction_id=result.msg_id,
                from_check=False,
                broker_name=result.queue.broker_name,
            )
            await self._instance.remote.invoke_oneway(
                addr, RemotingCommand(code=RequestCode.END_TRANSACTION, ext_fields=header)
            )
        except Exception as exc:
            log.warning("END_TRANSACTION for %s (%s) not sent: %s", result.msg_id, state.name, exc)

    def _on_check(self, cmd: RemotingCommand, conn: RemotingConnection) -> None:
        """CHECK_TRANSACTION_STATE from a broker: ask the listener off the connection's callback."""
        task = asyncio.ensure_future(self._answer_check(cmd, conn))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def _answer_check(self, cmd: RemotingCommand, conn: RemotingConnection) -> None:
        ext = cmd.ext_fields
        try:
            msg = decode_stored_message(cmd.body)
            queue_offset = int(ext["tranStateTableOffset"])
            phys = int(ext["commitLogOffset"])
        except (ValueError, KeyError) as exc:
            log.warning("malformed CHECK_TRANSACTION_STATE from %s: %s", conn.peer, exc)
            return
        group = msg.properties.get(PROPERTY_PRODUCER_GROUP)
        if group != self.group:
            log.warning("check for producer group %s reached a producer of %s; ignored", group, self.group)
            return
        state = await _call(self.listener.check_local_transaction, msg)
        header = end_transaction_header(
            group=self.group,
            topic=ext.get("topic", msg.topic),
            queue_offset=queue_offset,
            commit_log_offset=phys,
            state=state,
            msg_id=msg.msg_id,
            transaction_id=ext.get("transactionId", msg.msg_id),
            from_check=True,
            broker_name=ext.get("bname"),
        )
        if conn.is_open:
            end = RemotingCommand(code=RequestCode.END_TRANSACTION, ext_fields=header)
            conn.invoke_oneway(self._instance.remote.signed(end))


class TransactionProducer(BlockingFacade[AsyncTransactionProducer]):
    """Blocking transactional producer: :class:`AsyncTransactionProducer` without ``await``.

    with TransactionProducer("127.0.0.1:9876", group="g", listener=MyListener()) as producer:
        result = producer.send_message_in_transaction(Message("TopicA", b"order"), arg=order)
    """

    def __init__(
        self,
        namesrv_addr: str | Iterable[str] = "127.0.0.1:9876",
        group: str = DEFAULT_PRODUCER_GROUP,
        *,
        listener: TransactionListener,
        **kw: Any,
    ) -> None:
        producer = AsyncTransactionProducer(namesrv_addr, group, listener=listener, **kw)
        super().__init__(producer, f"ferrymq-txn-producer-{group}")

    def send_message_in_transaction(self, msg: Message, arg: Any = None) -> TransactionSendResult:
        return self._loop.run(self._async.send_message_in_transaction(msg, arg))

    def send(self, msg: Message, timeout: float | None = None) -> SendResult:
        return self._loop.run(self._async.send(msg, timeout))

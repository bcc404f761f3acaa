"""Producers: :class:`AsyncProducer` (asyncio) and :class:`Producer` (blocking facade).

Sending follows Java's ``DefaultMQProducerImpl``:

* Every message is validated (``validators``), gets a UNIQ_KEY unless it has one, and a body over
  ``compress_over`` bytes (4 KiB) is compressed with ``compress_type`` (ZLIB by default, which
  every RocketMQ consumer inflates; LZ4 or ZSTD, which RocketMQ 5 consumers and ours inflate),
  flagged in sysFlag as RocketMQ 5 does. Batches are never compressed.
* Queues come from the topic route (``route``): writable queues of broker groups with a master,
  picked round-robin. An unknown topic is sent over the route of ``TBW102`` with
  ``defaultTopic=TBW102``, so the broker creates it.
* ``send`` and ``send_batch`` make up to ``1 + retry_times`` attempts within ``send_timeout``
  seconds in total; a retry goes to another broker group when there is one. Network failures and
  the response codes in ``retry_response_codes`` (Java's list plus SYSTEM_BUSY) are retried; any
  other error response is raised at once as BrokerError. A broker group that failed on the
  network is avoided for ``fault_isolation`` seconds while others are available.
* ``send_orderly`` asks a selector for the queue and makes one attempt (no retry elsewhere, which
  would break the order); ``send_oneway`` makes one attempt and waits for nothing.

Not here: transactions, request/reply, delay levels (set the DELAY property yourself), message
traces, namespaces.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ferrymq.client import _api, compression
from ferrymq.client._ids import create_uniq_id
from ferrymq.client._instance import AsyncClient, ClientInstance
from ferrymq.client._loop import BlockingFacade
from ferrymq.client.errors import BrokerError, ClientError, NetworkError, ValidationError
from ferrymq.client.message import MessageQueue, SendResult
from ferrymq.client.route import DEFAULT_TOPIC, TopicPublishInfo
from ferrymq.client.selectors import SelectorLike, run_selector
from ferrymq.client.validators import (
    DEFAULT_MAX_MESSAGE_SIZE,
    check_batch,
    check_group,
    check_message,
)
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.heartbeat import HeartbeatData
from ferrymq.core.remoting.message import (
    KEY_SEPARATOR,
    PROPERTY_KEYS,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
    PROPERTY_WAIT_STORE_MSG_OK,
    Message,
    encode_batch_body,
    properties_to_string,
)

log = logging.getLogger("ferrymq.client")

#: ``DefaultMQProducer.retryResponseCodes`` plus SYSTEM_BUSY (retried since apache/rocketmq#5845)
DEFAULT_RETRY_RESPONSE_CODES = frozenset(
    {
        ResponseCode.TOPIC_NOT_EXIST,
        ResponseCode.SERVICE_NOT_AVAILABLE,
        ResponseCode.SYSTEM_ERROR,
        ResponseCode.SYSTEM_BUSY,
        ResponseCode.NO_PERMISSION,
        ResponseCode.NO_BUYER_ID,
        ResponseCode.NOT_IN_CURRENT_UNIT,
    }
)
DEFAULT_PRODUCER_GROUP = "DEFAULT_PRODUCER"


def message_properties(msg: Message) -> dict[str, str]:
    """User properties plus TAGS and KEYS, as they travel (tolerates ``properties=None``)."""
    props = dict(msg.properties or {})
    if msg.tags:
        props[PROPERTY_TAGS] = msg.tags
    if msg.keys:
        props[PROPERTY_KEYS] = msg.keys if isinstance(msg.keys, str) else KEY_SEPARATOR.join(msg.keys)
    return props


@dataclass(slots=True)
class _Prepared:
    topic: str
    body: bytes
    properties: str
    sys_flag: int
    flag: int
    uniq_id: str
    batch: bool = False


class AsyncProducer(AsyncClient):
    """A producer for asyncio code; create, ``await start()``, send, ``await shutdown()``.

    Also an async context manager. All methods must be awaited on the loop that started it.

    Arguments (Java's ``DefaultMQProducer`` name in brackets):

    * ``namesrv_addr`` -- ``"host:port"``, several separated by ``;``, or a list [namesrvAddr]
    * ``group`` -- producer group [producerGroup]
    * ``send_timeout`` -- seconds for a send including its retries [sendMsgTimeout]
    * ``retry_times`` -- extra attempts of a failed send or batch [retryTimesWhenSendFailed]
    * ``max_message_size`` -- largest body (or batch body) accepted, bytes [maxMessageSize]
    * ``compress_over`` -- compress bodies larger than this; negative: never
      [compressMsgBodyOverHowmuch]; ``compress_type`` -- "ZLIB", "LZ4" or "ZSTD" [compressType];
      ``compress_level`` -- the codec's level (ZLIB, ZSTD) [compressLevel]
    * ``create_topic_key`` / ``default_topic_queue_nums`` -- template topic and queue count for
      topics the name server does not know [createTopicKey, defaultTopicQueueNums]
    * ``retry_response_codes`` -- broker codes worth another attempt [retryResponseCodes]
    * ``fault_isolation`` -- seconds to avoid a broker group after a network failure; 0: never
    * ``poll_namesrv_interval`` / ``heartbeat_interval`` -- seconds [pollNameServerInterval,
      heartbeatBrokerInterval]
    * ``instance_name`` -- the part after ``@`` of the client id [instanceName]
    * ``access_key``, ``secret_key`` -- a RocketMQ ACL account: every request is signed, as
      Java's ``AclClientRPCHook`` signs it
    * ``ssl_context`` -- talk TLS to name servers and brokers (ferrymq.core.remoting.tls.client_context)
      [useTLS]
    """

    _kind = "producer"

    def __init__(
        self,
        namesrv_addr: str | Iterable[str] = "127.0.0.1:9876",
        group: str = DEFAULT_PRODUCER_GROUP,
        *,
        send_timeout: float = 3.0,
        retry_times: int = 2,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        compress_over: int = 4096,
        compress_level: int = 5,
        compress_type: str = "ZLIB",
        create_topic_key: str = DEFAULT_TOPIC,
        default_topic_queue_nums: int = 4,
        retry_response_codes: Iterable[int] | None = None,
        fault_isolation: float = 30.0,
        poll_namesrv_interval: float = 30.0,
        heartbeat_interval: float = 30.0,
        instance_name: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.group = check_group(group)
        if send_timeout <= 0:
            raise ValidationError("send_timeout must be positive")
        if retry_times < 0:
            raise ValidationError("retry_times must not be negative")
        self.namesrv_addr = namesrv_addr
        self.send_timeout = send_timeout
        self.retry_times = retry_times
        self.max_message_size = max_message_size
        self.compress_over = compress_over
        self.compress_level = compress_level
        if compress_type not in compression.CODEC_BITS:
            raise ValidationError(f"compress_type must be one of {sorted(compression.CODEC_BITS)}")
        self.compress_type = compress_type
        self.create_topic_key = create_topic_key
        self.default_topic_queue_nums = default_topic_queue_nums
        self.retry_response_codes = frozenset(
            DEFAULT_RETRY_RESPONSE_CODES if retry_response_codes is None else retry_response_codes
        )
        self.fault_isolation = fault_isolation
        self._instance = ClientInstance(
            namesrv_addr,
            instance_name=instance_name,
            request_timeout=send_timeout,
            poll_namesrv_interval=poll_namesrv_interval,
            heartbeat_interval=heartbeat_interval,
            default_topic_queue_nums=default_topic_queue_nums,
            ssl_context=ssl_context,
        )
        self._instance.remote.set_credentials(access_key, secret_key)
        self._instance.routes.default_topic = create_topic_key
        self._instance.heartbeat_data = self._heartbeat_data
        self._instance.topics_in_use = lambda: list(self._instance.routes.publish)
        self._instance.heartbeat_masters_only = True
        self._faults: dict[str, float] = {}
        self._state = "CREATED"
        self._background: set[asyncio.Task[Any]] = set()

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if not self._must_start():
            return
        await self._instance.start()
        self._state = "RUNNING"

    async def shutdown(self) -> None:
        """Unregister from the brokers and close every connection; idempotent."""
        if self._state != "RUNNING":
            self._state = "SHUTDOWN"
            return
        self._state = "SHUTDOWN"
        for task in list(self._background):
            task.cancel()
        await self._instance.unregister(producer_group=self.group)
        await self._instance.shutdown()

    def _heartbeat_data(self) -> HeartbeatData:
        return _api.heartbeat_data(self.client_id, producer_group=self.group)

    # ---- public sends --------------------------------------------------------------------------

    async def send(self, msg: Message, timeout: float | None = None) -> SendResult:
        """Send one message and wait for the broker's answer (with retries)."""
        self._check_running()
        prepared = self._prepare(msg)
        result = await self._send_with_retries(prepared, timeout)
        assert result is not None
        return result

    async def send_oneway(self, msg: Message) -> None:
        """Send one message without waiting for (or getting) an answer; one attempt."""
        self._check_running()
        await self._send_with_retries(self._prepare(msg), None, oneway=True)

    async def send_batch(self, messages: Sequence[Message], timeout: float | None = None) -> SendResult:
        """Send messages of one topic as one SEND_BATCH_MESSAGE; they land on one queue, in order.

        The result's ``msg_id`` and ``offset_msg_id`` are comma-joined, one per message, and
        ``queue_offset`` is the offset of the first message.
        """
        self._check_running()
        prepared = self._prepare_batch(messages)
        result = await self._send_with_retries(prepared, timeout)
        assert result is not None
        return result

    async def send_orderly(
        self, msg: Message, selector: SelectorLike, arg: Any = None, timeout: float | None = None
    ) -> SendResult:
        """Send to the queue ``selector`` picks from the topic's queues for ``arg``; one attempt."""
        self._check_running()
        prepared = self._prepare(msg)
        info = await self._instance.routes.publish_info(prepared.topic)
        queues = list(info.queues)
        mq = run_selector(selector, queues, msg, arg)
        if mq is None:
            raise ClientError("select message queue return null.")
        deadline = asyncio.get_running_loop().time() + (timeout or self.send_timeout)
        result = await self._send_to(prepared, info, mq, deadline, oneway=False)
        assert result is not None
        return result

    async def fetch_publish_queues(self, topic: str) -> list[MessageQueue]:
        """The queues ``send`` chooses from for ``topic`` (``fetchPublishMessageQueues``)."""
        self._check_running()
        return list((await self._instance.routes.publish_info(topic)).queues)

    # ---- internals -----------------------------------------------------------------------------

    def _prepare(self, msg: Message) -> _Prepared:
        check_message(msg, self.max_message_size)
        props = message_properties(msg)
        uniq = props.get(PROPERTY_UNIQ_KEY) or create_uniq_id()
        props[PROPERTY_UNIQ_KEY] = uniq
        body = bytes(msg.body)
        sys_flag = 0
        if self.compress_over >= 0 and len(body) > self.compress_over:
            body, sys_flag = compression.compress(body, self.compress_type, self.compress_level)
        return _Prepared(msg.topic, body, properties_to_string(props), sys_flag, msg.flag, uniq)

    def _prepare_batch(self, messages: Sequence[Message]) -> _Prepared:
        msgs = check_batch(messages, self.max_message_size)
        records: list[tuple[bytes, int, str]] = []
        ids: list[str] = []
        for m in msgs:
            props = message_properties(m)
            uniq = props.get(PROPERTY_UNIQ_KEY) or create_uniq_id()
            props[PROPERTY_UNIQ_KEY] = uniq
            ids.append(uniq)
            records.append((bytes(m.body), m.flag, properties_to_string(props)))
        body = encode_batch_body(records)
        if len(body) > self.max_message_size:
            raise ValidationError(f"the message body size over max value, MAX: {self.max_message_size}")
        # No UNIQ_KEY for the batch itself (Java sets one): RocketMQ 5 brokers append the header's
        # properties to every inner message, so all of them would share that key
        # (apache/rocketmq#9416).
        header_props = properties_to_string({PROPERTY_WAIT_STORE_MSG_OK: "true"})
        return _Prepared(msgs[0].topic, body, header_props, 0, 0, ",".join(ids), batch=True)

    def _avoid(self) -> set[str]:
        now = time.monotonic()
        for name in [n for n, until in self._faults.items() if until <= now]:
            del self._faults[name]
        return set(self._faults)

    async def _send_with_retries(
        self, p: _Prepared, timeout: float | None, *, oneway: bool = False
    ) -> SendResult | None:
        loop = asyncio.get_running_loop()
        budget = self.send_timeout if timeout is None else timeout
        deadline = loop.time() + budget
        info = await self._instance.routes.publish_info(p.topic)
        attempts = 1 if oneway else 1 + self.retry_times
        last_broker: str | None = None
        last_exc: Exception | None = None
        tried = 0
        for _ in range(attempts):
            if loop.time() >= deadline:
                break
            mq = info.select(last_broker, self._avoid())
            tried += 1
            try:
                return await self._send_to(p, info, mq, deadline, oneway=oneway)
            except NetworkError as exc:
                if self.fault_isolation > 0:
                    self._faults[mq.broker_name] = time.monotonic() + self.fault_isolation
                last_exc = exc
            except BrokerError as exc:
                if exc.code not in self.retry_response_codes:
                    raise
                last_exc = exc
            except ClientError as exc:  # e.g. the broker group has no master address now
                last_exc = exc
            last_broker = mq.broker_name
            log.info("send to %s failed (%s), attempt %d of %d", mq, last_exc, tried, attempts)
        if last_exc is None:
            raise NetworkError(f"send of a message to topic {p.topic} timed out after {budget}s")
        last_exc.add_note(f"send to topic {p.topic} failed after {tried} attempt(s) within {budget}s")
        raise last_exc

    async def _send_to(
        self, p: _Prepared, info: TopicPublishInfo, mq: MessageQueue, deadline: float, *, oneway: bool
    ) -> SendResult | None:
        routes = self._instance.routes
        addr = await routes.master_addr_or_refresh(mq.broker_name, p.topic)
        if addr is None:
            raise ClientError(f"The broker[{mq.broker_name}] not exist")
        header = _api.send_header_v2(
            group=self.group,
            topic=p.topic,
            default_topic=self.create_topic_key,
            default_topic_queue_nums=self.default_topic_queue_nums,
            queue_id=mq.queue_id,
            sys_flag=p.sys_flag,
            born_timestamp=int(time.time() * 1000),
            flag=p.flag,
            properties=p.properties,
            broker_name=mq.broker_name,
            batch=p.batch,
        )
        remote = self._instance.remote
        if oneway:
            await _api.send_message_oneway(remote, addr, header, p.body, batch=p.batch)
            result = None
        else:
            remaining = deadline - asyncio.get_running_loop().time()
            result = await _api.send_message(
                remote, addr, mq, header, p.body, p.uniq_id, remaining, batch=p.batch
            )
        if info.from_default:
            self._refresh_soon(p.topic)
        return result

    def _refresh_soon(self, topic: str) -> None:
        """After a send over TBW102's route, look for the topic's own route in the background."""
        key = f"refresh:{topic}"
        if any(t.get_name() == key for t in self._background):
            return
        task = asyncio.ensure_future(self._instance.routes.refresh([topic]))
        task.set_name(key)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class Producer(BlockingFacade[AsyncProducer]):
    """Blocking producer: the same API as :class:`AsyncProducer` without ``await``.

    It runs an :class:`AsyncProducer` on its own background event-loop thread. ``send_async``
    returns a :class:`concurrent.futures.Future`; in asyncio code, ``await
    asyncio.wrap_future(future)`` -- or use :class:`AsyncProducer` directly.

        with Producer("127.0.0.1:9876", group="g") as producer:
            result = producer.send(Message("TopicA", b"hello", tags="TagA"))
    """

    def __init__(
        self,
        namesrv_addr: str | Iterable[str] = "127.0.0.1:9876",
        group: str = DEFAULT_PRODUCER_GROUP,
        **kw: Any,
    ) -> None:
        """Same arguments as :class:`AsyncProducer`."""
        super().__init__(AsyncProducer(namesrv_addr, group, **kw), f"ferrymq-producer-{group}")
        self._pending: set[concurrent.futures.Future[Any]] = set()

    @property
    def async_producer(self) -> AsyncProducer:
        """The AsyncProducer behind this facade (it lives on the facade's loop thread)."""
        return self._async

    def send(self, msg: Message, timeout: float | None = None) -> SendResult:
        return self._loop.run(self._async.send(msg, timeout))

    def send_async(self, msg: Message, timeout: float | None = None) -> concurrent.futures.Future[SendResult]:
        """Start a send and return at once; the future resolves to the SendResult or the error."""
        fut = self._loop.submit(self._async.send(msg, timeout))
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)
        return fut

    def send_oneway(self, msg: Message) -> None:
        self._loop.run(self._async.send_oneway(msg))

    def send_batch(self, messages: Sequence[Message], timeout: float | None = None) -> SendResult:
        return self._loop.run(self._async.send_batch(messages, timeout))

    def send_orderly(
        self, msg: Message, selector: SelectorLike, arg: Any = None, timeout: float | None = None
    ) -> SendResult:
        return self._loop.run(self._async.send_orderly(msg, selector, arg, timeout))

    def fetch_publish_queues(self, topic: str) -> list[MessageQueue]:
        return self._loop.run(self._async.fetch_publish_queues(topic))

    def _before_shutdown(self) -> None:
        """Let ``send_async`` sends still under way finish before unregistering."""
        pending = list(self._pending)
        if pending:
            concurrent.futures.wait(pending, timeout=self._async.send_timeout + 1.0)

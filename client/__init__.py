"""ferrymq's pure-Python RocketMQ client (remoting protocol), for ferrymq and Apache RocketMQ.

Blocking API (each client runs its own background asyncio loop thread)::

    from ferrymq.client import Message, Producer, LitePullConsumer

    with Producer("127.0.0.1:9876", group="demo-producer") as producer:
        result = producer.send(Message("TopicA", b"hello", tags="TagA", keys="order-1"))

    consumer = LitePullConsumer("127.0.0.1:9876", group="demo-consumer", consume_from="FIRST_OFFSET")
    consumer.subscribe("TopicA", "TagA || TagB")
    consumer.start()
    messages = consumer.poll(timeout=1.0)
    consumer.shutdown()

asyncio API: :class:`AsyncProducer` and :class:`AsyncLitePullConsumer`, same methods, awaited.

Modules: ``producer`` (sending), ``consumer`` (lite pull, offsets, rebalancing), ``selectors``
(queue selectors for ordered sends), ``allocate`` (queue allocation in a group), ``route``
(name-server routes), ``validators``, ``errors``, ``message``; private ``_remote`` (connection
pool), ``_api`` (broker requests), ``_instance`` (heartbeats, route refresh), ``_loop``
(background loop), ``_ids`` (client id, message unique keys).

Not covered: push consumers, broadcasting, transactions, request/reply, SQL92 filters, message
traces, ACL, TLS, namespaces, the gRPC protocol.
"""

from ferrymq.client._ids import create_uniq_id
from ferrymq.client.allocate import AllocateMessageQueueAveragely, AllocateStrategy, allocate_averagely
from ferrymq.client.consumer import AsyncLitePullConsumer, LitePullConsumer, SubscriptionData, queue_of
from ferrymq.client.errors import BrokerError, ClientError, MQError, NetworkError, ValidationError
from ferrymq.client.message import Message, MessageExt, MessageQueue, SendResult, SendStatus
from ferrymq.client.producer import AsyncProducer, Producer
from ferrymq.client.selectors import (
    MessageQueueSelector,
    SelectMessageQueueByHash,
    SelectMessageQueueByMachineRoom,
    SelectMessageQueueByRandom,
)

__all__ = [
    "AllocateMessageQueueAveragely",
    "AllocateStrategy",
    "AsyncLitePullConsumer",
    "AsyncProducer",
    "BrokerError",
    "ClientError",
    "LitePullConsumer",
    "MQError",
    "Message",
    "MessageExt",
    "MessageQueue",
    "MessageQueueSelector",
    "NetworkError",
    "Producer",
    "SelectMessageQueueByHash",
    "SelectMessageQueueByMachineRoom",
    "SelectMessageQueueByRandom",
    "SendResult",
    "SendStatus",
    "SubscriptionData",
    "ValidationError",
    "allocate_averagely",
    "create_uniq_id",
    "queue_of",
]

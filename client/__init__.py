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

Push consumers (``push_consumer``; clustering or broadcasting, concurrent or orderly listeners,
retries through %RETRY%/%DLQ%, every Java allocation strategy in ``allocate``, queue priority
in ``priority``)::

    consumer = PushConsumer("127.0.0.1:9876", group="demo-push", consume_from="FIRST_OFFSET")
    consumer.subscribe("TopicA", "*")
    consumer.register_listener(lambda msgs: ConsumeStatus.CONSUME_SUCCESS)
    consumer.start()

Modules: ``producer`` (sending), ``consumer`` (lite pull), ``push_consumer`` (push consumer:
configuration, lifecycle, pulling) and its parts along RocketMQ's seams: ``process_queue``
(messages between pull and commit), ``offset_store`` (broker and local-file offset stores, the
broker one shared with the lite-pull consumer), ``consume_service`` (concurrent and orderly
consumption), ``send_back`` (failed messages back to the broker), ``queue_lock`` (orderly queue
locks), ``rebalance`` (queue ownership, where a queue starts); ``selectors`` (queue selectors for
ordered sends), ``allocate`` (queue allocation in a group), ``route`` (name-server routes),
``validators``, ``errors``, ``message``; private ``_remote`` (connection pool), ``_api`` (broker
requests), ``_pull`` (pull address and result handling of both consumers), ``_instance``
(heartbeats, route refresh, the async clients' shared lifecycle), ``_loop`` (background loop and
the one blocking facade), ``_ids`` (client id, message unique keys).

Transactions (``transaction_producer``): :class:`TransactionProducer` and
:class:`AsyncTransactionProducer` with a :class:`TransactionListener`, as Java's TransactionMQProducer.

SQL92 filters: ``subscribe(topic, sql="a > 2")`` on both consumers (the broker filters).
Not covered: request/reply, message
traces, ACL, TLS, namespaces, the gRPC protocol.
"""

from ferrymq.client._ids import create_uniq_id
from ferrymq.client.allocate import (
    AllocateMachineRoomNearby,
    AllocateMessageQueueAveragely,
    AllocateMessageQueueAveragelyByCircle,
    AllocateMessageQueueByConfig,
    AllocateMessageQueueByMachineRoom,
    AllocateMessageQueueConsistentHash,
    AllocateStrategy,
    allocate_averagely,
)
from ferrymq.client.consumer import AsyncLitePullConsumer, LitePullConsumer, queue_of
from ferrymq.client.errors import BrokerError, ClientError, MQError, NetworkError, ValidationError
from ferrymq.client.message import Message, MessageExt, MessageQueue, SendResult, SendStatus
from ferrymq.client.priority import by_queue_set, by_topic
from ferrymq.client.producer import AsyncProducer, Producer
from ferrymq.client.push_consumer import AsyncPushConsumer, ConsumeOrderlyStatus, ConsumeStatus, PushConsumer
from ferrymq.client.selectors import (
    MessageQueueSelector,
    SelectMessageQueueByHash,
    SelectMessageQueueByMachineRoom,
    SelectMessageQueueByRandom,
)
from ferrymq.client.transaction_producer import (
    AsyncTransactionProducer,
    LocalTransactionState,
    TransactionListener,
    TransactionProducer,
    TransactionSendResult,
)
from ferrymq.core.remoting.subscription import SubscriptionData

__all__ = [
    "AllocateMachineRoomNearby",
    "AllocateMessageQueueAveragely",
    "AllocateMessageQueueAveragelyByCircle",
    "AllocateMessageQueueByConfig",
    "AllocateMessageQueueByMachineRoom",
    "AllocateMessageQueueConsistentHash",
    "AllocateStrategy",
    "AsyncLitePullConsumer",
    "AsyncProducer",
    "AsyncPushConsumer",
    "AsyncTransactionProducer",
    "BrokerError",
    "ClientError",
    "ConsumeOrderlyStatus",
    "ConsumeStatus",
    "LitePullConsumer",
    "LocalTransactionState",
    "MQError",
    "Message",
    "MessageExt",
    "MessageQueue",
    "MessageQueueSelector",
    "NetworkError",
    "Producer",
    "PushConsumer",
    "SelectMessageQueueByHash",
    "SelectMessageQueueByMachineRoom",
    "SelectMessageQueueByRandom",
    "SendResult",
    "SendStatus",
    "SubscriptionData",
    "TransactionListener",
    "TransactionProducer",
    "TransactionSendResult",
    "ValidationError",
    "allocate_averagely",
    "by_queue_set",
    "by_topic",
    "create_uniq_id",
    "queue_of",
]

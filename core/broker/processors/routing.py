"""The broker's routing table: every request code it serves and the handler that serves it.

One processor per request family (as RocketMQ's broker has); each module says at its top what
it leaves out. A code missing here is answered REQUEST_CODE_NOT_SUPPORTED by the dispatcher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferrymq.core.broker.processors.admin import AdminProcessor
from ferrymq.core.broker.processors.admin_stats import AdminStatsProcessor
from ferrymq.core.broker.processors.assignment import AssignmentProcessor
from ferrymq.core.broker.processors.auth_admin import AUTH_CODES, AuthAdminProcessor
from ferrymq.core.broker.processors.client_manage import ClientManageProcessor
from ferrymq.core.broker.processors.consumer_admin import ConsumerAdminProcessor
from ferrymq.core.broker.processors.consumer_manage import ConsumerManageProcessor
from ferrymq.core.broker.processors.consumer_send_back import ConsumerSendBackProcessor
from ferrymq.core.broker.processors.end_transaction import EndTransactionProcessor
from ferrymq.core.broker.processors.lock import LockProcessor
from ferrymq.core.broker.processors.metadata import MetadataProcessor
from ferrymq.core.broker.processors.pop_message import PopMessageProcessor
from ferrymq.core.broker.processors.pull_message import PullMessageProcessor
from ferrymq.core.broker.processors.query_message import QueryMessageProcessor
from ferrymq.core.broker.processors.replication import ReplicationProcessor
from ferrymq.core.broker.processors.send_message import SendMessageProcessor
from ferrymq.core.broker.processors.subscription_group import SubscriptionGroupProcessor
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.transport import Handler, RequestDispatcher

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker


def build_dispatcher(broker: Broker) -> RequestDispatcher:
    """A dispatcher answering every request the broker serves."""
    send = SendMessageProcessor(broker)
    pull = PullMessageProcessor(broker)
    manage = ConsumerManageProcessor(broker)
    clients = ClientManageProcessor(broker)
    admin = AdminProcessor(broker)
    stats = AdminStatsProcessor(broker)
    consumer_admin = ConsumerAdminProcessor(broker)
    query = QueryMessageProcessor(broker)
    send_back = ConsumerSendBackProcessor(broker)
    locks = LockProcessor(broker)
    groups = SubscriptionGroupProcessor(broker)
    metadata = MetadataProcessor(broker)
    replication = ReplicationProcessor(broker)
    end_txn = EndTransactionProcessor(broker)
    pop = PopMessageProcessor(broker)
    assignment = AssignmentProcessor(broker)
    auth = AuthAdminProcessor(broker)
    table: dict[RequestCode, Handler] = {
        # send_message.py
        RequestCode.SEND_MESSAGE: send.send,
        RequestCode.SEND_MESSAGE_V2: send.send,
        RequestCode.SEND_BATCH_MESSAGE: send.send,
        # end_transaction.py
        RequestCode.END_TRANSACTION: end_txn.end,
        # pull_message.py
        RequestCode.PULL_MESSAGE: pull.pull,
        RequestCode.LITE_PULL_MESSAGE: pull.pull,
        # pop_message.py
        RequestCode.POP_MESSAGE: pop.pop,
        RequestCode.ACK_MESSAGE: pop.ack,
        RequestCode.BATCH_ACK_MESSAGE: pop.batch_ack,
        RequestCode.CHANGE_MESSAGE_INVISIBLETIME: pop.change_invisible,
        # assignment.py
        RequestCode.QUERY_ASSIGNMENT: assignment.query,
        RequestCode.SET_MESSAGE_REQUEST_MODE: assignment.set_mode,
        # consumer_manage.py
        RequestCode.QUERY_CONSUMER_OFFSET: manage.query_offset,
        RequestCode.UPDATE_CONSUMER_OFFSET: manage.update_offset,
        RequestCode.GET_CONSUMER_LIST_BY_GROUP: manage.consumer_list,
        RequestCode.QUERY_TOPICS_BY_CONSUMER: manage.topics_of_group,
        RequestCode.GET_MAX_OFFSET: manage.max_offset,
        RequestCode.GET_MIN_OFFSET: manage.min_offset,
        RequestCode.SEARCH_OFFSET_BY_TIMESTAMP: manage.search_offset,
        RequestCode.GET_EARLIEST_MSG_STORETIME: manage.earliest_time,
        # replication.py
        RequestCode.HA_SLAVE_HELLO: replication.slave_hello,
        RequestCode.GET_BROKER_EPOCH_CACHE: replication.epoch_cache,
        RequestCode.HA_CONFIRM_OFFSET: replication.confirm_offset,
        RequestCode.REPLICATED_STATE: replication.replicated_state,
        RequestCode.COMPACTED_PART: replication.compacted_part,
        # client_manage.py
        RequestCode.HEART_BEAT: clients.heartbeat,
        RequestCode.UNREGISTER_CLIENT: clients.unregister,
        RequestCode.CHECK_CLIENT_CONFIG: clients.check_client_config,
        # admin.py
        RequestCode.UPDATE_AND_CREATE_TOPIC: admin.create_topic,
        RequestCode.GET_BROKER_RUNTIME_INFO: admin.runtime_info,
        RequestCode.DELETE_TOPIC_IN_BROKER: admin.delete_topic,
        RequestCode.GET_TOPIC_CONFIG: admin.topic_config,
        RequestCode.GET_BROKER_HA_STATUS: admin.ha_status,
        # admin_stats.py
        RequestCode.GET_TOPIC_STATS_INFO: stats.topic_stats,
        RequestCode.GET_CONSUME_STATS: stats.consume_stats,
        RequestCode.GET_BROKER_CONSUME_STATS: stats.broker_consume_stats,
        RequestCode.QUERY_TOPIC_CONSUME_BY_WHO: stats.consume_by_who,
        RequestCode.GET_CONSUMER_CONNECTION_LIST: stats.consumer_connections,
        RequestCode.VIEW_BROKER_STATS_DATA: stats.broker_stats_data,
        # consumer_admin.py
        RequestCode.INVOKE_BROKER_TO_RESET_OFFSET: consumer_admin.reset_offset,
        RequestCode.GET_CONSUMER_RUNNING_INFO: consumer_admin.running_info,
        RequestCode.CONSUME_MESSAGE_DIRECTLY: consumer_admin.consume_directly,
        # metadata.py
        RequestCode.GET_ALL_TOPIC_CONFIG: metadata.all_topics,
        RequestCode.GET_ALL_CONSUMER_OFFSET: metadata.all_consumer_offsets,
        RequestCode.GET_ALL_DELAY_OFFSET: metadata.all_delay_offsets,
        RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_BROKER: metadata.system_topics,
        # query_message.py
        RequestCode.VIEW_MESSAGE_BY_ID: query.view_by_id,
        RequestCode.QUERY_MESSAGE: query.query,
        # consumer_send_back.py
        RequestCode.CONSUMER_SEND_MSG_BACK: send_back.send_back,
        # lock.py
        RequestCode.LOCK_BATCH_MQ: locks.lock,
        RequestCode.UNLOCK_BATCH_MQ: locks.unlock,
        # subscription_group.py
        RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: groups.update,
        RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG: groups.get_all,
        RequestCode.DELETE_SUBSCRIPTIONGROUP: groups.delete,
        RequestCode.GET_SUBSCRIPTIONGROUP_CONFIG: groups.get_one,
        # auth_admin.py
        **{code: auth.handle for code in AUTH_CODES},
    }
    if broker.config.is_slave:  # a slave's store is written by replication only
        for code in (
            RequestCode.SEND_MESSAGE,
            RequestCode.SEND_MESSAGE_V2,
            RequestCode.SEND_BATCH_MESSAGE,
            RequestCode.CONSUMER_SEND_MSG_BACK,
            RequestCode.POP_MESSAGE,  # POP state is the master's
            RequestCode.ACK_MESSAGE,
            RequestCode.BATCH_ACK_MESSAGE,
            RequestCode.CHANGE_MESSAGE_INVISIBLETIME,
        ):
            table[code] = send.refuse_fenced if broker.fenced else send.refuse_on_slave
        table[RequestCode.END_TRANSACTION] = end_txn.refuse_on_slave
    return RequestDispatcher(table)

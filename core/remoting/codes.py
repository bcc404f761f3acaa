"""Request, response and language codes of the remoting protocol.

Values from apache/rocketmq ``remoting/.../protocol/RequestCode.java``, ``ResponseCode.java``,
``RemotingSysResponseCode.java`` and ``LanguageCode.java``. Only the codes ferrymq speaks or
must recognise are listed; any other request code is answered REQUEST_CODE_NOT_SUPPORTED.
"""

from enum import IntEnum


class RequestCode(IntEnum):
    SEND_MESSAGE = 10
    PULL_MESSAGE = 11
    QUERY_MESSAGE = 12
    QUERY_CONSUMER_OFFSET = 14
    UPDATE_CONSUMER_OFFSET = 15
    UPDATE_AND_CREATE_TOPIC = 17
    GET_ALL_TOPIC_CONFIG = 21
    GET_BROKER_RUNTIME_INFO = 28
    SEARCH_OFFSET_BY_TIMESTAMP = 29
    GET_MAX_OFFSET = 30
    GET_MIN_OFFSET = 31
    GET_EARLIEST_MSG_STORETIME = 32
    VIEW_MESSAGE_BY_ID = 33
    HEART_BEAT = 34
    UNREGISTER_CLIENT = 35
    CONSUMER_SEND_MSG_BACK = 36
    END_TRANSACTION = 37
    GET_CONSUMER_LIST_BY_GROUP = 38
    CHECK_TRANSACTION_STATE = 39
    NOTIFY_CONSUMER_IDS_CHANGED = 40
    LOCK_BATCH_MQ = 41
    UNLOCK_BATCH_MQ = 42
    GET_ALL_CONSUMER_OFFSET = 43
    GET_ALL_DELAY_OFFSET = 45
    CHECK_CLIENT_CONFIG = 46
    REGISTER_BROKER = 103
    UNREGISTER_BROKER = 104
    GET_ROUTEINFO_BY_TOPIC = 105
    GET_BROKER_CLUSTER_INFO = 106
    UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200
    GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201
    GET_TOPIC_STATS_INFO = 202
    GET_CONSUMER_CONNECTION_LIST = 203
    GET_ALL_TOPIC_LIST_FROM_NAMESERVER = 206
    DELETE_SUBSCRIPTIONGROUP = 207
    GET_CONSUME_STATS = 208
    DELETE_TOPIC_IN_BROKER = 215
    DELETE_TOPIC_IN_NAMESRV = 216
    #: broker -> client: move the group's in-memory positions (ResetOffsetBody)
    RESET_CONSUMER_CLIENT_OFFSET = 220
    INVOKE_BROKER_TO_RESET_OFFSET = 222
    QUERY_TOPIC_CONSUME_BY_WHO = 300
    #: the broker's system topic names (mqadmin exportMetadata drops them from the topic table)
    GET_SYSTEM_TOPIC_LIST_FROM_BROKER = 305
    #: admin -> broker -> client (the broker forwards to the client named in the header)
    GET_CONSUMER_RUNNING_INFO = 307
    CONSUME_MESSAGE_DIRECTLY = 309
    SEND_MESSAGE_V2 = 310
    QUERY_TOPICS_BY_CONSUMER = 343
    #: mqadmin statsAll: a BrokerStatsData of one stats item (TOPIC_PUT_NUMS, GROUP_GET_NUMS, ...)
    VIEW_BROKER_STATS_DATA = 315
    GET_BROKER_CONSUME_STATS = 317
    SEND_BATCH_MESSAGE = 320
    GET_TOPIC_CONFIG = 351
    GET_SUBSCRIPTIONGROUP_CONFIG = 352
    LITE_PULL_MESSAGE = 361
    QUERY_ASSIGNMENT = 400
    SET_MESSAGE_REQUEST_MODE = 401
    POP_MESSAGE = 200050
    ACK_MESSAGE = 200051
    CHANGE_MESSAGE_INVISIBLETIME = 200053
    BATCH_ACK_MESSAGE = 200151
    GET_BROKER_HA_STATUS = 907
    #: ferrymq's own: a slave names its HA socket (host:port) so its master knows it reads
    #: Kafka batch entries (an Apache RocketMQ master answers REQUEST_CODE_NOT_SUPPORTED)
    HA_SLAVE_HELLO = 9901
    #: ferrymq's own: a slave asks its master's high watermark (confirmOffset); held until it
    #: passes the one the slave knows (core/broker/confirm_follow.py)
    HA_CONFIRM_OFFSET = 9902
    #: ferrymq's own: a slave copies a frontend's state named ``name`` (e.g. kafkaTransactions)
    #: from its master (core/broker/replicated_state.py); SYSTEM_ERROR for an unknown name
    REPLICATED_STATE = 9903
    #: ferrymq's own: a slave copies its master's compacted parts (core/store/compacted_log.py):
    #: without ``topic`` the list of them, with it a byte range of one
    COMPACTED_PART = 9904
    # the failover controller (RocketMQ 5 controller mode; namesrv/controller)
    BROKER_HEARTBEAT = 904
    CONTROLLER_ALTER_SYNC_STATE_SET = 1001
    CONTROLLER_ELECT_MASTER = 1002
    CONTROLLER_REGISTER_BROKER = 1003
    CONTROLLER_GET_REPLICA_INFO = 1004
    CONTROLLER_GET_METADATA_INFO = 1005
    #: a broker's epoch history and max offset (EpochEntryCache); a slave asks its master first
    GET_BROKER_EPOCH_CACHE = 1007
    # ACL 2.0 users and ACLs (RocketMQ 5.3; core/broker/processors/auth_admin.py)
    AUTH_CREATE_USER = 3001
    AUTH_UPDATE_USER = 3002
    AUTH_DELETE_USER = 3003
    AUTH_GET_USER = 3004
    AUTH_LIST_USER = 3005
    AUTH_CREATE_ACL = 3006
    AUTH_UPDATE_ACL = 3007
    AUTH_DELETE_ACL = 3008
    AUTH_GET_ACL = 3009
    AUTH_LIST_ACL = 3010


class ResponseCode(IntEnum):
    SUCCESS = 0
    SYSTEM_ERROR = 1
    SYSTEM_BUSY = 2
    REQUEST_CODE_NOT_SUPPORTED = 3
    TRANSACTION_FAILED = 4
    FLUSH_DISK_TIMEOUT = 10
    SLAVE_NOT_AVAILABLE = 11
    FLUSH_SLAVE_TIMEOUT = 12
    MESSAGE_ILLEGAL = 13
    SERVICE_NOT_AVAILABLE = 14
    VERSION_NOT_SUPPORTED = 15
    NO_PERMISSION = 16
    TOPIC_NOT_EXIST = 17
    TOPIC_EXIST_ALREADY = 18
    PULL_NOT_FOUND = 19
    PULL_RETRY_IMMEDIATELY = 20
    PULL_OFFSET_MOVED = 21
    QUERY_NOT_FOUND = 22
    SUBSCRIPTION_PARSE_FAILED = 23
    SUBSCRIPTION_NOT_EXIST = 24
    SUBSCRIPTION_NOT_LATEST = 25
    SUBSCRIPTION_GROUP_NOT_EXIST = 26
    FILTER_DATA_NOT_EXIST = 27
    FILTER_DATA_NOT_LATEST = 28
    INVALID_PARAMETER = 29
    NO_BUYER_ID = 204
    NOT_IN_CURRENT_UNIT = 205
    CONSUMER_NOT_ONLINE = 206
    NO_MESSAGE = 208
    POLLING_FULL = 209
    POLLING_TIMEOUT = 210
    #: END_TRANSACTION not from a check, past the half message's CHECK_IMMUNITY_TIME_IN_SECONDS
    ILLEGAL_OPERATION = 604


class LanguageCode(IntEnum):
    JAVA = 0
    CPP = 1
    DOTNET = 2
    PYTHON = 3
    DELPHI = 4
    ERLANG = 5
    RUBY = 6
    OTHER = 7
    HTTP = 8
    GO = 9
    PHP = 10
    OMS = 11
    RUST = 12
    NODE_JS = 13


LANGUAGE_BY_CODE: dict[int, str] = {m.value: m.name for m in LanguageCode}
LANGUAGE_BY_NAME: dict[str, int] = {m.name: m.value for m in LanguageCode}

#: ``MQVersion.CURRENT_VERSION`` ordinal of RocketMQ 5.3.3. Clients gate features (SQL92
#: filtering, standard route JSON) on the version a server reports, so report a modern one.
SERVER_VERSION = 479

#: Flag bits of a command (``RemotingCommand.RPC_TYPE`` / ``RPC_ONEWAY``).
FLAG_RESPONSE = 1
FLAG_ONEWAY = 2

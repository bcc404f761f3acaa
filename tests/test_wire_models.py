"""The wire models shared by client, broker and name server (core/remoting), and the routing tables.

In-process: no sockets. The heartbeat bytes are pinned because Java brokers read what the Python
client writes, and the routing tables are checked to answer every request code they name.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, opt_bool, opt_int, req_int, req_str
from ferrymq.core.remoting.heartbeat import ConsumerData, HeartbeatData
from ferrymq.core.remoting.message import java_string_hash
from ferrymq.core.remoting.subscription import SUB_ALL, SubscriptionData, SubscriptionError
from ferrymq.namesrv.processor import build_dispatcher
from ferrymq.namesrv.route_info import RouteInfoManager


def test_heartbeat_body_layout() -> None:
    sub = SubscriptionData.build("T", "TagA", sub_version=7)
    data = HeartbeatData(
        "cid",
        ["pg"],
        [ConsumerData("cg", "CONSUME_ACTIVELY", "CLUSTERING", "CONSUME_FROM_FIRST_OFFSET", [sub])],
    )
    assert data.encode() == (
        b'{"clientID":"cid","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET",'
        b'"consumeType":"CONSUME_ACTIVELY","groupName":"cg","messageModel":"CLUSTERING",'
        b'"subscriptionDataSet":[{"classFilterMode":false,"codeSet":['
        + str(java_string_hash("TagA")).encode()
        + b'],"expressionType":"TAG","subString":"TagA","subVersion":7,"tagsSet":["TagA"],"topic":"T"}],'
        b'"unitMode":false}],"heartbeatFingerprint":0,"producerDataSet":[{"groupName":"pg"}],'
        b'"withoutSub":false}'
    )
    assert HeartbeatData.decode(data.encode()) == data


def test_heartbeat_decode_defaults_and_errors() -> None:
    body = {"clientID": "c", "consumerDataSet": [{"groupName": "g", "subscriptionDataSet": [{"topic": "T"}]}]}
    data = HeartbeatData.decode(json.dumps(body).encode())
    (consumer,) = data.consumers
    assert (consumer.consume_type, consumer.message_model) == ("CONSUME_PASSIVELY", "CLUSTERING")
    assert consumer.consume_from_where == "CONSUME_FROM_LAST_OFFSET"
    assert consumer.subscriptions[0].matches_all and consumer.subscriptions[0].sub_version == 0
    with pytest.raises(ValueError, match="not an object"):
        HeartbeatData.decode(b"[]")
    with pytest.raises(ValueError, match="clientID"):
        HeartbeatData.decode(b'{"producerDataSet":[]}')
    with pytest.raises(KeyError):
        HeartbeatData.decode(b'{"clientID":"c","producerDataSet":[{}]}')


def test_subscription_build_and_parse() -> None:
    sub = SubscriptionData.build("T", " A || B || A ", sub_version=1)
    assert sub.tags_set == ["A", "B"] and sub.tag_codes() == {java_string_hash("A"), java_string_hash("B")}
    assert SubscriptionData.build("T", " || ").sub_string == SUB_ALL
    assert SubscriptionData.parse("T", "*").tag_codes() is None
    assert SubscriptionData.parse("T", None, None).matches_all
    with pytest.raises(SubscriptionError, match="no tag"):
        SubscriptionData.parse("T", " || ")
    with pytest.raises(SubscriptionError, match="sql92"):  # types are case-sensitive, as in Java
        SubscriptionData.parse("T", "a > 1", "sql92")
    sql = SubscriptionData.parse("T", "a > 1", "SQL92", 7)
    assert (sql.expression_type, sql.sub_string, sql.sub_version, sql.is_tag_type) == (
        "SQL92",
        "a > 1",
        7,
        False,
    )
    # a heartbeat that sends tags without their hashes still filters by hash
    assert SubscriptionData.from_json({"topic": "T", "tagsSet": ["A"]}).code_set == [java_string_hash("A")]


def test_header_reads_raise_one_error_type_with_a_code() -> None:
    ext = {"n": "12", "bad": "x", "empty": "", "flag": "TRUE"}
    assert (req_str(ext, "n"), req_int(ext, "n"), opt_int(ext, "empty", 5)) == ("12", 12, 5)
    assert opt_bool(ext, "flag", False) and opt_bool(ext, "none", None) is None
    with pytest.raises(BadRequest) as missing:
        req_str(ext, "topic")
    assert (missing.value.code, missing.value.remark) == (
        ResponseCode.SYSTEM_ERROR,
        "the custom field <topic> is null",
    )
    with pytest.raises(BadRequest) as bad:
        opt_int(ext, "bad", 0, ResponseCode.INVALID_PARAMETER)
    response = bad.value.response(RemotingCommand(code=RequestCode.REGISTER_BROKER))
    assert response.code == ResponseCode.INVALID_PARAMETER and "<bad>" in (response.remark or "")


def test_name_server_table_serves_route_codes() -> None:
    table = build_dispatcher(RouteInfoManager()).handlers
    assert set(table) == {
        RequestCode.REGISTER_BROKER,
        RequestCode.UNREGISTER_BROKER,
        RequestCode.GET_ROUTEINFO_BY_TOPIC,
        RequestCode.GET_BROKER_CLUSTER_INFO,
        RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
        RequestCode.DELETE_TOPIC_IN_NAMESRV,
    }


def test_broker_table_names_only_request_codes(tmp_path: Path) -> None:
    broker = Broker(BrokerConfig(store_path_root_dir=tmp_path / "store"))
    try:
        served = set(broker.dispatcher.handlers)
        assert served <= {code.value for code in RequestCode}
        assert {
            RequestCode.SEND_MESSAGE_V2,
            RequestCode.PULL_MESSAGE,
            RequestCode.HEART_BEAT,
            RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
            RequestCode.GET_SUBSCRIPTIONGROUP_CONFIG,
        } <= served
        assert RequestCode.REGISTER_BROKER not in served
    finally:
        asyncio.run(broker.store.shutdown())

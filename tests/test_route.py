"""Route models: Java-compatible JSON, fastjson tolerance and the compressed registration layout."""

from __future__ import annotations

import json
import struct
import zlib

import pytest

from ferrymq.core.remoting.route import (
    PERM_INHERIT,
    PERM_PRIORITY,
    PERM_READ,
    PERM_WRITE,
    BrokerData,
    ClusterInfo,
    DataVersion,
    QueueData,
    RegisterBrokerBody,
    RouteCodecError,
    TopicConfig,
    TopicList,
    TopicRouteData,
    is_readable,
    is_writeable,
    loads_fastjson,
    select_master_addr,
)


def _i32(n: int) -> bytes:
    return struct.pack(">i", n)


# ---- TopicConfig / DataVersion ---------------------------------------------------------------------


def test_perm_constants_match_permname() -> None:
    assert (PERM_PRIORITY, PERM_READ, PERM_WRITE, PERM_INHERIT) == (8, 4, 2, 1)
    assert is_readable(6) and is_writeable(6)
    assert is_readable(4) and not is_writeable(4)


def test_topic_config_defaults_and_java_field_names() -> None:
    tc = TopicConfig("T")
    assert (tc.read_queue_nums, tc.write_queue_nums, tc.perm) == (16, 16, 6)
    obj = tc.to_json()
    assert set(obj) == {
        "topicName",
        "readQueueNums",
        "writeQueueNums",
        "perm",
        "topicFilterType",
        "topicSysFlag",
        "order",
        "attributes",
    }
    assert obj["topicFilterType"] == "SINGLE_TAG"
    assert obj["order"] is False


def test_topic_config_json_round_trip() -> None:
    tc = TopicConfig("Orders", 8, 4, 4, "MULTI_TAG", 1, True, {"+message.type": "FIFO"})
    assert TopicConfig.from_json(json.loads(json.dumps(tc.to_json()))) == tc


def test_topic_config_from_json_uses_table_key_when_name_absent() -> None:
    tc = TopicConfig.from_json({"readQueueNums": 2, "writeQueueNums": 2, "perm": 6}, name="K")
    assert tc.topic_name == "K" and tc.read_queue_nums == 2


def test_topic_config_string_form_is_the_4x_five_field_form() -> None:
    assert TopicConfig("T", 8, 4, 6).encode() == "T 8 4 6 SINGLE_TAG"
    assert TopicConfig.decode("T 8 4 6 SINGLE_TAG") == TopicConfig("T", 8, 4, 6)


def test_topic_config_string_form_with_attributes_like_5x() -> None:
    tc = TopicConfig("T", 8, 8, 6, attributes={"+message.type": "NORMAL"})
    assert tc.encode() == 'T 8 8 6 SINGLE_TAG {"+message.type":"NORMAL"}'
    assert TopicConfig.decode(tc.encode()) == tc
    # a 5.x broker appends "{}" even when there are no attributes
    assert TopicConfig.decode("T 8 8 6 SINGLE_TAG {}") == TopicConfig("T", 8, 8, 6)


@pytest.mark.parametrize("text", ["T 8 8 6", "T x 8 6 SINGLE_TAG", "T 8 8 6 WEIRD", ""])
def test_topic_config_decode_rejects_garbage(text: str) -> None:
    with pytest.raises(RouteCodecError):
        TopicConfig.decode(text)


def test_data_version_json_fields() -> None:
    dv = DataVersion(timestamp=1700000000000, counter=3, state_version=2)
    assert dv.to_json() == {"counter": 3, "stateVersion": 2, "timestamp": 1700000000000}
    assert DataVersion.from_json(dv.to_json()) == dv
    # 4.x has no stateVersion
    assert DataVersion.from_json({"counter": 1, "timestamp": 5}) == DataVersion(5, 1, 0)
    dv.next_version()
    assert dv.counter == 4 and dv.state_version == 0


# ---- RegisterBrokerBody ------------------------------------------------------------------------------


def _body() -> RegisterBrokerBody:
    return RegisterBrokerBody(
        topic_configs={"A": TopicConfig("A", 4, 4), "B": TopicConfig("B", 2, 2, 4)},
        data_version=DataVersion(timestamp=1700000000000, counter=7),
        filter_server_list=[],
    )


def test_register_body_json_shape_and_round_trip() -> None:
    body = _body()
    raw = body.encode(compress=False)
    obj = json.loads(raw)
    assert set(obj) == {"topicConfigSerializeWrapper", "filterServerList"}
    wrapper = obj["topicConfigSerializeWrapper"]
    assert wrapper["dataVersion"] == {"counter": 7, "stateVersion": 0, "timestamp": 1700000000000}
    assert wrapper["topicConfigTable"]["A"]["readQueueNums"] == 4
    assert obj["filterServerList"] == []
    assert RegisterBrokerBody.decode(raw, compressed=False) == body


def test_register_body_decodes_a_java_5x_json_body() -> None:
    java = (
        b'{"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{"counter":2,'
        b'"stateVersion":0,"timestamp":1700000000001},"mappingDataVersion":{"counter":0,'
        b'"stateVersion":0,"timestamp":1700000000000},"topicConfigTable":{"TBW102":{"attributes":{},'
        b'"order":false,"perm":7,"readQueueNums":8,"topicFilterType":"SINGLE_TAG","topicName":"TBW102",'
        b'"topicSysFlag":0,"writeQueueNums":8}},"topicQueueMappingDetailMap":{},'
        b'"topicQueueMappingInfoMap":{}}}'
    )
    body = RegisterBrokerBody.decode(java, compressed=False)
    assert body.topic_configs == {"TBW102": TopicConfig("TBW102", 8, 8, 7)}
    assert body.data_version == DataVersion(1700000000001, 2, 0)


def test_register_body_decodes_pre_3_0_11_bare_wrapper() -> None:
    old = b'{"dataVersion":{"counter":1,"timestamp":9},"topicConfigTable":{"T":{"topicName":"T","perm":6}}}'
    body = RegisterBrokerBody.decode(old, compressed=False)
    assert list(body.topic_configs) == ["T"]
    assert body.data_version.counter == 1


def test_register_body_empty_has_zero_data_version() -> None:
    body = RegisterBrokerBody.decode(b"", compressed=False)
    assert body.topic_configs == {} and body.data_version == DataVersion(0, 0, 0)


def test_compressed_register_body_round_trip() -> None:
    body = _body()
    body.filter_server_list = ["10.0.0.9:30000"]
    data = body.encode(compress=True)
    assert data[0] == 0x78  # a zlib stream, as java.util.zip.DeflaterOutputStream writes
    assert RegisterBrokerBody.decode(data, compressed=True) == body


def test_compressed_register_body_golden_java_layout() -> None:
    """The inflated bytes follow RegisterBrokerBody.encode(true) field for field."""
    body = _body()
    dv = b'{"counter":7,"stateVersion":0,"timestamp":1700000000000}'
    expected = (
        _i32(len(dv))
        + dv
        + _i32(2)
        + _i32(len(b"A 4 4 6 SINGLE_TAG"))
        + b"A 4 4 6 SINGLE_TAG"
        + _i32(len(b"B 2 2 4 SINGLE_TAG"))
        + b"B 2 2 4 SINGLE_TAG"
        + _i32(2)
        + b"[]"
        + _i32(0)  # topic queue mapping count (5.x)
    )
    assert zlib.decompress(body.encode(compress=True)) == expected


def test_compressed_register_body_from_a_4x_broker_without_mapping_section() -> None:
    dv = b'{"counter":1,"timestamp":1600000000000}'
    topic = b"T 8 8 6 SINGLE_TAG"
    raw = _i32(len(dv)) + dv + _i32(1) + _i32(len(topic)) + topic + _i32(2) + b"[]"
    body = RegisterBrokerBody.decode(zlib.compress(raw, 9), compressed=True)
    assert body.topic_configs == {"T": TopicConfig("T", 8, 8, 6)}
    assert body.data_version == DataVersion(1600000000000, 1, 0)


@pytest.mark.parametrize(
    "data",
    [b"not zlib at all", zlib.compress(_i32(100) + b"{}"), zlib.compress(_i32(-1))],
    ids=["not-zlib", "truncated", "negative-length"],
)
def test_compressed_register_body_rejects_garbage(data: bytes) -> None:
    with pytest.raises(RouteCodecError):
        RegisterBrokerBody.decode(data, compressed=True)


def test_register_body_rejects_non_json() -> None:
    with pytest.raises(RouteCodecError):
        RegisterBrokerBody.decode(b"\xff\x00garbage", compressed=False)


# ---- TopicRouteData ------------------------------------------------------------------------------------


def _route() -> TopicRouteData:
    return TopicRouteData(
        queue_datas=[QueueData("broker-a", 4, 4, 6, 0)],
        broker_datas=[
            BrokerData("DefaultCluster", "broker-a", {0: "10.0.0.1:10911", 1: "10.0.0.2:10911"}),
        ],
    )


def test_route_json_is_standard_json_with_quoted_keys_golden() -> None:
    raw = _route().to_json_bytes()
    # the exact form of the reference notes (section 1.5): what a 5.x namesrv sends
    assert raw == (
        b'{"brokerDatas":[{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},'
        b'"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],'
        b'"filterServerTable":{},'
        b'"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,'
        b'"writeQueueNums":4}]}'
    )
    json.loads(raw)  # strict parser accepts it


def test_route_json_round_trip() -> None:
    route = _route()
    route.order_topic_conf = "broker-a:4"
    route.filter_server_table = {"10.0.0.1:10911": ["10.0.0.1:30000"]}
    assert TopicRouteData.from_json_bytes(route.to_json_bytes()) == route


def test_route_parses_fastjson_bare_integer_keys() -> None:
    fastjson = (
        b'{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911", 1 :"10.0.0.2:10911"},'
        b'"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":{},'
        b'"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,'
        b'"writeQueueNums":4}]}'
    )
    with pytest.raises(ValueError):
        json.loads(fastjson)
    assert TopicRouteData.from_json_bytes(fastjson) == _route()


def test_fastjson_tolerance_leaves_strings_alone() -> None:
    text = '{"a":"x,{1:y","m":{3:"q\\",{4:"},"n":[1,2]}'
    assert loads_fastjson(text) == {"a": "x,{1:y", "m": {"3": 'q",{4:'}, "n": [1, 2]}


def test_loads_fastjson_rejects_garbage() -> None:
    with pytest.raises(RouteCodecError):
        loads_fastjson(b"{oops")


def test_select_master_addr() -> None:
    route = _route()
    assert select_master_addr(route, "broker-a") == "10.0.0.1:10911"
    assert select_master_addr(route, "broker-b") is None
    route.broker_datas[0].broker_addrs.pop(0)
    assert select_master_addr(route, "broker-a") is None
    assert route.broker_datas[0].select_broker_addr() == "10.0.0.2:10911"


# ---- ClusterInfo / TopicList ---------------------------------------------------------------------------


def test_cluster_info_round_trip_and_fastjson_form() -> None:
    info = ClusterInfo(
        broker_addr_table={"broker-a": BrokerData("C1", "broker-a", {0: "h:1", 1: "h:2"})},
        cluster_addr_table={"C1": {"broker-a"}},
    )
    raw = info.to_json_bytes()
    assert json.loads(raw)["clusterAddrTable"] == {"C1": ["broker-a"]}
    assert json.loads(raw)["brokerAddrTable"]["broker-a"]["brokerAddrs"] == {"0": "h:1", "1": "h:2"}
    assert ClusterInfo.from_json_bytes(raw) == info
    java4 = (
        b'{"brokerAddrTable":{"broker-a":{"brokerAddrs":{0:"h:1",1:"h:2"},"brokerName":"broker-a",'
        b'"cluster":"C1","enableActingMaster":false}},"clusterAddrTable":{"C1":["broker-a"]}}'
    )
    assert ClusterInfo.from_json_bytes(java4) == info
    assert info.all_addrs_of_cluster("C1") == ["h:1", "h:2"]
    assert info.all_addrs_of_cluster("nope") == []


def test_topic_list_round_trip() -> None:
    tl = TopicList({"b", "a"})
    assert json.loads(tl.to_json_bytes()) == {"topicList": ["a", "b"]}
    assert TopicList.from_json_bytes(tl.to_json_bytes()) == tl
    with_addr = TopicList({"x"}, "h:1")
    assert TopicList.from_json_bytes(with_addr.to_json_bytes()) == with_addr

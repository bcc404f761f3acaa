"""Routing models shared by broker, name server and client: pure data and codecs, no IO.

Mirrors apache/rocketmq ``TopicConfig``, ``DataVersion``, ``RegisterBrokerBody`` (body of
REGISTER_BROKER, 103), ``QueueData``/``BrokerData``/``TopicRouteData`` (body of
GET_ROUTEINFO_BY_TOPIC, 105), ``ClusterInfo`` (GET_BROKER_CLUSTER_INFO, 106) and ``TopicList``
(GET_ALL_TOPIC_LIST_FROM_NAMESERVER, 206).

Compatibility choices:

* Output is always standard JSON with quoted keys (``"brokerAddrs":{"0":"addr"}``), which is what
  5.x name servers send to clients >= V4_9_4 and what fastjson, the Go client and ali-ons all
  parse. Input also accepts fastjson's default form with bare integer keys (``{0:"addr"}``) that
  4.x name servers send, see ``loads_fastjson``.
* ``TopicConfig.encode`` writes the 5-field form ``name read write perm filterType`` when the topic
  has no attributes, because a 4.x name server rejects any other field count; with attributes it
  appends the attribute JSON as the 5.x broker does.
* The compressed RegisterBrokerBody is written in the 5.x layout (with the trailing
  topic-queue-mapping count); on input the mapping section is optional, as 4.x brokers omit it.

Left out: static-topic mappings are carried as raw JSON objects and never interpreted;
``topicQueueMappingByBroker`` in a route is ignored.
"""

from __future__ import annotations

import json
import random
import re
import struct
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PERM_PRIORITY = 8
PERM_READ = 4
PERM_WRITE = 2
PERM_INHERIT = 1

#: ``MixAll.MASTER_ID``: the broker id of a master in a master/slave group.
MASTER_ID = 0

TOPIC_FILTER_TYPES = ("SINGLE_TAG", "MULTI_TAG")

#: Upper bound for an inflated REGISTER_BROKER body, so a tiny zlib bomb cannot eat the heap.
MAX_INFLATED_BODY = 64 * 1024 * 1024

_I32 = struct.Struct(">i")


class RouteCodecError(ValueError):
    """A route/registration body that cannot be decoded; answer an error, do not crash."""


def is_readable(perm: int) -> bool:
    return perm & PERM_READ == PERM_READ


def is_writeable(perm: int) -> bool:
    return perm & PERM_WRITE == PERM_WRITE


def is_inherited(perm: int) -> bool:
    return perm & PERM_INHERIT == PERM_INHERIT


# ---- JSON helpers --------------------------------------------------------------------------------

# A JSON string literal (skipped untouched) or a bare integer object key after '{' or ','.
_BARE_INT_KEY = re.compile(r'"(?:[^"\\]|\\.)*"|(?<=[{,])(\s*)(-?\d+)(\s*:)', re.DOTALL)


def _quote_key(m: re.Match[str]) -> str:
    if m.group(2) is None:
        return m.group(0)
    return f'{m.group(1)}"{m.group(2)}"{m.group(3)}'


def loads_fastjson(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON, also accepting fastjson's bare integer map keys (``{0:"a"}``).

    Why: a 4.x name server (and any Java process encoding a ``Map<Long,..>`` without
    BrowserCompatible) emits those keys, which ``json.loads`` rejects.
    """
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RouteCodecError(f"body is not UTF-8: {exc}") from None
    try:
        return json.loads(text)
    except ValueError:
        pass
    except RecursionError:
        raise RouteCodecError("body JSON is nested too deeply") from None
    try:
        return json.loads(_BARE_INT_KEY.sub(_quote_key, text))
    except ValueError as exc:
        raise RouteCodecError(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise RouteCodecError("body JSON is nested too deeply") from None


def dumps_json(obj: Any) -> bytes:
    """Compact standard JSON, fields sorted like fastjson, ASCII-only so any parser copes."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("ascii")


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RouteCodecError(f"{what} is not a JSON object")
    return value


def _int(value: Any, default: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise RouteCodecError(f"not an integer: {value!r}") from None


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RouteCodecError("expected a JSON array")
    return [str(v) for v in value]


# ---- TopicConfig ---------------------------------------------------------------------------------


@dataclass(slots=True)
class TopicConfig:
    """A topic as one broker hosts it (``common/TopicConfig.java``)."""

    topic_name: str
    read_queue_nums: int = 16
    write_queue_nums: int = 16
    perm: int = PERM_READ | PERM_WRITE
    topic_filter_type: str = "SINGLE_TAG"
    topic_sys_flag: int = 0
    order: bool = False
    attributes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "order": self.order,
            "perm": self.perm,
            "readQueueNums": self.read_queue_nums,
            "topicFilterType": self.topic_filter_type,
            "topicName": self.topic_name,
            "topicSysFlag": self.topic_sys_flag,
            "writeQueueNums": self.write_queue_nums,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], name: str | None = None) -> TopicConfig:
        """From Java's JSON form; ``name`` (the table key) is used when topicName is absent."""
        topic = obj.get("topicName") or name
        if not topic:
            raise RouteCodecError("topic config without topicName")
        attrs = obj.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise RouteCodecError("topic config attributes is not an object")
        return cls(
            topic_name=str(topic),
            read_queue_nums=_int(obj.get("readQueueNums"), 16),
            write_queue_nums=_int(obj.get("writeQueueNums"), 16),
            perm=_int(obj.get("perm"), PERM_READ | PERM_WRITE),
            topic_filter_type=str(obj.get("topicFilterType") or "SINGLE_TAG"),
            topic_sys_flag=_int(obj.get("topicSysFlag"), 0),
            order=_bool(obj.get("order", False)),
            attributes={str(k): str(v) for k, v in attrs.items()},
        )

    def encode(self) -> str:
        """The space-separated form used in the compressed RegisterBrokerBody."""
        base = (
            f"{self.topic_name} {self.read_queue_nums} {self.write_queue_nums} "
            f"{self.perm} {self.topic_filter_type}"
        )
        if not self.attributes:
            return base
        return base + " " + json.dumps(self.attributes, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> TopicConfig:
        parts = text.split(" ")
        if len(parts) < 5:
            raise RouteCodecError(f"topic config string has {len(parts)} fields, need 5: {text!r}")
        if parts[4] not in TOPIC_FILTER_TYPES:
            raise RouteCodecError(f"unknown topic filter type {parts[4]!r}")
        attributes: dict[str, str] = {}
        if len(parts) >= 6:
            try:  # Java ignores unparseable attributes too
                raw = json.loads(" ".join(parts[5:]))
                if isinstance(raw, dict):
                    attributes = {str(k): str(v) for k, v in raw.items()}
            except ValueError:
                pass
        try:
            return cls(
                topic_name=parts[0],
                read_queue_nums=int(parts[1]),
                write_queue_nums=int(parts[2]),
                perm=int(parts[3]),
                topic_filter_type=parts[4],
                attributes=attributes,
            )
        except ValueError:
            raise RouteCodecError(f"bad number in topic config {text!r}") from None


# ---- DataVersion ---------------------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class DataVersion:
    """Version stamp of a broker's topic table; the name server compares it for changes."""

    timestamp: int = field(default_factory=_now_ms)
    counter: int = 0
    state_version: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"counter": self.counter, "stateVersion": self.state_version, "timestamp": self.timestamp}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None) -> DataVersion:
        if obj is None:
            return cls(timestamp=0)
        counter = obj.get("counter", 0)
        if isinstance(counter, dict):  # tolerate an AtomicLong written as a bean
            counter = counter.get("value", 0)
        return cls(
            timestamp=_int(obj.get("timestamp"), 0),
            counter=_int(counter, 0),
            state_version=_int(obj.get("stateVersion"), 0),
        )

    def next_version(self, state_version: int = 0) -> None:
        """Bump after the topic table changed, as ``DataVersion.nextVersion`` does."""
        self.timestamp = _now_ms()
        self.state_version = state_version
        self.counter += 1


# ---- RegisterBrokerBody --------------------------------------------------------------------------


@dataclass(slots=True)
class RegisterBrokerBody:
    """The REGISTER_BROKER body: the broker's topics, their data version, filter servers."""

    topic_configs: dict[str, TopicConfig] = field(default_factory=dict)
    data_version: DataVersion = field(default_factory=DataVersion)
    filter_server_list: list[str] = field(default_factory=list)
    #: Static-topic mappings (topic -> raw TopicQueueMappingInfo JSON), carried, never interpreted.
    topic_queue_mapping_info: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        wrapper: dict[str, Any] = {
            "dataVersion": self.data_version.to_json(),
            "topicConfigTable": {name: tc.to_json() for name, tc in self.topic_configs.items()},
        }
        if self.topic_queue_mapping_info:
            wrapper["topicQueueMappingInfoMap"] = dict(self.topic_queue_mapping_info)
        return {"filterServerList": list(self.filter_server_list), "topicConfigSerializeWrapper": wrapper}

    def encode(self, compress: bool = False) -> bytes:
        if not compress:
            return dumps_json(self.to_json())
        out = bytearray()

        def put(blob: bytes) -> None:
            out.extend(_I32.pack(len(blob)))
            out.extend(blob)

        put(dumps_json(self.data_version.to_json()))
        out.extend(_I32.pack(len(self.topic_configs)))
        for tc in self.topic_configs.values():
            put(tc.encode().encode("utf-8"))
        put(dumps_json(list(self.filter_server_list)))
        out.extend(_I32.pack(len(self.topic_queue_mapping_info)))
        for info in self.topic_queue_mapping_info.values():
            put(dumps_json(info))
        return zlib.compress(bytes(out), 9)

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, compressed: bool = False) -> RegisterBrokerBody:
        """Decode either form; raise RouteCodecError on anything malformed."""
        if not data:
            # Java fills a zero DataVersion when a broker registers without a body.
            return cls(data_version=DataVersion(timestamp=0))
        if compressed:
            return cls._decode_compressed(bytes(data))
        obj = _obj(loads_fastjson(data), "register broker body")
        if "topicConfigSerializeWrapper" in obj:
            wrapper = _obj(obj["topicConfigSerializeWrapper"] or {}, "topicConfigSerializeWrapper")
        elif "topicConfigTable" in obj:  # brokers before V3_0_11 sent the bare wrapper
            wrapper = obj
        else:
            wrapper = {}
        table = _obj(wrapper.get("topicConfigTable") or {}, "topicConfigTable")
        configs: dict[str, TopicConfig] = {}
        for name, raw in table.items():
            tc = TopicConfig.from_json(_obj(raw, "topic config"), name=str(name))
            configs[tc.topic_name] = tc
        mapping = wrapper.get("topicQueueMappingInfoMap") or {}
        return cls(
            topic_configs=configs,
            data_version=DataVersion.from_json(_obj(wrapper.get("dataVersion") or {}, "dataVersion")),
            filter_server_list=_str_list(obj.get("filterServerList")),
            topic_queue_mapping_info={str(k): v for k, v in _obj(mapping, "mapping").items()},
        )

    @classmethod
    def _decode_compressed(cls, data: bytes) -> RegisterBrokerBody:
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(data, MAX_INFLATED_BODY)
        except zlib.error as exc:
            raise RouteCodecError(f"compressed body does not inflate: {exc}") from None
        if inflater.unconsumed_tail:
            raise RouteCodecError(f"inflated body exceeds {MAX_INFLATED_BODY} bytes")
        reader = _Reader(raw)
        dv_obj = _obj(loads_fastjson(reader.blob()), "dataVersion")
        configs: dict[str, TopicConfig] = {}
        for _ in range(reader.count()):
            tc = TopicConfig.decode(reader.blob().decode("utf-8", errors="replace"))
            configs[tc.topic_name] = tc
        filter_servers = _str_list(loads_fastjson(reader.blob()))
        mapping: dict[str, dict[str, Any]] = {}
        if reader.remaining >= 4:  # absent in bodies from brokers before 5.0
            for _ in range(reader.count()):
                info = _obj(loads_fastjson(reader.blob()), "topic queue mapping")
                mapping[str(info.get("topic"))] = info
        return cls(
            topic_configs=configs,
            data_version=DataVersion.from_json(dv_obj),
            filter_server_list=filter_servers,
            topic_queue_mapping_info=mapping,
        )


class _Reader:
    """Length-prefixed reads over the inflated RegisterBrokerBody."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def count(self) -> int:
        if self.remaining < 4:
            raise RouteCodecError("compressed body truncated")
        (n,) = _I32.unpack_from(self.data, self.pos)
        self.pos += 4
        if n < 0:
            raise RouteCodecError(f"negative length {n} in compressed body")
        return n

    def blob(self) -> bytes:
        n = self.count()
        if n > self.remaining:
            raise RouteCodecError("compressed body truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


# ---- Route data ----------------------------------------------------------------------------------


@dataclass(slots=True)
class QueueData:
    """One broker group's queues of a topic."""

    broker_name: str
    read_queue_nums: int = 16
    write_queue_nums: int = 16
    perm: int = PERM_READ | PERM_WRITE
    topic_sys_flag: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "brokerName": self.broker_name,
            "perm": self.perm,
            "readQueueNums": self.read_queue_nums,
            "topicSysFlag": self.topic_sys_flag,
            "writeQueueNums": self.write_queue_nums,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> QueueData:
        return cls(
            broker_name=str(obj.get("brokerName") or ""),
            read_queue_nums=_int(obj.get("readQueueNums")),
            write_queue_nums=_int(obj.get("writeQueueNums")),
            perm=_int(obj.get("perm")),
            topic_sys_flag=_int(obj.get("topicSysFlag")),
        )

    @classmethod
    def from_topic_config(cls, broker_name: str, tc: TopicConfig) -> QueueData:
        return cls(broker_name, tc.read_queue_nums, tc.write_queue_nums, tc.perm, tc.topic_sys_flag)


@dataclass(slots=True)
class BrokerData:
    """A broker group: its name, cluster and the address of every member by broker id.

    ``kafka_addrs`` (ferrymq's, JSON "kafkaAddrs", only written when set) holds each member's
    Kafka listener, so brokers learn each other's Kafka address; Java clients ignore it.
    ``grpc_addrs`` (JSON "grpcAddrs") likewise holds each member's RocketMQ 5 gRPC listener, which
    a gRPC QueryRoute names as that broker's endpoint. ``kafka_listeners`` (JSON "kafkaListeners") holds
    each member's Kafka listeners as ``PROTOCOL://host:port,...``, from which a broker picks the
    inter-broker one.
    """

    cluster: str
    broker_name: str
    broker_addrs: dict[int, str] = field(default_factory=dict)
    enable_acting_master: bool = False
    zone_name: str | None = None
    kafka_addrs: dict[int, str] = field(default_factory=dict)
    grpc_addrs: dict[int, str] = field(default_factory=dict)
    kafka_listeners: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "brokerAddrs": {str(bid): addr for bid, addr in sorted(self.broker_addrs.items())},
            "brokerName": self.broker_name,
            "cluster": self.cluster,
            "enableActingMaster": self.enable_acting_master,
        }
        if self.zone_name is not None:
            obj["zoneName"] = self.zone_name
        if self.kafka_addrs:
            obj["kafkaAddrs"] = {str(bid): addr for bid, addr in sorted(self.kafka_addrs.items())}
        if self.grpc_addrs:
            obj["grpcAddrs"] = {str(bid): addr for bid, addr in sorted(self.grpc_addrs.items())}
        if self.kafka_listeners:
            obj["kafkaListeners"] = {str(bid): text for bid, text in sorted(self.kafka_listeners.items())}
        return obj

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> BrokerData:
        addrs = _obj(obj.get("brokerAddrs") or {}, "brokerAddrs")
        kafka = _obj(obj.get("kafkaAddrs") or {}, "kafkaAddrs")
        grpc = _obj(obj.get("grpcAddrs") or {}, "grpcAddrs")
        kafka_listeners = _obj(obj.get("kafkaListeners") or {}, "kafkaListeners")
        zone = obj.get("zoneName")
        return cls(
            cluster=str(obj.get("cluster") or ""),
            broker_name=str(obj.get("brokerName") or ""),
            broker_addrs={_int(k): str(v) for k, v in addrs.items()},
            enable_acting_master=_bool(obj.get("enableActingMaster", False)),
            zone_name=None if zone is None else str(zone),
            kafka_addrs={_int(k): str(v) for k, v in kafka.items()},
            grpc_addrs={_int(k): str(v) for k, v in grpc.items()},
            kafka_listeners={_int(k): str(v) for k, v in kafka_listeners.items()},
        )

    def copy(self) -> BrokerData:
        return BrokerData(
            self.cluster,
            self.broker_name,
            dict(self.broker_addrs),
            self.enable_acting_master,
            self.zone_name,
            dict(self.kafka_addrs),
            dict(self.grpc_addrs),
            dict(self.kafka_listeners),
        )

    def select_broker_addr(self) -> str | None:
        """The master if present, else a random member (``BrokerData.selectBrokerAddr``)."""
        master = self.broker_addrs.get(MASTER_ID)
        if master is not None:
            return master
        if not self.broker_addrs:
            return None
        return random.choice(list(self.broker_addrs.values()))


@dataclass(slots=True)
class TopicRouteData:
    """Where a topic lives: GET_ROUTEINFO_BY_TOPIC's response body."""

    queue_datas: list[QueueData] = field(default_factory=list)
    broker_datas: list[BrokerData] = field(default_factory=list)
    filter_server_table: dict[str, list[str]] = field(default_factory=dict)
    order_topic_conf: str | None = None

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "brokerDatas": [bd.to_json() for bd in self.broker_datas],
            "filterServerTable": {k: list(v) for k, v in self.filter_server_table.items()},
            "queueDatas": [qd.to_json() for qd in self.queue_datas],
        }
        if self.order_topic_conf is not None:
            obj["orderTopicConf"] = self.order_topic_conf
        return obj

    def to_json_bytes(self) -> bytes:
        """Standard JSON (quoted keys) as a 5.x name server sends to current clients."""
        return dumps_json(self.to_json())

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TopicRouteData:
        fst = _obj(obj.get("filterServerTable") or {}, "filterServerTable")
        qds = obj.get("queueDatas") or []
        bds = obj.get("brokerDatas") or []
        if not isinstance(qds, list) or not isinstance(bds, list):
            raise RouteCodecError("queueDatas/brokerDatas must be arrays")
        order = obj.get("orderTopicConf")
        return cls(
            queue_datas=[QueueData.from_json(_obj(q, "queueData")) for q in qds],
            broker_datas=[BrokerData.from_json(_obj(b, "brokerData")) for b in bds],
            filter_server_table={str(k): _str_list(v) for k, v in fst.items()},
            order_topic_conf=None if order is None else str(order),
        )

    @classmethod
    def from_json_bytes(cls, data: bytes | bytearray | memoryview | str) -> TopicRouteData:
        """Parse standard JSON or fastjson's bare-integer-key form."""
        return cls.from_json(_obj(loads_fastjson(data), "topic route"))

    def find_broker(self, broker_name: str) -> BrokerData | None:
        for bd in self.broker_datas:
            if bd.broker_name == broker_name:
                return bd
        return None


def select_master_addr(route: TopicRouteData, broker_name: str) -> str | None:
    """The master address (broker id 0) of ``broker_name`` in a route, or None."""
    bd = route.find_broker(broker_name)
    return None if bd is None else bd.broker_addrs.get(MASTER_ID)


# ---- ClusterInfo / TopicList ---------------------------------------------------------------------


@dataclass(slots=True)
class ClusterInfo:
    """GET_BROKER_CLUSTER_INFO's body: all broker groups, and the group names per cluster."""

    broker_addr_table: dict[str, BrokerData] = field(default_factory=dict)
    cluster_addr_table: dict[str, set[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "brokerAddrTable": {name: bd.to_json() for name, bd in self.broker_addr_table.items()},
            "clusterAddrTable": {c: sorted(names) for c, names in self.cluster_addr_table.items()},
        }

    def to_json_bytes(self) -> bytes:
        return dumps_json(self.to_json())

    @classmethod
    def from_json_bytes(cls, data: bytes | bytearray | memoryview | str) -> ClusterInfo:
        obj = _obj(loads_fastjson(data), "cluster info")
        bat = _obj(obj.get("brokerAddrTable") or {}, "brokerAddrTable")
        cat = _obj(obj.get("clusterAddrTable") or {}, "clusterAddrTable")
        return cls(
            broker_addr_table={str(k): BrokerData.from_json(_obj(v, "brokerData")) for k, v in bat.items()},
            cluster_addr_table={str(k): set(_str_list(v)) for k, v in cat.items()},
        )

    def all_addrs_of_cluster(self, cluster: str) -> list[str]:
        """Every member address of every group in ``cluster`` (``retrieveAllAddrByCluster``)."""
        addrs: list[str] = []
        for name in sorted(self.cluster_addr_table.get(cluster, ())):
            bd = self.broker_addr_table.get(name)
            if bd is not None:
                addrs.extend(addr for _, addr in sorted(bd.broker_addrs.items()))
        return addrs


@dataclass(slots=True)
class TopicList:
    """GET_ALL_TOPIC_LIST_FROM_NAMESERVER's body."""

    topic_list: set[str] = field(default_factory=set)
    broker_addr: str | None = None

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"topicList": sorted(self.topic_list)}
        if self.broker_addr is not None:
            obj["brokerAddr"] = self.broker_addr
        return obj

    def to_json_bytes(self) -> bytes:
        return dumps_json(self.to_json())

    @classmethod
    def from_json_bytes(cls, data: bytes | bytearray | memoryview | str) -> TopicList:
        obj = _obj(loads_fastjson(data), "topic list")
        addr = obj.get("brokerAddr")
        return cls(set(_str_list(obj.get("topicList"))), None if addr is None else str(addr))


def topic_configs_of(configs: Iterable[TopicConfig]) -> dict[str, TopicConfig]:
    """Index topic configs by name, the shape RegisterBrokerBody wants."""
    return {tc.topic_name: tc for tc in configs}

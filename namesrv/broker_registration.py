"""Broker-facing requests: REGISTER_BROKER (103) and UNREGISTER_BROKER (104).

Follows ``DefaultRequestProcessor.registerBroker``/``unregisterBroker`` of RocketMQ 5.x, which a
4.x broker also satisfies: the body is the JSON RegisterBrokerBody, the zlib form when the
``compressed`` header is true, or the bare TopicConfigSerializeWrapper of brokers older than
V3_0_11; a non-zero ``bodyCrc32`` is checked (CRC32 & 0x7FFFFFFF, ``UtilAll.crc32``). The
response carries ``masterAddr``/``haServerAddr`` for a slave whose master is registered.

Left out: the order-topic KV table a Java name server may return as the response body,
QUERY_DATA_VERSION (322) and BROKER_HEARTBEAT (904), which default-configured brokers do not
send (they re-register every 30 s instead).
Added: the ``kafkaAddr``, ``kafkaListeners`` and ``grpcAddr`` extFields of ferrymq brokers (Java name servers
ignore them), kept per broker member and returned in BrokerData's ``kafkaAddrs``, ``kafkaListeners`` and
``grpcAddrs``.
"""

from __future__ import annotations

import logging
import zlib

from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import guarded, opt_bool, opt_int, req_int, req_str
from ferrymq.core.remoting.route import RegisterBrokerBody
from ferrymq.core.remoting.transport import RemotingConnection
from ferrymq.namesrv.route_info import RouteInfoManager

log = logging.getLogger("ferrymq.namesrv")

#: extFields key of the broker's zone (``MixAll.ZONE_NAME``).
ZONE_NAME_FIELD = "__ZONE_NAME"
#: extFields key of a ferrymq broker's Kafka listener (host:port), returned as BrokerData.kafkaAddrs.
KAFKA_ADDR_FIELD = "kafkaAddr"
#: ... and of its RocketMQ 5 gRPC listener, returned as BrokerData.grpcAddrs.
GRPC_ADDR_FIELD = "grpcAddr"
#: ... and of all its Kafka listeners (PROTOCOL://host:port,...), returned as BrokerData.kafkaListeners: a
#: broker reaches another on the one its kafkaInterBrokerListenerName names.
KAFKA_LISTENERS_FIELD = "kafkaListeners"


def body_crc32(body: bytes | bytearray | memoryview) -> int:
    """``UtilAll.crc32``: the CRC32 masked to a non-negative int, as brokers send it."""
    return zlib.crc32(body) & 0x7FFFFFFF


class BrokerRegistrationProcessor:
    """Handles registration and unregistration against one RouteInfoManager."""

    def __init__(self, routes: RouteInfoManager) -> None:
        self.routes = routes

    @guarded
    def register_broker(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        ext = cmd.ext_fields
        broker_name = req_str(ext, "brokerName", ResponseCode.INVALID_PARAMETER)
        broker_addr = req_str(ext, "brokerAddr", ResponseCode.INVALID_PARAMETER)
        cluster_name = req_str(ext, "clusterName", ResponseCode.INVALID_PARAMETER)
        ha_server_addr = req_str(ext, "haServerAddr", ResponseCode.INVALID_PARAMETER)
        broker_id = req_int(ext, "brokerId", ResponseCode.INVALID_PARAMETER)
        timeout_ms = opt_int(ext, "heartbeatTimeoutMillis", 0, ResponseCode.INVALID_PARAMETER)
        enable_acting_master = opt_bool(ext, "enableActingMaster", None)
        compressed = opt_bool(ext, "compressed", False)
        crc = opt_int(ext, "bodyCrc32", 0, ResponseCode.INVALID_PARAMETER)

        body_bytes = bytes(cmd.body)
        if crc != 0 and crc not in (body_crc32(body_bytes), zlib.crc32(body_bytes)):
            log.warning("REGISTER_BROKER from %s (%s): crc32 not match", conn.peer, broker_addr)
            return cmd.response(ResponseCode.SYSTEM_ERROR, "crc32 not match")

        body = RegisterBrokerBody.decode(body_bytes, compressed)
        known = self.routes.data_version_of(cluster_name, broker_addr) is not None
        result = self.routes.register_broker(
            cluster_name,
            broker_addr,
            broker_name,
            broker_id,
            ha_server_addr,
            body,
            heartbeat_timeout_s=timeout_ms / 1000.0 if timeout_ms > 0 else None,
            enable_acting_master=enable_acting_master,
            zone_name=ext.get(ZONE_NAME_FIELD),
            connection=conn,
            kafka_addr=ext.get(KAFKA_ADDR_FIELD),
            grpc_addr=ext.get(GRPC_ADDR_FIELD),
            kafka_listeners=ext.get(KAFKA_LISTENERS_FIELD),
        )
        log.log(
            logging.DEBUG if known else logging.INFO,
            "broker registered from %s: cluster=%s name=%s id=%s addr=%s topics=%d compressed=%s",
            conn.peer,
            cluster_name,
            broker_name,
            broker_id,
            broker_addr,
            len(body.topic_configs),
            compressed,
        )
        reply: dict[str, str] = {}
        if result.ha_server_addr is not None:
            reply["haServerAddr"] = result.ha_server_addr
        if result.master_addr is not None:
            reply["masterAddr"] = result.master_addr
        return cmd.response(ResponseCode.SUCCESS, ext_fields=reply)

    @guarded
    def unregister_broker(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        ext = cmd.ext_fields
        broker_name = req_str(ext, "brokerName", ResponseCode.INVALID_PARAMETER)
        broker_addr = req_str(ext, "brokerAddr", ResponseCode.INVALID_PARAMETER)
        cluster_name = req_str(ext, "clusterName", ResponseCode.INVALID_PARAMETER)
        broker_id = req_int(ext, "brokerId", ResponseCode.INVALID_PARAMETER)
        known = self.routes.unregister_broker(cluster_name, broker_addr, broker_name, broker_id)
        log.info(
            "broker unregistered by %s: cluster=%s name=%s id=%s addr=%s%s",
            conn.peer,
            cluster_name,
            broker_name,
            broker_id,
            broker_addr,
            "" if known else " (was not registered)",
        )
        return cmd.response(ResponseCode.SUCCESS)

"""A broker's replication as operators see it: RocketMQ's HARuntimeInfo (GET_BROKER_HA_STATUS, what
``mqadmin haStatus`` prints), built from ``Broker.ha`` at the moment it is asked.

One shape for every reader: the remoting handler sends it, the admin API reads it for this broker
and asks the other brokers for it. The keys are RocketMQ's (fastjson's names for HARuntimeInfo's
getters); ferrymq adds ``brokerRole``, ``masterEpoch`` (controller mode) and, on a slave,
``masterRemotingAddr`` and ``connected`` in ``haClientRuntimeInfo`` (a Java reader ignores keys it
does not know), and per slave
``diffMessages``. A slave's lag is the master's end minus its acknowledged offset *now*, as
RocketMQ's ``diff`` is, not at its last ack; in messages, the consume-queue entries past that ack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker


def ha_runtime_info(broker: Broker) -> dict[str, Any]:
    ha = broker.ha
    end = broker.store.commit_log.write_offset
    info: dict[str, Any] = {
        "brokerRole": ha.role,
        "master": not ha.is_slave,
        "masterCommitLogMaxOffset": 0,
        "inSyncSlaveNums": 0,
        "haConnectionInfo": [],
        "haClientRuntimeInfo": {},
    }
    if broker.controller is not None:  # controller mode: the master epoch this broker acts on
        info["masterEpoch"] = broker.controller.epoch
    if ha.is_slave:
        info["haClientRuntimeInfo"] = {
            "masterAddr": ha.master_ha_addr or "",
            "masterRemotingAddr": ha.master_addr or "",
            "connected": ha.master_connected,
            "maxOffset": end,
            "transferredByteInSecond": 0,
            "lastReadTimestamp": 0,
            "lastWriteTimestamp": 0,
            "masterFlushOffset": 0,
        }
        return info
    info["masterCommitLogMaxOffset"] = end
    controller = broker.config.enable_controller_mode  # in sync: a member of the controller's set
    info["inSyncSlaveNums"] = ha.in_sync_count()
    info["haConnectionInfo"] = [
        {
            "addr": r.addr,
            "slaveAckOffset": r.ack_offset,
            "diff": max(0, end - r.ack_offset),
            "diffMessages": broker.store.messages_after(r.ack_offset) if r.ack_offset < end else 0,
            "inSync": r.in_sync if not controller else ha.peer_ids.get(r.addr) in ha.sync_state_ids,
            "transferredByteInSecond": 0,
            "transferFromWhere": r.ack_offset,
            "lastAckTimestamp": r.last_ack_ms,
        }
        for r in ha.replicas()
    ]
    return info

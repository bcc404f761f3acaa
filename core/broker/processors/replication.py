"""HA_SLAVE_HELLO (9901, ferrymq's own): a ferrymq slave names the HA connection it just opened,
so the master streams it Kafka batch entries too (core/ha/master.py, "Foreign slaves").

The field is ``haClientAddr``, the slave's local host:port of that connection, which is what
the master sees as its peer (a NAT between them makes the slave look foreign: replication then
stops before the first batch entry, which is safe)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferrymq.core.ha.epoch import encode_epoch_cache
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import guarded, req_int, req_str
from ferrymq.core.remoting.transport import RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker


class ReplicationProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    @guarded
    def slave_hello(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        addr = req_str(cmd.ext_fields, "haClientAddr", ResponseCode.INVALID_PARAMETER)
        master = self.broker.ha_master
        if master is None:
            return cmd.response(ResponseCode.SYSTEM_ERROR, "this broker is not a master")
        master.identify(addr)
        if "brokerId" in cmd.ext_fields:  # controller mode: which replica this HA link is
            bid = req_int(cmd.ext_fields, "brokerId", ResponseCode.INVALID_PARAMETER)
            self.broker.ha_peer_ids[addr] = bid
        return cmd.response(ResponseCode.SUCCESS)

    @guarded
    def epoch_cache(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        """GET_BROKER_EPOCH_CACHE (1007): this broker's epoch history and commit-log max offset
        (RocketMQ's EpochEntryCache), what a slave compares before following (core/ha/epoch_sync.py)."""
        b = self.broker
        c = b.config
        if not c.enable_controller_mode:
            return cmd.response(ResponseCode.SYSTEM_ERROR, "this request only for controllerMode")
        body = encode_epoch_cache(
            c.broker_cluster_name, c.broker_name, c.broker_id, b.epochs.entries, b.store.commit_log_max_offset
        )
        return cmd.response(ResponseCode.SUCCESS, body=body)

"""ferrymq's own replication requests (an Apache RocketMQ master answers REQUEST_CODE_NOT_SUPPORTED).

HA_SLAVE_HELLO (9901): a ferrymq slave names the HA connection it just opened, so the master
streams it Kafka batch entries too (core/ha/master.py, "Foreign slaves"). The field is
``haClientAddr``, the slave's local host:port of that connection, which is what the master sees
as its peer (a NAT between them makes the slave look foreign: replication then stops before the
first batch entry, which is safe). HA_CONFIRM_OFFSET (9902): the master's high watermark.
REPLICATED_STATE (9903): a frontend's state a slave copies (core/broker/replicated_state.py).
COMPACTED_PART (9904): the master's compacted parts, listed (no ``topic``: a JSON body
``{"parts": [[topic, queueId, end, size], ...]}``) or read (``topic``, ``queueId``, ``end``,
``position``, ``length``: at most 4 MiB of the part's file; SYSTEM_ERROR once the part was
replaced, its ``end`` moved), so a slave serves the same compacted view (slave_sync.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

from ferrymq.core.ha.epoch import encode_epoch_cache
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest, guarded, req_int, req_str
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

#: the longest a HA_CONFIRM_OFFSET waits for the watermark to pass the slave's (ms)
MAX_CONFIRM_WAIT_MS = 10_000
#: the most bytes of a compacted part one COMPACTED_PART read returns
MAX_PART_READ = 4 * 1024 * 1024


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

    @guarded
    def replicated_state(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        """REPLICATED_STATE (9903): the frontend state registered as ``name``, for a slave's copy."""
        name = req_str(cmd.ext_fields, "name", ResponseCode.INVALID_PARAMETER)
        if self.broker.config.is_slave:
            return cmd.response(ResponseCode.SYSTEM_ERROR, "this broker is not a master")
        provider = self.broker.replicated_states.providers.get(name)
        if provider is None:
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"no replicated state named {name}")
        return cmd.response(ResponseCode.SUCCESS, body=provider.dump())

    @guarded
    def compacted_part(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        store = self.broker.store
        if self.broker.config.is_slave:
            return cmd.response(ResponseCode.SYSTEM_ERROR, "this broker is not a master")
        ext = cmd.ext_fields
        if "topic" not in ext:
            parts = [[t, q, p.end, p.size] for (t, q), p in sorted(store.compacted.items())]
            return cmd.response(ResponseCode.SUCCESS, body=json.dumps({"parts": parts}).encode())
        topic = req_str(ext, "topic", ResponseCode.INVALID_PARAMETER)
        queue_id = req_int(ext, "queueId", ResponseCode.INVALID_PARAMETER)
        end = req_int(ext, "end", ResponseCode.INVALID_PARAMETER)
        position = req_int(ext, "position", ResponseCode.INVALID_PARAMETER)
        length = req_int(ext, "length", ResponseCode.INVALID_PARAMETER)
        part = store.compacted.get((topic, queue_id))
        if part is None or part.end != end:
            return cmd.response(
                ResponseCode.SYSTEM_ERROR, f"the compacted part of {topic}-{queue_id} changed"
            )
        if position < 0 or length < 0:
            return cmd.response(ResponseCode.INVALID_PARAMETER, "position and length must not be negative")
        return cmd.response(ResponseCode.SUCCESS, body=part.read(position, min(length, MAX_PART_READ)))

    def confirm_offset(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        """HA_CONFIRM_OFFSET (9902): this master's high watermark once it is past ``knownOffset``
        (or after ``timeoutMillis``): what a slave lets its readers see (confirm_follow.py)."""
        try:
            known = req_int(cmd.ext_fields, "knownOffset", ResponseCode.INVALID_PARAMETER)
            wait_ms = req_int(cmd.ext_fields, "timeoutMillis", ResponseCode.INVALID_PARAMETER)
        except BadRequest as exc:
            return exc.response(cmd)
        wait_ms = min(wait_ms, MAX_CONFIRM_WAIT_MS)
        if self.broker.ha_master is None:
            return cmd.response(ResponseCode.SYSTEM_ERROR, "this broker is not a master")
        if self._watermark() > known or wait_ms <= 0:
            return self._confirm_response(cmd)
        return self._confirm_later(cmd, known, wait_ms)

    def _watermark(self) -> int:
        confirm = self.broker.ha.confirm_offset
        return self.broker.store.commit_log_max_offset if confirm is None else confirm

    def _confirm_response(self, cmd: RemotingCommand) -> RemotingCommand:
        return cmd.response(ResponseCode.SUCCESS, ext_fields={"confirmOffset": str(self._watermark())})

    async def _confirm_later(self, cmd: RemotingCommand, known: int, wait_ms: int) -> RemotingCommand:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_ms / 1000):
                while self._watermark() <= known:
                    await self.broker.ha.changed()  # each slave ack or departure
        return self._confirm_response(cmd)

"""A slave in controller mode learns its master's high watermark (confirmOffset), so its own
readers never see what the master has not confirmed either.

Channel: HA_CONFIRM_OFFSET (9902, ferrymq's own) over remoting, held by the master until its
watermark passes the one the slave knows (a long poll, as pulls are). Why not elsewhere: the
classic HA frames are RocketMQ's byte for byte (an Apache slave reads them), so they have no room
for it; the metadata sync runs every ``slaveSyncInterval`` (10 s), far too late; a held request
costs one round trip per advance and nothing while the group is idle. Without an answer (the
master gone, or not ferrymq) the watermark stays where it was: safe, never ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import RemotingConnection, RemotingError

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.broker.confirm")

#: how long the master may hold one request (it answers sooner when the watermark moves)
HOLD_MS = 5000


class ConfirmFollower:
    """Runs while this broker is a slave (``start``/``stop`` at role changes)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self.broker.ha.gate_reads:
            self._task = asyncio.create_task(self._loop(), name="confirm-follow")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        conn: RemotingConnection | None = None
        conn_addr: str | None = None
        try:
            while True:
                addr = self.broker.ha.master_addr
                if addr is None:
                    await asyncio.sleep(0.2)
                    continue
                try:
                    if conn is None or not conn.is_open or conn_addr != addr:
                        if conn is not None:
                            conn.close()
                        conn, conn_addr = await self.broker.outbound.connect(addr), addr
                    await self._ask(conn)
                except (RemotingError, OSError, TimeoutError, ValueError) as exc:
                    log.debug("high watermark of master %s not learnt: %s", addr, exc)
                    await asyncio.sleep(1.0)
        finally:
            if conn is not None:
                conn.close()

    async def _ask(self, conn: RemotingConnection) -> None:
        ha = self.broker.ha
        known = -1 if ha.confirm_offset is None else ha.confirm_offset
        cmd = RemotingCommand(
            code=RequestCode.HA_CONFIRM_OFFSET,
            ext_fields={"knownOffset": str(known), "timeoutMillis": str(HOLD_MS)},
        )
        resp = await conn.invoke(cmd, HOLD_MS / 1000 + 5)
        if resp.code != ResponseCode.SUCCESS:
            raise ValueError(f"{resp.code} {resp.remark}")
        ha.master_confirmed(int(resp.ext_fields["confirmOffset"]))

"""The slave's HA client: receives its master's commit log into its own store (classic HA).

It connects to ``ReplicationState.master_ha_addr`` (haMasterAddress, or what a REGISTER_BROKER
result set), reports its offset at once and after every chunk of frames it appended (an ack the
SYNC_MASTER send waits for), and writes frames through ``MessageStore.append_replicated``. The
link is dropped and made again, with a growing pause, when it fails, when the master is silent
for haHousekeepingInterval, or when the address changes. Frames the store cannot take (another
offset: the master no longer holds what this slave has, or the two stores diverged) are logged
as errors every time, never retried silently: the documented fix is to wipe the slave's store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ferrymq.core.config import BrokerConfig
from ferrymq.core.ha.codec import FrameDecoder, HaProtocolError, encode_report
from ferrymq.core.ha.epoch_sync import EpochFollower, MasterNotReady, NoConsistentPoint
from ferrymq.core.ha.state import ReplicationState
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.outbound import Outbound
from ferrymq.core.remoting.transport import RemotingError
from ferrymq.core.store import MessageStore, ReplicationMismatch

log = logging.getLogger("ferrymq.ha")

_READ_SIZE = 256 * 1024
#: how often a connected slave looks for a new master address; how long it waits before the
#: first reconnect, and at most
_ADDR_POLL = 0.5
_MIN_BACKOFF = 0.2
_MAX_BACKOFF = 5.0


class _LinkDown(Exception):
    """End this connection and connect again."""


class HaSlave:
    """The HA client of a slave broker."""

    def __init__(
        self,
        config: BrokerConfig,
        store: MessageStore,
        state: ReplicationState,
        follower: EpochFollower | None = None,
        outbound: Outbound | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.state = state
        #: controller mode: cuts a diverged tail before each link, records the master's epochs
        self.follower = follower
        self._task: asyncio.Task[None] | None = None
        self._hello_task: asyncio.Task[None] | None = None
        self._got_frames = False
        #: haTlsEnable: the HA link is TLS, trusting tls.client.trustCertPath
        self._tls = config.ha_client_tls()
        #: remoting to the master (HA_SLAVE_HELLO): tls.enable and signing (core/remoting/outbound.py)
        self.outbound = outbound or config.outbound()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ha-slave")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.state.master_connected = False

    async def _run(self) -> None:
        backoff = _MIN_BACKOFF
        while True:
            addr = self.state.master_ha_addr
            if not addr:
                await asyncio.sleep(_ADDR_POLL)
                continue
            self._got_frames = False
            try:
                await self._session(addr)
            except _LinkDown as exc:
                log.warning("HA link to master %s down: %s", addr, exc)
            except ReplicationMismatch as exc:
                log.error(
                    "HA link to master %s REFUSED: %s. If the master no longer holds this slave's "
                    "data, stop the slave and wipe its store (storePathRootDir).",
                    addr,
                    exc,
                )
            except NoConsistentPoint as exc:
                log.error("HA link to master %s REFUSED, not following (will retry): %s", addr, exc)
            except MasterNotReady as exc:
                log.info("HA link to master %s not made yet: %s", addr, exc)
            except (OSError, ValueError, TimeoutError) as exc:
                log.info("HA link to master %s failed: %s", addr, exc)
            except Exception:  # a bug in one session must not end following for good
                log.exception("HA link to master %s failed", addr)
            finally:
                self.state.master_connected = False
            backoff = _MIN_BACKOFF if self._got_frames else min(backoff * 2, _MAX_BACKOFF)
            await asyncio.sleep(backoff)

    async def _hello(self, ha_client_addr: str) -> None:
        """Tell the master (over remoting) that this HA connection is a ferrymq slave's, so it is
        sent Kafka batch entries too; an Apache master does not know the code (harmless)."""
        master = self.state.master_addr
        for _ in range(150):  # the first REGISTER_BROKER answer may come just after the link
            if master:
                break
            await asyncio.sleep(0.2)
            master = self.state.master_addr
        if not master:
            log.warning(
                "HA link up but the master's remoting address is unknown: it cannot learn that this "
                "slave is ferrymq and will hold back Kafka batch entries"
            )
            return
        try:
            conn = await self.outbound.connect(master)
            try:
                ext = {"haClientAddr": ha_client_addr}
                if self.config.enable_controller_mode:  # the master reports in-sync replicas by id
                    ext["brokerId"] = str(self.config.controller_identity)
                cmd = RemotingCommand(code=RequestCode.HA_SLAVE_HELLO, ext_fields=ext)
                resp = await conn.invoke(cmd, timeout=5.0)
            finally:
                conn.close()
        except (RemotingError, OSError, TimeoutError) as exc:
            log.warning("could not identify this slave to master %s: %s", master, exc)
            return
        if resp.code == ResponseCode.SUCCESS:
            log.info("identified to master %s as a ferrymq slave", master)
        else:
            log.info("master %s does not take HA_SLAVE_HELLO (%s): not ferrymq", master, resp.code)

    async def _session(self, addr: str) -> None:
        """One connection, until it fails; ``_got_frames`` says whether data came (the next
        reconnect is then quick)."""
        host, _, port = addr.rpartition(":")
        if self.follower is not None:  # before any byte is taken: cut what the master never had
            master = self.state.master_addr
            if not master:
                raise MasterNotReady("the master's remoting address is not known yet")
            await self.follower.prepare(master)
        async with asyncio.timeout(self.config.ha_housekeeping_interval / 1000):
            reader, writer = await asyncio.open_connection(host, int(port), ssl=self._tls)
        try:
            self.state.master_connected = True
            reported = self.store.replication_offset
            writer.write(encode_report(reported))
            await writer.drain()
            log.info("HA link to master %s up: reported offset %d", addr, reported)
            local = writer.get_extra_info("sockname")
            if local:
                hello = asyncio.create_task(self._hello(f"{local[0]}:{local[1]}"), name="ha-hello")
                self._hello_task = hello  # keep a reference: the loop holds tasks weakly
            decoder = FrameDecoder(max_body=max(4 * 1024 * 1024, self.config.ha_transfer_batch_size))
            heard = sent = time.monotonic()
            while True:
                try:
                    async with asyncio.timeout(_ADDR_POLL):
                        data = await reader.read(_READ_SIZE)
                except TimeoutError:
                    data = None
                now = time.monotonic()
                if self.state.master_ha_addr != addr:
                    raise _LinkDown(f"the master's HA address is now {self.state.master_ha_addr}")
                if data is None:
                    if now - heard > self.config.ha_housekeeping_interval / 1000:
                        raise _LinkDown(f"nothing heard for {self.config.ha_housekeeping_interval} ms")
                    if now - sent < self.config.ha_send_heartbeat_interval / 1000:
                        continue
                elif not data:
                    raise _LinkDown("closed by the master")
                else:
                    heard = now
                    try:
                        frames = decoder.feed(data)
                    except HaProtocolError as exc:
                        raise _LinkDown(f"not an HA frame: {exc}") from None
                    for frame in frames:
                        if frame.body:
                            self.store.append_replicated(frame.offset, frame.body)
                            self._got_frames = True
                    offset = self.store.replication_offset
                    if self.follower is not None and offset != reported:
                        self.follower.reached(offset)
                    if offset == reported and now - sent < self.config.ha_send_heartbeat_interval / 1000:
                        continue
                offset = self.store.replication_offset
                writer.write(encode_report(offset))
                reported, sent = offset, now
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

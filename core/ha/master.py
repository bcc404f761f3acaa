"""The master's HA server: streams its commit log to each connected slave (classic RocketMQ HA).

One connection per slave, two coroutines, as RocketMQ's ``DefaultHAConnection`` has two threads:
the reader takes the slave's offset reports (each one an ack for ``ReplicationState``), the
writer sends frames of at most haTransferBatchSize from where the slave asked. The master never
sends first: the first report says where to start (an empty slave, 0, gets the last segment).
A put wakes the writers at once (an arrival listener), so replication adds no polling delay;
with nothing to send a writer heartbeats every haSendHeartbeatInterval. A slave silent for
haHousekeepingInterval is dropped.

Reports are checked (apache/rocketmq#3015): a report beyond the master's end, or a start the
log does not hold, closes the connection, logged with the peer.

Foreign slaves. An Apache RocketMQ slave follows this protocol too, but its dispatcher cannot
read a Kafka batch entry: it stops building consume queues at the first one, for good. So a
slave is foreign until it identifies itself (a ferrymq slave sends HA_SLAVE_HELLO, naming its
HA socket, over the remoting port right after connecting); a foreign slave is never sent a
batch entry: replication to it stops before the first one, logged as REFUSED, and the Kafka
frontend refuses produce while a foreign slave is connected (``ReplicationState.foreign``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ferrymq.core.config import BrokerConfig
from ferrymq.core.ha.codec import HaProtocolError, ReportDecoder, encode_frame_header
from ferrymq.core.ha.state import ReplicationState
from ferrymq.core.remoting.transport import Listener, serve_tls_only
from ferrymq.core.store import MessageStore, ReplicationMismatch

log = logging.getLogger("ferrymq.ha")

_READ_SIZE = 64 * 1024


class _SlaveGone(Exception):
    """The slave closed, went silent or sent what a slave must not: end the connection."""


class HaMaster:
    """The HA server of a master broker."""

    def __init__(self, config: BrokerConfig, store: MessageStore, state: ReplicationState) -> None:
        self.config = config
        self.store = store
        self.state = state
        self.server: Listener | None = None
        self._connections: set[asyncio.Task[None]] = set()
        #: set by the next put; None while no writer waits (a put then costs one attribute read)
        self._wakeup: asyncio.Event | None = None
        #: HA peers (host:port) that said they are ferrymq slaves (HA_SLAVE_HELLO)
        self._identified: set[str] = set()

    def identify(self, peer: str) -> None:
        """A ferrymq slave named its HA socket ``peer``: it reads batch entries."""
        self._identified.add(peer)
        self.state.foreign.discard(peer)
        log.info("HA slave %s identified itself as ferrymq", peer)
        self._on_put("", 0, 0, 0)  # a writer held back for a batch entry may go on

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self, port: int) -> None:
        """Listen on ``port`` (0: a free one) and record the real port in ``config.ha_listen_port``,
        which REGISTER_BROKER advertises."""
        context = self.config.ha_server_tls()
        if context is None:
            self.server = await asyncio.start_server(self._accept, self.config.listen_host, port)
        else:  # TLS only, refusals logged with the peer

            def factory() -> asyncio.StreamReaderProtocol:
                return asyncio.StreamReaderProtocol(asyncio.StreamReader(), self._accept)

            self.server = await serve_tls_only(
                factory,
                context,
                "plaintext on the HA port (haTlsEnable)",
                host=self.config.listen_host,
                port=port,
            )
        self.config.ha_listen_port = self.port
        self.store.arrival_listeners.append(self._on_put)
        log.info(
            "HA server listening on %s:%d%s",
            self.config.listen_host,
            self.port,
            " (TLS)" if self.config.ha_tls_enable else "",
        )

    async def stop(self) -> None:
        if self._on_put in self.store.arrival_listeners:
            self.store.arrival_listeners.remove(self._on_put)
        if self.server is not None:
            self.server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.server is not None:
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    def _on_put(self, _topic: str, _queue_id: int, _offset: int, _tag: int) -> None:
        ev = self._wakeup
        if ev is not None:
            self._wakeup = None
            ev.set()

    def _new_data(self) -> asyncio.Event:
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        return self._wakeup

    @property
    def connection_count(self) -> int:
        """Slaves connected to the HA port now (/metrics)."""
        return len(self._connections)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer_info = writer.get_extra_info("peername")
        peer = f"{peer_info[0]}:{peer_info[1]}" if peer_info else "?"
        log.info("slave %s connected to the HA port", peer)
        if peer not in self._identified:
            self.state.foreign.add(peer)
        try:
            await self._serve(peer, reader, writer)
        except _SlaveGone as exc:
            log.warning("HA connection of slave %s closed: %s", peer, exc)
        except (ConnectionError, OSError) as exc:
            log.info("HA connection of slave %s lost: %s", peer, exc)
        except asyncio.CancelledError:
            pass  # stop(): ending here keeps the stream server's callback from logging it
        finally:
            self._connections.discard(task)
            self.state.slave_gone(peer)
            self.state.foreign.discard(peer)
            self._identified.discard(peer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, peer: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = ReportDecoder()
        reported = None
        while reported is None:
            reported = await self._next_report(peer, reader, decoder)
        try:
            start = self.store.replication_start(reported)
            self.store.read_for_replication(start, 1)  # does the log hold it?
        except ReplicationMismatch as exc:
            raise _SlaveGone(f"REFUSED: slave reports offset {reported}; {exc}") from None
        self._acked(peer, reported)
        log.info("slave %s reported offset %d: sending from %d", peer, reported, start)
        tasks = {
            asyncio.create_task(self._send(peer, writer, start), name=f"ha-send-{peer}"),
            asyncio.create_task(self._read_reports(peer, reader, decoder), name=f"ha-read-{peer}"),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, _SlaveGone, ReplicationMismatch, OSError):
                    await task
        for task in done:
            error = task.exception()
            if isinstance(error, ReplicationMismatch):
                raise _SlaveGone(f"REFUSED: {error}")
            if error is not None:
                raise error

    async def _read_reports(self, peer: str, reader: asyncio.StreamReader, decoder: ReportDecoder) -> None:
        while True:
            offset = await self._next_report(peer, reader, decoder)
            if offset is not None:
                self._acked(peer, offset)

    async def _next_report(
        self, peer: str, reader: asyncio.StreamReader, decoder: ReportDecoder
    ) -> int | None:
        """The newest report in what arrives next (None: only part of one); _SlaveGone after
        haHousekeepingInterval of silence, at EOF, or for a report the master cannot have sent."""
        try:
            async with asyncio.timeout(self.config.ha_housekeeping_interval / 1000):
                data = await reader.read(_READ_SIZE)
        except TimeoutError:
            raise _SlaveGone(f"nothing heard for {self.config.ha_housekeeping_interval} ms") from None
        if not data:
            raise _SlaveGone("closed by the slave")
        try:
            offset = decoder.feed(data)
        except HaProtocolError as exc:
            raise _SlaveGone(f"not an HA report: {exc}") from None
        end = self.store.commit_log_max_offset
        if offset is not None and offset > end:
            raise _SlaveGone(f"REFUSED: slave reports offset {offset}, beyond this master's end {end}")
        return offset

    def _acked(self, peer: str, offset: int) -> None:
        self.state.slave_acked(peer, offset, self.store.commit_log_max_offset)

    async def _send(self, peer: str, writer: asyncio.StreamWriter, offset: int) -> None:
        """Stream the commit log from ``offset``: frames as data comes, heartbeats between."""
        batch = self.config.ha_transfer_batch_size
        heartbeat = self.config.ha_send_heartbeat_interval / 1000
        last_write = 0.0
        checked = offset  # a foreign slave's next entry boundary to look at
        refused_at = -1
        while True:
            data = self.store.read_for_replication(offset, batch)
            if data and peer not in self._identified:
                batch_at, checked = self.store.find_batch_entry(max(checked, offset), offset + len(data))
                if batch_at is not None:
                    data = data[: batch_at - offset]
                    if refused_at != batch_at:
                        refused_at = batch_at
                        log.error(
                            "REFUSED: HA slave %s did not identify itself as ferrymq (an Apache RocketMQ "
                            "slave?) and the entry at offset %d is a Kafka record batch, which such a slave "
                            "cannot dispatch (its consume queues would stop there for good): replication "
                            "to it stops before it. Use ferrymq slaves in a group that takes Kafka produce.",
                            peer,
                            batch_at,
                        )
            if data:
                writer.writelines((encode_frame_header(offset, len(data)), data))
                offset += len(data)
                last_write = time.monotonic()
                await writer.drain()
                continue
            wait = heartbeat - (time.monotonic() - last_write)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._new_data().wait()
                continue
            writer.write(encode_frame_header(offset, 0))
            last_write = time.monotonic()
            await writer.drain()

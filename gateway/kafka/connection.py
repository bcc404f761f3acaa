"""One Kafka client connection: the thin asyncio layer over framing.py and the API registry.

Each request's API is looked up once, here, in ``apis.API_HANDLERS``, and the handler found is
called directly. Requests are decoded as they arrive and their handlers run concurrently (a long
Fetch does not hold up the next request's work), but responses go out strictly in request order,
as the protocol requires. A handler starts in arrival order and Produce stores before its first
await, so pipelined produces land in order. Garbage (a bad size, a header or body that does not
decode, a version we cannot serve) is logged with the peer and closes only this connection.
On a SASL listener a connection has a ``sasl.SaslSession``: until it authenticates only ApiVersions,
SaslHandshake and SaslAuthenticate run (frames above sasl.MAX_RECEIVE_SIZE close it), and a request after
its session expired (KIP-368) closes it; either way one check per request. ``principal`` is who the
authorizer asks about (User:ANONYMOUS on a PLAINTEXT listener, as in Kafka).
Client quotas (throttle.py): with none set, one test per request; over quota the response carries the
throttle time and the connection stops reading for that long (``throttle``).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from ferrymq.core.auth.quotas import REQUEST, user_name
from ferrymq.core.remoting.transport import Mute
from ferrymq.gateway.kafka import apis
from ferrymq.gateway.kafka.apis import api18_api_versions
from ferrymq.gateway.kafka.context import Handler, RequestContext
from ferrymq.gateway.kafka.framing import (
    FrameDecoder,
    FrameError,
    FrameTooLarge,
    encode_response,
    parse_header,
    peek_header,
)
from ferrymq.gateway.kafka.legacy_produce import unsupported_response
from ferrymq.gateway.kafka.listeners import PLAINTEXT, Listener
from ferrymq.gateway.kafka.sasl import MAX_RECEIVE_SIZE, SaslSession, now_ms
from ferrymq.gateway.kafka.throttle import PERCENT_PER_SECOND, Timed, with_throttle

if TYPE_CHECKING:
    from ferrymq.gateway.kafka.frontend import KafkaFrontend

log = logging.getLogger("ferrymq.kafka")

API_VERSIONS = 18
PRODUCE = 0
#: what a SASL connection may send before it authenticates: ApiVersions, SaslHandshake, SaslAuthenticate
SASL_OPEN_KEYS = frozenset({18, 17, 36})
ANONYMOUS = "User:ANONYMOUS"
#: not counted against request_percentage: the SASL exchange (Kafka handles it before any quota applies) and
#: WriteTxnMarkers, the one inter-broker API here (Kafka exempts CLUSTER_ACTION requests)
QUOTA_EXEMPT_KEYS = frozenset({17, 36, 27})
#: a failed SASL exchange is closed this long after its error response (Kafka's default 100 ms)
FAILED_AUTH_CLOSE_DELAY_S = 0.1
#: stop reading from a client with this many requests in progress (its TCP window fills up)
MAX_IN_FLIGHT = 64


class _Slot:
    """A response place in request order; ``ready`` once the handler is done."""

    __slots__ = ("data", "ready")

    def __init__(self) -> None:
        self.data: list[bytes] | None = None
        self.ready = False


class KafkaConnection(asyncio.Protocol):
    def __init__(self, frontend: KafkaFrontend, listener: Listener | None = None) -> None:
        self.frontend = frontend
        self.listener = listener if listener is not None else Listener(PLAINTEXT, frontend.host, 0)
        self.sasl: SaslSession | None = None
        self.principal = ANONYMOUS
        self.host = "?"  # the peer's address, as ACLs name hosts
        if self.listener.sasl:
            self.sasl = frontend.sasl_session()
            self.decoder = FrameDecoder(min(MAX_RECEIVE_SIZE, frontend.max_request_size))
        else:
            self.decoder = FrameDecoder(frontend.max_request_size)
        #: close once the current responses are out (a failed SASL exchange)
        self.close_after_response = False
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        #: the local port the client reached (Metadata names this listener for this broker)
        self.listener_port = 0
        self.client_id: str | None = None
        self._slots: deque[_Slot] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._reading_paused = False
        self._writing_paused = False
        #: muted by a quota (KIP-219): nothing read while on
        self._mute = Mute(self._update_reading)
        self.closed = False
        #: Produce requests store one at a time, in arrival order, even when one awaits (a large
        #: inflate off the event loop): a pipelining producer's batches land in order
        self.produce_order = asyncio.Lock()

    # ---- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = f"{peer[0]}:{peer[1]}"
            self.host = str(peer[0])
        local = transport.get_extra_info("sockname")
        if isinstance(local, tuple):
            self.listener_port = int(local[1])
        self.frontend.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.frontend.connections.discard(self)
        for task in self._tasks:
            task.cancel()
        self._mute.cancel()

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except FrameError as exc:
            self.abort(
                f"bad frame: {exc}", "frame_too_big" if isinstance(exc, FrameTooLarge) else "bad_frame"
            )
            return
        for frame in frames:
            if self.closed:
                return
            self._request(frame)

    # ---- requests ----------------------------------------------------------------------------

    def _request(self, frame: bytes) -> None:
        try:
            key, version, corr = peek_header(frame)
        except FrameError as exc:
            self.abort(str(exc))
            return
        if self.sasl is not None and key not in SASL_OPEN_KEYS and not self.sasl.authenticated(now_ms()):
            self._unauthenticated(key, version)
            return
        spec = apis.API_HANDLERS.get(key)
        if spec is None:
            self.abort(f"unknown API key {key} (version {version})", "unsupported_api")
            return
        if not spec.serves(version):
            if key == API_VERSIONS:  # header v0 body any client can read, with our key-18 range
                self._respond_now(corr, api18_api_versions.unsupported_response())
                return
            if key == PRODUCE and version < spec.min_version:  # advertised from 0 for librdkafka
                self._legacy_produce(frame, version)
                return
            self.abort(
                f"API key {key} version {version} is not served ({spec.min_version}-{spec.max_version})",
                "unsupported_api",
            )
            return
        try:
            header = parse_header(frame, spec.flexible(version))
            request, _ = spec.reader(version)(frame, header.body_offset)
        except Exception as exc:  # kio raises various errors on truncated or garbled bodies
            self.abort(f"malformed API key {key} v{version} request: {exc!r}")
            return
        if header.client_id is not None:
            self.client_id = header.client_id
        ctx = RequestContext(self.frontend, self, key, version, corr, len(frame))
        slot = _Slot()
        self._slots.append(slot)
        run = self._run(spec.handler, ctx, request, slot, time.perf_counter())
        task = asyncio.get_running_loop().create_task(run)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._update_reading()

    async def _run(
        self, handler: Handler, ctx: RequestContext, request: Any, slot: _Slot, started: float
    ) -> None:
        """Run the handler found for the request; its response takes the request's slot."""
        quotas = self.frontend.broker.security.quotas
        try:
            if quotas.any:
                response = await self._run_quoted(handler, ctx, request)
            else:
                response = await handler(ctx, request)
            if response is not None:
                slot.data = encode_response(ctx.correlation_id, response, ctx.api_key == API_VERSIONS)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "kafka API key %d v%d from %s (client %s) failed; closing the connection",
                ctx.api_key,
                ctx.api_version,
                self.peer,
                self.client_id,
                extra={"peer": self.peer, "api_key": ctx.api_key, "client_id": self.client_id},
            )
            self.close()
            return
        finally:
            self.frontend.broker.stats.latency.observe("kafka", ctx.api_key, time.perf_counter() - started)
        slot.ready = True
        self._flush()
        if self.close_after_response and not self.closed:
            # Kafka's connection.failed.authentication.delay.ms: the client reads the error before the close
            self.closed = True  # nothing more is read or answered
            if self.transport is not None:
                self.transport.pause_reading()
                asyncio.get_running_loop().call_later(FAILED_AUTH_CLOSE_DELAY_S, self.transport.close)

    async def _run_quoted(self, handler: Handler, ctx: RequestContext, request: Any) -> Any:
        """The handler run while quotas are set: its time counted, the response throttled if over."""
        throttle = 0
        if self.frontend.broker.security.quotas.active(REQUEST) and ctx.api_key not in QUOTA_EXEMPT_KEYS:
            timed = Timed(handler(ctx, request))
            response = await timed
            throttle = self.quota(REQUEST, timed.busy * PERCENT_PER_SECOND)
        else:
            response = await handler(ctx, request)
        throttle = max(throttle, ctx.throttle_ms)
        if throttle > 0:
            self.throttle(throttle)
            response = with_throttle(response, throttle)
        return response

    def quota(self, kind: str, value: float) -> int:
        """Count ``value`` against this client's quota of ``kind`` (core/auth/quotas.py): the throttle, ms."""
        quotas = self.frontend.broker.security.quotas
        return quotas.record(kind, user_name(self.principal), self.client_id or "", value, now_ms())

    def throttle(self, ms: int) -> None:
        """Read nothing from this client for ``ms`` (its response still goes out: KIP-219)."""
        if not self.closed and self._mute.extend(ms / 1000):
            self._update_reading()

    def authenticated(self, principal: str) -> None:
        """SASL completed: the principal for the authorizer, and the listener's full frame size."""
        self.principal = principal
        self.decoder.max_size = self.frontend.max_request_size

    def _unauthenticated(self, key: int, version: int) -> None:
        """Kafka closes a SASL connection that sends another API before authenticating (ILLEGAL_SASL_STATE)
        or any request after its session expired."""
        sasl = self.sasl
        assert sasl is not None
        if sasl.principal is not None:
            self.abort(f"SASL session of {sasl.principal} expired (API key {key}); re-authentication is due")
        else:
            self.abort(f"API key {key} v{version} before SASL authentication (missing SaslHandshake)")

    def _legacy_produce(self, frame: bytes, version: int) -> None:
        """Produce v0-2: error 35 per partition, as Kafka 4.0 answers (legacy_produce.py)."""
        try:
            header = parse_header(frame, flexible=False)
            data = unsupported_response(frame, version, header.body_offset)
        except (FrameError, ValueError, struct.error) as exc:
            self.abort(f"malformed API key 0 v{version} request: {exc!r}")
            return
        log.info(
            "Produce v%d from %s (client %s) answered UNSUPPORTED_VERSION",
            version,
            self.peer,
            self.client_id,
            extra={"peer": self.peer, "api_key": 0, "client_id": self.client_id},
        )
        if data is not None:
            slot = _Slot()
            slot.data = [data]
            slot.ready = True
            self._slots.append(slot)
            self._flush()

    def _respond_now(self, corr: int, response: Any) -> None:
        slot = _Slot()
        slot.data = encode_response(corr, response, header_v0=True)
        slot.ready = True
        self._slots.append(slot)
        self._flush()

    def _flush(self) -> None:
        slots = self._slots
        transport = self.transport
        while slots and slots[0].ready:
            slot = slots.popleft()
            if slot.data is not None and transport is not None and not self.closed:
                transport.writelines(slot.data)
        self._update_reading()

    def _update_reading(self) -> None:
        if self.transport is None or self.closed:
            return
        pause = self._writing_paused or len(self._slots) >= MAX_IN_FLIGHT or self._mute.on
        if pause and not self._reading_paused:
            if len(self._slots) >= MAX_IN_FLIGHT:
                self.frontend.counted.rejected["in_flight_cap"] += 1
            self._reading_paused = True
            self.transport.pause_reading()
        elif not pause and self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()

    # ---- closing -----------------------------------------------------------------------------

    def abort(self, why: str, reason: str = "bad_frame") -> None:
        """Bad input: log it with the peer, count it by ``reason`` (/metrics), close this connection only."""
        self.frontend.counted.rejected[reason] += 1
        log.warning(
            "kafka client %s (client id %s): %s; closing the connection",
            self.peer,
            self.client_id,
            why,
            extra={"peer": self.peer, "client_id": self.client_id, "reason": reason},
        )
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.transport is not None:
            self.transport.close()

"""Identifiers: the client's local IP, its client id, and message unique keys (UNIQ_KEY).

The unique key follows Java's ``MessageClientIDSetter.createUniqID``: 16 bytes as 32 uppercase hex
characters, ``ip(4) | pid low 16 bits(2) | per-process random(4) | ms since the start of the
current month, local time(4) | counter(2)``. Java puts its class loader's hash where we put a
per-process random value; both only serve to separate processes on one host. Tools that read the
IP or the time back out of a key (``getIPStrFromID``, ``getNearlyTimeFromID``) work on ours.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import os
import secrets
import socket
import struct
import threading
import time


def local_ip() -> str:
    """The IPv4 address other hosts would see, or 127.0.0.1 when there is no network.

    A UDP ``connect`` sends no packet; it only asks the kernel which source address it would use.
    """
    for probe in ("10.255.255.255", "192.0.2.1"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((probe, 9))
            ip: str = s.getsockname()[0]
            if ip and not ip.startswith("0."):
                return ip
        except OSError:
            pass
        finally:
            s.close()
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def _fake_ip() -> bytes:
    """Java's ``createFakeIP``: the low 4 bytes of the current time in ms."""
    return struct.pack(">q", int(time.time() * 1000))[4:]


def _ip_bytes(ip: str) -> bytes:
    try:
        return socket.inet_aton(ip)
    except OSError:
        return _fake_ip()


_instance_counter = itertools.count()


def make_client_id(ip: str | None = None, instance_name: str | None = None) -> str:
    """``ClientConfig.buildMQClientId``: ``ip@instanceName``.

    The default instance name is ``pid#counter#ns`` (Java 5.x uses ``pid#nanoTime``), so two clients
    in one process are two members of a group, as two Java consumers with default names are.
    """
    if instance_name is None:
        instance_name = f"{os.getpid()}#{next(_instance_counter)}#{time.monotonic_ns()}"
    return f"{ip or local_ip()}@{instance_name}"


class UniqueIdGenerator:
    """Generates UNIQ_KEY values; thread-safe; one shared instance is :data:`_GENERATOR`."""

    def __init__(self, ip: bytes | None = None, pid: int | None = None, salt: bytes | None = None) -> None:
        ip_raw = ip if ip is not None else _ip_bytes(local_ip())
        if len(ip_raw) != 4:
            ip_raw = _fake_ip()
        self.pid = os.getpid() if pid is None else pid
        pid_low = self.pid & 0xFFFF
        salt = salt if salt is not None else secrets.token_bytes(4)
        self._prefix = (ip_raw + struct.pack(">H", pid_low) + salt[:4]).hex().upper()
        self._lock = threading.Lock()
        self._counter = 0
        self._start_ms = 0
        self._next_start_ms = 0

    @staticmethod
    def month_bounds(now_ms: int) -> tuple[int, int]:
        """(start of this month, start of next month) in epoch ms, local time, as Java's Calendar."""
        now = _dt.datetime.fromtimestamp(now_ms / 1000).astimezone()
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if start.month == 12:
            nxt = start.replace(year=start.year + 1, month=1)
        else:
            nxt = start.replace(month=start.month + 1)
        # replace() keeps the tzinfo of "now"; recompute the offsets for DST changes in between
        start = start.replace(tzinfo=None).astimezone()
        nxt = nxt.replace(tzinfo=None).astimezone()
        return int(start.timestamp() * 1000), int(nxt.timestamp() * 1000)

    def create(self, now_ms: int | None = None) -> str:
        """A new 32-hex-character unique key."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        with self._lock:
            if now >= self._next_start_ms or now < self._start_ms:
                self._start_ms, self._next_start_ms = self.month_bounds(now)
            span = (now - self._start_ms) & 0xFFFFFFFF
            counter = self._counter
            self._counter = (counter + 1) & 0xFFFF
        return self._prefix + struct.pack(">IH", span, counter).hex().upper()


_GENERATOR: UniqueIdGenerator | None = None
_GEN_LOCK = threading.Lock()


def create_uniq_id() -> str:
    """A new UNIQ_KEY from the process-wide generator (created on first use; re-created after fork)."""
    global _GENERATOR
    gen = _GENERATOR
    if gen is None or gen.pid != os.getpid():
        with _GEN_LOCK:
            gen = _GENERATOR
            if gen is None or gen.pid != os.getpid():
                gen = UniqueIdGenerator()
                _GENERATOR = gen
    return gen.create()


def uniq_id_ip(uniq_id: str) -> str:
    """The IPv4 address encoded in a unique key (``MessageClientIDSetter.getIPStrFromID``)."""
    return socket.inet_ntoa(bytes.fromhex(uniq_id[:8]))


def uniq_id_time_ms(uniq_id: str, now_ms: int | None = None) -> int:
    """Approximate creation time of a unique key (``getNearlyTimeFromID``), epoch ms."""
    span = int(uniq_id[20:28], 16)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    start, _ = UniqueIdGenerator.month_bounds(now)
    if start + span >= now:  # created last month
        prev = _dt.datetime.fromtimestamp((start - 1) / 1000).astimezone()
        start, _ = UniqueIdGenerator.month_bounds(int(prev.timestamp() * 1000))
    return start + span

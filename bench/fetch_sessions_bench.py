"""Fetch sessions (KIP-227): broker CPU and bytes per fetch of 1,000 partitions, full against incremental.

A real ``ferrymq serve``; one raw Kafka connection (kio-encoded Fetch v12, as a client sends it) fetches
``--partitions`` partitions of one topic ``--fetches`` times with nothing new to read (the steady state of
a consumer of many quiet partitions), first sessionless (epoch -1: every fetch names every partition),
then in one incremental session (only the first fetch does). The broker's CPU comes from /proc (its
utime + stime), so the client's own encoding is not counted. Figures are printed, never asserted::

    .venv/bin/python -m bench.fetch_sessions_bench --partitions 1000 --fetches 300
"""

from __future__ import annotations

import argparse
import datetime
import os
import socket
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from kio.index import load_response_from_request
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic

from ferrymq.cli.testing import FerryServer
from ferrymq.gateway.kafka.framing import decode_response, encode_request

TOPIC = "fetch-sessions-bench"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


class Conn:
    def __init__(self, addr: str) -> None:
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.corr = 0

    def call(self, request: Any) -> tuple[Any, int, int]:
        """(response, request bytes, response bytes)."""
        self.corr += 1
        frame = encode_request(request, self.corr, "fetch-bench")
        self.sock.sendall(frame)
        (size,) = struct.unpack(">i", self._exactly(4))
        _, response = decode_response(self._exactly(size), load_response_from_request(type(request)))
        return response, len(frame), size + 4

    def _exactly(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return bytes(buf)


def fetch(partitions: range, session_id: int, epoch: int) -> FetchRequest:
    parts = tuple(
        FetchPartition(partition=p, fetch_offset=0, partition_max_bytes=1 << 20) for p in partitions
    )
    return FetchRequest(
        max_wait=datetime.timedelta(0),
        min_bytes=1,
        session_id=session_id,
        session_epoch=epoch,
        topics=(FetchTopic(topic=TOPIC, partitions=parts),) if parts else (),
        forgotten_topics_data=(),
    )


def run(partitions: int, fetches: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, FerryServer(Path(tmp) / "ferrymq") as server:
        r = httpx.post(
            f"{server.admin_url}/api/topics", json={"name": TOPIC, "queues": partitions}, timeout=30
        )
        r.raise_for_status()
        assert server.proc is not None
        pid = server.proc.pid
        conn = Conn(server.kafka_bootstrap)
        conn.call(fetch(range(partitions), 0, -1))  # warm up: placements, caches
        for mode in ("full", "incremental"):
            session_id, epoch = 0, -1
            if mode == "incremental":
                first, _, _ = conn.call(fetch(range(partitions), 0, 0))
                session_id, epoch = first.session_id, 1
            sent = received = 0
            cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
            for _ in range(fetches):
                request = fetch(range(partitions) if mode == "full" else range(0), session_id, epoch)
                response, out, back = conn.call(request)
                assert response.error_code == 0, response.error_code
                sent, received = sent + out, received + back
                if mode == "incremental":
                    epoch += 1
            cpu, wall = cpu_seconds(pid) - cpu0, time.perf_counter() - wall0
            rows.append(
                {
                    "mode": mode,
                    "partitions": partitions,
                    "fetches": fetches,
                    "broker CPU ms/fetch": f"{cpu / fetches * 1000:.2f}",
                    "wall ms/fetch": f"{wall / fetches * 1000:.2f}",
                    "request B": sent // fetches,
                    "response B": received // fetches,
                }
            )
        conn.sock.close()
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    ap = argparse.ArgumentParser(prog="python -m bench.fetch_sessions_bench", description=__doc__)
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--fetches", type=int, default=300)
    args = ap.parse_args(argv)
    rows = run(args.partitions, args.fetches)
    return rows


if __name__ == "__main__":
    for row in main():
        print("  " + "  ".join(f"{k}={v}" for k, v in row.items()))

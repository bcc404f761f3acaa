"""Broker capacity with raw SEND_MESSAGE_V2 frames: N connections, each with W requests in flight.

Measures the broker, not a client library: the load generator encodes each frame once and only
counts responses. Run it in its own process against a running server.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.frame import FrameDecoder, encode_frame_bytes
from tests.remoting_helpers import send_v2


async def _conn(
    host: str, port: int, topic: str, size: int, window: int, deadline: float, lat: list[float]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    cmd = send_v2(topic, b"x" * size, -1, {"TAGS": "TagA"}, 8)
    decoder = FrameDecoder()
    sent: dict[int, float] = {}
    done = 0
    opaque = 0

    def send_one() -> None:
        nonlocal opaque
        opaque += 1
        cmd.opaque = opaque
        sent[opaque] = time.perf_counter()
        writer.write(encode_frame_bytes(cmd))

    for _ in range(window):
        send_one()
    while time.perf_counter() < deadline:
        data = await reader.read(65536)
        if not data:
            break
        for resp in decoder.feed(data):
            t = sent.pop(resp.opaque, None)
            if t is not None and resp.code == ResponseCode.SUCCESS:
                done += 1
                lat.append(time.perf_counter() - t)
            send_one()
    writer.close()
    return done


async def main(host: str, port: int, conns: int, window: int, size: int, seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    lat: list[float] = []
    t0 = time.perf_counter()
    counts = await asyncio.gather(
        *(_conn(host, port, "RawLoad", size, window, deadline, lat) for _ in range(conns))
    )
    elapsed = time.perf_counter() - t0
    lat.sort()
    n = sum(counts)
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0  # noqa: E731
    print(
        f"raw send: {n / elapsed:,.0f} msg/s, {n * size / elapsed / 1e6:.1f} MB/s, "
        f"p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms ({conns} conns x {window} in flight, {size} B)"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1:10911")
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    h, _, p_ = a.addr.rpartition(":")
    asyncio.run(main(h, int(p_), a.conns, a.window, a.size, a.seconds))

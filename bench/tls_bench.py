"""Plaintext against TLS in one run, on one ``ferrymq serve``: Kafka (confluent-kafka produce and
consume over the PLAINTEXT and SSL listeners) and RocketMQ remoting (ferrymq's Python client,
batches of 32 sent and lite-pull reads, plaintext and TLS on the same permissive port).

Apache Kafka over TLS is not measured here (its broker would need a JKS/PEM keystore set-up of
its own); the ``kafka`` section compares plaintext ferrymq with plaintext Apache Kafka.

    python -m bench.tls_bench [--seconds 10] [--size 1024]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from ferrymq.cli.testing import FerryServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kafka(bootstrap: str, extra: dict[str, Any], seconds: float, size: int) -> tuple[float, float]:
    from confluent_kafka import Consumer, Producer

    topic = f"tls-bench-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 262144, **extra})
    body = b"x" * size
    sent = 0
    t0 = time.perf_counter()
    end = t0 + seconds / 2
    while time.perf_counter() < end:
        for _ in range(1000):
            try:
                producer.produce(topic, body)
            except BufferError:
                producer.poll(0.01)
                continue
            sent += 1
        producer.poll(0)
    producer.flush(60)
    produce_mbs = sent * size / (time.perf_counter() - t0) / 1e6
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest", **extra}
    )
    consumer.subscribe([topic])
    got = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds * 2
    while got < sent and time.perf_counter() < deadline:
        for msg in consumer.consume(1000, 0.5):
            if msg.error() is None:
                got += 1
    consume_mbs = got * size / (time.perf_counter() - t0) / 1e6
    consumer.close()
    return produce_mbs, consume_mbs


def _remoting(namesrv: str, ssl_context: Any, seconds: float, size: int) -> tuple[float, float]:
    from ferrymq.client import LitePullConsumer, Message, Producer

    topic = f"TlsBench{uuid.uuid4().hex[:8]}"
    batch = [Message(topic, b"x" * size) for _ in range(32)]
    sent = 0
    with Producer(namesrv, group="tls-bench", ssl_context=ssl_context) as producer:
        producer.send(Message(topic, b"warm"))
        t0 = time.perf_counter()
        end = t0 + seconds / 2
        while time.perf_counter() < end:
            producer.send_batch(batch)
            sent += len(batch)
        produce_mbs = sent * size / (time.perf_counter() - t0) / 1e6
    consumer = LitePullConsumer(
        namesrv, group=f"cg-{topic}", consume_from="FIRST_OFFSET", pull_batch_size=32, ssl_context=ssl_context
    )
    consumer.subscribe(topic)
    got = 0
    with consumer:
        t0 = time.perf_counter()
        deadline = t0 + seconds * 2
        while got < sent and time.perf_counter() < deadline:
            got += sum(len(m.body) == size for m in consumer.poll(timeout=1))
        consume_mbs = got * size / (time.perf_counter() - t0) / 1e6
    return produce_mbs, consume_mbs


def run(seconds: float = 10.0, size: int = 1024) -> list[dict[str, object]]:
    from tests.tls_certs import make_certs

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        certs = make_certs(Path(tmp) / "certs")
        plain, tls = _free_port(), _free_port()
        conf = "\n".join(
            f"{k}={v}"
            for k, v in {
                **certs.broker_conf("permissive"),
                "kafkaListeners": f"PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{tls}",
                "kafkaSslCertPath": certs.cert,
                "kafkaSslKeyPath": certs.key,
            }.items()
        )
        with FerryServer(Path(tmp) / "srv", conf + "\n") as srv:
            ssl_conf = {"security.protocol": "SSL", "ssl.ca.location": certs.ca}
            for name, bootstrap, extra in (
                ("kafka PLAINTEXT", f"127.0.0.1:{plain}", {}),
                ("kafka SSL", f"127.0.0.1:{tls}", ssl_conf),
            ):
                p, c = _kafka(bootstrap, extra, seconds, size)
                rows.append({"case": name, "produce MB/s": round(p, 1), "consume MB/s": round(c, 1)})
            for name, ctx in (("remoting plaintext", None), ("remoting TLS", certs.client())):
                p, c = _remoting(srv.namesrv_addr, ctx, seconds, size)
                rows.append({"case": name, "produce MB/s": round(p, 1), "consume MB/s": round(c, 1)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=1024)
    args = ap.parse_args()
    for row in run(args.seconds, args.size):
        print(row)


if __name__ == "__main__":
    main()

"""Plaintext against TLS in one run: Kafka on one ``ferrymq serve`` (confluent-kafka produce and
consume over its PLAINTEXT, SSL and SASL_SSL (SCRAM-SHA-256) listeners), Apache Kafka from jars
(bench/kafka_ref.py) over PLAINTEXT and an SSL listener with a PEM keystore (``ssl.keystore.type=PEM``),
and RocketMQ remoting (ferrymq's Python client, batches of 32 sent and lite-pull reads, plaintext and
TLS on the same permissive port). Apache Kafka is skipped, with the reason, when Java or its jars
are missing.

    python -m bench.tls_bench [--seconds 10] [--size 1024] [--no-apache]
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

SCRAM_USER, SCRAM_PASSWORD = "bench", "bench-secret"


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


def _row(case: str, produce: float, consume: float) -> dict[str, object]:
    return {"case": case, "produce MB/s": round(produce, 1), "consume MB/s": round(consume, 1)}


def _ferrymq(tmp: Path, certs: Any, seconds: float, size: int) -> list[dict[str, object]]:
    from ferrymq.core.auth.scram import ScramCredentials, make_credential

    data = tmp / "srv"
    ScramCredentials(data / "store" / "config" / "users.json").upsert(
        SCRAM_USER, "SCRAM-SHA-256", make_credential("SCRAM-SHA-256", SCRAM_PASSWORD, 4096)
    )
    plain, tls, sasl = _free_port(), _free_port(), _free_port()
    conf = "\n".join(
        f"{k}={v}"
        for k, v in {
            **certs.broker_conf("permissive"),
            "kafkaListeners": f"PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{tls},SASL_SSL://127.0.0.1:{sasl}",
            "kafkaSslCertPath": certs.cert,
            "kafkaSslKeyPath": certs.key,
        }.items()
    )
    ssl_conf = {"security.protocol": "SSL", "ssl.ca.location": certs.ca}
    sasl_conf = {
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": certs.ca,
        "sasl.mechanisms": "SCRAM-SHA-256",
        "sasl.username": SCRAM_USER,
        "sasl.password": SCRAM_PASSWORD,
    }
    rows = []
    with FerryServer(data, conf + "\n") as srv:
        for name, port, extra in (
            ("ferrymq kafka PLAINTEXT", plain, {}),
            ("ferrymq kafka SSL", tls, ssl_conf),
            ("ferrymq kafka SASL_SSL (SCRAM-SHA-256)", sasl, sasl_conf),
        ):
            rows.append(_row(name, *_kafka(f"127.0.0.1:{port}", extra, seconds, size)))
        for name, ctx in (("ferrymq remoting plaintext", None), ("ferrymq remoting TLS", certs.client())):
            rows.append(_row(name, *_remoting(srv.namesrv_addr, ctx, seconds, size)))
    return rows


def _pkcs8_keystore(certs: Any, path: Path) -> Path:
    """The server key (as PKCS#8, which Kafka's PEM keystore reads) followed by its chain."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(certs.key).read_bytes(), None)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem + Path(certs.cert).read_bytes())
    return path


def _apache(tmp: Path, certs: Any, seconds: float, size: int) -> list[dict[str, object]]:
    from bench import kafka_ref

    why = kafka_ref.available()
    if why is not None:
        return [{"case": f"Apache Kafka: skipped, {why}"}]
    tls = kafka_ref.free_port()
    host = kafka_ref.HOST

    def props(ref_port: int, controller_port: int) -> dict[str, object]:
        return {
            "listeners": f"PLAINTEXT://{host}:{ref_port},SSL://{host}:{tls},CONTROLLER://{host}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{host}:{ref_port},SSL://{host}:{tls}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": _pkcs8_keystore(certs, tmp / "kafka-keystore.pem"),
        }

    with kafka_ref.start_kafka(extra_props=props, heap="1g") as ref:
        version = ref.version
        rows = [
            _row(f"Apache Kafka {version} PLAINTEXT", *_kafka(ref.bootstrap, {}, seconds, size)),
            _row(
                f"Apache Kafka {version} SSL",
                *_kafka(
                    f"{host}:{tls}", {"security.protocol": "SSL", "ssl.ca.location": certs.ca}, seconds, size
                ),
            ),
        ]
    return rows


def run(seconds: float = 10.0, size: int = 1024, apache: bool = True) -> list[dict[str, object]]:
    from tests.tls_certs import make_certs

    with tempfile.TemporaryDirectory() as tmp:
        certs = make_certs(Path(tmp) / "certs")
        rows = _ferrymq(Path(tmp), certs, seconds, size)
        if apache:
            rows += _apache(Path(tmp), certs, seconds, size)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--no-apache", action="store_true", help="skip Apache Kafka")
    args = ap.parse_args()
    for row in run(args.seconds, args.size, apache=not args.no_apache):
        print(row)


if __name__ == "__main__":
    main()

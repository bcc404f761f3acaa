"""Kafka SASL on a SASL_PLAINTEXT listener, over raw sockets: PLAIN and SCRAM-SHA-256/512 as Kafka runs them,
and each way to get it wrong (missing handshake, unknown mechanism, wrong password, bad SCRAM nonce and proof,
oversized and truncated SASL frames) refused as Kafka refuses it, logged with the peer, the PLAINTEXT listener
and stored data undisturbed. KIP-368: session_lifetime_ms, re-authentication, expired sessions closed.
"""

from __future__ import annotations

import base64
import logging
import ssl
import struct
from pathlib import Path

import pytest
import scramp
from kio.schema.errors import ErrorCode
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

from ferrymq.core.auth.scram import ScramCredentials, make_credential
from ferrymq.core.broker.broker import Broker
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.test_kafka_bad_input import closed, raw_request
from tests.test_kafka_frontend import TOPIC, Wire, batch, metadata, produced, run

LISTENERS = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0"
PASSWORD = "s3cret-é"  # non-ASCII: keys over the raw UTF-8, as Kafka computes them


def add_user(broker: Broker, user: str = "alice", password: str = PASSWORD) -> None:
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        broker.security.scram.upsert(user, mech, make_credential(mech, password))


def sasl_port(f: KafkaFrontend) -> int:
    return f.listener_ports()["SASL_PLAINTEXT"]


async def handshake(w: Wire, mechanism: str) -> object:
    return await w.call(SaslHandshakeRequest(mechanism=mechanism))


async def authenticate(w: Wire, token: bytes) -> object:
    return await w.call(SaslAuthenticateRequest(auth_bytes=token))


async def plain_login(
    port: int, user: str = "alice", password: str = PASSWORD, tls: ssl.SSLContext | None = None
) -> tuple[Wire, object]:
    w = await Wire.open(port, tls)
    assert (await handshake(w, "PLAIN")).error_code == ErrorCode.none  # type: ignore[attr-defined]
    return w, await authenticate(w, f"\0{user}\0{password}".encode())


async def scram_login(port: int, mech: str, password: str = PASSWORD) -> tuple[Wire, object]:
    w = await Wire.open(port)
    assert (await handshake(w, mech)).error_code == ErrorCode.none  # type: ignore[attr-defined]
    client = scramp.ScramClient([mech], "alice", password)
    first = await authenticate(w, client.get_client_first().encode())
    assert first.error_code == ErrorCode.none  # type: ignore[attr-defined]
    client.set_server_first(first.auth_bytes.decode())  # type: ignore[attr-defined]
    final = await authenticate(w, client.get_client_final().encode())
    if final.error_code == ErrorCode.none:  # type: ignore[attr-defined]
        client.set_server_final(final.auth_bytes.decode())  # type: ignore[attr-defined]  # server proven
    return w, final


def sasl_run(tmp_path: Path, body: object, **config: object) -> None:
    run(tmp_path, body, kafka_listeners=LISTENERS, **config)  # type: ignore[arg-type]


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_login_then_produce(tmp_path: Path, mech: str) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        add_user(broker)
        port = sasl_port(f)
        w, done = await (plain_login(port) if mech == "PLAIN" else scram_login(port, mech))
        assert done.error_code == ErrorCode.none  # type: ignore[attr-defined]
        assert done.session_lifetime.total_seconds() == 0  # type: ignore[attr-defined]
        assert await produced(w, batch(2)) == (ErrorCode.none, 0)
        md = await w.call(metadata(TOPIC))
        assert [b.port for b in md.brokers] == [port]  # the SASL client is sent back to the SASL port

    sasl_run(tmp_path, body)


def test_credentials_are_stored_hashed(tmp_path: Path) -> None:
    store = ScramCredentials(tmp_path / "users.json")
    store.upsert("bob", "SCRAM-SHA-256", make_credential("SCRAM-SHA-256", "hunter2"))
    text = (tmp_path / "users.json").read_text()
    assert "hunter2" not in text and "storedKey" in text
    again = ScramCredentials(tmp_path / "users.json")
    assert again.check_password("bob", "hunter2") and not again.check_password("bob", "hunter3")


def test_missing_handshake_is_closed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(sasl_port(f))
        w.writer.write(raw_request(3, 0, struct.pack(">i", 0)))  # Metadata before any SASL
        assert await closed(w)
        assert "before SASL authentication" in caplog.text
        plain = await Wire.open(f.port)  # the PLAINTEXT listener is open as before
        assert await produced(plain, batch(1)) == (ErrorCode.none, 0)

    caplog.set_level(logging.WARNING, "ferrymq.kafka")
    sasl_run(tmp_path, body)


def test_unknown_mechanism(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(sasl_port(f))
        r = await handshake(w, "GSSAPI")
        assert r.error_code == ErrorCode.unsupported_sasl_mechanism  # type: ignore[attr-defined]
        assert list(r.mechanisms) == ["PLAIN", "SCRAM-SHA-512"]  # type: ignore[attr-defined]
        assert await closed(w)
        assert "127.0.0.1" in caplog.text and "GSSAPI" in caplog.text

    caplog.set_level(logging.WARNING, "ferrymq.kafka")
    sasl_run(tmp_path, body, kafka_sasl_mechanisms="PLAIN,SCRAM-SHA-512")


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_wrong_password(tmp_path: Path, mech: str, caplog: pytest.LogCaptureFixture) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        add_user(broker)
        port = sasl_port(f)
        login = plain_login(port, password="nope") if mech == "PLAIN" else scram_login(port, mech, "nope")
        w, done = await login
        assert done.error_code == ErrorCode.sasl_authentication_failed  # type: ignore[attr-defined]
        assert "nope" not in str(done.error_message)  # type: ignore[attr-defined]
        assert await closed(w)
        assert "authentication failed" in caplog.text

    caplog.set_level(logging.WARNING, "ferrymq.kafka")
    sasl_run(tmp_path, body)


def test_plain_on_a_plaintext_listener_is_illegal(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        r = await handshake(w, "PLAIN")
        assert r.error_code == ErrorCode.illegal_sasl_state  # type: ignore[attr-defined]

    sasl_run(tmp_path, body)


def _scram_exchange_with(mutate: str) -> object:
    async def attack(port: int) -> None:
        w = await Wire.open(port)
        await handshake(w, "SCRAM-SHA-256")
        client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", PASSWORD)
        first = await authenticate(w, client.get_client_first().encode())
        server_first = first.auth_bytes.decode()  # type: ignore[attr-defined]
        client.set_server_first(server_first)
        final = client.get_client_final()
        if mutate == "nonce":  # a nonce that does not extend the server's
            nonce = server_first.split(",")[0][2:]
            final = final.replace(nonce, nonce[:-4] + "AAAA")
        elif mutate == "proof":
            head, _, proof = final.rpartition("p=")
            raw = bytearray(base64.b64decode(proof))
            raw[0] ^= 1
            final = head + "p=" + base64.b64encode(bytes(raw)).decode()
        elif mutate == "garbage":
            final = "\xff not scram"
        r = await authenticate(w, final.encode())
        assert r.error_code == ErrorCode.sasl_authentication_failed  # type: ignore[attr-defined]
        assert await closed(w)

    return attack


@pytest.mark.parametrize("mutate", ["nonce", "proof", "garbage"])
def test_bad_scram_messages(tmp_path: Path, mutate: str) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        add_user(broker)
        plain = await Wire.open(f.port)
        await _scram_exchange_with(mutate)(sasl_port(f))  # type: ignore[operator]
        assert await produced(plain, batch(1)) == (ErrorCode.none, 0)  # bystander undisturbed
        assert broker.store.max_offset(TOPIC, 0) == 1

    sasl_run(tmp_path, body)


def test_oversized_and_truncated_sasl_frames(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(sasl_port(f))
        w.writer.write(struct.pack(">i", 600_000))  # above sasl.server.max.receive.size, before auth
        assert await closed(w)
        w = await Wire.open(sasl_port(f))
        await handshake(w, "PLAIN")
        w.writer.write(raw_request(36, 2, b"\x10\x00"))  # auth_bytes says 15 bytes, none follow
        assert await closed(w)
        assert "malformed API key 36" in caplog.text

    caplog.set_level(logging.WARNING, "ferrymq.kafka")
    sasl_run(tmp_path, body)


def test_reauthentication_and_expiry(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        add_user(broker)
        port = sasl_port(f)
        w, done = await plain_login(port)
        assert done.session_lifetime.total_seconds() == 0.5  # type: ignore[attr-defined]
        # re-authenticate on the same connection before expiry: the session is renewed
        assert (await handshake(w, "PLAIN")).error_code == ErrorCode.none  # type: ignore[attr-defined]
        again = await authenticate(w, f"\0alice\0{PASSWORD}".encode())
        assert again.error_code == ErrorCode.none  # type: ignore[attr-defined]
        assert await produced(w, batch(1)) == (ErrorCode.none, 0)
        conn = next(c for c in f.connections if c.sasl is not None)
        assert conn.sasl is not None and conn.sasl.expires_at_ms is not None
        conn.sasl.expires_at_ms -= 10_000  # the session ran out (no sleeping in tests)
        w.writer.write(raw_request(3, 0, struct.pack(">i", 0)))
        assert await closed(w)

    sasl_run(tmp_path, body, kafka_connections_max_reauth_ms=500)

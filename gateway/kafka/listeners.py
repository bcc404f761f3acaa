"""Kafka listeners side by side (broker.conf ``kafkaListeners``), as Kafka's ``listeners`` names them.

``PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9094``: one security protocol per listener (Kafka
sniffs nothing); the listener name is its security protocol. A host left empty binds ``listenHost``; port 0
takes a free port. Without the key the frontend has one PLAINTEXT listener on listenHost:kafkaListenPort.
"""

from __future__ import annotations

from dataclasses import dataclass

PLAINTEXT = "PLAINTEXT"
SASL_PLAINTEXT = "SASL_PLAINTEXT"
SSL = "SSL"
SASL_SSL = "SASL_SSL"
PROTOCOLS = (PLAINTEXT, SASL_PLAINTEXT, SSL, SASL_SSL)


@dataclass(frozen=True, slots=True)
class Listener:
    protocol: str
    host: str
    port: int

    @property
    def sasl(self) -> bool:
        return self.protocol in (SASL_PLAINTEXT, SASL_SSL)

    @property
    def tls(self) -> bool:
        return self.protocol in (SSL, SASL_SSL)


def parse_listeners(text: str, default_host: str) -> list[Listener]:
    """The listeners a ``kafkaListeners`` value names; ValueError says which entry is wrong."""
    out: list[Listener] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        protocol, sep, address = entry.partition("://")
        host, colon, port = address.rpartition(":")
        if not sep or not colon or protocol.upper() not in PROTOCOLS or not port.isdigit():
            raise ValueError(
                f"kafkaListeners entry {entry!r} is not PROTOCOL://host:port ({', '.join(PROTOCOLS)})"
            )
        if int(port) > 65535:
            raise ValueError(f"kafkaListeners entry {entry!r}: port out of range")
        if any(listener.protocol == protocol.upper() for listener in out):
            raise ValueError(f"kafkaListeners names {protocol.upper()} twice")
        out.append(Listener(protocol.upper(), host.strip("[]") or default_host, int(port)))
    return out

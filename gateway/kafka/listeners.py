"""Kafka listeners side by side (Kafka's ``listeners``): ``kafkaListeners=PLAINTEXT://127.0.0.1:9092,
SSL://127.0.0.1:9093``. Sans-IO: parsing and the SSL context; frontend.py binds them.

Kafka has no sniffing: each listener speaks one security protocol. PLAINTEXT and SSL are served
here (SSL with kafkaSslCertPath / kafkaSslKeyPath, client certificates checked against
kafkaSslTrustCertPath when kafkaSslClientAuth is requested or required). SASL_PLAINTEXT and
SASL_SSL parse, but a frontend without SASL support refuses to start them rather than let clients
in unauthenticated.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from ferrymq.core.config import BrokerConfig, ConfigError
from ferrymq.core.remoting.tls import TlsFiles, server_context

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: Kafka's ssl.client.auth values as ferrymq's TLS helper names them
_CLIENT_AUTH = {"none": "none", "requested": "optional", "required": "require"}


@dataclass(frozen=True, slots=True)
class KafkaListener:
    protocol: str  # one of PROTOCOLS
    host: str
    port: int  # 0: a free one

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")


def parse_listeners(text: str) -> list[KafkaListener]:
    """``PROTOCOL://host:port,...`` in order (the first is the one other brokers learn);
    ConfigError naming the bad entry."""
    out: list[KafkaListener] = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        protocol, sep, addr = item.partition("://")
        host, colon, port = addr.rpartition(":")
        if not sep or not colon or not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"kafkaListeners: {item!r} is not PROTOCOL://host:port")
        if protocol.upper() not in PROTOCOLS:
            raise ConfigError(f"kafkaListeners: {item!r}: protocol must be one of {', '.join(PROTOCOLS)}")
        out.append(KafkaListener(protocol.upper(), host.strip("[]"), int(port)))
    if not out:
        raise ConfigError("kafkaListeners is empty")
    names = [(lst.host, lst.port) for lst in out if lst.port]
    if len(names) != len(set(names)):
        raise ConfigError(f"kafkaListeners: two listeners on one address in {text!r}")
    return out


def ssl_context(config: BrokerConfig) -> ssl.SSLContext:
    """The SSL listeners' context from the kafkaSsl* keys (ConfigError if they are missing)."""
    if not config.kafka_ssl_cert_path or not config.kafka_ssl_key_path:
        raise ConfigError("an SSL Kafka listener needs kafkaSslCertPath and kafkaSslKeyPath")
    files = TlsFiles(
        config.kafka_ssl_cert_path,
        config.kafka_ssl_key_path,
        config.kafka_ssl_key_password,
        config.kafka_ssl_trust_cert_path,
    )
    try:
        return server_context(files, _CLIENT_AUTH[config.kafka_ssl_client_auth])
    except ValueError as exc:
        raise ConfigError(f"Kafka SSL listener: {exc} (kafkaSslTrustCertPath)") from None

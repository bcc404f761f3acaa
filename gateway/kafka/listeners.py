"""Kafka listeners side by side (broker.conf ``kafkaListeners``, as Kafka's ``listeners`` names them).

``PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9094,SSL://127.0.0.1:9093``: one security
protocol per listener (Kafka sniffs nothing); the listener name is its security protocol, so each
protocol appears once. A host left empty binds ``listenHost``; port 0 takes a free port. Without the key
the frontend has one PLAINTEXT listener on listenHost:kafkaListenPort. Sans-IO: parsing and the SSL
context (kafkaSslCertPath / kafkaSslKeyPath, client certificates checked against kafkaSslTrustCertPath
when kafkaSslClientAuth is requested or required); frontend.py binds them. The inter-broker listener
(kafkaInterBrokerListenerName, Kafka's inter.broker.listener.name) must be one of them, and a broker calling
another's SSL listener uses ``client_ssl_context``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from ferrymq.core.config import BrokerConfig, ConfigError
from ferrymq.core.remoting.tls import TlsFiles, client_context, server_context

PLAINTEXT = "PLAINTEXT"
SASL_PLAINTEXT = "SASL_PLAINTEXT"
SSL = "SSL"
SASL_SSL = "SASL_SSL"
PROTOCOLS = (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)
#: Kafka's ssl.client.auth values as ferrymq's TLS helper names them
_CLIENT_AUTH = {"none": "none", "requested": "optional", "required": "require"}


@dataclass(frozen=True, slots=True)
class Listener:
    protocol: str  # one of PROTOCOLS
    host: str
    port: int  # 0: a free one

    @property
    def sasl(self) -> bool:
        return self.protocol in (SASL_PLAINTEXT, SASL_SSL)

    @property
    def tls(self) -> bool:
        return self.protocol in (SSL, SASL_SSL)


#: the name the TLS side of the frontend uses
KafkaListener = Listener


def parse_listeners(text: str, default_host: str = "") -> list[Listener]:
    """``PROTOCOL://host:port,...`` in order (the first is the one other brokers learn);
    ConfigError naming the bad entry."""
    out: list[Listener] = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        protocol, sep, addr = item.partition("://")
        host, colon, port = addr.rpartition(":")
        if not sep or not colon or not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"kafkaListeners: {item!r} is not PROTOCOL://host:port")
        if protocol.upper() not in PROTOCOLS:
            raise ConfigError(f"kafkaListeners: {item!r}: protocol must be one of {', '.join(PROTOCOLS)}")
        if any(listener.protocol == protocol.upper() for listener in out):
            raise ConfigError(f"kafkaListeners names {protocol.upper()} twice")
        out.append(Listener(protocol.upper(), host.strip("[]") or default_host, int(port)))
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


def inter_broker_listener(listeners: list[Listener], name: str | None) -> str | None:
    """The inter-broker listener's name (None: the first one of the other broker); ConfigError when this
    broker has no listener of that name, as Kafka refuses to start."""
    if name is None:
        return None
    if name.upper() not in {lst.protocol for lst in listeners}:
        have = ", ".join(lst.protocol for lst in listeners)
        raise ConfigError(
            f"kafkaInterBrokerListenerName={name} names none of this broker's Kafka listeners ({have})"
        )
    return name.upper()


def client_ssl_context(config: BrokerConfig) -> ssl.SSLContext:
    """How this broker calls another's SSL or SASL_SSL listener, as Kafka's inter-broker client uses the
    listener's keystore and truststore: trusting kafkaSslTrustCertPath (else tls.client.trustCertPath, else
    the system's CAs), the host name checked, presenting kafkaSslCertPath/KeyPath to a peer asking for one."""
    trust = config.kafka_ssl_trust_cert_path or config.tls_client_trust_cert_path
    files = TlsFiles(
        config.kafka_ssl_cert_path, config.kafka_ssl_key_path, config.kafka_ssl_key_password, trust
    )
    return client_context(files, check_hostname=True)


def listeners_text(bound: list[tuple[str, str, int]]) -> str:
    """``PROTOCOL://host:port,...`` of (protocol, host, port) as a broker registers them (kafkaListeners)."""
    return ",".join(f"{p}://{f'[{h}]' if ':' in h else h}:{port}" for p, h, port in bound)

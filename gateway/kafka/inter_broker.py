"""Who a broker is when it calls another broker group's Kafka listener (txn/peer.py: WriteTxnMarkers, a
forwarded TxnOffsetCommit): the inter-broker principal, as Kafka's inter-broker listener logs in.

broker.conf ``kafkaInterBrokerUser`` / ``kafkaInterBrokerPassword`` / ``kafkaInterBrokerSaslMechanism``
(Kafka's JAAS ``username``/``password`` and ``sasl.mechanism.inter.broker.protocol``): with a user set, every
broker-to-broker connection authenticates with SaslHandshake v1 + SaslAuthenticate (PLAIN, or SCRAM by
``scramp``) before its request, so it arrives as ``User:<user>``, never as ANONYMOUS; the other brokers need
that user in their users.json (``ferrymq kafka-user``). The principal is a super user of this broker's
authorizer, as Kafka's broker principal is listed in super.users, so its CLUSTER_ACTION requests pass however
the ACLs are set.

Where the connection goes (``InterBrokerLink``): the other broker's listener named by
``kafkaInterBrokerListenerName`` (Kafka's inter.broker.listener.name; by default the other broker's first
listener), learnt from the listeners it registers with the name servers (kafkaListeners), and spoken as that
listener's protocol: TLS on SSL and SASL_SSL (listeners.client_ssl_context), the SASL login on SASL_PLAINTEXT
and SASL_SSL. Leaves out: GSSAPI and OAUTHBEARER.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import struct
from dataclasses import dataclass, field
from typing import Any

import scramp
from kio.index import load_response_from_request
from kio.schema.errors import ErrorCode
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

from ferrymq.core.config import BrokerConfig
from ferrymq.gateway.kafka.framing import decode_response, encode_request
from ferrymq.gateway.kafka.listeners import Listener, client_ssl_context, inter_broker_listener

_corr = itertools.count(1)
#: the authorizer source naming the inter-broker principal a super user
SOURCE = "kafka-inter-broker"


class LoginFailed(OSError):
    """The other broker refused this broker's SASL login (an OSError: the call failed, logged by peer.py)."""


@dataclass(frozen=True, slots=True)
class InterBrokerLogin:
    user: str
    password: str = field(repr=False)
    mechanism: str

    @property
    def principal(self) -> str:
        return f"User:{self.user}"

    @classmethod
    def of(cls, config: BrokerConfig) -> InterBrokerLogin | None:
        if not config.kafka_inter_broker_user:
            return None
        return cls(
            config.kafka_inter_broker_user,
            config.kafka_inter_broker_password or "",
            config.kafka_inter_broker_sasl_mechanism,
        )


@dataclass(frozen=True, slots=True)
class InterBrokerLink:
    """How this broker reaches another: the listener name (None: the other's first), its login, its TLS."""

    listener: str | None
    login: InterBrokerLogin | None
    ssl_context: ssl.SSLContext | None

    @classmethod
    def of(cls, config: BrokerConfig, listeners: list[Listener]) -> InterBrokerLink:
        """From broker.conf; ConfigError when kafkaInterBrokerListenerName names none of ``listeners``."""
        name = inter_broker_listener(listeners, config.kafka_inter_broker_listener_name)
        tls = any(lst.tls for lst in listeners)  # the other brokers' listeners are like ours
        return cls(name, InterBrokerLogin.of(config), client_ssl_context(config) if tls else None)

    def endpoint(self, registered: tuple[Listener, ...]) -> Listener | None:
        """The listener to call among those another broker registered (None: it has no such one)."""
        if self.listener is None:
            return registered[0] if registered else None
        return next((lst for lst in registered if lst.protocol == self.listener), None)


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: Any, client_id: str
) -> Any:
    """One request and its response on a broker-to-broker connection."""
    writer.write(encode_request(request, next(_corr), client_id))
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    frame = await reader.readexactly(size)
    return decode_response(frame, load_response_from_request(type(request)))[1]


async def login(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, creds: InterBrokerLogin, client_id: str
) -> None:
    """Authenticate the connection as ``creds``; LoginFailed naming Kafka's error otherwise."""
    shake = await exchange(reader, writer, SaslHandshakeRequest(mechanism=creds.mechanism), client_id)
    if shake.error_code != ErrorCode.none:
        raise LoginFailed(f"SaslHandshake {creds.mechanism}: {shake.error_code.name}")
    if creds.mechanism == "PLAIN":
        token = f"\0{creds.user}\0{creds.password}".encode()
        _check(await exchange(reader, writer, SaslAuthenticateRequest(auth_bytes=token), client_id))
        return
    client = scramp.ScramClient([creds.mechanism], creds.user, creds.password)
    first = await exchange(
        reader, writer, SaslAuthenticateRequest(auth_bytes=client.get_client_first().encode()), client_id
    )
    _check(first)
    client.set_server_first(first.auth_bytes.decode())
    final = await exchange(
        reader, writer, SaslAuthenticateRequest(auth_bytes=client.get_client_final().encode()), client_id
    )
    _check(final)
    try:
        client.set_server_final(final.auth_bytes.decode())  # the other broker proves it knows the key
    except scramp.ScramException as exc:
        raise LoginFailed(f"SCRAM server signature: {exc}") from None


def _check(response: Any) -> None:
    if response.error_code != ErrorCode.none:
        raise LoginFailed(
            f"SaslAuthenticate: {response.error_code.name} {response.error_message or ''}".strip()
        )

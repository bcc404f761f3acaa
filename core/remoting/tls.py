"""TLS settings and SSL contexts, as RocketMQ's TlsSystemConfig names them; the standard library's
``ssl`` does all the cryptography.

RocketMQ serves TLS and plaintext on one port: the server peeks at a connection's first byte, and
0x16 (a TLS handshake record) means TLS, anything else plaintext (a remoting frame starts with a
4-byte length, so its first byte is 0x00 for any frame under 16 MiB). ``tls.server.mode``:
``disabled`` serves plaintext only, ``permissive`` both, ``enforcing`` TLS only (plaintext is
closed and logged with the peer). Unlike RocketMQ, ferrymq defaults to ``disabled`` and has no
self-signed "test mode": TLS needs ``tls.server.certPath`` and ``tls.server.keyPath``.

Also used by the Kafka listeners (one protocol per port, no sniffing), the HA port and the admin
API, which take the same certificate files under their own keys.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal

TlsMode = Literal["disabled", "permissive", "enforcing"]
ClientAuth = Literal["none", "optional", "require"]

#: the first byte of a TLS connection: a handshake record
TLS_HANDSHAKE_BYTE = 0x16

_VERIFY = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "require": ssl.CERT_REQUIRED}


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of one TLS endpoint: its certificate chain and key, and the CAs it trusts to check
    the other side (clients, for a server that asks for one)."""

    cert_path: str | None = None
    key_path: str | None = None
    key_password: str | None = None
    trust_cert_path: str | None = None


def server_context(files: TlsFiles, client_auth: ClientAuth = "none") -> ssl.SSLContext:
    """A server context: TLS 1.2 at least, the certificate and key loaded (OSError, ssl.SSLError
    if they cannot be), client certificates checked against ``trust_cert_path`` if asked for."""
    if not files.cert_path or not files.key_path:
        raise ValueError("TLS needs a certificate and a key file")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(files.cert_path, files.key_path, files.key_password)
    ctx.verify_mode = _VERIFY[client_auth]
    if client_auth != "none":
        if not files.trust_cert_path:
            raise ValueError(f"client auth {client_auth!r} needs a trust certificate file")
        ctx.load_verify_locations(files.trust_cert_path)
    return ctx


def client_context(files: TlsFiles | None = None, *, check_hostname: bool = False) -> ssl.SSLContext:
    """A client context trusting ``trust_cert_path`` (the system's CAs without one) and presenting
    ``cert_path``/``key_path`` if given (mutual TLS). Host names are not checked by default: brokers
    are reached by the addresses name servers hand out, as RocketMQ's client does."""
    files = files or TlsFiles()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = check_hostname
    if files.trust_cert_path:
        ctx.load_verify_locations(files.trust_cert_path)
    else:
        ctx.load_default_certs()
    if files.cert_path and files.key_path:
        ctx.load_cert_chain(files.cert_path, files.key_path, files.key_password)
    return ctx


@dataclass(frozen=True, slots=True)
class ServerTls:
    """How one remoting server treats TLS: the mode and, unless disabled, the context."""

    mode: TlsMode
    context: ssl.SSLContext | None
    #: seconds a new connection has to send its first byte and finish a handshake
    handshake_timeout: float = 10.0
    #: what the log says when plaintext comes in enforcing mode (the Kafka, HA and admin ports
    #: take TLS only and name their own setting)
    plaintext_refusal: str = "plaintext while tls.server.mode=enforcing"

    def accepts(self, first_byte: int) -> tuple[bool, str | None]:
        """Sans-IO: (TLS?, why refused) for a connection whose first byte is ``first_byte``."""
        if first_byte == TLS_HANDSHAKE_BYTE:
            if self.mode == "disabled" or self.context is None:
                return True, "TLS handshake while tls.server.mode=disabled"
            return True, None
        if self.mode == "enforcing":
            return False, self.plaintext_refusal
        return False, None

"""A connection's SASL session on a SASL listener: sans-IO, time passed in (Kafka's SaslServerAuthenticator).

States: HANDSHAKE (only ApiVersions and SaslHandshake allowed) -> AUTHENTICATE (SaslAuthenticate tokens)
-> COMPLETE, or FAILED (the connection is closed after the error response). PLAIN is one round trip;
SCRAM-SHA-256 and SCRAM-SHA-512 are two, run by ``scramp`` over keys stored as Kafka stores them
(core/auth/scram.py).
KIP-368: with ``reauth_ms`` > 0 a session lasts that long; SaslHandshake + SaslAuthenticate again on the same
connection (same mechanism and principal) renews it, and any other request after expiry closes the connection.
Failures carry Kafka's generic messages, never whether the user exists.
Leaves out: GSSAPI, OAUTHBEARER, SaslHandshake v0's bare (headerless) tokens, delegation tokens
(SCRAM's ``tokenauth`` extension).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from kio.schema.errors import ErrorCode
from scramp import ScramException, ScramMechanism

from ferrymq.core.auth.scram import MECHANISMS, ScramCredentials

PLAIN = "PLAIN"
#: Kafka's sasl.server.max.receive.size: the largest frame before authentication completes
MAX_RECEIVE_SIZE = 524288


def now_ms() -> int:
    """The clock sessions expire by (monotonic)."""
    return int(time.monotonic() * 1000)


class State(enum.Enum):
    HANDSHAKE = "handshake"
    AUTHENTICATE = "authenticate"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Step:
    """One SaslAuthenticate answer; ``close`` after sending it when the session failed."""

    error: ErrorCode
    message: str | None
    auth_bytes: bytes
    session_lifetime_ms: int = 0

    @property
    def close(self) -> bool:
        return self.error != ErrorCode.none


def _unescape_saslname(name: str) -> str:
    return name.replace("=2C", ",").replace("=3D", "=")


class SaslSession:
    def __init__(self, mechanisms: list[str], credentials: ScramCredentials, reauth_ms: int = 0) -> None:
        self.mechanisms = mechanisms
        self.credentials = credentials
        self.reauth_ms = reauth_ms
        self.state = State.HANDSHAKE
        self.mechanism: str | None = None
        #: the authenticated principal ("User:<name>"), kept across re-authentications
        self.principal: str | None = None
        self.expires_at_ms: int | None = None  # None: never
        self._pending_user: str | None = None
        self._scram: object | None = None

    def authenticated(self, now_ms: int) -> bool:
        """Whether a request other than the SASL ones may run now (an expired session may not)."""
        if self.principal is None or self.state is State.FAILED:
            return False
        return self.expires_at_ms is None or now_ms < self.expires_at_ms

    def handshake(self, mechanism: str) -> ErrorCode:
        reauth = self.state is State.COMPLETE
        if self.state not in (State.HANDSHAKE, State.COMPLETE):
            self.state = State.FAILED
            return ErrorCode.illegal_sasl_state
        if mechanism not in self.mechanisms or (reauth and mechanism != self.mechanism):
            self.state = State.FAILED
            return ErrorCode.unsupported_sasl_mechanism
        self.mechanism = mechanism
        self.state = State.AUTHENTICATE
        self._scram = None
        if mechanism in MECHANISMS:
            self._scram = ScramMechanism(mechanism).make_server(self._scram_keys)
        return ErrorCode.none

    def authenticate(self, token: bytes, now_ms: int) -> Step:
        if self.state is not State.AUTHENTICATE:
            self.state = State.FAILED
            return Step(
                ErrorCode.illegal_sasl_state, "SaslAuthenticate before a successful SaslHandshake", b""
            )
        if self.mechanism == PLAIN:
            return self._plain(token, now_ms)
        return self._scram_step(token, now_ms)

    # ---- mechanisms ------------------------------------------------------------------------------

    def _plain(self, token: bytes, now_ms: int) -> Step:
        parts = token.split(b"\x00")
        if len(parts) != 3:
            return self._fail("Authentication failed: invalid SASL/PLAIN response: expected 3 tokens")
        try:
            authzid, user, password = (p.decode() for p in parts)
        except UnicodeDecodeError:
            return self._fail("Authentication failed: invalid SASL/PLAIN response")
        if not user or not password:
            return self._fail("Authentication failed: username or password not specified")
        if authzid and authzid != user:
            return self._fail("Authentication failed: Client requested an authorization id that is different")
        if not self.credentials.check_password(user, password):
            return self._fail("Authentication failed: Invalid username or password")
        return self._complete(user, b"", now_ms)

    def _scram_keys(self, user: str) -> tuple[bytes, bytes, bytes, int]:
        assert self.mechanism is not None
        name = _unescape_saslname(user)
        cred = self.credentials.get(name, self.mechanism)
        if cred is None:
            raise ScramException("Authentication failed: Invalid user credentials")
        self._pending_user = name
        return cred.salt, cred.stored_key, cred.server_key, cred.iterations

    def _scram_step(self, token: bytes, now_ms: int) -> Step:
        server = self._scram
        assert server is not None
        failed = (
            f"Authentication failed during authentication due to invalid credentials with SASL mechanism "
            f"{self.mechanism}"
        )
        try:
            text = token.decode()
            if self._pending_user is None:
                server.set_client_first(text)  # type: ignore[attr-defined]
                return Step(ErrorCode.none, None, server.get_server_first().encode())  # type: ignore[attr-defined]
            server.set_client_final(text)  # type: ignore[attr-defined]
            final = server.get_server_final().encode()  # type: ignore[attr-defined]
        except (ScramException, UnicodeDecodeError, ValueError, KeyError, IndexError):
            return self._fail(failed)
        return self._complete(self._pending_user, final, now_ms)

    # ---- outcomes --------------------------------------------------------------------------------

    def _fail(self, message: str) -> Step:
        self.state = State.FAILED
        return Step(ErrorCode.sasl_authentication_failed, message, b"")

    def _complete(self, user: str, reply: bytes, now_ms: int) -> Step:
        principal = f"User:{user}"
        if self.principal is not None and principal != self.principal:  # KIP-368: no identity change
            return self._fail("Authentication failed: re-authentication may not change the principal")
        self.principal = principal
        self.state = State.COMPLETE
        self._pending_user = None
        self._scram = None
        self.expires_at_ms = now_ms + self.reauth_ms if self.reauth_ms > 0 else None
        return Step(ErrorCode.none, None, reply, self.reauth_ms)

"""SCRAM credentials stored as Kafka stores them: salt, stored key, server key, iterations per mechanism.

No password is ever kept. The keys follow RFC 5802 the way Kafka's ScramFormatter computes them: PBKDF2 over
the password's raw UTF-8 (no SASLprep, unlike scramp's ``make_auth_info``), so a user made with Kafka's tools
and one made here log in alike. PLAIN checks a password against the same keys. The file
(``<store>/config/users.json``) is written atomically and fsynced on every change; changes are rare (admin).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from ferrymq.core.persist import read_json, write_json_atomic

#: mechanism name -> hash name; the wire codes of AlterUserScramCredentials (1, 2) are the list order + 1
MECHANISMS: dict[str, str] = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
MECHANISM_CODES: dict[int, str] = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384


@dataclass(frozen=True, slots=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac(MECHANISMS[mechanism], password.encode(), salt, iterations)


def from_salted_password(mechanism: str, salted: bytes, salt: bytes, iterations: int) -> ScramCredential:
    """What AlterUserScramCredentials carries (salt + salted password) as a stored credential."""
    digest = MECHANISMS[mechanism]
    client_key = hmac.digest(salted, b"Client Key", digest)
    stored_key = hashlib.new(digest, client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", digest)
    return ScramCredential(salt, stored_key, server_key, iterations)


def make_credential(
    mechanism: str, password: str, iterations: int = MIN_ITERATIONS, salt: bytes | None = None
) -> ScramCredential:
    # Kafka's default salt: the UTF-8 of a random string; any bytes work for the client
    salt = salt if salt is not None else secrets.token_urlsafe(24).encode()
    return from_salted_password(
        mechanism, salted_password(mechanism, password, salt, iterations), salt, iterations
    )


class ScramCredentials:
    """user -> mechanism -> credential, kept in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._users: dict[str, dict[str, ScramCredential]] = {}
        data = read_json(path) or {}
        for user, mechs in data.get("users", {}).items():
            self._users[user] = {
                m: ScramCredential(
                    bytes.fromhex(c["salt"]),
                    bytes.fromhex(c["storedKey"]),
                    bytes.fromhex(c["serverKey"]),
                    int(c["iterations"]),
                )
                for m, c in mechs.items()
                if m in MECHANISMS
            }

    def get(self, user: str, mechanism: str) -> ScramCredential | None:
        return self._users.get(user, {}).get(mechanism)

    def users(self) -> dict[str, dict[str, ScramCredential]]:
        return {u: dict(m) for u, m in self._users.items()}

    def upsert(self, user: str, mechanism: str, credential: ScramCredential) -> None:
        self._users.setdefault(user, {})[mechanism] = credential
        self._save()

    def delete(self, user: str, mechanism: str) -> bool:
        mechs = self._users.get(user)
        if mechs is None or mechs.pop(mechanism, None) is None:
            return False
        if not mechs:
            del self._users[user]
        self._save()
        return True

    def check_password(self, user: str, password: str) -> bool:
        """PLAIN: the password matches the user's stored key of any SCRAM mechanism."""
        for mechanism, cred in self._users.get(user, {}).items():
            salted = salted_password(mechanism, password, cred.salt, cred.iterations)
            expected = from_salted_password(mechanism, salted, cred.salt, cred.iterations).stored_key
            if hmac.compare_digest(expected, cred.stored_key):
                return True
        return False

    def _save(self) -> None:
        write_json_atomic(
            self.path,
            {
                "users": {
                    u: {
                        m: {
                            "salt": c.salt.hex(),
                            "storedKey": c.stored_key.hex(),
                            "serverKey": c.server_key.hex(),
                            "iterations": c.iterations,
                        }
                        for m, c in mechs.items()
                    }
                    for u, mechs in self._users.items()
                }
            },
        )

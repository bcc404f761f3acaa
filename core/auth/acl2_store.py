"""ACL 2.0 users and ACLs kept durably (``<store>/config/auth.json``) and fed to the Authorizer.

The operations are RocketMQ 5.3.3's ``AuthenticationMetadataManager`` / ``AuthorizationMetadataManager``
ones the admin codes 3001-3010 call, with their refusals (``AuthError``, whose text is the remark):
creating a user that exists, updating or deleting one that does not, an ACL for an unknown user. Every
change rewrites the file atomically and fsyncs it before the caller answers, then replaces the
Authorizer's ``acl2`` bindings and super users (core/auth/acl2.py). Passwords are stored as given: the
request signature is an HMAC keyed with them, so the broker needs them in the clear (as RocketMQ's
RocksDB store has them); the file is kept readable by its owner only.
"""

from __future__ import annotations

import os
from pathlib import Path

from ferrymq.core.auth.acl import Authorizer
from ferrymq.core.auth.acl2 import (
    CUSTOM,
    SOURCE,
    SUPER,
    Acl,
    AuthError,
    Resource,
    User,
    bindings,
    parse_acl,
    parse_user,
    super_users,
)
from ferrymq.core.persist import read_json, write_json_atomic


class Acl2Store:
    def __init__(self, path: Path, authorizer: Authorizer) -> None:
        self.path = path
        self.authorizer = authorizer
        data = read_json(path) or {}
        self.users: dict[str, User] = {}
        for obj in data.get("users", []):
            user = parse_user(obj)
            self.users[user.username] = user
        self.acls: dict[str, Acl] = {}
        for obj in data.get("acls", []):
            acl = parse_acl(obj)
            self.acls[acl.subject] = acl
        self._apply()

    def init_user(self, username: str, password: str) -> bool:
        """``initAuthenticationUser``: the super user made at first start (an existing one is kept)."""
        if username in self.users:
            return False
        self.users[username] = User(username, password, SUPER)
        self._changed()
        return True

    # users (3001-3005)
    def create_user(self, user: User) -> None:
        if user.username in self.users:
            raise AuthError("The user is existed")
        self.users[user.username] = user
        self._changed()

    def update_user(self, user: User) -> None:
        if user.username not in self.users:
            raise AuthError("The user is not exist")
        self.users[user.username] = user
        self._changed()

    def delete_user(self, username: str) -> None:
        if self.users.pop(username, None) is not None:
            self.acls.pop(f"User:{username}", None)
            self._changed()

    def list_users(self, flt: str | None) -> list[User]:
        return [u for name, u in sorted(self.users.items()) if not flt or flt in name]

    # ACLs (3006-3010)
    def put_acl(self, acl: Acl) -> None:
        """Create and update alike: the policies merge into the subject's ACL (``Acl.updatePolicy``)."""
        if acl.subject.removeprefix("User:") not in self.users:
            raise AuthError(f"The subject of {acl.subject} is not exist.")
        old = self.acls.get(acl.subject)
        if old is None:
            self.acls[acl.subject] = acl
        else:
            old.update(acl.policies)
        self._changed()

    def delete_acl(self, subject: str, policy_type: str | None, resource: str | None) -> None:
        """The subject's whole ACL, or (``resource`` given) that resource's entry of one policy."""
        acl = self.acls.get(subject)
        if acl is None:
            raise AuthError("The acl is not exist.")
        if resource:
            wanted = Resource.parse(resource)
            policy = acl.policy(policy_type or CUSTOM)
            if policy is not None:
                policy.entries = [e for e in policy.entries if e.resource != wanted]
            acl.policies = [p for p in acl.policies if p.entries]
        if not resource or not acl.policies:
            del self.acls[subject]
        self._changed()

    def list_acls(self, subject_filter: str | None, resource_filter: str | None) -> list[Acl]:
        out = []
        for subject, acl in sorted(self.acls.items()):
            if subject_filter and subject_filter not in subject:
                continue
            if resource_filter:
                acl = parse_acl(acl.to_json())  # a copy to narrow
                for policy in acl.policies:
                    policy.entries = [e for e in policy.entries if resource_filter in e.resource.key]
                acl.policies = [p for p in acl.policies if p.entries]
                if not acl.policies:
                    continue
            out.append(acl)
        return out

    def _changed(self) -> None:
        data = {
            "users": [u.to_json() for _, u in sorted(self.users.items())],
            "acls": [a.to_json() for _, a in sorted(self.acls.items())],
        }
        write_json_atomic(self.path, data)
        os.chmod(self.path, 0o600)
        self._apply()

    def _apply(self) -> None:
        self.authorizer.set_bindings(SOURCE, bindings(self.users, self.acls))
        self.authorizer.set_super_users(SOURCE, super_users(self.users))

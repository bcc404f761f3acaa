"""RocketMQ ACL 1.0's ``plain_acl.yml``: accounts, address white lists, and reloading the file.

Shared by the broker (which turns accounts into Authorizer bindings, core/auth/plain_acl.py) and
the name server (which only checks that a registration is signed by an admin account), so it
lives beside the protocol. Keys as in RocketMQ's ``distribution/conf/plain_acl.yml``:
``globalWhiteRemoteAddresses``, ``accounts[]`` of ``accessKey``, ``secretKey``,
``whiteRemoteAddress``, ``admin``, ``defaultTopicPerm``, ``defaultGroupPerm``, ``topicPerms``
(``"topic=PERM"``), ``groupPerms`` (``"group=PERM"``); PERM is DENY, PUB, SUB, PUB|SUB or SUB|PUB,
anything else (or absent) DENY, as ``Permission.parsePermFromString``.

Address patterns (RocketMQ's RemoteAddressStrategyFactory): ``*``, an exact address, IPv4 with a
``*`` segment (``10.1.*``), a range segment (``10.1.1.1-100``), a last segment set
(``10.1.1.{1,2}``), or several of these separated by commas. IPv6 patterns match exactly only.
Left out: several ACL files in one directory (RocketMQ 4.9's aclFileDir) and the ACL admin
request codes 50-53 that edit the file remotely.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntFlag
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("ferrymq.acl")


class Perm(IntFlag):
    """``org.apache.rocketmq.acl.common.Permission`` bits."""

    NONE = 0
    DENY = 1
    PUB = 4
    SUB = 8


class AclFileError(ValueError):
    """A plain_acl.yml that cannot be used; the message names the file and the entry."""


def parse_perm(text: object) -> Perm:
    value = str(text).strip() if text is not None else ""
    return {
        "PUB": Perm.PUB,
        "SUB": Perm.SUB,
        "PUB|SUB": Perm.PUB | Perm.SUB,
        "SUB|PUB": Perm.PUB | Perm.SUB,
    }.get(value, Perm.DENY)


@dataclass(frozen=True, slots=True)
class Account:
    access_key: str
    secret_key: str
    white_remote_address: str = ""
    admin: bool = False
    default_topic_perm: Perm = Perm.DENY
    default_group_perm: Perm = Perm.DENY
    topic_perms: dict[str, Perm] = field(default_factory=dict)
    group_perms: dict[str, Perm] = field(default_factory=dict)

    @property
    def principal(self) -> str:
        """The account's principal in core/auth: one user whatever protocol it comes by."""
        return f"User:{self.access_key}"


@dataclass(frozen=True, slots=True)
class PlainAcl:
    accounts: dict[str, Account] = field(default_factory=dict)
    global_white_remote_addresses: tuple[str, ...] = ()

    def globally_white(self, host: str) -> bool:
        return any(address_matches(p, host) for p in self.global_white_remote_addresses)


def _resource_perms(entries: Any, what: str, key: str) -> dict[str, Perm]:
    out: dict[str, Perm] = {}
    for entry in entries or []:
        name, sep, perm = str(entry).partition("=")
        if not sep or not name.strip() or "=" in perm:
            raise AclFileError(f"account {key}: {what}Perms entry {entry!r} is not '<name>=<PERM>'")
        out[name.strip()] = parse_perm(perm)
    return out


def parse_plain_acl(text: str) -> PlainAcl:
    """Parse plain_acl.yml text; AclFileError for a file RocketMQ would refuse too."""
    try:
        data: Any = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise AclFileError(f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise AclFileError("the top level is not a mapping")
    accounts: dict[str, Account] = {}
    for raw in data.get("accounts") or []:
        if not isinstance(raw, dict):
            raise AclFileError(f"account {raw!r} is not a mapping")
        key = str(raw.get("accessKey") or "").strip()
        secret = str(raw.get("secretKey") or "").strip()
        if not key or not secret:  # RocketMQ: "The accessKey or secretKey is empty"
            raise AclFileError(f"account {key or raw!r}: accessKey and secretKey must not be empty")
        accounts[key] = Account(
            access_key=key,
            secret_key=secret,
            white_remote_address=str(raw.get("whiteRemoteAddress") or "").strip(),
            admin=str(raw.get("admin", False)).lower() == "true",
            default_topic_perm=parse_perm(raw.get("defaultTopicPerm")),
            default_group_perm=parse_perm(raw.get("defaultGroupPerm")),
            topic_perms=_resource_perms(raw.get("topicPerms"), "topic", key),
            group_perms=_resource_perms(raw.get("groupPerms"), "group", key),
        )
    white = tuple(str(a).strip() for a in data.get("globalWhiteRemoteAddresses") or [] if str(a).strip())
    return PlainAcl(accounts, white)


def _segment_matches(pattern: str, value: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("{") and pattern.endswith("}"):
        return value in {p.strip() for p in pattern[1:-1].split(",")}
    if "-" in pattern:
        low, _, high = pattern.partition("-")
        if not (low.isdigit() and high.isdigit() and value.isdigit()):
            return False
        return int(low) <= int(value) <= int(high)
    return pattern == value


def address_matches(pattern: str, host: str) -> bool:
    """Whether ``host`` (an IP address as text) matches a RocketMQ white-list pattern."""
    pattern = pattern.strip()
    if not pattern:
        return False
    if pattern in ("*", "*.*.*.*", "*:*:*:*:*:*:*:*"):
        return True
    if "," in pattern and not pattern.endswith("}"):
        return any(address_matches(p, host) for p in pattern.split(","))
    if ":" in pattern or ":" in host:
        return pattern == host
    want = pattern.split(".")
    have = host.split(".")
    if len(have) != 4:
        return False
    for i, seg in enumerate(want):
        if i >= 4:
            return False
        if seg == "*" and i == len(want) - 1:
            return True  # "10.1.*" covers the rest
        if not _segment_matches(seg, have[i]):
            return False
    return len(want) == 4


class PlainAclFile:
    """One plain_acl.yml, re-read when it changes; a bad new version keeps the last good one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self.acl = PlainAcl()
        self.listeners: list[Callable[[PlainAcl], None]] = []
        if not path.exists():
            raise AclFileError(f"ACL file {path} does not exist")
        self.reload_if_changed()

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def reload_if_changed(self) -> bool:
        """Re-read the file if its time or size changed; True if a new version was taken."""
        stamp = self._current_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            acl = parse_plain_acl(self.path.read_text())
        except (OSError, AclFileError) as exc:
            if not self.acl.accounts and not self.acl.global_white_remote_addresses:
                raise AclFileError(f"ACL file {self.path}: {exc}") from None
            log.error("ACL file %s not reloaded, the previous version stays in force: %s", self.path, exc)
            return False
        self.acl = acl
        log.info("ACL file %s loaded: %d accounts", self.path, len(acl.accounts))
        for listener in self.listeners:
            listener(acl)
        return True

    async def watch(self, interval: float = 1.0) -> None:
        """Check the file every ``interval`` seconds (RocketMQ's FileWatchService checks twice that)."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.reload_if_changed()
            except Exception:  # the watcher must outlive one bad read
                log.exception("ACL file %s check failed", self.path)

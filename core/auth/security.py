"""The broker's security state, shared by every frontend: the authorizer, Kafka's ACLs, SCRAM users, quotas.

Built by the Broker from broker.conf (``kafkaAuthorizerEnable``, ``superUsers``,
``allowEveryoneIfNoAclFound``); ``authorizer`` is None when authorization is off, so a frontend's check is one
``is None`` test on its hot path.
"""

from __future__ import annotations

from pathlib import Path

from ferrymq.core.auth.acl import Authorizer
from ferrymq.core.auth.acl_store import AclStore
from ferrymq.core.auth.quota_store import QuotaStore
from ferrymq.core.auth.quotas import ClientQuotas, QuotaConfig
from ferrymq.core.auth.scram import ScramCredentials

ANONYMOUS = "User:ANONYMOUS"


def parse_super_users(text: str) -> list[str]:
    """Kafka's super.users: principals separated by ";" (a bare name is taken as User:<name>)."""
    out = []
    for part in text.split(";"):
        part = part.strip()
        if part:
            out.append(part if ":" in part else f"User:{part}")
    return out


class Security:
    def __init__(
        self,
        config_dir: Path,
        enabled: bool,
        super_users: str = "",
        allow_if_no_acl: bool = False,
        quota_config: QuotaConfig | None = None,
    ):
        self.acl_authorizer = Authorizer(parse_super_users(super_users), allow_if_no_acl)
        self.acls = AclStore(config_dir / "acls.json", self.acl_authorizer)
        self.scram = ScramCredentials(config_dir / "users.json")
        #: client quotas of every protocol (quotas.py), set with AlterClientQuotas or the admin API
        self.quotas = ClientQuotas(quota_config)
        self.quota_store = QuotaStore(config_dir / "quotas.json", self.quotas)
        #: None: authorization is off and everyone may do anything
        self.authorizer: Authorizer | None = self.acl_authorizer if enabled else None

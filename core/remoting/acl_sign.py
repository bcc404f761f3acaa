"""RocketMQ request signing (ACL 1.0, and ACL 2.0's remoting authentication): sign and verify.

Serves every request code: the signature covers the extFields and the body, whatever the code.
The layout is what the Java client's ``AclClientRPCHook`` (rocketmq-client 4.x-5.3.3) sends and
``PlainAccessResource.parse`` / ``DefaultAuthenticationContextBuilder`` recompute: the extFields
in key order (minus ``Signature``), their values only, concatenated as UTF-8, then the raw body;
HmacSHA1 keyed with the secret key (UTF-8), base64. The client adds ``AccessKey`` (and
``SecurityToken`` when it has one) before signing, so both are covered. Requests from clients of
version V4_9_3 or older are verified without ``_UNIQUE_KEY_QUERY``, as Java servers do.

Left out: other algorithms (Java's SigningAlgorithm has HmacSHA256 but the hook never uses it).
There is no nonce or timestamp in the signed content, so a captured request verifies again when
replayed unchanged, exactly as on RocketMQ; only TLS keeps it from being captured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from ferrymq.core.remoting.command import BodyType, RemotingCommand

ACCESS_KEY = "AccessKey"
SIGNATURE = "Signature"
SECURITY_TOKEN = "SecurityToken"
#: ``MixAll.UNIQUE_MSG_QUERY_FLAG``, left out of the content for old clients
UNIQUE_MSG_QUERY_FLAG = "_UNIQUE_KEY_QUERY"
#: ``MQVersion.Version.V4_9_3.ordinal()``
V4_9_3 = 399


def signed_content(ext_fields: Mapping[str, str], body: BodyType, version: int | None = None) -> bytes:
    """The bytes a signature covers; ``version`` is the request's (None: a current client)."""
    skip_unique = version is not None and version <= V4_9_3
    values = "".join(
        ext_fields[key]
        for key in sorted(ext_fields)
        if key != SIGNATURE and not (skip_unique and key == UNIQUE_MSG_QUERY_FLAG)
    )
    return values.encode() + bytes(body)


def signature(content: bytes, secret_key: str) -> str:
    """Base64 HmacSHA1 of ``content``, as ``AclSigner.calSignature``."""
    return base64.b64encode(hmac.new(secret_key.encode(), content, hashlib.sha1).digest()).decode()


def sign(cmd: RemotingCommand, access_key: str, secret_key: str, security_token: str | None = None) -> None:
    """Add AccessKey, SecurityToken and Signature to a request, as the Java client's hook does."""
    cmd.ext_fields[ACCESS_KEY] = access_key
    if security_token is not None:
        cmd.ext_fields[SECURITY_TOKEN] = security_token
    cmd.ext_fields[SIGNATURE] = signature(signed_content(cmd.ext_fields, cmd.body), secret_key)


def sign_if_configured(
    cmd: RemotingCommand, access_key: str | None, secret_key: str | None
) -> RemotingCommand:
    """Sign when a key pair is configured (a broker's own requests to name servers and masters)."""
    if access_key and secret_key:
        sign(cmd, access_key, secret_key)
    return cmd


def verify(cmd: RemotingCommand, secret_key: str) -> bool:
    """Whether the request's Signature is the one ``secret_key`` gives (constant-time compare)."""
    given = cmd.ext_fields.get(SIGNATURE)
    if given is None:
        return False
    expected = signature(signed_content(cmd.ext_fields, cmd.body, cmd.version), secret_key)
    return hmac.compare_digest(expected.encode(), given.encode())

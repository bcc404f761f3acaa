"""Throwaway certificates for TLS tests (trustme): a CA, a server certificate for 127.0.0.1 and
localhost, and a client certificate, written as PEM files into a temporary directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

from ferrymq.core.remoting.tls import TlsFiles, client_context


@dataclass(frozen=True)
class TlsCerts:
    ca: str  # the CA certificate both sides trust
    cert: str  # server certificate chain
    key: str  # server key
    client_cert: str
    client_key: str

    def broker_conf(self, mode: str = "enforcing", client_auth: str = "none") -> dict[str, str]:
        """BrokerConfig values (aliases) turning remoting TLS on with these files."""
        return {
            "tls.server.mode": mode,
            "tls.server.certPath": self.cert,
            "tls.server.keyPath": self.key,
            "tls.server.trustCertPath": self.ca,
            "tls.server.need.client.auth": client_auth,
        }

    def client(self, with_cert: bool = False):  # type: ignore[no-untyped-def]
        files = TlsFiles(
            self.client_cert if with_cert else None, self.client_key if with_cert else None, None, self.ca
        )
        return client_context(files)


def make_certs(directory: Path) -> TlsCerts:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client@ferrymq.test")
    paths = {name: str(directory / f"{name}.pem") for name in ("ca", "cert", "key", "ccert", "ckey")}
    ca.cert_pem.write_to_path(paths["ca"])
    server.private_key_pem.write_to_path(paths["key"])
    client.private_key_pem.write_to_path(paths["ckey"])
    for name, issued in (("cert", server), ("ccert", client)):
        with open(paths[name], "wb") as out:
            for blob in issued.cert_chain_pems:
                out.write(blob.bytes())
    return TlsCerts(paths["ca"], paths["cert"], paths["key"], paths["ccert"], paths["ckey"])

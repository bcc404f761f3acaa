"""The unmodified Apache RocketMQ Java client (rocketmq-client 5.3.3) over TLS against ferrymq in
tls.server.mode=enforcing: ClientConfig.setUseTLS(true) with the tls.client.* system properties
(the server certificate checked against a throwaway CA: -Dtls.test.mode.enable=false), sends and
lite-pull reads over TLS, then a plaintext producer is refused. One JVM run (TlsClients).

Without java or mvn the test is skipped, with the reason shown in the summary (-ra).
"""

from __future__ import annotations

from pathlib import Path

import java_support as js
import pytest

from ferrymq.cli.testing import FerryServer
from tests.tls_certs import make_certs

SKIP_REASON = js.skip_reason()

pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]


def test_java_client_over_tls_and_plaintext_refused(tmp_path: Path) -> None:
    js.build()
    certs = make_certs(tmp_path / "certs")
    conf = "\n".join(
        f"{k}={v}"
        for k, v in {
            **certs.broker_conf("enforcing"),
            "tls.enable": "true",  # the broker registers with the (enforcing) name server over TLS
            "tls.client.trustCertPath": certs.ca,
        }.items()
    )
    with FerryServer(tmp_path / "srv", conf + "\n") as srv:
        results = js.run_java(
            "TlsClients",
            srv.namesrv_addr,
            js.unique_name("JavaTls"),
            "10",
            "--timeout-ms",
            "60000",
            timeout=150,
            jvm_args=["-Dtls.test.mode.enable=false", f"-Dtls.client.trustCertPath={certs.ca}"],
        )
        log = srv.log_tail(400)
    assert [r["status"] for r in js.of_type(results, "send")] == ["SEND_OK"] * 10
    assert sorted(r["body"] for r in js.of_type(results, "read")) == sorted(f"tls-{i}" for i in range(10))
    [plain] = js.of_type(results, "plaintext")
    assert plain["ok"] is False, plain
    assert "plaintext while tls.server.mode=enforcing" in log

"""The unmodified RocketMQ 5.x Java client (rocketmq-client-java 5.0.8) against the gRPC listener with
TLS and ACL, all scenarios in ONE JVM (compat-tests/grpc-java, ``GrpcSecurityScenarios``): over TLS
(``enableSsl(true)``, the client's default) and plaintext on one permissive port, signed with
``StaticSessionCredentialsProvider`` and allowed or refused per topic by the plain_acl.yml account
remoting uses too; an enforcing broker serves TLS and refuses plaintext."""

from __future__ import annotations

import asyncio
import ssl
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import java_support as js
import pytest
from test_java_grpc import run_scenarios

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import connect, split_addr
from tests.acl_support import acl_conf, create_topic_signed
from tests.cluster_helpers import topic_fields
from tests.tls_certs import make_certs

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]


def create_topic_over_tls(broker_addr: str, topic: str, context: ssl.SSLContext) -> None:
    async def go() -> RemotingCommand:
        conn = await connect(*split_addr(broker_addr), ssl_context=context, timeout=5)
        try:
            fields = topic_fields(topic, 2)
            return await conn.invoke(
                RemotingCommand(code=RequestCode.UPDATE_AND_CREATE_TOPIC, ext_fields=fields)
            )
        finally:
            conn.close()

    resp = asyncio.run(go())
    assert resp.code == ResponseCode.SUCCESS, resp.remark


def test_java_5x_over_tls_with_credentials(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")

    def tls(mode: str) -> str:
        return "\n".join(f"{k}={v}" for k, v in certs.broker_conf(mode).items()) + "\n"

    enforcing_conf = tls("enforcing") + f"tls.enable=true\ntls.client.trustCertPath={certs.ca}\n"
    permissive = FerryServer(tmp_path / "permissive", acl_conf(tmp_path) + tls("permissive"), grpc=True)
    enforcing = FerryServer(tmp_path / "enforcing", enforcing_conf, grpc=True)
    with ExitStack() as running, ThreadPoolExecutor(2) as pool:
        for server in (permissive, enforcing):
            running.callback(server.stop)
        list(pool.map(FerryServer.start, (permissive, enforcing)))  # both at once: half the wait
        for topic in ("AclT", "AclDenied"):
            create_topic_signed(permissive.broker_addr, permissive.namesrv_addr, topic)
        create_topic_over_tls(enforcing.broker_addr, "TlsOnly", certs.client())
        proc = run_scenarios(
            "GrpcSecurityScenarios",
            permissive.grpc_endpoint,
            enforcing.grpc_endpoint,
            "AclT",
            "AclDenied",
            "writer",
            "writer-secret",
            "TlsOnly",
        )
        permissive_log, enforcing_log = permissive.log_tail(400), enforcing.log_tail(400)
    results = js.parse_results(proc.stdout)
    assert proc.returncode == 0 and results[-1:] == [{"type": "done"}], (
        proc.stdout[-3000:] + proc.stderr[-3000:]
    )
    outcome = {r["name"]: r for r in js.of_type(results, "scenario")}
    ok = {name: r["ok"] for name, r in outcome.items()}
    assert ok == {
        "tls-allowed": True,
        "tls-denied": False,
        "plaintext-allowed": True,
        "tls-wrong-secret": False,
        "tls-no-credentials": False,
        "enforcing-tls": True,
        "enforcing-plaintext": False,
    }, outcome
    assert "UnauthorizedException" in outcome["tls-denied"]["error"], outcome["tls-denied"]
    assert "No permission for topic:AclDenied" in outcome["tls-denied"]["error"]
    assert "UnauthorizedException" in outcome["tls-wrong-secret"]["error"], outcome["tls-wrong-secret"]
    assert "gRPC SendMessage from 127.0.0.1:" in permissive_log
    assert "Check signature failed for accessKey=writer" in permissive_log
    assert "plaintext while tls.server.mode=enforcing" in enforcing_log

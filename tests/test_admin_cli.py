"""``ferrymq admin`` as a user runs it: a subprocess against a real server's admin API, tables
for people, --json for scripts, and one line on stderr with a non-zero exit on errors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import connect


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerryServer]:
    srv = FerryServer(tmp_path_factory.mktemp("cli") / "srv", extra_args=["--admin-token", "tok"])
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def admin(server: FerryServer | None, *args: str, token: str | None = "tok", stdin: str | None = None):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRYMQ_ADMIN")}
    if token:
        env["FERRYMQ_ADMIN_TOKEN"] = token
    if server is not None:
        env["FERRYMQ_ADMIN_URL"] = server.admin_url
    return subprocess.run(
        [sys.executable, "-m", "ferrymq.cli.main", "admin", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=60,
    )


def ok(server: FerryServer, *args: str, stdin: str | None = None) -> str:
    r = admin(server, *args, stdin=stdin)
    assert r.returncode == 0, r.stderr
    return r.stdout


def rows(table: str) -> list[list[str]]:
    """A table's data rows, split on runs of two or more spaces."""
    import re

    return [re.split(r"\s{2,}", line.strip()) for line in table.strip().splitlines()[1:]]


def test_topics_send_and_messages(server: FerryServer) -> None:
    assert ok(server, "topics", "create", "CliTopic", "--queues", "2").startswith(
        "created topic CliTopic: 2 read"
    )
    listed = ok(server, "topics", "list")
    assert listed.splitlines()[0].split() == ["TOPIC", "KIND", "READ", "WRITE", "PERM", "MESSAGES"]
    assert ["CliTopic", "normal", "2", "2", "RW", "0"] in rows(listed)
    assert "TBW102" not in listed and "TBW102" in ok(server, "topics", "list", "--all")

    sent = json.loads(
        ok(server, "--json", "send", "CliTopic", "hello cli", "--keys", "ck1", "--tags", "T1", "--queue", "1")
    )
    assert (sent["queue_id"], sent["queue_offset"]) == (1, 0)
    piped = json.loads(
        ok(server, "send", "CliTopic", "-", "--queue", "1", "--json", "-p", "color=red", stdin="from stdin")
    )
    assert piped["queue_offset"] == 1

    shown = ok(server, "messages", "id", sent["msg_id"])
    assert "hello cli" in shown and "T1" in shown and "ck1" in shown
    by_key = ok(server, "messages", "key", "CliTopic", "ck1")
    assert rows(by_key)[0][:3] == [sent["msg_id"], "1", "0"]
    page = json.loads(ok(server, "messages", "queue", "CliTopic", "1", "--offset", "0", "--json"))
    assert [m["body"] for m in page["messages"]] == ["hello cli", "from stdin"]
    assert page["messages"][1]["properties"]["color"] == "red"

    status = rows(ok(server, "topics", "status", "CliTopic"))
    assert [r[:4] for r in status] == [["0", "0", "0", "0"], ["1", "0", "2", "2"]]
    assert ok(server, "topics", "update", "CliTopic", "--perm", "r").startswith("updated topic CliTopic")
    assert json.loads(ok(server, "--json", "topics", "status", "CliTopic"))["perm_text"] == "R"
    route = json.loads(ok(server, "topics", "route", "CliTopic", "--json"))
    assert route is None or route["broker_datas"][0]["addrs"]["0"] == server.broker_addr
    assert ok(server, "topics", "delete", "CliTopic").strip() == "deleted topic CliTopic"


def test_clusters_and_groups(server: FerryServer) -> None:
    cluster = rows(ok(server, "clusters").split("\n\n")[1])
    assert cluster[0][:6] == [
        "DefaultCluster",
        "broker-a",
        "0",
        server.broker_addr,
        "ASYNC_MASTER",
        "no slaves",
    ]
    assert json.loads(ok(server, "clusters", "--json"))["name_servers"][0]["reachable"] is True

    ok(server, "topics", "create", "CliGroupTopic", "--queues", "1")
    for i in range(4):
        ok(server, "send", "CliGroupTopic", f"m{i}")

    async def commit() -> None:
        host, port = server.broker_addr.split(":")
        conn = await connect(host, int(port))
        try:
            cmd = RemotingCommand(
                code=RequestCode.UPDATE_CONSUMER_OFFSET,
                ext_fields={
                    "consumerGroup": "cli-g",
                    "topic": "CliGroupTopic",
                    "queueId": "0",
                    "commitOffset": "1",
                },
            )
            assert (await conn.invoke(cmd)).code == ResponseCode.SUCCESS
        finally:
            conn.close()

    asyncio.run(commit())
    assert ["cli-g", "native", "Offline", "0", "3", "CliGroupTopic"] in rows(ok(server, "groups", "list"))
    progress = ok(server, "groups", "progress", "cli-g")
    assert progress.strip().endswith("total lag: 3")
    assert ["CliGroupTopic", "0", "4", "1", "3"] in [r[:5] for r in rows(progress.split("\n\n")[1])]
    reset = ok(server, "groups", "reset", "cli-g", "--to", "latest")
    assert ["CliGroupTopic", "0", "1", "4"] in rows(reset.split("\n\n")[0])
    assert json.loads(ok(server, "groups", "lag", "cli-g", "--json"))["total_lag"] == 0
    ok(server, "groups", "reset", "cli-g", "--to", "2000-01-01T00:00:00")
    assert json.loads(ok(server, "groups", "lag", "cli-g", "--json"))["total_lag"] == 4


@pytest.mark.parametrize(
    ("args", "token", "code", "says"),
    [
        (["topics", "status", "NoSuchTopic"], "tok", 1, "404 topic 'NoSuchTopic' not found"),
        (["groups", "progress", "no-such-group"], "tok", 1, "404 group 'no-such-group' not found"),
        (["topics", "create", "TBW102"], "tok", 1, "409 topic 'TBW102' already exists"),
        (["topics", "create", "Bad", "--queues", "0"], "tok", 1, "422 queues:"),
        (["messages", "id", "nope"], "tok", 1, "404 message 'nope' not found"),
        (["groups", "reset", "g", "--to", "someday"], "tok", 1, "not a time: 'someday'"),
        (["topics", "list"], None, 1, "401 unauthorized: set FERRYMQ_ADMIN_TOKEN"),
        (["topics", "list"], "wrong", 1, "401 unauthorized"),
        (["topics", "frobnicate"], "tok", 2, "invalid choice: 'frobnicate'"),
        (["send"], "tok", 2, "the following arguments are required: topic, body"),
    ],
)
def test_errors_are_one_line_and_non_zero(
    server: FerryServer, args: list[str], token: str | None, code: int, says: str
) -> None:
    r = admin(server, *args, token=token)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert says in r.stderr


def test_unreachable_server(tmp_path: Path) -> None:
    r = admin(None, "--server", "http://127.0.0.1:1", "clusters")
    assert r.returncode == 1
    assert r.stderr.strip().startswith("ferrymq admin: cannot reach http://127.0.0.1:1")
    assert len(r.stderr.strip().splitlines()) == 1

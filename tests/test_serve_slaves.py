"""``ferrymq serve --slaves N``: a master and N slaves of one broker group in one command, one name
server, each member with its own store under the data dir; what the admin API shows of them."""

from __future__ import annotations

from pathlib import Path

import httpx

from ferrymq.cli.testing import FerryServer
from tests.test_admin_api import eventually


def test_serve_with_one_slave_runs_the_group_and_the_admin_api_shows_it(tmp_path: Path) -> None:
    with FerryServer(tmp_path / "srv", extra_args=["--slaves", "1"]) as srv:
        assert "slave1" in srv.ports
        store = srv.store_dir
        assert (store / "master" / "commitlog").is_dir() and (store / "slave-1" / "commitlog").is_dir()
        with httpx.Client(base_url=srv.admin_url, timeout=10) as h:

            def group() -> list[dict] | None:  # type: ignore[type-arg]
                brokers = h.get("/api/cluster").json()["brokers"]
                return brokers if len(brokers) == 2 and all(b["reachable"] for b in brokers) else None

            master, slave = eventually(group)
            assert (master["broker_id"], master["role"], master["local"]) == (0, "MASTER", True)
            assert (slave["broker_id"], slave["role"]) == (1, "SLAVE")
            assert slave["addr"] == f"{srv.host}:{srv.ports['slave1']}"
            assert master["replication"]["broker_role"] == "ASYNC_MASTER"
            assert slave["replication"]["broker_role"] == "SLAVE"

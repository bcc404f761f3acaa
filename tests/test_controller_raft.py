"""The controller's state survives the loss of its Raft leader and a restart of every node
(three real pysyncobj nodes on loopback, each with its own journal)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from ferrymq.namesrv.controller.raft import ControllerNode, NotLeader, Peer, parse_peers
from ferrymq.namesrv.controller.state import Candidate, ControllerCode


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_nodes(peers: list[Peer], root: Path) -> list[ControllerNode]:
    return [ControllerNode(peers, p.remoting, root / f"n{i}") for i, p in enumerate(peers)]


def leader_of(nodes: list[ControllerNode], timeout: float = 20.0) -> ControllerNode:
    """The one node that leads (a cluster-wide fact: polled, bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = [n for n in nodes if n.is_leader]
        if len(leaders) == 1 and all(n.leader == leaders[0].me.remoting for n in nodes):
            return leaders[0]
        time.sleep(0.05)
    raise AssertionError("no single controller leader")


def test_peer_syntax() -> None:
    assert parse_peers("10.0.0.1:9876@9878;10.0.0.2:9876@9878") == [
        Peer("10.0.0.1:9876", "10.0.0.1:9878"),
        Peer("10.0.0.2:9876", "10.0.0.2:9878"),
    ]
    with pytest.raises(ValueError, match="host:port@raftPort"):
        Peer.parse("10.0.0.1:9876")


def test_decisions_survive_the_leader_and_a_full_restart(tmp_path: Path) -> None:
    ports = free_ports(6)
    peers = [Peer(f"127.0.0.1:{ports[i]}", f"127.0.0.1:{ports[i + 3]}") for i in range(3)]
    nodes = start_nodes(peers, tmp_path)
    try:
        leader = leader_of(nodes)
        follower = next(n for n in nodes if n is not leader)
        with pytest.raises(NotLeader) as exc:
            asyncio.run(follower.propose("register", "C", "b", 1, "x:1"))
        assert exc.value.leader == leader.me.remoting

        async def first_term() -> None:
            for bid in (1, 2):
                assert (await leader.propose("register", "C", "b", bid, f"10.0.0.{bid}:10911")).ok
            r = await leader.propose("elect", "b", {1: Candidate(1, 0, 0)}, None, False)
            assert r.ok and r.group is not None and (r.group.master_id, r.group.master_epoch) == (1, 1)
            r = await leader.propose("alter", "b", 1, 1, {1, 2}, 1, {1, 2})
            assert r.ok

        asyncio.run(first_term())
        leader.close()
        rest = [n for n in nodes if n is not leader]
        second = leader_of(rest)
        g = second.state().group("b")
        assert g is not None and (g.master_id, g.master_epoch, g.sync_state_set) == (1, 1, {1, 2})

        async def second_term() -> None:
            r = await second.propose("elect", "b", {2: Candidate(2, 1, 10)}, None, False)
            assert r.ok and r.group is not None and (r.group.master_id, r.group.master_epoch) == (2, 2)
            r = await second.propose("alter", "b", 1, 1, {1, 2}, 1, {1, 2})  # the old master, fenced
            assert r.code == ControllerCode.INVALID_MASTER

        asyncio.run(second_term())
    finally:
        for n in nodes:
            n.close()

    again = start_nodes(peers, tmp_path)
    try:
        leader = leader_of(again)
        deadline = time.monotonic() + 20
        while True:
            g = leader.state().group("b")
            if g is not None and g.master_epoch == 2:
                break
            assert time.monotonic() < deadline, "the journal was not replayed"
            time.sleep(0.05)
        assert (g.master_id, g.sync_state_set) == (2, {2})
    finally:
        for n in again:
            n.close()


def test_loading_the_controller_leaves_socket_inet_ntop_alone() -> None:
    """pysyncobj replaces socket.inet_ntop on import; the store and the admin views need it."""
    import ferrymq.namesrv.controller.raft  # noqa: F401

    assert socket.inet_ntop(socket.AF_INET, b"\x7f\x00\x00\x01") == "127.0.0.1"

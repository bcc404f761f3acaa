"""Controller mode, broker side, in process: the role decision for each GET_REPLICA_INFO answer,
and the broker.conf keys (core/broker/controller_client.py, core/config.py)."""

from __future__ import annotations

import pytest

from ferrymq.core.broker.controller_client import Decision, Do, ReplicaView, Role, decide, parse_view
from ferrymq.core.config import BrokerConfig, ConfigError
from ferrymq.core.remoting.command import RemotingCommand

ME = 2
OTHER = 1
OTHER_ADDR = "10.0.0.1:10911"


def view(master: int | None, epoch: int, addr: str | None = OTHER_ADDR) -> ReplicaView:
    return ReplicaView(master, addr if master is not None else None, epoch)


def test_no_live_master_asks_for_an_election() -> None:
    assert decide(ME, Role.FENCED, 0, None, view(None, 3)).do == Do.ELECT
    assert decide(ME, Role.SLAVE, 3, OTHER_ADDR, view(None, 3)).do == Do.ELECT


def test_elected_becomes_master_once() -> None:
    assert decide(ME, Role.FENCED, 0, None, view(ME, 1)) == Decision(Do.BECOME_MASTER, 1)
    assert decide(ME, Role.SLAVE, 1, OTHER_ADDR, view(ME, 2)) == Decision(Do.BECOME_MASTER, 2)
    assert decide(ME, Role.MASTER, 2, None, view(ME, 2)).do == Do.NOTHING


def test_another_master_is_followed() -> None:
    assert decide(ME, Role.FENCED, 0, None, view(OTHER, 1)) == Decision(Do.BECOME_SLAVE, 1, OTHER_ADDR)
    assert decide(ME, Role.SLAVE, 1, OTHER_ADDR, view(OTHER, 1)).do == Do.NOTHING
    # the same master id came back on another address, at a new epoch
    moved = decide(ME, Role.SLAVE, 1, OTHER_ADDR, view(OTHER, 2, "10.0.0.9:1"))
    assert moved == Decision(Do.BECOME_SLAVE, 2, "10.0.0.9:1")


def test_a_deposed_master_steps_down() -> None:
    assert decide(ME, Role.MASTER, 1, None, view(OTHER, 2)) == Decision(Do.BECOME_SLAVE, 2, OTHER_ADDR)


def test_never_back_to_an_older_epoch() -> None:
    assert decide(ME, Role.MASTER, 3, None, view(OTHER, 2)).do == Do.NOTHING
    assert decide(ME, Role.SLAVE, 3, OTHER_ADDR, view(ME, 2)).do == Do.NOTHING
    # two masters at one epoch cannot be: a master waits for a newer answer
    assert decide(ME, Role.MASTER, 3, None, view(OTHER, 3)).do == Do.NOTHING


def test_parse_replica_info_answer() -> None:
    resp = RemotingCommand(
        code=0,
        ext_fields={"masterBrokerId": "1", "masterAddress": "h:1", "masterEpoch": "4"},
        body=b'{"syncStateSet": [1, 2], "syncStateSetEpoch": 5}',
    )
    assert parse_view(resp) == ReplicaView(1, "h:1", 4, frozenset({1, 2}), 5)
    assert parse_view(RemotingCommand(code=0, ext_fields={"masterEpoch": "4"})).master_id is None


def ctl(**kv: str) -> dict[str, object]:
    return {"enableControllerMode": "true", "controllerAddr": "127.0.0.1:9876", **kv}


def test_controller_mode_config() -> None:
    c = BrokerConfig.build(ctl(brokerId="2", brokerRole="SYNC_MASTER"))
    assert (c.controller_identity, c.controller_master_role) == (2, "SYNC_MASTER")
    assert c.is_slave and c.broker_id == 2  # fenced: a slave without a master until elected
    c.switch_role(True)
    assert (c.broker_role, c.broker_id, c.is_slave) == ("SYNC_MASTER", 0, False)
    c.ha_listen_port = 1234  # a later validated assignment keeps the runtime role
    c.switch_role(False)
    assert (c.broker_role, c.broker_id) == ("SLAVE", 2)
    # brokerRole=SLAVE in controller mode: ASYNC_MASTER when elected
    assert BrokerConfig.build(ctl(brokerId="1", brokerRole="SLAVE")).controller_master_role == "ASYNC_MASTER"
    d = BrokerConfig.build(ctl(brokerId="1"))
    assert (d.broker_heartbeat_interval, d.sync_broker_metadata_period) == (1000, 1000)
    assert d.controller_heart_beat_timeout_mills == 10_000


@pytest.mark.parametrize(
    ("values", "names"),
    [
        (ctl(), "brokerId"),
        (ctl(brokerId="0"), "brokerId"),
        ({"enableControllerMode": "true", "brokerId": "1"}, "controllerAddr"),
    ],
)
def test_controller_mode_config_errors(values: dict[str, object], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        BrokerConfig.build(values)

"""broker.conf parsing and validation (core/config.py), and the CLI's error for a bad file."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from ferrymq.core.config import BrokerConfig, ConfigError, parse_properties

# the shape of RocketMQ's distribution/conf/broker.conf, plus a few store keys
ROCKETMQ_CONF = """\
# Licensed to the Apache Software Foundation (ASF) under one or more
#  contributor license agreements.
brokerClusterName = ProdCluster
brokerName = broker-b
brokerId = 0
deleteWhen = 04
fileReservedTime = 48
flushDiskType = SYNC_FLUSH
! a Java properties comment
namesrvAddr=10.0.0.1:9876;10.0.0.2:9876

listenPort: 10921
storePathRootDir : /var/lib/ferrymq/store
   mappedFileSizeCommitLog=1048576
maxMessageSize=65536
autoCreateTopicEnable=false
defaultTopicQueueNums\t=\t4
brokerIP1=192.168.0.10
"""


def test_parse_properties_separators_comments_and_blank_lines() -> None:
    props = parse_properties(ROCKETMQ_CONF)
    assert props["brokerClusterName"] == "ProdCluster"
    assert props["namesrvAddr"] == "10.0.0.1:9876;10.0.0.2:9876"  # ':' inside a value is kept
    assert props["listenPort"] == "10921"
    assert props["storePathRootDir"] == "/var/lib/ferrymq/store"
    assert props["mappedFileSizeCommitLog"] == "1048576"
    assert props["defaultTopicQueueNums"] == "4"
    assert not any(k.startswith(("#", "!")) for k in props)
    assert "" not in props


def test_parse_properties_java_rules() -> None:
    text = "a=1=2\nb:c=d\nempty=\nlast=first\nlast=second\nspaced   value-with-space separator\n"
    props = parse_properties(text)
    assert props["a"] == "1=2"  # only the first separator splits
    assert props["b"] == "c=d"
    assert props["empty"] == ""
    assert props["last"] == "second"  # a repeated key: the last one wins, as in java.util.Properties
    assert props["spaced"] == "value-with-space separator"  # whitespace alone separates, too


def test_rocketmq_broker_conf_keys() -> None:
    cfg = BrokerConfig.from_properties(ROCKETMQ_CONF)
    assert cfg.broker_cluster_name == "ProdCluster"
    assert cfg.broker_name == "broker-b"
    assert cfg.broker_id == 0
    assert cfg.delete_when == "04"
    assert cfg.file_reserved_time == 48
    assert cfg.flush_disk_type == "SYNC_FLUSH" and cfg.sync_flush
    assert cfg.namesrv_addrs == ["10.0.0.1:9876", "10.0.0.2:9876"]
    assert cfg.listen_port == 10921
    assert cfg.store_path_root_dir == Path("/var/lib/ferrymq/store")
    assert cfg.mapped_file_size_commit_log == 1048576
    assert cfg.max_message_size == 65536
    assert cfg.auto_create_topic_enable is False
    assert cfg.default_topic_queue_nums == 4
    assert cfg.broker_ip1 == "192.168.0.10"
    assert cfg.broker_addr == "192.168.0.10:10921"


def test_defaults_match_rocketmq() -> None:
    cfg = BrokerConfig.from_properties("")
    assert cfg.broker_cluster_name == "DefaultCluster"
    assert cfg.listen_port == 10911
    assert cfg.flush_disk_type == "ASYNC_FLUSH"
    assert cfg.file_reserved_time == 72
    assert cfg.delete_when == "04"
    assert cfg.max_message_size == 4 * 1024 * 1024
    assert cfg.mapped_file_size_commit_log == 1024 * 1024 * 1024
    assert cfg.mapped_file_size_consume_queue == 300_000 * 20
    assert cfg.namesrv_addrs == []


def test_overrides_win_over_the_file() -> None:
    cfg = BrokerConfig.from_properties("listenPort=1\nnamesrvAddr=a:1\n", listenPort=2, namesrvAddr=None)
    assert cfg.listen_port == 2
    assert cfg.namesrv_addr == "a:1"  # None means "not given"


def test_unknown_key_warns_naming_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ferrymq.config"):
        cfg = BrokerConfig.from_properties("someRocketMqOnlyKey=1\nbrokerName=b1\nnoSuchKnob = 5\n")
    assert cfg.broker_name == "b1"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("someRocketMqOnlyKey" in m for m in warnings), warnings
    assert any("noSuchKnob" in m for m in warnings), warnings
    assert not any("brokerName" in m for m in warnings)


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        ("listenPort=abc", "listenPort", "abc"),
        ("listenPort=70000", "listenPort", "70000"),
        ("flushDiskType=FAST_FLUSH", "flushDiskType", "FAST_FLUSH"),
        ("fileReservedTime=-1", "fileReservedTime", "-1"),
        ("deleteWhen=25", "deleteWhen", "25"),
        ("mappedFileSizeCommitLog=100", "mappedFileSizeCommitLog", "100"),
        ("maxMessageSize=0", "maxMessageSize", "0"),
        ("autoCreateTopicEnable=maybe", "autoCreateTopicEnable", "maybe"),
        ("brokerId=-1", "brokerId", "-1"),
        ("brokerName=", "brokerName", ""),
        ("listenPort=10911 # the port", "listenPort", "10911 # the port"),
    ],
)
def test_bad_value_raises_config_error_naming_key_and_value(line: str, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        BrokerConfig.from_properties(f"brokerName=ok\n{line}\n")
    msg = str(info.value)
    assert key in msg
    assert repr(value) in msg or f"={value}" in msg
    assert "\n" not in msg


def test_two_bad_values_are_both_named() -> None:
    with pytest.raises(ConfigError) as info:
        BrokerConfig.from_properties("listenPort=x\nflushDiskType=y\n")
    assert "listenPort" in str(info.value) and "flushDiskType" in str(info.value)


def test_from_file_missing_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        BrokerConfig.from_file(tmp_path / "nope.conf")
    assert "nope.conf" in str(info.value)


def test_from_file_reads_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "broker.conf"
    conf.write_text("brokerName=from-file\nlistenPort=0\n")
    cfg = BrokerConfig.from_file(conf)
    assert cfg.broker_name == "from-file" and cfg.listen_port == 0


# ---- the CLI ---------------------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferrymq.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.process  # runs the ferrymq command
def test_cli_broker_with_bad_conf_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text(f"storePathRootDir={tmp_path / 'store'}\nlistenPort=not-a-port\n")
    proc = _cli("broker", "-c", str(conf), cwd=tmp_path)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "listenPort" in lines[0] and "not-a-port" in lines[0]
    assert "Traceback" not in proc.stderr
    assert "ferrymq ready" not in proc.stdout
    assert not (tmp_path / "store").exists()  # nothing was started


@pytest.mark.process  # runs the ferrymq command
def test_cli_serve_with_bad_conf_exits_nonzero_naming_the_key(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("flushDiskType=SOMETIMES\n")
    proc = _cli(
        "serve",
        "--data-dir",
        str(tmp_path / "data"),
        "--namesrv-port",
        "0",
        "--broker-port",
        "0",
        "-c",
        str(conf),
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if "flushDiskType" in ln]
    assert len(errors) == 1 and "SOMETIMES" in errors[0], proc.stderr
    assert "ferrymq ready" not in proc.stdout


@pytest.mark.process  # runs the ferrymq command
def test_cli_broker_with_missing_conf_exits_nonzero(tmp_path: Path) -> None:
    proc = _cli("broker", "-c", str(tmp_path / "missing.conf"), cwd=tmp_path)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "missing.conf" in lines[0], proc.stderr


@pytest.mark.parametrize(
    "text",
    [
        "brokerId=1\n",
        "brokerRole=SYNC_MASTER\nbrokerId=2\n",
        "brokerRole=SLAVE\n",
        "brokerRole=SLAVE\nbrokerId=0\n",
    ],
)
def test_role_and_id_must_agree(text: str) -> None:
    """A slave id with a master role, or a slave with the master's id, stops start-up naming both."""
    with pytest.raises(ConfigError) as exc:
        BrokerConfig.from_properties(text)
    assert "brokerId" in str(exc.value) and "brokerRole" in str(exc.value)


def test_slave_config_and_ha_addresses() -> None:
    cfg = BrokerConfig.from_properties("brokerRole=SLAVE\nbrokerId=1\nlistenPort=10921\nbrokerIP2=10.0.0.2\n")
    assert cfg.is_slave and cfg.ha_port == 10922 and cfg.ha_server_addr == "10.0.0.2:10922"
    assert BrokerConfig.from_properties("listenPort=0").ha_port == 0
    assert BrokerConfig.from_properties("haListenPort=7000").ha_port == 7000


@pytest.mark.parametrize(
    "text", ["haHousekeepingInterval=4000\n", "haSendHeartbeatInterval=3000\nhaHousekeepingInterval=3000\n"]
)
def test_ha_silence_timeout_must_exceed_the_heartbeat(text: str) -> None:
    """An idle HA link reports every haSendHeartbeatInterval and is dropped after
    haHousekeepingInterval of silence: a timeout at or below the heartbeat drops every idle slave
    (the in-sync set empties and an election finds no replica); start-up stops naming both keys."""
    with pytest.raises(ConfigError) as exc:
        BrokerConfig.from_properties(text)
    assert "haHousekeepingInterval" in str(exc.value) and "haSendHeartbeatInterval" in str(exc.value)

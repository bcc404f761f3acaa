"""Broker groups: a master streams its commit log to slaves (RocketMQ's classic HA protocol).

``ReplicationState`` is what the rest of the broker asks of replication: the send path (SYNC_MASTER
waits), the Kafka frontend (acks=all, min.insync.replicas), pulls (is the master gone?) and the
admin views. ``Broker.ha`` holds one; the HA services (master server, slave client) keep it current.
"""

from ferrymq.core.ha.epoch import EpochEntry, EpochFile, EpochRefused, find_consistent_point
from ferrymq.core.ha.state import ReplicaInfo, ReplicationState, SlaveWait

__all__ = [
    "EpochEntry",
    "EpochFile",
    "EpochRefused",
    "ReplicaInfo",
    "ReplicationState",
    "SlaveWait",
    "find_consistent_point",
]

"""Who serves a pull in a broker group and where the consumer should pull next.

RocketMQ's rules (PullMessageProcessor.rejectRequest and composeResponseHeader,
DefaultMessageStore's cold-data test), with two choices of our own, both to keep consumers from
spinning on a slave while their route lacks the master (see README "Reading from slaves"):

* A slave serves pulls when ``slaveReadEnable`` is on or its master is gone; otherwise it answers
  SYSTEM_BUSY, as RocketMQ 5 does (clients back off, then follow the route back to the master).
* Without ``offsetCheckInSlave`` a slave keeps the consumer's offset where a master would move it
  (it may simply lag): the pull is answered as "nothing new yet" and may long-poll, where
  RocketMQ answers PULL_RETRY_IMMEDIATELY and the client re-pulls at once, in a loop.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ferrymq.core.config import BrokerConfig
    from ferrymq.core.ha import ReplicationState

MASTER_ID = 0


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 << 30


_PHYSICAL_MEMORY = physical_memory()


def in_memory_bytes(config: BrokerConfig) -> int:
    """How far behind the commit-log end data still counts as in memory (accessMessageInMemoryMaxRatio)."""
    return _PHYSICAL_MEMORY * config.access_message_in_memory_max_ratio // 100


def master_alive(ha: ReplicationState) -> bool:
    """On a slave: its master is registered (the last registration result named it) and the HA
    link to it is up. Either missing means gone, and the slave serves its consumers."""
    return ha.master_addr is not None and ha.master_connected


def rejects_pulls(config: BrokerConfig, ha: ReplicationState) -> bool:
    """A slave whose master is alive serves pulls only with slaveReadEnable."""
    return config.is_slave and not config.slave_read_enable and master_alive(ha)


def suggested_broker(
    config: BrokerConfig, ha: ReplicationState, cold: bool, group_broker_id: int, slowly_broker_id: int
) -> int:
    """suggestWhichBrokerId: with slaveReadEnable the group's choice for a consumer reading cold
    data (whichBrokerWhenConsumeSlowly) or else its own (brokerId); the master otherwise. A slave
    with a live master sends a consumer that caught up back to it."""
    suggest = (slowly_broker_id if cold else group_broker_id) if config.slave_read_enable else MASTER_ID
    if config.is_slave and not cold and master_alive(ha):
        return MASTER_ID
    return suggest

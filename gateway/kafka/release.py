"""The Kafka release whose ApiVersions this broker advertises: Apache Kafka 4.0 (a KRaft broker).

Clients infer the broker's release from the advertised maxima (librdkafka's feature checks, kafka-python's
version probe, the Java client's per-API choice), so every advertised key has exactly Kafka 4.0's maximum
and no key beyond 4.0's list is advertised. Source: the ApiVersions of a Kafka 4.0 broker as kafka-python
recorded it (``kafka/protocol/broker_version_data.py``), plus GetTelemetrySubscriptions/PushTelemetry
(0-0), which a 4.0 broker advertises once a client-metrics plugin is configured (ours: no subscriptions).
Minima stay 0 as Kafka <= 3.9 advertised them (reference §0: old librdkafka and kafka-python enable features
only if the range contains old versions); a version below what we serve is answered UNSUPPORTED_VERSION
or closes the connection, as Kafka 4.0 does for Produce v0-2.
Keys of 4.0 we do not serve (delegation tokens 38-41, AlterReplicaLogDirs 34,
UpdateFeatures 57, UnregisterBroker 64, raft voters 80/81) are left out of ApiVersions.
"""

from __future__ import annotations

#: api key -> Kafka 4.0's highest version
KAFKA_4_0_MAX: dict[int, int] = {
    0: 12, 1: 17, 2: 10, 3: 13, 8: 9, 9: 9, 10: 6, 11: 9, 12: 4, 13: 5, 14: 5, 15: 6, 16: 5, 17: 1,
    18: 4, 19: 7, 20: 6, 21: 2, 22: 5, 23: 4, 24: 5, 25: 4, 26: 5, 27: 1, 28: 5, 29: 3, 30: 3, 31: 3,
    32: 4, 33: 2, 34: 2, 35: 4, 36: 2, 37: 3, 38: 3, 39: 2, 40: 2, 41: 3, 42: 2, 43: 2, 44: 1, 45: 0,
    46: 0, 47: 0, 48: 1, 49: 1, 50: 0, 51: 0, 55: 2, 57: 2, 60: 2, 61: 0, 64: 0, 65: 0, 66: 1, 68: 1,
    69: 1, 71: 0, 72: 0, 74: 0, 75: 0, 80: 0, 81: 0,
}  # fmt: skip
RELEASE = "4.0"


def advertised_max(api_key: int, served_max: int) -> int | None:
    """The maximum ApiVersions names for a served key: Kafka 4.0's (None: not a 4.0 key, not advertised)."""
    release_max = KAFKA_4_0_MAX.get(api_key)
    if release_max is None:
        return None
    return min(served_max, release_max)


#: KIP-932 share groups, advertised as Kafka 4.2 does while ``share.version`` is finalized at 1 (4.0 had
#: them as unstable v0 RPCs, 4.1 as a preview; 4.2 made them generally available): key -> (min, max).
SHARE_GROUP_VERSIONS: dict[int, tuple[int, int]] = {76: (1, 1), 77: (1, 1), 78: (1, 2), 79: (1, 2)}
#: the feature a share consumer's broker finalizes: (name, min supported, max supported, finalized)
SHARE_FEATURE = ("share.version", 0, 1, 1)

"""Valid Kafka request frames for every served (API key, version), drawn from kio's request types by
hypothesis (``st.from_type``), derandomized so that the seeds are the same on every run."""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.static.primitive import Records

from ferrymq.gateway.kafka import apis
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.framing import encode_request

_BATCH = rb.build_batch(0, [(0, 1_700_000_000_000, b"k", b"v", [("rocketmq.tags", b"a")])])
st.register_type_strategy(Records, st.sampled_from([Records(_BATCH), Records(b"")]))


def request_strategy(key: int, version: int) -> st.SearchStrategy[Any]:
    return st.from_type(apis.API_HANDLERS[key].request_type(version))


def served() -> list[tuple[int, int]]:
    return sorted(
        (key, v)
        for key, spec in apis.API_HANDLERS.items()
        for v in range(spec.min_version, spec.max_version + 1)
    )


@functools.cache
def request_frames(per_version: int = 1) -> list[bytes]:
    frames: list[bytes] = []
    for key, version in served():

        @settings(
            derandomize=True,
            database=None,
            max_examples=per_version,
            suppress_health_check=list(HealthCheck),
            deadline=None,
        )
        @given(request_strategy(key, version))
        def collect(request: Any) -> None:
            frames.append(encode_request(request, 7, "fuzz")[4:])

        collect()
    return frames

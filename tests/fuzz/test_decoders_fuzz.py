"""Short, derandomized property runs of every fuzz target (fuzz/targets.py): any bytes either decode
or raise the decoder's documented error. Inputs are mutations of real frames, records and batches
(fuzz/corpus.py) and plain random bytes; the same inputs on every run, so CI is stable. The long,
coverage-guided runs are ``make fuzz`` (atheris)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferrymq.gateway.kafka import apis
from ferrymq.gateway.kafka.framing import encode_request, parse_header
from fuzz.corpus import SEEDS
from fuzz.kio_requests import request_strategy, served
from fuzz.targets import TARGETS

_INTERESTING = [0, 1, -1, 0x7FFFFFFF, -0x80000000, 0xFFFF, 0x7FFF, 4, 8]
SHORT = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=400,
    suppress_health_check=list(HealthCheck),
)


def _mutate(seed: bytes, ops: list[tuple[int, int, bytes]]) -> bytes:
    data = bytearray(seed)
    for op, at, extra in ops:
        i = at % (len(data) + 1)
        if op == 0:
            del data[i:]
        elif op == 1 and i < len(data):
            data[i] ^= 1 << (at % 8)
        elif op == 2:
            data[i:i] = extra
        elif op == 3:
            data[i : i + 4] = struct.pack(">i", _INTERESTING[at % len(_INTERESTING)])
        elif op == 4:
            del data[i : i + 1 + len(extra)]
        else:
            data[i : i + len(extra)] = extra
    return bytes(data)


def inputs(name: str) -> st.SearchStrategy[bytes]:
    seeds = SEEDS[name]()
    ops = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 1 << 16), st.binary(max_size=8)), max_size=4)
    return st.one_of(st.builds(_mutate, st.sampled_from(seeds), ops), st.binary(max_size=600))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_raises_only_documented_errors(name: str) -> None:
    @SHORT
    @given(inputs(name))
    def run(data: bytes) -> None:
        TARGETS[name](data)

    run()


@pytest.mark.parametrize("key_version", served()[::3])
def test_length_check_passes_every_valid_request(key_version: tuple[int, int]) -> None:
    """The walk before kio (request_check.py) accepts what kio's own types encode, and kio reads
    back the same request."""
    key, version = key_version
    spec = apis.API_HANDLERS[key]

    @settings(SHORT, max_examples=15)
    @given(request_strategy(key, version))
    def run(request: object) -> None:
        frame = encode_request(request, 1, "c")[4:]
        header = parse_header(frame, spec.flexible(version))
        decoded, _ = spec.reader(version)(frame, header.body_offset)
        assert decoded == request

    run()

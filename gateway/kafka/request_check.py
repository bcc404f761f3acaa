"""A walk over a request body that checks every length prefix before kio reads it.

kio's native reader (0.6.5) reserves room for an array from its length prefix before reading the
elements, so a 30-byte request claiming 2^32-2 elements makes it ask for 32 GiB, and the
allocation failure aborts the whole broker (Rust does not raise). This walk reads only the
lengths (nothing is built) and refuses an array with more elements than bytes left, or a string,
bytes or tagged field running past the request: FrameError, and the connection is closed.
Its cost is per field and per array element of the request (partitions, topics), never per record.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from types import NoneType, UnionType
from typing import Any

from kio.serial.errors import BufferUnderflow

from ferrymq.gateway.kafka.framing import FrameError, read_uvarint

_FIXED = {
    "bool": 1,
    "int8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "float64": 8,
    "timedelta_i32": 4,
    "timedelta_i64": 8,
    "datetime_i64": 8,
    "uuid": 16,
    "error_code": 2,
}
_VARIABLE = frozenset({"string", "bytes", "records"})

#: one field's check: (buffer, position, end) -> position after the field
Step = Callable[[bytes, int, int], int]


def check_request(entity_type: type[Any], frame: bytes, offset: int) -> None:
    """FrameError unless every length in the body at ``offset`` fits the frame."""
    try:
        _entity_step(entity_type)(frame, offset, len(frame))
    except FrameError:
        raise
    except (IndexError, ValueError, BufferUnderflow) as exc:
        raise FrameError(f"request body ends early or is garbled: {exc}") from None


def _signed(buf: bytes, pos: int, size: int) -> int:
    if pos + size > len(buf):
        raise IndexError
    return int.from_bytes(buf[pos : pos + size], "big", signed=True)


def _length(buf: bytes, pos: int, compact: bool, legacy_size: int) -> tuple[int, int]:
    """(length, position after it); -1 for null."""
    if compact:
        n, pos = read_uvarint(buf, pos)
        return n - 1, pos
    return _signed(buf, pos, legacy_size), pos + legacy_size


def _skip(n: int, pos: int, end: int, what: str) -> int:
    if n > end - pos:
        raise FrameError(f"{what} of {n} bytes runs past the request")
    return pos + max(n, 0)


_ENTITY_STEPS: dict[type[Any], Step] = {}


def _entity_step(entity_type: type[Any]) -> Step:
    step = _ENTITY_STEPS.get(entity_type)
    if step is None:
        step = _ENTITY_STEPS[entity_type] = _compile_entity(entity_type)
    return step


def _compile_entity(entity_type: type[Any]) -> Step:
    flexible = bool(entity_type.__flexible__)
    hints = typing.get_type_hints(entity_type)
    steps = [
        _field_step(hints[f.name], f.metadata.get("kafka_type"), flexible, f.name)
        for f in dataclasses.fields(entity_type)
        if "tag" not in f.metadata
    ]

    def step(buf: bytes, pos: int, end: int) -> int:
        for s in steps:
            pos = s(buf, pos, end)
        if flexible:  # tagged fields: each is length-delimited
            count, pos = read_uvarint(buf, pos)
            if count > end - pos:
                raise FrameError(f"{count} tagged fields in fewer bytes")
            for _ in range(count):
                _tag, pos = read_uvarint(buf, pos)
                size, pos = read_uvarint(buf, pos)
                pos = _skip(size, pos, end, "tagged field")
        return pos

    return step


def _field_step(hint: Any, kafka_type: str | None, flexible: bool, name: str) -> Step:
    nullable = typing.get_origin(hint) is UnionType
    if nullable:
        hint = next(a for a in typing.get_args(hint) if a is not NoneType)
    if nullable and dataclasses.is_dataclass(hint):  # a nullable struct: an int8 marker first (KIP-893)
        return _nullable_entity_step(_entity_step(typing.cast(type[Any], hint)), name)
    if typing.get_origin(hint) is tuple:
        return _array_step(_field_step(typing.get_args(hint)[0], kafka_type, flexible, name), flexible, name)
    if dataclasses.is_dataclass(hint):
        return _entity_step(typing.cast(type[Any], hint))
    if kafka_type in _FIXED:
        size = _FIXED[kafka_type]
        return lambda buf, pos, end: _skip(size, pos, end, name)
    if kafka_type in _VARIABLE:
        legacy_size = 2 if kafka_type == "string" else 4

        def variable(buf: bytes, pos: int, end: int) -> int:
            n, pos = _length(buf, pos, flexible, legacy_size)
            return _skip(n, pos, end, name)

        return variable
    raise TypeError(f"no length check for field {name} of kafka type {kafka_type}")


def _nullable_entity_step(entity: Step, name: str) -> Step:
    def nullable(buf: bytes, pos: int, end: int) -> int:
        marker = _signed(buf, pos, 1)
        return pos + 1 if marker < 0 else entity(buf, pos + 1, end)

    return nullable


def _array_step(element: Step, flexible: bool, name: str) -> Step:
    def array(buf: bytes, pos: int, end: int) -> int:
        n, pos = _length(buf, pos, flexible, 4)
        if n > end - pos:  # every element takes a byte at least
            raise FrameError(f"array {name} of {n} elements in {end - pos} bytes")
        for _ in range(n):
            pos = element(buf, pos, end)
        return pos

    return array

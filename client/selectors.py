"""Queue selectors for ``Producer.send_orderly`` (Java's ``MessageQueueSelector`` family).

A selector is any object with ``select(queues, message, arg) -> MessageQueue | None``, or a plain
callable with the same arguments. ``queues`` is the topic's publish queue list (sorted by broker
name, then queue id); returning None makes the send fail with ClientError, as Java's producer
throws "select message queue return null".

* :class:`SelectMessageQueueByHash` -- ``queues[abs(hash(arg) % n)]`` with Java's ``hashCode``
  for str and int args (see :func:`java_hash_code`), so a Python and a Java producer send the
  same ``arg`` (an order id, say) to the same queue.
* :class:`SelectMessageQueueByRandom` -- a uniformly random queue.
* :class:`SelectMessageQueueByMachineRoom` -- Java's class of this name is a stub whose
  ``select`` always returns null (so every send through it fails). Ours does what its name and
  ``consumeridcs`` setting suggest: keep the queues whose broker name is ``"<idc>@<name>"`` with
  ``<idc>`` in ``consumer_idcs`` (the naming ``AllocateMessageQueueByMachineRoom`` uses) and pick
  among them by the hash of ``arg``. Without idcs, or when no queue matches, it returns None --
  which is exactly Java's behaviour in the unconfigured case.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from ferrymq.client.message import MessageQueue
from ferrymq.core.remoting.message import Message, java_string_hash


@runtime_checkable
class MessageQueueSelector(Protocol):
    def select(self, queues: Sequence[MessageQueue], message: Message, arg: Any) -> MessageQueue | None: ...


SelectorLike = MessageQueueSelector | Callable[[Sequence[MessageQueue], Message, Any], "MessageQueue | None"]


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value >= 0x80000000 else value


def java_hash_code(arg: Any) -> int:
    """``arg.hashCode()`` as Java computes it for the equivalent boxed value.

    str: ``String.hashCode``; bool: ``Boolean.hashCode``; int: ``Integer.hashCode`` when it fits
    in 32 bits, else ``Long.hashCode``; bytes: ``Arrays.hashCode(byte[])``; anything else: the
    ``String.hashCode`` of ``str(arg)`` (stable across processes, unlike Python's ``hash``).
    """
    if isinstance(arg, bool):
        return 1231 if arg else 1237
    if isinstance(arg, int):
        if -(1 << 31) <= arg < (1 << 31):
            return arg
        v = arg & 0xFFFFFFFFFFFFFFFF
        return _int32(v ^ (v >> 32))
    if isinstance(arg, str):
        return java_string_hash(arg)
    if isinstance(arg, bytes | bytearray | memoryview):
        h = 1
        for b in bytes(arg):
            h = (31 * h + (b - 256 if b > 127 else b)) & 0xFFFFFFFF
        return _int32(h)
    return java_string_hash(str(arg))


def hash_index(arg: Any, n: int) -> int:
    """Java's ``Math.abs(arg.hashCode() % n)`` (Java's ``%`` truncates toward zero)."""
    return abs(java_hash_code(arg)) % n


class SelectMessageQueueByHash:
    """``queues[abs(arg.hashCode() % len(queues))]``."""

    def select(self, queues: Sequence[MessageQueue], message: Message, arg: Any) -> MessageQueue | None:
        if not queues:
            return None
        return queues[hash_index(arg, len(queues))]


class SelectMessageQueueByRandom:
    """A random queue; ``arg`` is ignored."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def select(self, queues: Sequence[MessageQueue], message: Message, arg: Any) -> MessageQueue | None:
        if not queues:
            return None
        return queues[self._rng.randrange(len(queues))]


class SelectMessageQueueByMachineRoom:
    """Queues of brokers named ``"<idc>@<name>"`` in one of ``consumer_idcs``, chosen by arg hash."""

    def __init__(self, consumer_idcs: Iterable[str] | None = None) -> None:
        self.consumer_idcs: set[str] = set(consumer_idcs or ())

    def select(self, queues: Sequence[MessageQueue], message: Message, arg: Any) -> MessageQueue | None:
        if not self.consumer_idcs:
            return None
        local = [
            q
            for q in queues
            if q.broker_name.partition("@")[0] in self.consumer_idcs and "@" in q.broker_name
        ]
        if not local:
            return None
        return local[hash_index(arg, len(local))]


def run_selector(
    selector: SelectorLike, queues: Sequence[MessageQueue], message: Message, arg: Any
) -> MessageQueue | None:
    """Call a selector object or a plain function."""
    select = getattr(selector, "select", None)
    if callable(select):
        result = select(queues, message, arg)
    elif callable(selector):
        result = selector(queues, message, arg)
    else:
        raise TypeError("selector must have a select(queues, message, arg) method or be callable")
    return result if isinstance(result, MessageQueue) or result is None else _bad(result)


def _bad(result: object) -> MessageQueue:
    raise TypeError(f"selector returned {type(result).__name__}, expected a MessageQueue or None")

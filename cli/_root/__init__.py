"""ferrymq: a RocketMQ-style message broker that also speaks the Kafka protocol."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ferrymq")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"


def __getattr__(name: str) -> object:
    """``ferrymq.embedded`` without importing the broker on ``import ferrymq``."""
    if name in ("embedded", "EmbeddedBroker"):
        from ferrymq.cli import embedded as module

        return getattr(module, name)
    raise AttributeError(f"module 'ferrymq' has no attribute {name!r}")

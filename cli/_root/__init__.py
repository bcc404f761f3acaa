"""ferrymq: a RocketMQ-style message broker that also speaks the Kafka protocol."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ferrymq")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

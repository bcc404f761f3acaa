"""The pytest plugin: ``pip install ferrymq[testing]`` and a test takes ``ferrymq_broker``.

Registered through the ``pytest11`` entry point, so pytest loads it on its own. Two fixtures,
both an in-process :class:`ferrymq.cli.embedded.EmbeddedBroker` (name server, broker, Kafka
frontend on free ports, its own event-loop thread, a temporary store):

* ``ferrymq_broker``: a fresh broker per test (about 10 ms once the first has started);
* ``ferrymq_broker_session``: one broker for the whole session (use unique topic names).

    def test_roundtrip(ferrymq_broker):
        ferrymq_broker.create_topic("orders", queues=4)
        producer = KafkaProducer(bootstrap_servers=ferrymq_broker.kafka_bootstrap)
        producer.send("orders", b"hello").get(10)
        assert ferrymq_broker.bodies("orders") == [b"hello"]

The broker module is imported when a fixture is first used, not when pytest loads the plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ferrymq.cli.embedded import EmbeddedBroker


@pytest.fixture
def ferrymq_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A ferrymq name server and broker (with the Kafka frontend) for this test alone."""
    from ferrymq.cli.embedded import EmbeddedBroker

    with EmbeddedBroker(tmp_path_factory.mktemp("ferrymq")) as broker:
        yield broker


@pytest.fixture(scope="session")
def ferrymq_broker_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One ferrymq name server and broker shared by every test of the session."""
    from ferrymq.cli.embedded import EmbeddedBroker

    with EmbeddedBroker(tmp_path_factory.mktemp("ferrymq-session")) as broker:
        yield broker

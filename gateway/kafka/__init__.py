"""The Apache Kafka protocol frontend: unmodified Kafka clients on the same topics and store.

``frontend.KafkaFrontend`` listens; ``connection`` and ``framing`` carry requests to the handler
registered for their API key, one module per key under ``apis/``, which build their responses
with ``responses``; ``cluster.ClusterView`` is the one view of partitions, routes and nodes;
consumer groups under ``group/``. Nothing here imports the admin app. See docs/architecture.md.
"""

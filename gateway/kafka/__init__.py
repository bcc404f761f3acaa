"""The Apache Kafka protocol frontend: unmodified Kafka clients on the same topics and store.

``frontend.KafkaFrontend`` listens; ``connection`` and ``framing`` carry requests; one module per
API key under ``apis/``; consumer groups under ``group/``. See docs/architecture.md.
"""

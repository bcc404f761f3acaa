"""The RocketMQ 5 gRPC listener (``apache.rocketmq.v2.MessagingService``): ferrymq as its own proxy.

``frontend.py`` runs a grpc.aio server on the broker's loop (``grpcListenPort``); ``service.py``
says which RPC is served by which module; ``route.py``, ``send.py`` and ``telemetry.py`` serve
them; ``mapping.py`` maps a gRPC message onto RocketMQ properties; ``protocol/`` is the generated
code, vendored. Nothing here is imported unless the listener is on, so grpcio costs a broker
without it nothing.
"""

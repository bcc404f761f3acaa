"""Who may do what, for every protocol: one identity and permission model.

A principal is a user name as Kafka writes it (``User:alice``). Kafka SASL users, RocketMQ access keys and
admin users are all principals, so one user may produce with Kafka and consume with RocketMQ under one set of
permissions. Frontends authenticate (SASL, signatures, TLS client certificates) and ask core's Authorizer.
"""

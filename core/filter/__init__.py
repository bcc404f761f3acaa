"""Message filters beyond tags: RocketMQ's SQL92 property filter (``sql92``), evaluated by the
broker on pull. Tag filtering stays where it is cheapest: the consume queue's tag hashes
(core/store) and ``core/remoting/subscription.py``.
"""

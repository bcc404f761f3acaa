"""Remoting request processors, one module per request family (as RocketMQ's broker has).

Each module says at its top which request codes it serves and what it leaves out. A processor
takes the request and the connection and returns the response (or an awaitable of it).
"""

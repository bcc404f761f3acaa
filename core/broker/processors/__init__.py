"""Remoting request processors, one module per request family (as RocketMQ's broker has).

``routing.py`` is the table from request code to handler. Each module says at its top which
request codes it serves and what it leaves out. A handler takes the request and the connection
and returns the response (or an awaitable of it); a refused request raises or returns
``core.remoting.headers.BadRequest``'s response.
"""

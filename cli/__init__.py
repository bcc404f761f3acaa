"""The ``ferrymq`` command: wires the name server, the broker and the frontends into processes."""

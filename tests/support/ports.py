"""Free loopback ports for the processes tests start (one home for every test and bench)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now (also what a test wants for "unreachable")."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

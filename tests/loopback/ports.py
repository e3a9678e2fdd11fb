"""Loopback ports that misbehave at the TCP level: refused, and silent."""

from __future__ import annotations

import asyncio
import socket

from .server import TcpLoopbackServer

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """Return a loopback TCP port nobody listens on: connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
    return port


class _Mute(asyncio.Protocol):
    """Accept a connection and never say a word."""


class SilentPort(TcpLoopbackServer):
    """Accept TCP connections on 127.0.0.1 and never answer, like a blocked port 25."""

    def __init__(self, port: int = 0) -> None:
        """Prepare the port, or a free one when 0."""
        self.host = LOOPBACK
        self.port = port
        self.connections = 0
        self._server: asyncio.Server | None = None

    def _accept(self) -> asyncio.Protocol:
        """Count the connection and hold it open."""
        self.connections += 1
        return _Mute()

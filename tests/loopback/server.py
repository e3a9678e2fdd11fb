"""What every loopback server shares: start, close, and use as a context manager."""

from __future__ import annotations

from abc import ABC, abstractmethod
import asyncio
import socket
from types import TracebackType
from typing import Self


class LoopbackServer(ABC):
    """A server on 127.0.0.1 that runs inside `async with` or between start/close."""

    @abstractmethod
    async def start(self) -> None:
        """Start listening."""

    @abstractmethod
    async def close(self) -> None:
        """Stop listening and drop every connection."""

    async def __aenter__(self) -> Self:
        """Start the server."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the server."""
        await self.close()


class TcpLoopbackServer(LoopbackServer):
    """A TCP server on host:port whose connections _accept builds."""

    host: str
    port: int
    _server: asyncio.Server | None

    @abstractmethod
    def _accept(self) -> asyncio.Protocol:
        """Build the protocol for a new connection."""

    async def start(self) -> None:
        """Listen in the current event loop; a port of 0 becomes a free one."""
        self._server = await asyncio.get_running_loop().create_server(
            self._accept, self.host, self.port, family=socket.AF_INET
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and drop every open connection."""
        if self._server is None:
            return
        self._server.close()
        self._server.abort_clients()
        await self._server.wait_closed()
        self._server = None

"""What every loopback server shares: start, close, and use as a context manager."""

from __future__ import annotations

from abc import ABC, abstractmethod
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

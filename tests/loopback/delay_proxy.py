"""A TCP proxy on 127.0.0.1 that adds latency in each direction, keeping order."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket

from .server import LoopbackServer

LOOPBACK = "127.0.0.1"
_CHUNK = 65536
# A chunk of None means the reading side failed: abort instead of half-closing.
type _Item = tuple[float, bytes | None]


class DelayProxy(LoopbackServer):
    """Forward TCP connections to a loopback target, delaying every chunk both ways."""

    def __init__(
        self, target_host: str, target_port: int, delay: float = 0.010, port: int = 0
    ) -> None:
        """Prepare a proxy to the target; one-way delay in seconds (RTT = 2 x delay)."""
        if not ipaddress.ip_address(target_host).is_loopback:
            msg = f"DelayProxy only forwards to loopback addresses, not {target_host}"
            raise ValueError(msg)
        self.host = LOOPBACK
        self.port = port
        self.target_host = target_host
        self.target_port = target_port
        self.delay = delay
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen in the current event loop."""
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, family=socket.AF_INET
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and cut every proxied connection."""
        if self._server is None:
            return
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._server.abort_clients()
        await self._server.wait_closed()
        self._server = None

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        """Connect to the target and pump both directions until both end."""
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        writers = [client_writer]
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
            writers.append(upstream_writer)
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer),
                self._pipe(upstream_reader, client_writer),
            )
            for writer in writers:
                writer.close()
            for writer in writers:
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        except OSError:
            pass
        finally:
            self._tasks.discard(task)
            for writer in writers:
                if not writer.transport.is_closing():
                    writer.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Copy one direction, each chunk delivered `delay` after it arrived."""
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        deliver = asyncio.create_task(self._deliver(queue, writer))
        loop = asyncio.get_running_loop()
        try:
            while chunk := await reader.read(_CHUNK):
                queue.put_nowait((loop.time() + self.delay, chunk))
            queue.put_nowait((loop.time() + self.delay, b""))
        except OSError:
            queue.put_nowait((loop.time() + self.delay, None))
        except asyncio.CancelledError:
            deliver.cancel()
            raise
        await deliver

    @staticmethod
    async def _deliver(
        queue: asyncio.Queue[_Item], writer: asyncio.StreamWriter
    ) -> None:
        """Write chunks when due; end with a half-close, or abort on failure."""
        loop = asyncio.get_running_loop()
        while True:
            due, chunk = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if chunk is None:
                writer.transport.abort()
                return
            if not chunk:
                if writer.can_write_eof():
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                return
            writer.write(chunk)
            try:
                await writer.drain()
            except OSError:
                writer.transport.abort()
                return

"""Open TLS sessions kept for reuse, so a burst of alerts pays for one handshake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from .client import DirectSendClient
from .errors import DisconnectedError, ReplyError, TransportError
from .smarthost import SmartHost
from .transport import DeliveryResult, SmtpSession

DEFAULT_IDLE_TIMEOUT = 10.0
DEFAULT_MAX_SESSIONS_PER_HOST = 2
_SERVICE_CLOSING = 421


def _session_lost(err: TransportError) -> bool:
    """Return whether an error means the connection is gone."""
    return isinstance(err, DisconnectedError) or (
        isinstance(err, ReplyError) and err.reply.code == _SERVICE_CLOSING
    )


@dataclass(eq=False, slots=True)
class _Host:
    """The sessions of one smart host: a slot per concurrent session, idle ones."""

    slots: asyncio.Semaphore
    idle: list[tuple[SmtpSession, asyncio.TimerHandle]] = field(default_factory=list)


class PooledSession:
    """A session lent by the pool; transactions on it survive a stale connection."""

    def __init__(
        self,
        pool: SessionPool,
        smart_host: SmartHost,
        session: SmtpSession,
        *,
        reused: bool,
    ) -> None:
        """Hold a session of the smart host, fresh or taken from the idle set."""
        self._pool = pool
        self._smart_host = smart_host
        self._session = session
        self._reused = reused
        self._lost = False

    @property
    def session(self) -> SmtpSession:
        """Return the SMTP session currently lent."""
        return self._session

    @property
    def usable(self) -> bool:
        """Return whether the session can carry another transaction."""
        return not self._lost and self._session.is_open

    async def transaction(
        self, sender: str, recipients: Sequence[str], data: bytes
    ) -> DeliveryResult:
        """Run one transaction; redo it once on a new session if a reused one died."""
        reused = self._reused
        try:
            return await self._run(sender, recipients, data)
        except TransportError as err:
            if not (reused and err.stage == "MAIL" and _session_lost(err)):
                raise
        # A session that failed at MAIL never saw this message's data, so sending
        # it again on a new session cannot deliver it twice. The residual risk of
        # duplicates lies elsewhere: a connection lost after the final "." but
        # before the reply leaves the message's fate unknown; the outbox then
        # retries later with the same bytes and Message-ID (RFC 1047) and the
        # mailbox can drop the copy.
        self._session.abort()
        self._session, _ = await self._pool.client.open_session(self._smart_host)
        self._reused = False
        self._lost = False
        return await self._run(sender, recipients, data)

    async def _run(
        self, sender: str, recipients: Sequence[str], data: bytes
    ) -> DeliveryResult:
        """Run one transaction and note whether the connection survived it."""
        try:
            return await self._session.transaction(sender, recipients, data)
        except TransportError as err:
            self._lost = _session_lost(err)
            raise
        finally:
            self._reused = True


class SessionPool:
    """Lend open sessions per smart host: reuse idle ones, at most N at once."""

    def __init__(
        self,
        client: DirectSendClient,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_sessions_per_host: int = DEFAULT_MAX_SESSIONS_PER_HOST,
    ) -> None:
        """Pool sessions opened by the client."""
        if max_sessions_per_host < 1:
            msg = "A smart host needs at least one session"
            raise ValueError(msg)
        self.client = client
        self.idle_timeout = idle_timeout
        self.max_sessions_per_host = max_sessions_per_host
        self._hosts: dict[str, _Host] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def idle_sessions(self) -> int:
        """Return how many open sessions wait for work."""
        return sum(len(host.idle) for host in self._hosts.values())

    @asynccontextmanager
    async def session(self, smart_host: SmartHost) -> AsyncIterator[PooledSession]:
        """Lend an idle session of the smart host, or open one; take it back after."""
        if self._closed:
            msg = "The session pool is closed"
            raise RuntimeError(msg)
        host = self._hosts.get(smart_host.host)
        if host is None:
            host = self._hosts[smart_host.host] = _Host(
                asyncio.Semaphore(self.max_sessions_per_host)
            )
        async with host.slots:
            idle = self._take_idle(host)
            if idle is None:
                session, _ = await self.client.open_session(smart_host)
                lent = PooledSession(self, smart_host, session, reused=False)
            else:
                lent = PooledSession(self, smart_host, idle, reused=True)
            try:
                yield lent
            except BaseException:
                lent.session.abort()
                raise
            self._give_back(host, lent)

    async def aclose(self) -> None:
        """Close every idle session and cancel the idle timers."""
        self._closed = True
        sessions = []
        for host in self._hosts.values():
            for session, timer in host.idle:
                timer.cancel()
                sessions.append(session)
            host.idle.clear()
        await asyncio.gather(*(session.close() for session in sessions), *self._closing)

    def _take_idle(self, host: _Host) -> SmtpSession | None:
        """Return the most recently used idle session that is still connected."""
        while host.idle:
            session, timer = host.idle.pop()
            timer.cancel()
            if session.is_open:
                return session
            session.abort()
        return None

    def _give_back(self, host: _Host, lent: PooledSession) -> None:
        """Keep a healthy session for the idle timeout; drop any other."""
        session = lent.session
        if self._closed or not lent.usable:
            session.abort()
            return
        entry: tuple[SmtpSession, asyncio.TimerHandle]
        timer = asyncio.get_running_loop().call_later(
            self.idle_timeout, lambda: self._expire(host, entry)
        )
        entry = (session, timer)
        host.idle.append(entry)

    def _expire(
        self, host: _Host, entry: tuple[SmtpSession, asyncio.TimerHandle]
    ) -> None:
        """Close a session that stayed idle for the idle timeout."""
        host.idle.remove(entry)
        task = asyncio.get_running_loop().create_task(entry[0].close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

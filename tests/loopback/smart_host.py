"""A real SMTP server on 127.0.0.1 that looks like an Exchange Online MX."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
import ssl

import trustme

from .server import TcpLoopbackServer
from .smtp_script import Fault, FaultKind, Verb
from .smtp_session import (
    GreetAndClose,
    Handler,
    MicrosoftSMTP,
    ReceivedMessage,
    SharedState,
)
from .tls import client_ssl_context, issue_server_cert, make_ca, server_ssl_context

LOOPBACK = "127.0.0.1"
DEFAULT_MX = "contoso-com.mail.protection.outlook.com"


class SmartHost(TcpLoopbackServer):
    """Serve SMTP on 127.0.0.1 like an Exchange Online MX; record accepted mail."""

    def __init__(
        self,
        hostname: str | Sequence[str] = DEFAULT_MX,
        *,
        ca: trustme.CA | None = None,
        starttls: bool = True,
        cert_hostname: str | None = None,
        expired_cert: bool = False,
        legacy_tls: bool = False,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        """Prepare the server and its certificate; nothing listens until start()."""
        self.hostnames: tuple[str, ...] = (
            (hostname,) if isinstance(hostname, str) else tuple(hostname)
        )
        if not self.hostnames:
            msg = "A smart host needs at least one host name"
            raise ValueError(msg)
        self.hostname = self.hostnames[0]
        self.host = host
        self.port = port
        self.ca = ca if ca is not None else make_ca()
        tls_context: ssl.SSLContext | None = None
        if starttls:
            names = (cert_hostname,) if cert_hostname is not None else self.hostnames
            cert = issue_server_cert(self.ca, *names, expired=expired_cert)
            tls_context = server_ssl_context(cert, legacy_tls=legacy_tls)
        self._shared = SharedState(self.hostname, tls_context)
        self._handler = Handler(self._shared)
        self.messages: list[ReceivedMessage] = self._shared.messages
        self.ehlo_names: list[str] = self._shared.ehlo_names
        self.errors: list[Exception] = self._shared.errors
        self.connections = 0
        self._server: asyncio.Server | None = None

    @property
    def tls_failures(self) -> int:
        """Return how many TLS handshakes failed (say, the client refused the cert)."""
        return self._shared.tls_failures

    async def close(self) -> None:
        """Stop listening, drop every connection and wait for the sessions to end."""
        await super().close()
        # A session caught mid-STARTTLS is not woken by the abort: end it here.
        for session in self._shared.sessions:
            session.cancel()
        await asyncio.gather(*self._shared.sessions, return_exceptions=True)

    def client_ssl_context(self) -> ssl.SSLContext:
        """Return a verifying client context that trusts this server's CA."""
        return client_ssl_context(self.ca)

    def delivered_to(self, address: str) -> int:
        """Count the accepted messages that had the address as an envelope recipient."""
        wanted = address.casefold()
        return sum(
            any(rcpt.casefold() == wanted for rcpt in message.rcpt_tos)
            for message in self.messages
        )

    async def wait_for_messages(
        self,
        n: int,
        timeout: float | None = 5,
    ) -> list[ReceivedMessage]:
        """Wait until n messages were accepted (None: no timeout); return them all."""
        async with asyncio.timeout(timeout):
            while len(self.messages) < n:
                self._shared.arrived.clear()
                await self._shared.arrived.wait()
        return list(self.messages)

    def reply_at(
        self,
        verb: Verb,
        reply: str,
        times: int | None = 1,
        recipient: str | None = None,
    ) -> None:
        """Answer the next command(s) with this reply; DATA answers after the data."""
        self._shared.script.add(Fault(FaultKind.REPLY, verb, reply, recipient, times))

    def disconnect_at(self, verb: Verb, times: int | None = 1) -> None:
        """Drop the connection at the next command(s); DATA drops amid the data."""
        self._shared.script.add(Fault(FaultKind.DISCONNECT, verb, remaining=times))

    def greeting(self, reply: str, times: int | None = 1) -> None:
        """Greet the next connection(s) with this reply, then close them."""
        self._shared.script.add(Fault(FaultKind.GREETING, reply=reply, remaining=times))

    def silent(self, times: int | None = None) -> None:
        """Accept the next connections (by default all) but never send a banner."""
        self._shared.script.add(Fault(FaultKind.SILENT, remaining=times))

    def max_recipients(self, n: int | None) -> None:
        """Refuse RCPT beyond n in one transaction with 452 4.5.3 (None: no limit)."""
        self._shared.max_recipients = n

    def clear_faults(self) -> None:
        """Forget every scripted fault and the recipient limit."""
        self._shared.script.clear()
        self._shared.max_recipients = None

    def _accept(self) -> asyncio.Protocol:
        """Build the protocol for a new connection, applying the connection faults."""
        self.connections += 1
        fault = self._shared.script.take_connection()
        if fault is not None and fault.kind is FaultKind.SILENT:
            return asyncio.Protocol()
        if fault is not None and fault.reply is not None:
            return GreetAndClose(fault.reply)
        return MicrosoftSMTP(self._handler, self._shared, self.connections)

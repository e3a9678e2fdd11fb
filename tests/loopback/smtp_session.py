"""One connection to the loopback smart host: Exchange Online's dialect, and faults."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import ssl
from typing import AnyStr, NoReturn

from aiosmtpd.smtp import SMTP, Envelope, Session, TLSSetupException

from .smtp_script import Fault, FaultKind, FaultScript

# Exchange Online advertises 150 MiB; enforcing it keeps SIZE= handling realistic.
MAX_MESSAGE_SIZE = 157_286_400
GREETING_TEXT = "Microsoft ESMTP MAIL Service ready"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """Describe one message the smart host accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    session_id: int


@dataclass(eq=False, slots=True)
class SharedState:
    """Hold what the smart host and its connections share."""

    hostname: str
    tls_context: ssl.SSLContext | None
    script: FaultScript = field(default_factory=FaultScript)
    max_recipients: int | None = None
    messages: list[ReceivedMessage] = field(default_factory=list)
    ehlo_names: list[str] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    tls_failures: int = 0
    sessions: set[asyncio.Task[None]] = field(default_factory=set)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, message: ReceivedMessage) -> None:
        """Keep an accepted message and wake the waiters."""
        self.messages.append(message)
        self.arrived.set()


class GreetAndClose(asyncio.Protocol):
    """Send one greeting and close the connection."""

    def __init__(self, reply: str) -> None:
        """Remember the greeting."""
        self._reply = reply

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Greet and hang up."""
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(f"{self._reply}\r\n".encode())
        transport.close()


class MicrosoftSMTP(SMTP):
    """Speak SMTP with Exchange Online's banner, and obey the scripted faults."""

    def __init__(self, handler: Handler, shared: SharedState, session_id: int) -> None:
        """Serve one connection of the smart host."""
        super().__init__(
            handler,
            data_size_limit=MAX_MESSAGE_SIZE,
            enable_SMTPUTF8=True,
            hostname=shared.hostname,
            ident=GREETING_TEXT,
            tls_context=shared.tls_context,
            require_starttls=shared.tls_context is not None,
            loop=asyncio.get_running_loop(),
        )
        self.shared = shared
        self.session_id = session_id
        self.peer_ip = ""
        self.data_fault: Fault | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Note the peer and track the session task so close() can wait for it."""
        first = self.transport is None
        super().connection_made(transport)
        if first and self._handler_coroutine is not None:
            self.peer_ip = transport.get_extra_info("peername")[0]
            sessions = self.shared.sessions
            sessions.add(self._handler_coroutine)
            self._handler_coroutine.add_done_callback(sessions.discard)
            self._handler_coroutine.add_done_callback(self._stop_idle_timer)

    def _stop_idle_timer(self, _: asyncio.Task[None]) -> None:
        """Cancel aiosmtpd's idle timer once the session task has ended."""
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()

    async def push(self, status: AnyStr) -> None:
        """Send a reply; after a 421 close the connection, as RFC 5321 says."""
        await super().push(status)
        text = status if isinstance(status, str) else status.decode("utf-8", "replace")
        if text.startswith("421") and self.transport is not None:
            self.transport.close()

    @property
    def tls_active(self) -> bool:
        """Say whether STARTTLS completed on this connection."""
        return self.session is not None and self.session.ssl is not None

    async def drop(self) -> NoReturn:
        """Abort the TCP connection and wait for the session to be cancelled."""
        raw = self._original_transport or self.transport
        if isinstance(raw, asyncio.Transport):
            raw.abort()
        await asyncio.get_running_loop().create_future()
        raise AssertionError  # pragma: no cover

    async def smtp_STARTTLS(self, arg: str) -> None:  # noqa: N802
        """Apply STARTTLS faults before upgrading."""
        if not arg and self.tls_context is not None:
            fault = self.shared.script.take_command("STARTTLS")
            if fault is not None and fault.kind is FaultKind.DISCONNECT:
                await self.drop()
            if fault is not None and fault.reply is not None:
                await self.push(fault.reply)
                return
        await super().smtp_STARTTLS(arg)

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
        """Take the fault of a valid DATA; a disconnect drops amid the data."""
        self.data_fault = None
        if (
            not arg
            and self.session is not None
            and self.session.host_name
            and self.envelope is not None
            and self.envelope.rcpt_tos
        ):
            self.data_fault = self.shared.script.take_command("DATA")
            if (
                self.data_fault is not None
                and self.data_fault.kind is FaultKind.DISCONNECT
            ):
                await self.push("354 Start mail input; end with <CRLF>.<CRLF>")
                await self._reader.readuntil(b"\r\n")
                await self.drop()
        await super().smtp_DATA(arg)


class Handler:
    """Answer the aiosmtpd hooks for a smart host."""

    def __init__(self, shared: SharedState) -> None:
        """Serve the smart host's shared state."""
        self._shared = shared

    async def handle_EHLO(  # noqa: N802
        self,
        server: MicrosoftSMTP,
        session: Session,
        _envelope: Envelope,
        hostname: str,
        _responses: list[str],
    ) -> list[str]:
        """Reply like Exchange Online: greet the peer by IP, then list extensions."""
        fault = self._shared.script.take_command("EHLO")
        if fault is not None and fault.kind is FaultKind.DISCONNECT:
            await server.drop()
        if fault is not None and fault.reply is not None:
            return [fault.reply]
        # aiosmtpd leaves recording the EHLO name to a hook that replaces its reply.
        session.host_name = hostname
        self._shared.ehlo_names.append(hostname)
        lines = [
            f"{self._shared.hostname} Hello [{server.peer_ip}]",
            f"SIZE {MAX_MESSAGE_SIZE}",
            "PIPELINING",
            "ENHANCEDSTATUSCODES",
            *(
                ["STARTTLS"]
                if server.tls_context is not None and not server.tls_active
                else []
            ),
            "8BITMIME",
            "SMTPUTF8",
        ]
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    async def handle_HELO(  # noqa: N802
        self,
        server: MicrosoftSMTP,
        session: Session,
        _envelope: Envelope,
        hostname: str,
    ) -> str:
        """Greet the peer by IP."""
        session.host_name = hostname
        self._shared.ehlo_names.append(hostname)
        return f"250 {self._shared.hostname} Hello [{server.peer_ip}]"

    async def handle_MAIL(  # noqa: N802
        self,
        server: MicrosoftSMTP,
        _session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        """Accept the sender unless a fault says otherwise."""
        fault = self._shared.script.take_command("MAIL")
        if fault is not None and fault.kind is FaultKind.DISCONNECT:
            await server.drop()
        if fault is not None and fault.reply is not None:
            return fault.reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(  # noqa: N802
        self,
        server: MicrosoftSMTP,
        _session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Accept any recipient unless a fault or the recipient limit says otherwise."""
        fault = self._shared.script.take_command("RCPT", address)
        if fault is not None and fault.kind is FaultKind.DISCONNECT:
            await server.drop()
        if fault is not None and fault.reply is not None:
            return fault.reply
        limit = self._shared.max_recipients
        if limit is not None and len(envelope.rcpt_tos) >= limit:
            return TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(  # noqa: N802
        self, server: MicrosoftSMTP, _session: Session, envelope: Envelope
    ) -> str:
        """Record the message exactly as received, unless a fault replies instead."""
        fault = server.data_fault
        if fault is not None and fault.reply is not None:
            return fault.reply
        assert envelope.mail_from is not None
        assert envelope.original_content is not None
        message = ReceivedMessage(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=envelope.original_content,
            tls=server.tls_active,
            session_id=server.session_id,
        )
        self._shared.record(message)
        number = len(self._shared.messages)
        return (
            f"250 2.6.0 <{server.session_id}.{number}@{self._shared.hostname}>"
            f" [InternalId={number}] Queued mail for delivery"
        )

    async def handle_exception(self, error: Exception) -> str:
        """Count failed TLS handshakes, keep other errors, tell the client."""
        if isinstance(error, TLSSetupException):
            self._shared.tls_failures += 1
        else:
            self._shared.errors.append(error)
        return "451 4.3.0 Loopback smart host error"

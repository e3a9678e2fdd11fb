"""The SMTP session with a smart host: STARTTLS always, certificate verified."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
import contextlib
from dataclasses import dataclass, field
import ssl
from types import TracebackType
from typing import Self

import aiosmtplib

from .errors import (
    ConnectFailedError,
    ConnectTimeoutError,
    DisconnectedError,
    InvalidAddressError,
    RecipientsRefusedError,
    ReplyError,
    StartTlsUnavailableError,
    TlsError,
    TransportError,
)
from .message import Envelope
from .replies import Reply

SMTP_PORT = 25
_RETIRED_TLS = frozenset({"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"})
DEFAULT_TIMEOUT = 30.0
# RFC 5321 4.5.3.2.6: wait at least 10 minutes for the reply to the final ".". A
# server slower than the command timeout may still accept; giving up earlier
# leaves the message's fate unknown and the retry would deliver a second copy.
DATA_TIMEOUT = 600.0
# Exchange Online takes at most 200 recipients of one domain per transaction.
MAX_RECIPIENTS = 200
_TOO_MANY_RECIPIENTS = (452, "4.5.3")
# A TLS connection that ends mid-handshake was cut, not refused: try again later.
_TLS_CUT = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


def require_secure_context(context: ssl.SSLContext) -> ssl.SSLContext:
    """Return the context if it verifies the host's certificate on TLS 1.2 or later."""
    # Python 3.14 reports MINIMUM_SUPPORTED for its default client context; the
    # session then checks the version it negotiated before it says anything.
    minimum = context.minimum_version
    if (
        context.verify_mode != ssl.CERT_REQUIRED
        or not context.check_hostname
        or (
            minimum != ssl.TLSVersion.MINIMUM_SUPPORTED
            and minimum < ssl.TLSVersion.TLSv1_2
        )
    ):
        msg = "The TLS context must verify certificates and host names on TLS >= 1.2"
        raise ValueError(msg)
    return context


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportSettings:
    """How to reach smart hosts: TLS trust, EHLO name, port and timeout."""

    tls_context: ssl.SSLContext
    local_hostname: str
    port: int = SMTP_PORT
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        """Refuse a TLS context that would not protect the session."""
        require_secure_context(self.tls_context)

    @property
    def data_timeout(self) -> float:
        """Return how long to wait for the reply to the end of the message data."""
        return max(self.timeout, DATA_TIMEOUT)


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsDetails:
    """What the TLS handshake agreed and which certificate the host showed."""

    version: str | None
    cipher: str | None
    certificate: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionInfo:
    """What the smart host showed while the session was opened."""

    banner: Reply
    ehlo: Reply
    extensions: dict[str, str]
    tls: TlsDetails


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryResult:
    """Which recipients the smart host accepted, refused, or left for another transaction."""

    host: str
    accepted: tuple[str, ...]
    refused: dict[str, Reply]
    reply: Reply
    deferred: tuple[str, ...] = ()


def is_too_many_recipients(reply: Reply) -> bool:
    """Return whether a RCPT reply asks for the rest in another transaction."""
    return (reply.code, reply.enhanced_code) == _TOO_MANY_RECIPIENTS


class SmtpSession:
    """One SMTP session with a smart host, upgraded to TLS before any mail."""

    def __init__(self, settings: TransportSettings, host: str, address: str) -> None:
        """Prepare a session with the host name and the address to dial."""
        self.host = host
        self.address = address
        self._settings = settings
        self.transactions = 0
        self._smtp = aiosmtplib.SMTP(
            hostname=address,
            port=settings.port,
            local_hostname=settings.local_hostname,
            timeout=settings.timeout,
            start_tls=False,
        )

    async def __aenter__(self) -> Self:
        """Open the session."""
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the session."""
        await self.close()

    @property
    def is_open(self) -> bool:
        """Return whether the session is still connected."""
        return self._smtp.is_connected

    async def open(self) -> SessionInfo:
        """Connect, EHLO, STARTTLS with a verified certificate, EHLO again."""
        try:
            greeting = await self._smtp.connect()
            await self._smtp.ehlo()
            if not self._smtp.supports_extension("starttls"):
                raise StartTlsUnavailableError(self.host, "STARTTLS is not offered")
            await self._smtp.starttls(
                server_hostname=self.host, tls_context=self._settings.tls_context
            )
            self._require_modern_tls()
            ehlo = await self._smtp.ehlo()
        except TransportError:
            self._smtp.close()
            raise
        except (aiosmtplib.SMTPException, OSError) as err:
            self._smtp.close()
            raise _translate(self.host, err) from err
        return SessionInfo(
            banner=Reply(greeting.code, greeting.message),
            ehlo=Reply(ehlo.code, ehlo.message),
            extensions=dict(self._smtp.esmtp_extensions),
            tls=self._tls_details(),
        )

    async def send(self, envelope: Envelope) -> DeliveryResult:
        """Send one message in as many transactions as the recipient limits need."""
        accepted: list[str] = []
        refused: dict[str, Reply] = {}
        reply: Reply | None = None
        queue = list(envelope.recipients)
        while queue:
            chunk, queue = queue[:MAX_RECIPIENTS], queue[MAX_RECIPIENTS:]
            try:
                result = await self.transaction(envelope.sender, chunk, envelope.data)
            except RecipientsRefusedError as err:
                refused.update(err.refused)
                continue
            accepted.extend(result.accepted)
            refused.update(result.refused)
            queue[:0] = result.deferred
            reply = result.reply
        if reply is None:
            raise RecipientsRefusedError(self.host, refused)
        return DeliveryResult(
            host=self.host, accepted=tuple(accepted), refused=refused, reply=reply
        )

    async def transaction(
        self, sender: str, recipients: Sequence[str], data: bytes
    ) -> DeliveryResult:
        """Run one MAIL, RCPT..., DATA transaction; after 452 4.5.3 defer the rest."""
        accepted: list[str] = []
        refused: dict[str, Reply] = {}
        deferred: tuple[str, ...] = ()
        stage, address = "MAIL", sender
        try:
            await self._smtp.mail(sender, options=self._mail_options(data))
            stage = "RCPT"
            for index, recipient in enumerate(recipients):
                address = recipient
                try:
                    await self._smtp.rcpt(recipient)
                except aiosmtplib.SMTPRecipientRefused as err:
                    reply = Reply(err.code, err.message)
                    if not is_too_many_recipients(reply):
                        refused[recipient] = reply
                        continue
                    rest = tuple(recipients[index:])
                    if accepted:
                        deferred = rest
                    else:
                        refused.update(dict.fromkeys(rest, reply))
                    break
                accepted.append(recipient)
            if not accepted:
                await self._reset()
                raise RecipientsRefusedError(self.host, refused)
            stage = "DATA"
            response = await self._smtp.data(data, timeout=self._settings.data_timeout)
        except ValueError as err:
            # aiosmtplib refuses an address it cannot quote safely before sending it.
            await self._reset()
            raise InvalidAddressError(address) from err
        except (aiosmtplib.SMTPException, OSError) as err:
            if isinstance(err, aiosmtplib.SMTPResponseException):
                await self._reset()
            error = _translate(self.host, err)
            error.stage = stage
            raise error from err
        self.transactions += 1
        return DeliveryResult(
            host=self.host,
            accepted=tuple(accepted),
            refused=refused,
            reply=Reply(response.code, response.message),
            deferred=deferred,
        )

    def _mail_options(self, data: bytes) -> list[str]:
        """Declare the message size when the host takes SIZE, as DATA will send it."""
        if not self._smtp.supports_extension("size"):
            return []
        size = len(data) if data.endswith(b"\r\n") else len(data) + 2
        return [f"SIZE={size}"]

    async def _reset(self) -> None:
        """Abandon the transaction with RSET; drop a session that cannot."""
        if not self._smtp.is_connected:
            return
        try:
            await self._smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self._smtp.close()

    async def close(self) -> None:
        """Say QUIT when still connected, then drop the connection."""
        if self._smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self._smtp.quit()
        self._smtp.close()

    def abort(self) -> None:
        """Drop the connection without QUIT: its state is unknown or it is gone."""
        # A plain close would wait up to 30 s for the peer's TLS close_notify.
        transport = self._smtp.transport
        if isinstance(transport, asyncio.WriteTransport):
            transport.abort()
        self._smtp.close()

    def _require_modern_tls(self) -> None:
        """Refuse a session that negotiated a protocol older than TLS 1.2."""
        ssl_object = self._smtp.get_transport_info("ssl_object")
        version = ssl_object.version() if ssl_object is not None else None
        if version is None or version in _RETIRED_TLS:
            raise TlsError(self.host, f"{version} is older than TLS 1.2")

    def _tls_details(self) -> TlsDetails:
        """Read the negotiated protocol, cipher and peer certificate."""
        ssl_object = self._smtp.get_transport_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            return TlsDetails(version=None, cipher=None)
        cipher = ssl_object.cipher()
        return TlsDetails(
            version=ssl_object.version(),
            cipher=cipher[0] if cipher else None,
            certificate=dict(ssl_object.getpeercert() or {}),
        )


def _translate(host: str, err: BaseException) -> TransportError:
    """Map an aiosmtplib or socket failure to the core's error for it."""
    if isinstance(err, _TLS_CUT):
        return DisconnectedError(host, f"TLS handshake cut: {err}")
    if isinstance(err, ssl.SSLError | ssl.CertificateError):
        return TlsError(host, str(err))
    if isinstance(err, aiosmtplib.SMTPConnectTimeoutError):
        return ConnectTimeoutError(host, str(err))
    if isinstance(err, aiosmtplib.SMTPConnectResponseError):
        return ReplyError(host, Reply(err.code, err.message))
    if isinstance(err, aiosmtplib.SMTPConnectError):
        if isinstance(err.__cause__, ssl.SSLError):
            return _translate(host, err.__cause__)
        return ConnectFailedError(host, str(err))
    if isinstance(err, aiosmtplib.SMTPResponseException):
        return ReplyError(host, Reply(err.code, err.message))
    if isinstance(err, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPTimeoutError):
        return DisconnectedError(host, str(err))
    if isinstance(err, OSError):
        return DisconnectedError(host, str(err))
    return TransportError(host, str(err))

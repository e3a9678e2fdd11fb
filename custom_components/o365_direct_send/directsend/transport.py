"""The SMTP session with a smart host: STARTTLS always, certificate verified."""

from __future__ import annotations

from dataclasses import dataclass, field
import ssl
from types import TracebackType
from typing import Self

import aiosmtplib

from .errors import (
    ConnectFailedError,
    ConnectTimeoutError,
    DisconnectedError,
    RecipientsRefusedError,
    ReplyError,
    StartTlsUnavailableError,
    TlsError,
    TransportError,
)
from .message import Envelope
from .replies import Reply

SMTP_PORT = 25
DEFAULT_TIMEOUT = 30.0


def require_secure_context(context: ssl.SSLContext) -> ssl.SSLContext:
    """Return the context if it verifies the host's certificate on TLS 1.2 or later."""
    if (
        context.verify_mode != ssl.CERT_REQUIRED
        or not context.check_hostname
        or context.minimum_version < ssl.TLSVersion.TLSv1_2
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
    """Which recipients the smart host accepted and which it refused."""

    host: str
    accepted: tuple[str, ...]
    refused: dict[str, Reply]
    reply: Reply


class SmtpSession:
    """One SMTP session with a smart host, upgraded to TLS before any mail."""

    def __init__(self, settings: TransportSettings, host: str, address: str) -> None:
        """Prepare a session with the host name and the address to dial."""
        self.host = host
        self.address = address
        self._settings = settings
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
        """Send one message in one transaction and report each recipient's fate."""
        try:
            refused, text = await self._smtp.sendmail(
                envelope.sender, list(envelope.recipients), envelope.data
            )
        except (aiosmtplib.SMTPException, OSError) as err:
            raise _translate(self.host, err) from err
        refused_replies = {
            recipient: Reply(response.code, response.message)
            for recipient, response in refused.items()
        }
        return DeliveryResult(
            host=self.host,
            accepted=tuple(r for r in envelope.recipients if r not in refused_replies),
            refused=refused_replies,
            reply=Reply(250, text),
        )

    async def close(self) -> None:
        """Say QUIT when still connected, then drop the connection."""
        if self._smtp.is_connected:
            try:
                await self._smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                pass
        self._smtp.close()

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
    if isinstance(err, ssl.SSLError | ssl.CertificateError):
        return TlsError(host, str(err))
    if isinstance(err, aiosmtplib.SMTPConnectTimeoutError):
        return ConnectTimeoutError(host, str(err))
    if isinstance(err, aiosmtplib.SMTPConnectResponseError):
        return ReplyError(host, Reply(err.code, err.message))
    if isinstance(err, aiosmtplib.SMTPConnectError):
        if isinstance(err.__cause__, ssl.SSLError):
            return TlsError(host, str(err.__cause__))
        return ConnectFailedError(host, str(err))
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused):
        return RecipientsRefusedError(
            host, {r.recipient: Reply(r.code, r.message) for r in err.recipients}
        )
    if isinstance(err, aiosmtplib.SMTPResponseException):
        return ReplyError(host, Reply(err.code, err.message))
    if isinstance(err, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPTimeoutError):
        return DisconnectedError(host, str(err))
    if isinstance(err, OSError):
        return DisconnectedError(host, str(err))
    return TransportError(host, str(err))

"""The Direct Send client: find the smart host, open a TLS session, deliver."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import time

from .addresses import domain_of
from .errors import (
    ConnectFailedError,
    ConnectTimeoutError,
    NoMxError,
    NotExchangeOnlineError,
    RecipientOutsideExchangeOnlineError,
    TransportError,
)
from .message import Envelope
from .smarthost import SmartHost, SmartHostResolver
from .transport import DeliveryResult, SessionInfo, SmtpSession, TransportSettings

# Only failures to reach a host move on to the next address or MX host; a host
# that answers and refuses would refuse again elsewhere.
_UNREACHABLE = (ConnectFailedError, ConnectTimeoutError)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """What a connection test learned about the smart host; no mail was sent."""

    host: str
    address: str
    connect_seconds: float
    session: SessionInfo


class DirectSendClient:
    """Send mail into Exchange Online mailboxes with SMTP Direct Send."""

    def __init__(self, resolver: SmartHostResolver, settings: TransportSettings) -> None:
        """Combine smart host discovery with the SMTP transport settings."""
        self.resolver = resolver
        self.settings = settings

    async def smart_host(self, domain: str) -> SmartHost:
        """Return the Exchange Online smart host of a domain."""
        return await self.resolver.smart_host(domain)

    async def check_recipients(self, recipients: Iterable[str]) -> None:
        """Raise unless every recipient's domain is hosted in Exchange Online."""
        checked: set[str] = set()
        for address in recipients:
            domain = domain_of(address)
            if domain in checked:
                continue
            try:
                await self.resolver.smart_host(domain)
            except NotExchangeOnlineError as err:
                raise RecipientOutsideExchangeOnlineError(address, err.host) from err
            except NoMxError as err:
                raise RecipientOutsideExchangeOnlineError(address, None) from err
            checked.add(domain)

    async def open_session(
        self, smart_host: SmartHost
    ) -> tuple[SmtpSession, SessionInfo]:
        """Open a TLS session with the first smart host address that answers."""
        last_error = TransportError(smart_host.host, "no address answered")
        for host in smart_host.hosts:
            for address in await self.resolver.addresses(host):
                session = SmtpSession(self.settings, host, address)
                try:
                    info = await session.open()
                except _UNREACHABLE as err:
                    last_error = err
                    continue
                return session, info
        raise last_error

    async def probe(self, smart_host: SmartHost) -> ProbeResult:
        """Connect, STARTTLS and QUIT without sending mail; report what was seen."""
        started = time.monotonic()
        session, info = await self.open_session(smart_host)
        elapsed = time.monotonic() - started
        await session.close()
        return ProbeResult(
            host=session.host,
            address=session.address,
            connect_seconds=elapsed,
            session=info,
        )

    async def send(self, domain: str, envelope: Envelope) -> DeliveryResult:
        """Deliver one message through the domain's smart host."""
        session, _ = await self.open_session(await self.smart_host(domain))
        try:
            return await session.send(envelope)
        finally:
            await session.close()

"""The Direct Send client: find the smart host, open a TLS session, deliver."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
import contextlib
from dataclasses import dataclass
import time

from .addresses import domain_of
from .errors import (
    ConnectFailedError,
    ConnectTimeoutError,
    DnsLookupError,
    NoMxError,
    NotExchangeOnlineError,
    RecipientInOtherCloudError,
    RecipientOutsideExchangeOnlineError,
    RecipientsRefusedError,
    ReplyError,
    TransportError,
)
from .message import Envelope
from .replies import Reply, ReplyKey, classify
from .smarthost import DEFAULT_STALE_GRACE, SmartHost, SmartHostResolver, same_cloud
from .transport import DeliveryResult, SessionInfo, SmtpSession, TransportSettings

# Only failures to reach a host move on to the next address or MX host; a host
# that answers and refuses would refuse again elsewhere.
_UNREACHABLE = (ConnectFailedError, ConnectTimeoutError)


class _LookupAbandonedError(Exception):
    """The caller running a shared lookup was cancelled; a waiting one takes over."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """What a connection test learned about the smart host; no mail was sent."""

    host: str
    address: str
    connect_seconds: float
    session: SessionInfo


class DirectSendClient:
    """Send mail into Exchange Online mailboxes with SMTP Direct Send."""

    def __init__(
        self,
        resolver: SmartHostResolver,
        settings: TransportSettings,
        *,
        stale_grace: float = DEFAULT_STALE_GRACE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Combine smart host discovery with the SMTP transport settings."""
        self.resolver = resolver
        self.settings = settings
        self._stale_grace = stale_grace
        self._clock = clock
        self._known_addresses: dict[str, tuple[list[str], float]] = {}
        self._lookups: dict[str, asyncio.Future[SmartHost]] = {}

    async def smart_host(self, domain: str) -> SmartHost:
        """Return the Exchange Online smart host of a domain; callers share lookups."""
        # A burst would otherwise send one identical query per message. The first
        # caller looks up in its own task, so nothing outlives a cancelled caller.
        while (shared := self._lookups.get(domain)) is not None:
            with contextlib.suppress(_LookupAbandonedError):
                return await asyncio.shield(shared)
        shared = self._lookups[domain] = asyncio.get_running_loop().create_future()
        try:
            found = await self.resolver.smart_host(domain)
        except Exception as err:
            shared.set_exception(err)
            raise
        else:
            shared.set_result(found)
            return found
        finally:
            del self._lookups[domain]
            if not shared.done():
                shared.set_exception(_LookupAbandonedError())
            # Marks an error as seen even when no other caller was waiting.
            shared.exception()

    def note_replies(self, domain: str, replies: Iterable[Reply | None]) -> None:
        """Learn from a domain's refusals: wrong region means its MX has moved."""
        # 451 4.4.62 says the cached MX is stale: the next attempt asks DNS again
        # instead of knocking at the old host until the TTL runs out.
        if any(
            reply is not None and classify(reply).key is ReplyKey.WRONG_REGION
            for reply in replies
        ):
            self.resolver.forget(domain)

    async def check_recipients(
        self, recipients: Iterable[str], smart_host: SmartHost | None = None
    ) -> None:
        """Raise unless every recipient's domain is hosted in Exchange Online.

        Given the smart host that will carry the mail, also raise for a recipient
        whose Exchange Online is in another Microsoft cloud: that host refuses it.
        """
        checked: set[str] = set()
        for address in recipients:
            domain = domain_of(address)
            if domain in checked:
                continue
            try:
                found = await self.resolver.smart_host(domain)
            except NotExchangeOnlineError as err:
                raise RecipientOutsideExchangeOnlineError(address, err.host) from err
            except NoMxError as err:
                raise RecipientOutsideExchangeOnlineError(address, None) from err
            if smart_host is not None and not same_cloud(found.host, smart_host.host):
                raise RecipientInOtherCloudError(address, found.host, smart_host.host)
            checked.add(domain)

    async def open_session(
        self, smart_host: SmartHost
    ) -> tuple[SmtpSession, SessionInfo]:
        """Open a TLS session with the first smart host address that answers."""
        last_error = TransportError(smart_host.host, "no address answered")
        for host in smart_host.hosts:
            for address in await self.addresses(host):
                session = SmtpSession(self.settings, host, address)
                try:
                    info = await session.open()
                except _UNREACHABLE as err:
                    last_error = err
                    continue
                return session, info
        raise last_error

    async def addresses(self, host: str) -> list[str]:
        """Return a smart host's addresses; the last good ones stand in while DNS fails."""
        try:
            found = await self.resolver.addresses(host)
        except DnsLookupError:
            # A stale cached MX is useless if its A lookup fails in the same outage.
            known = self._known_addresses.get(host)
            if known is None or self._clock() > known[1] + self._stale_grace:
                raise
            return known[0]
        self._known_addresses[host] = (found, self._clock())
        return found

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
            result = await session.send(envelope)
        except ReplyError as err:
            self.note_replies(domain, [err.reply])
            raise
        except RecipientsRefusedError as err:
            self.note_replies(domain, err.refused.values())
            raise
        finally:
            await session.close()
        self.note_replies(domain, result.refused.values())
        return result

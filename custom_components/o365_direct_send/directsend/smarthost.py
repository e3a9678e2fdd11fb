"""Smart host discovery: the Exchange Online MX hosts of a domain, from DNS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import time

import dns.asyncbackend
import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from .addresses import is_ip_literal, normalize_domain
from .errors import DnsLookupError, NoMxError, NotExchangeOnlineError

# Record types the resolver parses; see preload_record_types.
RECORD_TYPES = (
    dns.rdatatype.A,
    dns.rdatatype.AAAA,
    dns.rdatatype.CNAME,
    dns.rdatatype.MX,
    dns.rdatatype.SOA,
    dns.rdatatype.TXT,
)


def preload_record_types() -> None:
    """Load what dnspython imports lazily, so a lookup never imports in a loop."""
    # dnspython imports a record type's module (trying the IN class first, then
    # ANY) the first time it parses one; Home Assistant imports this module off
    # the event loop, so that file access happens here and not mid-lookup.
    for rdtype in RECORD_TYPES:
        dns.rdata.get_rdata_class(dns.rdataclass.IN, rdtype)  # type: ignore[no-untyped-call]
    # The first async query would otherwise pick its backend in the loop: try to
    # import sniffio, then import dns._asyncio_backend. Home Assistant runs on
    # asyncio only, so naming the backend here loses nothing.
    dns.asyncbackend.set_default_backend("asyncio")


preload_record_types()

# Exchange Online endpoints: commercial and GCC, GCC High and DoD, 21Vianet.
_PROTECTION_SUFFIXES = (
    ".mail.protection.outlook.com",
    ".mail.protection.office365.us",
    ".mail.protection.partner.outlook.cn",
)
# DNSSEC/DANE endpoints are <token>.<zone>.mx.microsoft: two labels at least.
_DANE_SUFFIX = ".mx.microsoft"
_DANE_MIN_LABELS = 2
# Which Microsoft cloud each endpoint belongs to: a tenant's smart host takes mail
# only for mailboxes in its own cloud. The DANE names are commercial (and GCC).
_CLOUDS = {
    ".mail.protection.outlook.com": "commercial",
    _DANE_SUFFIX: "commercial",
    ".mail.protection.office365.us": "us_government",
    ".mail.protection.partner.outlook.cn": "china",
}
# How long the last good answer stands in for DNS that has stopped answering.
DEFAULT_STALE_GRACE = 3600.0


def is_exchange_online_host(host: str) -> bool:
    """Return whether an MX host name is an Exchange Online inbound endpoint."""
    if is_ip_literal(host):
        return False
    name = host.strip().rstrip(".").lower()
    for suffix in _PROTECTION_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)]:
            return "." not in name[: -len(suffix)]
    if name.endswith(_DANE_SUFFIX):
        labels = name[: -len(_DANE_SUFFIX)].split(".")
        return len(labels) >= _DANE_MIN_LABELS and all(labels)
    return False


def _cloud(host: str) -> str | None:
    """Return the Microsoft cloud of an Exchange Online endpoint, or None."""
    if not is_exchange_online_host(host):
        return None
    name = host.strip().rstrip(".").lower()
    for suffix, cloud in _CLOUDS.items():
        if name.endswith(suffix):
            return cloud
    return None  # pragma: no cover - is_exchange_online_host knows no other suffix


def same_cloud(host_a: str, host_b: str) -> bool:
    """Return whether two Exchange Online endpoints are in the same Microsoft cloud.

    Commercial (and GCC) names, classic or DANE, form one cloud; GCC High and DoD
    (office365.us) another; 21Vianet (partner.outlook.cn) a third. A host that is
    not an Exchange Online endpoint is in no cloud, so never in the same one.
    """
    cloud = _cloud(host_a)
    return cloud is not None and cloud == _cloud(host_b)


@dataclass(frozen=True, slots=True)
class MxRecord:
    """One MX record: a host and its preference."""

    preference: int
    host: str


@dataclass(frozen=True, slots=True)
class SmartHost:
    """The Exchange Online MX hosts of a domain, best first, with their TTL."""

    domain: str
    records: tuple[MxRecord, ...]
    ttl: int
    resolved_at: float

    @property
    def host(self) -> str:
        """Return the preferred smart host."""
        return self.records[0].host

    @property
    def hosts(self) -> tuple[str, ...]:
        """Return every smart host, preferred first, fallbacks after."""
        return tuple(record.host for record in self.records)

    def expires_at(self) -> float:
        """Return the monotonic time at which the DNS answer goes stale."""
        return self.resolved_at + self.ttl


class SmartHostResolver:
    """Find smart hosts and their addresses with dnspython's async resolver."""

    def __init__(
        self,
        resolver: dns.asyncresolver.Resolver,
        *,
        stale_grace: float = DEFAULT_STALE_GRACE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Wrap a configured resolver; answers are cached for their TTL."""
        self._resolver = resolver
        self._stale_grace = stale_grace
        self._clock = clock
        self._cache: dict[str, SmartHost] = {}
        self._pinned: dict[str, SmartHost] = {}

    @classmethod
    def from_system(cls, timeout: float) -> SmartHostResolver:
        """Use the system's nameservers; this reads resolv.conf, so not in a loop."""
        resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = timeout
        return cls(resolver)

    @classmethod
    def at(cls, nameservers: list[str], port: int, timeout: float) -> SmartHostResolver:
        """Use the given nameservers and port; this does no I/O."""
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = nameservers
        resolver.port = port
        resolver.lifetime = timeout
        return cls(resolver)

    def pin(self, domain: str, host: str) -> SmartHost:
        """Use this Exchange Online host for the domain instead of its MX records."""
        domain = normalize_domain(domain)
        host = host.strip().rstrip(".").lower()
        if not is_exchange_online_host(host):
            raise NotExchangeOnlineError(domain, host)
        pinned = SmartHost(domain, (MxRecord(0, host),), 0, self._clock())
        self._pinned[domain] = pinned
        return pinned

    def forget(self, domain: str) -> None:
        """Drop the cached MX answer of a domain, so the next lookup asks DNS.

        A pinned host stays: the user chose it, DNS did not.
        """
        self._cache.pop(normalize_domain(domain), None)

    async def smart_host(self, domain: str) -> SmartHost:
        """Return the smart host of a domain, from cache while its TTL lasts."""
        domain = normalize_domain(domain)
        if (pinned := self._pinned.get(domain)) is not None:
            return pinned
        cached = self._cache.get(domain)
        now = self._clock()
        if cached is not None and now < cached.expires_at():
            return cached
        try:
            found = await self._lookup(domain)
        except DnsLookupError:
            if cached is not None and now < cached.expires_at() + self._stale_grace:
                return cached
            raise
        self._cache[domain] = found
        return found

    async def addresses(self, host: str) -> list[str]:
        """Return the IP addresses of a host, IPv4 first (IPv6 needs tenant opt-in)."""
        found: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                answer = await self._resolver.resolve(host, rdtype)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except dns.exception.DNSException as err:
                raise DnsLookupError(host, _describe(err)) from err
            found.extend(rdata.to_text() for rdata in answer)
        if not found:
            raise DnsLookupError(host, "the smart host has no address")
        return found

    async def _lookup(self, domain: str) -> SmartHost:
        """Ask DNS for the MX records of a domain and keep Exchange Online ones."""
        try:
            answer = await self._resolver.resolve(domain, dns.rdatatype.MX)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as err:
            raise NoMxError(domain, "no MX record") from err
        except dns.exception.DNSException as err:
            raise DnsLookupError(domain, _describe(err)) from err
        usable = sorted(
            (
                MxRecord(rdata.preference, rdata.exchange.to_text(omit_final_dot=True))
                for rdata in answer
                if rdata.exchange != dns.name.root
            ),
            key=lambda record: (record.preference, record.host),
        )
        if not usable:
            raise NoMxError(domain, "null MX: the domain accepts no mail")
        if not is_exchange_online_host(usable[0].host):
            raise NotExchangeOnlineError(domain, usable[0].host)
        exchange_online = tuple(
            MxRecord(record.preference, record.host.lower())
            for record in usable
            if is_exchange_online_host(record.host)
        )
        ttl = answer.rrset.ttl if answer.rrset is not None else 0
        return SmartHost(domain, exchange_online, ttl, self._clock())


def _describe(err: dns.exception.DNSException) -> str:
    """Return a short reason for a failed lookup."""
    if isinstance(err, dns.exception.Timeout):
        return "DNS timed out"
    return f"DNS failed: {err}"

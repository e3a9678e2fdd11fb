"""SPF analysis of the sender's domain, evaluated by pyspf (RFC 7208's reference)."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
import ipaddress

import dns.exception
import dns.resolver
import spf  # type: ignore[import-untyped]

from .addresses import normalize_domain

DNS_PORT = 53
DEFAULT_TIMEOUT = 10.0
# Microsoft's SPF include per cloud: commercial and GCC, GCC High and DoD, 21Vianet.
MICROSOFT_SPF_DOMAINS = (
    "spf.protection.outlook.com",
    "spf.protection.office365.us",
    "spf.protection.partner.outlook.cn",
)
_CLOUD_SUFFIXES = (
    (".office365.us", MICROSOFT_SPF_DOMAINS[1]),
    (".partner.outlook.cn", MICROSOFT_SPF_DOMAINS[2]),
)
# RFC 7208 4.6.4 allows ten DNS lookups; the search for Microsoft's include keeps to it.
_MAX_INCLUDE_LOOKUPS = 10
_ANY_IP = "192.0.2.1"

type _Answer = list[tuple[tuple[str, str], object]]

_RESOLVER: ContextVar[dns.resolver.Resolver | None] = ContextVar(
    "o365_direct_send_spf_resolver", default=None
)


class SpfResult(StrEnum):
    """An RFC 7208 result for the client IP and the sender's domain."""

    PASS = "pass"  # noqa: S105
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    PERMERROR = "permerror"
    TEMPERROR = "temperror"


_RESULTS = {result.value: result for result in SpfResult}


@dataclass(frozen=True, slots=True, kw_only=True)
class SpfReport:
    """The sender domain's SPF records and what they say about the client IP."""

    domain: str
    records: tuple[str, ...]
    client_ip: str | None
    result: SpfResult | None
    mechanism: str | None
    error: str | None
    microsoft_include: str | None
    microsoft_include_via: str | None
    expected_include: str

    @property
    def record(self) -> str | None:
        """Return the SPF record when there is exactly one."""
        return self.records[0] if len(self.records) == 1 else None

    @property
    def authorizes_client(self) -> bool:
        """Return whether the record lets the client IP send for the domain."""
        return self.result is SpfResult.PASS

    @property
    def suggested_record(self) -> str | None:
        """Return Microsoft's advice applied to the record, when it would help."""
        if self.client_ip is None or self.result not in {
            SpfResult.FAIL,
            SpfResult.SOFTFAIL,
            SpfResult.NEUTRAL,
            SpfResult.NONE,
        }:
            return None
        version = 4 if ipaddress.ip_address(self.client_ip).version == 4 else 6  # noqa: PLR2004
        added = [f"ip{version}:{self.client_ip}"]
        if self.microsoft_include is None:
            added.append(f"include:{self.expected_include}")
        if self.record is None:
            return " ".join(["v=spf1", *added, "~all"])
        head, _, rest = self.record.partition(" ")
        return " ".join([head, *added, rest]).rstrip()

    def as_dict(self) -> dict[str, object]:
        """Return the report as JSON-serialisable data."""
        return {
            "domain": self.domain,
            "records": list(self.records),
            "record": self.record,
            "client_ip": self.client_ip,
            "result": None if self.result is None else self.result.value,
            "authorizes_client": self.authorizes_client,
            "mechanism": self.mechanism,
            "error": self.error,
            "microsoft_include": self.microsoft_include,
            "microsoft_include_via": self.microsoft_include_via,
            "suggested_record": self.suggested_record,
        }


def microsoft_spf_domain(smart_host: str) -> str:
    """Return the SPF include of the Microsoft cloud that runs the smart host."""
    name = smart_host.rstrip(".").lower()
    for suffix, include in _CLOUD_SUFFIXES:
        if name.endswith(suffix):
            return include
    return MICROSOFT_SPF_DOMAINS[0]


async def analyze_spf(
    domain: str,
    client_ip: str | None,
    *,
    nameservers: list[str] | None = None,
    port: int = DNS_PORT,
    timeout: float = DEFAULT_TIMEOUT,
    helo: str | None = None,
    expected_include: str = MICROSOFT_SPF_DOMAINS[0],
) -> SpfReport:
    """Read the domain's SPF record and evaluate it for the client IP, if known."""
    domain = normalize_domain(domain)
    if client_ip is not None:
        client_ip = str(ipaddress.ip_address(client_ip))
    # pyspf is synchronous: its DNS lookups block, so they run in a worker thread.
    return await asyncio.to_thread(
        _analyze,
        domain,
        client_ip,
        helo or domain,
        nameservers,
        port,
        timeout,
        expected_include,
    )


def _analyze(
    domain: str,
    client_ip: str | None,
    helo: str,
    nameservers: list[str] | None,
    port: int,
    timeout: float,
    expected_include: str,
) -> SpfReport:
    """Run the analysis; to_thread gave this call its own copy of the context."""
    _RESOLVER.set(_make_resolver(nameservers, port, timeout))
    # pyspf needs some IP to parse mechanisms; the walk compares none against it.
    walker = _query(domain, client_ip or _ANY_IP, helo, timeout)
    try:
        records = tuple(
            text.decode("ascii", "replace")
            for text in walker.dns_txt(domain)
            if spf.RE_SPF.match(text)
        )
    except (spf.TempError, spf.PermError) as err:
        return SpfReport(
            domain=domain,
            records=(),
            client_ip=client_ip,
            result=None if client_ip is None else SpfResult.TEMPERROR,
            mechanism=None,
            error=str(err),
            microsoft_include=None,
            microsoft_include_via=None,
            expected_include=expected_include,
        )
    result = mechanism = error = None
    if client_ip is not None:
        query = _query(domain, client_ip, helo, timeout)
        outcome, _code, _explanation = query.check()
        result = _RESULTS.get(outcome, SpfResult.PERMERROR)
        mechanism = query.mechanism
        if result in {SpfResult.PERMERROR, SpfResult.TEMPERROR}:
            error = getattr(query, "prob", None)
    include, via = (
        _find_microsoft_include(walker, domain, records[0])
        if len(records) == 1
        else (None, None)
    )
    return SpfReport(
        domain=domain,
        records=records,
        client_ip=client_ip,
        result=result,
        mechanism=mechanism,
        error=error,
        microsoft_include=include,
        microsoft_include_via=via,
        expected_include=expected_include,
    )


def _query(domain: str, client_ip: str, helo: str, timeout: float) -> spf.query:
    """Return a pyspf query for the domain's postmaster, bounded in time."""
    return spf.query(
        i=client_ip,
        s=f"postmaster@{domain}",
        h=helo,
        timeout=timeout,
        querytime=timeout,
    )


def _find_microsoft_include(
    walker: spf.query, domain: str, record: str
) -> tuple[str | None, str | None]:
    """Return Microsoft's include and the domain whose record names it, if any."""
    pending = [(domain, record)]
    seen = {domain}
    try:
        while pending:
            current, text = pending.pop(0)
            walker.d = current
            for term in text.split()[1:]:
                target = _include_target(walker, term)
                if target is None:
                    continue
                if target in MICROSOFT_SPF_DOMAINS:
                    return target, current
                if target in seen or len(seen) > _MAX_INCLUDE_LOOKUPS:
                    continue
                seen.add(target)
                if nested := walker.dns_spf(target):
                    pending.append((target, nested))
    except (spf.TempError, spf.PermError):
        pass
    return None, None


def _include_target(walker: spf.query, term: str) -> str | None:
    """Return the domain an include or redirect term leads to, parsed by pyspf."""
    if modifier := spf.RE_MODIFIER.match(term):
        if modifier.group(1).lower() != "redirect":
            return None
        target = walker.expand_domain(term[modifier.end() :])
    else:
        _mechanism, name, target, _cidr, _result = walker.validate_mechanism(term)
        if name != "include":
            return None
    return str(target).rstrip(".").lower()


def _make_resolver(
    nameservers: list[str] | None, port: int, timeout: float
) -> dns.resolver.Resolver:
    """Build a resolver on the given nameservers, or on the system's (reads files)."""
    if nameservers is None:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = list(nameservers)
        resolver.port = port
    resolver.lifetime = timeout
    return resolver


def _lookup(name: str, qtype: str, strict: object, timeout: float) -> _Answer:
    """Answer pyspf's DNS query with the resolver of the analysis in progress."""
    resolver = _RESOLVER.get()
    if resolver is None:
        answer: _Answer = _library_lookup(name, qtype, strict, timeout)
        return answer
    try:
        rdatas = resolver.resolve(name, qtype, lifetime=timeout, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.Timeout as err:
        raise spf.TempError(f"DNS timed out looking up {qtype} {name}") from err
    except dns.exception.DNSException as err:
        raise spf.TempError(f"DNS failed looking up {qtype} {name}: {err}") from err
    key = (name, qtype)
    if qtype in {"A", "AAAA"}:
        return [(key, rdata.address) for rdata in rdatas]
    if qtype == "MX":
        return [
            (key, (rdata.preference, rdata.exchange.to_text(omit_final_dot=True)))
            for rdata in rdatas
        ]
    if qtype == "PTR":
        return [(key, rdata.target.to_text(omit_final_dot=True)) for rdata in rdatas]
    return [(key, rdata.strings) for rdata in rdatas]


# pyspf sends every lookup through its module-level DNSLookup, with no resolver of
# its own to configure: route it through this module's, leaving other users alone.
_library_lookup = spf.DNSLookup
spf.DNSLookup = _lookup

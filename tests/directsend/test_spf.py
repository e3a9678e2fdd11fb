"""SPF analysis with pyspf against records served by a loopback DNS responder."""

from __future__ import annotations

import threading

import dns.resolver
import pytest
import spf as pyspf  # type: ignore[import-untyped]

from custom_components.o365_direct_send.directsend import InvalidAddressError, spf
from custom_components.o365_direct_send.directsend.spf import (
    MICROSOFT_SPF_DOMAINS,
    SpfReport,
    SpfResult,
    analyze_spf,
    microsoft_spf_domain,
)
from tests.loopback import DnsResponder

from .conftest import TENANT

OUTLOOK = "spf.protection.outlook.com"
HOME_IP = "127.0.0.1"
OTHER_IP = "203.0.113.5"


async def _analyze(
    dns_server: DnsResponder,
    domain: str,
    client_ip: str | None,
    *,
    timeout: float = 2.0,
    expected_include: str = OUTLOOK,
) -> SpfReport:
    """Analyse the domain's SPF through the loopback responder."""
    return await analyze_spf(
        domain,
        client_ip,
        nameservers=[dns_server.host],
        port=dns_server.port,
        timeout=timeout,
        expected_include=expected_include,
    )


@pytest.fixture(autouse=True)
def microsoft_spf(dns_server: DnsResponder) -> None:
    """Serve a Microsoft SPF record that authorises 40.92.0.0/15, as the real one."""
    dns_server.add_txt(OUTLOOK, ["v=spf1 ip4:40.92.0.0/15 ip6:2a01:111:f400::/48 -all"])


async def test_record_covers_client_ip(dns_server: DnsResponder) -> None:
    """Microsoft's advice, ip4 first: the home IP passes on its ip4 mechanism."""
    record = f"v=spf1 ip4:{HOME_IP} include:{OUTLOOK} ~all"
    dns_server.add_txt(TENANT, ["MS=ms12345678", record])
    report = await _analyze(dns_server, TENANT, HOME_IP)
    assert report.records == (record,)
    assert report.record == record
    assert report.result is SpfResult.PASS
    assert report.authorizes_client
    assert report.mechanism == f"ip4:{HOME_IP}"
    assert report.error is None
    assert report.microsoft_include == OUTLOOK
    assert report.microsoft_include_via == TENANT
    assert report.suggested_record is None


async def test_include_target_is_evaluated(dns_server: DnsResponder) -> None:
    """An IP authorised by the included Microsoft record passes on the include."""
    dns_server.add_txt(TENANT, [f"v=spf1 ip4:{HOME_IP} include:{OUTLOOK} -all"])
    report = await _analyze(dns_server, TENANT, "40.93.1.2")
    assert report.result is SpfResult.PASS
    assert report.mechanism == f"include:{OUTLOOK}"
    assert (TENANT, "TXT") in dns_server.queries
    assert (OUTLOOK, "TXT") in dns_server.queries


async def test_record_does_not_cover_client_ip(dns_server: DnsResponder) -> None:
    """Only Microsoft's include and ~all: the home IP soft-fails on ~all."""
    dns_server.add_txt(TENANT, [f"v=spf1 include:{OUTLOOK} ~all"])
    report = await _analyze(dns_server, TENANT, OTHER_IP)
    assert report.result is SpfResult.SOFTFAIL
    assert not report.authorizes_client
    assert report.mechanism == "~all"
    assert report.microsoft_include == OUTLOOK
    assert report.suggested_record == f"v=spf1 ip4:{OTHER_IP} include:{OUTLOOK} ~all"


async def test_hard_fail_and_missing_include(dns_server: DnsResponder) -> None:
    """-all fails; the suggestion adds the IP and Microsoft's include."""
    dns_server.add_txt(TENANT, ["v=spf1 mx -all"])
    report = await _analyze(dns_server, TENANT, OTHER_IP)
    assert report.result is SpfResult.FAIL
    assert report.mechanism == "-all"
    assert report.microsoft_include is None
    assert report.suggested_record == f"v=spf1 ip4:{OTHER_IP} include:{OUTLOOK} mx -all"


async def test_mx_and_a_mechanisms_resolve_through_the_responder(
    dns_server: DnsResponder,
) -> None:
    """The mx and a mechanisms look up MX and A records on the responder."""
    dns_server.add_a("relay.contoso.com", "198.51.100.9")
    dns_server.add_txt(TENANT, ["v=spf1 a:relay.contoso.com mx -all"])
    via_a = await _analyze(dns_server, TENANT, "198.51.100.9")
    assert (via_a.result, via_a.mechanism) == (SpfResult.PASS, "a:relay.contoso.com")
    # The tenant's MX host resolves to 127.0.0.1 in the responder.
    via_mx = await _analyze(dns_server, TENANT, HOME_IP)
    assert (via_mx.result, via_mx.mechanism) == (SpfResult.PASS, "mx")


async def test_ptr_mechanism(dns_server: DnsResponder) -> None:
    """ptr: the reverse name is looked up and validated forwards."""
    dns_server._add("5.113.0.203.in-addr.arpa", "PTR", 300, ["gw.contoso.com."])
    dns_server.add_a("gw.contoso.com", OTHER_IP)
    dns_server.add_txt(TENANT, ["v=spf1 ptr -all"])
    report = await _analyze(dns_server, TENANT, OTHER_IP)
    assert (report.result, report.mechanism) == (SpfResult.PASS, "ptr")


async def test_ipv6_client(dns_server: DnsResponder) -> None:
    """An IPv6 client is matched by ip6 and suggested as ip6."""
    dns_server.add_txt(TENANT, [f"v=spf1 include:{OUTLOOK} -all"])
    inside = await _analyze(dns_server, TENANT, "2a01:111:f400::25")
    assert inside.result is SpfResult.PASS
    outside = await _analyze(dns_server, TENANT, "2001:DB8::5")
    assert outside.client_ip == "2001:db8::5"
    assert outside.result is SpfResult.FAIL
    assert outside.suggested_record == f"v=spf1 ip6:2001:db8::5 include:{OUTLOOK} -all"


async def test_microsoft_include_found_through_nested_records(
    dns_server: DnsResponder,
) -> None:
    """An include of an include, or a redirect, still counts as Microsoft's."""
    dns_server.add_txt(TENANT, ["v=spf1 include:_spf.contoso.com ~all"])
    dns_server.add_txt(
        "_spf.contoso.com",
        ["v=spf1 exp=explain.contoso.com redirect=_outlook.contoso.com"],
    )
    dns_server.add_txt("_outlook.contoso.com", [f"v=spf1 include:{OUTLOOK} -all"])
    report = await _analyze(dns_server, TENANT, HOME_IP)
    assert report.result is SpfResult.SOFTFAIL
    assert report.microsoft_include == OUTLOOK
    assert report.microsoft_include_via == "_outlook.contoso.com"
    assert report.suggested_record == (
        f"v=spf1 ip4:{HOME_IP} include:_spf.contoso.com ~all"
    )


async def test_sovereign_include(dns_server: DnsResponder) -> None:
    """GCC High's include counts, and is what the suggestion would add."""
    gcc_high = MICROSOFT_SPF_DOMAINS[1]
    dns_server.add_txt(gcc_high, ["v=spf1 ip4:20.140.0.0/16 -all"])
    dns_server.add_txt(TENANT, [f"v=spf1 include:{gcc_high} -all"])
    report = await _analyze(dns_server, TENANT, HOME_IP, expected_include=gcc_high)
    assert report.microsoft_include == gcc_high
    missing = await _analyze(
        dns_server, "fabrikam.com", HOME_IP, expected_include=gcc_high
    )
    assert missing.suggested_record == f"v=spf1 ip4:{HOME_IP} include:{gcc_high} ~all"


@pytest.mark.parametrize(
    ("host", "include"),
    [
        ("contoso-com.mail.protection.outlook.com", "spf.protection.outlook.com"),
        ("contoso-com.o-v1.mx.microsoft", "spf.protection.outlook.com"),
        ("contoso.mail.protection.office365.us.", "spf.protection.office365.us"),
        (
            "contoso-com.mail.protection.partner.outlook.cn",
            "spf.protection.partner.outlook.cn",
        ),
    ],
)
def test_microsoft_spf_domain_per_cloud(host: str, include: str) -> None:
    """The smart host's cloud names the SPF include to recommend."""
    assert microsoft_spf_domain(host) == include


async def test_missing_record(dns_server: DnsResponder) -> None:
    """No v=spf1 record is the result none, with Microsoft's record suggested."""
    dns_server.add_txt(TENANT, ["google-site-verification=abc"])
    report = await _analyze(dns_server, TENANT, HOME_IP)
    assert report.records == ()
    assert report.record is None
    assert report.result is SpfResult.NONE
    assert report.suggested_record == f"v=spf1 ip4:{HOME_IP} include:{OUTLOOK} ~all"
    nxdomain = await _analyze(dns_server, "nowhere.example", HOME_IP)
    assert (nxdomain.records, nxdomain.result) == ((), SpfResult.NONE)


async def test_two_records_are_a_permerror(dns_server: DnsResponder) -> None:
    """More than one v=spf1 record makes SPF fail permanently; both are shown."""
    dns_server.add_txt(
        TENANT, [f"v=spf1 ip4:{HOME_IP} -all", f"v=spf1 include:{OUTLOOK} -all"]
    )
    report = await _analyze(dns_server, TENANT, HOME_IP)
    assert len(report.records) == 2
    assert report.record is None
    assert report.result is SpfResult.PERMERROR
    assert report.error is not None
    assert "two or more" in report.error.lower()
    assert report.microsoft_include is None
    assert report.suggested_record is None


async def test_include_loop_is_a_permerror(dns_server: DnsResponder) -> None:
    """Records that include each other run out of DNS lookups."""
    dns_server.add_txt(TENANT, ["v=spf1 include:loop.contoso.com -all"])
    dns_server.add_txt("loop.contoso.com", [f"v=spf1 include:{TENANT} -all"])
    report = await _analyze(dns_server, TENANT, HOME_IP)
    assert report.result is SpfResult.PERMERROR
    assert report.error is not None
    assert "lookups" in report.error.lower()
    assert report.suggested_record is None


async def test_too_many_lookups_is_a_permerror(dns_server: DnsResponder) -> None:
    """Eleven lookup mechanisms exceed RFC 7208's limit of ten."""
    names = [f"h{n}.contoso.com" for n in range(11)]
    for name in names:
        dns_server.add_a(name, "198.51.100.1")
    dns_server.add_txt(
        TENANT, [" ".join(["v=spf1", *(f"a:{n}" for n in names), "-all"])]
    )
    report = await _analyze(dns_server, TENANT, HOME_IP)
    assert report.result is SpfResult.PERMERROR


async def test_long_record_split_into_strings(dns_server: DnsResponder) -> None:
    """A record longer than 255 bytes is joined from its strings."""
    networks = " ".join(f"ip4:198.51.{n}.0/24" for n in range(20))
    record = f"v=spf1 {networks} ip4:{HOME_IP} include:{OUTLOOK} -all"
    assert len(record) > 255
    dns_server.add_txt(TENANT, [record])
    report = await _analyze(dns_server, TENANT, HOME_IP)
    assert report.records == (record,)
    assert report.result is SpfResult.PASS


async def test_dns_timeout_is_a_temperror(dns_server: DnsResponder) -> None:
    """No answer for the domain's TXT in time is a temporary error."""
    dns_server.drop(TENANT)
    report = await _analyze(dns_server, TENANT, HOME_IP, timeout=0.3)
    assert report.result is SpfResult.TEMPERROR
    assert report.error is not None
    assert "timed out" in report.error
    assert report.suggested_record is None
    unknown_ip = await _analyze(dns_server, TENANT, None, timeout=0.3)
    assert unknown_ip.result is None
    assert unknown_ip.error is not None


async def test_include_timeout_is_a_temperror(dns_server: DnsResponder) -> None:
    """An include whose record cannot be fetched makes the evaluation temporary."""
    dns_server.add_txt(TENANT, ["v=spf1 include:slow.contoso.com -all"])
    dns_server.drop("slow.contoso.com")
    report = await _analyze(dns_server, TENANT, HOME_IP, timeout=0.5)
    assert report.records == ("v=spf1 include:slow.contoso.com -all",)
    assert report.result is SpfResult.TEMPERROR
    assert report.error is not None
    assert "slow.contoso.com" in report.error
    assert report.microsoft_include is None


async def test_servfail_is_a_temperror(dns_server: DnsResponder) -> None:
    """A SERVFAIL from the nameserver is a temporary error too."""
    dns_server.servfail(TENANT)
    report = await _analyze(dns_server, TENANT, HOME_IP)
    assert report.result is SpfResult.TEMPERROR
    assert report.error is not None
    assert "DNS failed" in report.error


async def test_without_client_ip_only_the_record_is_read(
    dns_server: DnsResponder,
) -> None:
    """With no client IP known, the record and includes are still reported."""
    record = f"v=spf1 include:{OUTLOOK} -all"
    dns_server.add_txt(TENANT, [record])
    report = await _analyze(dns_server, TENANT, None)
    assert report.records == (record,)
    assert report.result is None
    assert report.mechanism is None
    assert not report.authorizes_client
    assert report.microsoft_include == OUTLOOK
    assert report.suggested_record is None


async def test_report_as_dict(dns_server: DnsResponder) -> None:
    """The report becomes plain data for the action's response."""
    dns_server.add_txt(TENANT, [f"v=spf1 include:{OUTLOOK} ~all"])
    report = await _analyze(dns_server, TENANT, HOME_IP)
    assert report.as_dict() == {
        "domain": TENANT,
        "records": [f"v=spf1 include:{OUTLOOK} ~all"],
        "record": f"v=spf1 include:{OUTLOOK} ~all",
        "client_ip": HOME_IP,
        "result": "softfail",
        "authorizes_client": False,
        "mechanism": "~all",
        "error": None,
        "microsoft_include": OUTLOOK,
        "microsoft_include_via": TENANT,
        "suggested_record": f"v=spf1 ip4:{HOME_IP} include:{OUTLOOK} ~all",
    }


async def test_invalid_input_is_refused() -> None:
    """A domain that is not one, or a client IP that is not one, is a caller error."""
    with pytest.raises(InvalidAddressError):
        await analyze_spf("not a domain", HOME_IP, nameservers=["127.0.0.1"])
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6"):
        await analyze_spf(TENANT, "home", nameservers=["127.0.0.1"])


async def test_dns_runs_off_the_event_loop(dns_server: DnsResponder) -> None:
    """The blocking pyspf lookups happen in a worker thread, never in the loop."""
    threads: set[str] = set()
    original = spf._lookup

    def spy(name: str, qtype: str, strict: object, timeout: float) -> object:
        threads.add(threading.current_thread().name)
        return original(name, qtype, strict, timeout)

    pyspf.DNSLookup = spy
    try:
        dns_server.add_txt(TENANT, [f"v=spf1 include:{OUTLOOK} -all"])
        await _analyze(dns_server, TENANT, HOME_IP)
    finally:
        pyspf.DNSLookup = original
    assert threads
    assert threading.main_thread().name not in threads


def test_other_pyspf_users_keep_its_own_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside an analysis, pyspf's lookups go to its own dnspython function."""
    calls: list[tuple[str, str]] = []

    def library(name: str, qtype: str, strict: object, timeout: float) -> list[object]:
        calls.append((name, qtype))
        return []

    monkeypatch.setattr(spf, "_library_lookup", library)
    assert pyspf.DNSLookup("contoso.com", "TXT", True, 1.0) == []  # noqa: FBT003
    assert calls == [("contoso.com", "TXT")]


async def test_include_without_a_record(dns_server: DnsResponder) -> None:
    """An include of a domain without SPF ends the search for Microsoft's include."""
    dns_server.add_txt(TENANT, [f"v=spf1 ip4:{HOME_IP} include:bare.contoso.com -all"])
    report = await _analyze(dns_server, TENANT, HOME_IP)
    assert report.result is SpfResult.PASS
    assert report.microsoft_include is None
    assert report.suggested_record is None


def test_system_resolver_when_no_nameservers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without nameservers the system's are read, with the analysis' lifetime."""
    configured: list[bool] = []

    class Recording(dns.resolver.Resolver):
        """Record whether the system configuration was asked for."""

        def __init__(self, filename: str = "", configure: bool = True) -> None:  # noqa: FBT001, FBT002
            """Skip reading the system's files, as a test must."""
            configured.append(configure)
            super().__init__(configure=False)

    monkeypatch.setattr(dns.resolver, "Resolver", Recording)
    resolver = spf._make_resolver(None, 53, 1.5)
    assert configured == [True]
    assert resolver.lifetime == 1.5

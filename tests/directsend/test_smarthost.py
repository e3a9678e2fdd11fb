"""Smart host discovery against a real DNS responder on loopback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import sys
from types import ModuleType

import dns.rdata
import pytest

from custom_components.o365_direct_send.directsend import (
    DnsLookupError,
    MxRecord,
    NoMxError,
    NotExchangeOnlineError,
    SmartHostResolver,
    is_exchange_online_host,
    same_cloud,
)
from custom_components.o365_direct_send.directsend.smarthost import preload_record_types
from tests.loopback import DnsResponder

from .conftest import MX_HOST


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("contoso-com.mail.protection.outlook.com", True),
        ("myexample-com01c.mail.protection.outlook.com", True),
        ("Contoso-com.Mail.Protection.Outlook.com.", True),
        ("contosotest-com.o-v1.mx.microsoft", True),
        ("contoso.r-v1.mx.microsoft", True),
        ("contoso.mail.protection.office365.us", True),
        ("contoso.mail.protection.partner.outlook.cn", True),
        ("o-v1.mx.microsoft", False),
        ("mx.microsoft", False),
        ("mail.protection.outlook.com", False),
        ("a.b.mail.protection.outlook.com", False),
        ("contoso.olc.protection.outlook.com", False),
        ("mail.outlook.com", False),
        ("contoso.mail.eo.outlook.com", False),
        ("contoso.mail.protection.outlook.de", False),
        ("eu-smtp-inbound-1.mimecast.com", False),
        ("contoso-com.mail.protection.outlook.com.evil.example", False),
        ("52.101.0.1", False),
        ("2a01:111:f400::1", False),
    ],
)
def test_exchange_online_hosts_are_recognised(host: str, *, expected: bool) -> None:
    """Only Exchange Online inbound endpoints count as smart hosts."""
    assert is_exchange_online_host(host) is expected


@pytest.mark.parametrize(
    ("host_a", "host_b", "expected"),
    [
        (
            "contoso-com.mail.protection.outlook.com",
            "fabrikam-com.mail.protection.outlook.com",
            True,
        ),
        ("contoso-com.mail.protection.outlook.com", "fabrikam.o-v1.mx.microsoft", True),
        ("Contoso.R-V1.mx.microsoft.", "fabrikam.j-v1.mx.microsoft", True),
        (
            "agency.mail.protection.office365.us",
            "dod.mail.protection.office365.us",
            True,
        ),
        (
            "a-cn.mail.protection.partner.outlook.cn",
            "b-cn.mail.protection.partner.outlook.cn",
            True,
        ),
        (
            "contoso-com.mail.protection.outlook.com",
            "agency.mail.protection.office365.us",
            False,
        ),
        ("contoso.o-v1.mx.microsoft", "agency.mail.protection.office365.us", False),
        (
            "contoso-com.mail.protection.outlook.com",
            "a-cn.mail.protection.partner.outlook.cn",
            False,
        ),
        (
            "agency.mail.protection.office365.us",
            "a-cn.mail.protection.partner.outlook.cn",
            False,
        ),
        # Not Exchange Online: in no cloud, not even the same as itself.
        (
            "contoso.olc.protection.outlook.com",
            "contoso.olc.protection.outlook.com",
            False,
        ),
        ("mx.gmail.example", "contoso-com.mail.protection.outlook.com", False),
        ("o-v1.mx.microsoft", "contoso.o-v1.mx.microsoft", False),
        ("52.101.0.1", "52.101.0.1", False),
    ],
)
def test_same_cloud(host_a: str, host_b: str, *, expected: bool) -> None:
    """Commercial (classic or DANE), US government and 21Vianet are apart."""
    assert same_cloud(host_a, host_b) is expected
    assert same_cloud(host_b, host_a) is expected


def _resolver(dns_server: DnsResponder, timeout: float = 2.0) -> SmartHostResolver:
    """Resolve through the loopback responder."""
    return SmartHostResolver.at([dns_server.host], dns_server.port, timeout)


async def test_lowest_preference_first_fallbacks_kept(
    dns_server: DnsResponder,
) -> None:
    """MX records come back best first; other Exchange Online hosts are fallbacks."""
    dns_server.add_mx(
        "fabrikam.com",
        [
            (20, "fabrikam-com.r-v1.mx.microsoft"),
            (10, "fabrikam-com.o-v1.mx.microsoft"),
            (30, "backup.fabrikam-relay.example"),
        ],
        ttl=1234,
    )
    smart_host = await _resolver(dns_server).smart_host("Fabrikam.COM")
    assert smart_host.domain == "fabrikam.com"
    assert smart_host.host == "fabrikam-com.o-v1.mx.microsoft"
    assert smart_host.records == (
        MxRecord(10, "fabrikam-com.o-v1.mx.microsoft"),
        MxRecord(20, "fabrikam-com.r-v1.mx.microsoft"),
    )
    assert smart_host.ttl == 1234


async def test_answers_are_cached_for_their_ttl(dns_server: DnsResponder) -> None:
    """A second lookup within the TTL asks DNS nothing; after it, DNS again."""
    now = [100.0]
    resolver = SmartHostResolver(
        _resolver(dns_server)._resolver,
        clock=lambda: now[0],
    )
    await resolver.smart_host("contoso.com")
    await resolver.smart_host("contoso.com")
    assert dns_server.queries.count(("contoso.com", "MX")) == 1
    now[0] += 301
    await resolver.smart_host("contoso.com")
    assert dns_server.queries.count(("contoso.com", "MX")) == 2


async def test_last_good_answer_stands_in_while_dns_is_down(
    dns_server: DnsResponder,
) -> None:
    """When DNS stops answering, the last answer serves until TTL plus grace."""
    now = [0.0]
    base = _resolver(dns_server, timeout=0.3)._resolver
    resolver = SmartHostResolver(base, stale_grace=600, clock=lambda: now[0])
    first = await resolver.smart_host("contoso.com")
    dns_server.servfail("contoso.com")
    now[0] = 400
    assert await resolver.smart_host("contoso.com") is first
    now[0] = 1000
    with pytest.raises(DnsLookupError):
        await resolver.smart_host("contoso.com")


async def test_mx_change_is_picked_up_after_ttl(dns_server: DnsResponder) -> None:
    """A tenant that moves to the DANE endpoint is followed once the TTL ends."""
    now = [0.0]
    base = _resolver(dns_server)._resolver
    resolver = SmartHostResolver(base, clock=lambda: now[0])
    assert (await resolver.smart_host("contoso.com")).host == (
        "contoso-com.mail.protection.outlook.com"
    )
    dns_server.remove("contoso.com", "MX")
    dns_server.add_mx("contoso.com", [(0, "contoso-com.o-v1.mx.microsoft")])
    now[0] = 301
    assert (await resolver.smart_host("contoso.com")).host == (
        "contoso-com.o-v1.mx.microsoft"
    )


@pytest.mark.parametrize(
    "setup",
    [
        lambda _: None,
        lambda dns: dns.add_a("nomx.example", "127.0.0.1"),
        lambda dns: dns.add_mx("nomx.example", [(0, ".")]),
    ],
    ids=["nxdomain", "nodata", "null-mx"],
)
async def test_domain_without_mx(dns_server: DnsResponder, setup: object) -> None:
    """NXDOMAIN, no MX record and a null MX all mean: no smart host."""
    assert callable(setup)
    setup(dns_server)
    with pytest.raises(NoMxError) as caught:
        await _resolver(dns_server).smart_host("nomx.example")
    assert caught.value.domain == "nomx.example"


async def test_mx_elsewhere_is_not_exchange_online(dns_server: DnsResponder) -> None:
    """A domain behind a third-party gateway is refused, naming the host."""
    dns_server.add_mx(
        "gateway.example",
        [
            (10, "eu-smtp-inbound-1.mimecast.com"),
            (20, "gw-example.mail.protection.outlook.com"),
        ],
    )
    with pytest.raises(NotExchangeOnlineError) as caught:
        await _resolver(dns_server).smart_host("gateway.example")
    assert caught.value.host == "eu-smtp-inbound-1.mimecast.com"


@pytest.mark.parametrize("fault", ["servfail", "drop"])
async def test_dns_failure_is_temporary(dns_server: DnsResponder, fault: str) -> None:
    """A server failure or a timeout is a DNS error, not a missing MX."""
    getattr(dns_server, fault)("contoso.com")
    with pytest.raises(DnsLookupError):
        await _resolver(dns_server, timeout=0.3).smart_host("contoso.com")


async def test_addresses_prefer_ipv4(dns_server: DnsResponder) -> None:
    """IPv4 addresses come first; IPv6 needs the tenant's opt-in."""
    dns_server.add_aaaa("contoso-com.mail.protection.outlook.com", "::1")
    addresses = await _resolver(dns_server).addresses(
        "contoso-com.mail.protection.outlook.com"
    )
    assert addresses == ["127.0.0.1", "::1"]


async def test_host_without_address(dns_server: DnsResponder) -> None:
    """A smart host name that does not resolve is a DNS error."""
    with pytest.raises(DnsLookupError):
        await _resolver(dns_server).addresses("gone.mail.protection.outlook.com")
    dns_server.drop("slow.mail.protection.outlook.com")
    with pytest.raises(DnsLookupError):
        await _resolver(dns_server, timeout=0.3).addresses(
            "slow.mail.protection.outlook.com"
        )


async def test_pinned_host_replaces_mx(dns_server: DnsResponder) -> None:
    """A manual smart host is used without asking DNS for MX records."""
    resolver = _resolver(dns_server)
    pinned = resolver.pin("Contoso.com", "Contoso-com.o-v1.mx.microsoft.")
    assert pinned.host == "contoso-com.o-v1.mx.microsoft"
    assert await resolver.smart_host("contoso.com") is pinned
    assert ("contoso.com", "MX") not in dns_server.queries


async def test_forget_drops_the_cached_answer_not_a_pinned_host(
    dns_server: DnsResponder,
) -> None:
    """forget() makes the next lookup ask DNS at once; a pinned host stays."""
    resolver = _resolver(dns_server)
    await resolver.smart_host("contoso.com")
    dns_server.remove("contoso.com", "MX")
    dns_server.add_mx("contoso.com", [(0, "contoso-com.o-v1.mx.microsoft")])
    assert (await resolver.smart_host("contoso.com")).host == MX_HOST
    resolver.forget("Contoso.COM.")
    assert (await resolver.smart_host("contoso.com")).host == (
        "contoso-com.o-v1.mx.microsoft"
    )
    assert dns_server.queries.count(("contoso.com", "MX")) == 2
    resolver.pin("fabrikam.com", "fabrikam-com.mail.protection.outlook.com")
    resolver.forget("fabrikam.com")
    resolver.forget("never-looked-up.example")
    assert (await resolver.smart_host("fabrikam.com")).host == (
        "fabrikam-com.mail.protection.outlook.com"
    )
    assert ("fabrikam.com", "MX") not in dns_server.queries


@pytest.mark.parametrize(
    "host",
    ["52.101.0.1", "[2a01:111:f400::1]", "smtp.office365.com", "mx.gmail.example"],
)
def test_pinned_host_must_be_exchange_online(
    dns_server: DnsResponder, host: str
) -> None:
    """An IP literal or a host outside Exchange Online can never be pinned."""
    with pytest.raises(NotExchangeOnlineError):
        _resolver(dns_server).pin("contoso.com", host)


async def test_lookups_import_nothing_after_preload(
    dns_server: DnsResponder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing answers needs no module import, which would block an event loop."""
    monkeypatch.setattr(dns.rdata, "_rdata_classes", {})
    preload_record_types()

    def no_import(name: str, package: str | None = None) -> ModuleType:
        """Fail the test on any import dnspython attempts."""
        msg = f"dnspython imported {name} while parsing"
        raise AssertionError(msg)

    monkeypatch.setattr(dns.rdata, "import_module", no_import)
    dns_server.add_txt("contoso.com", ["v=spf1 -all"])
    resolver = _resolver(dns_server)
    assert (await resolver.smart_host("contoso.com")).host == MX_HOST
    assert await resolver.addresses(MX_HOST) == ["127.0.0.1"]
    with pytest.raises(NoMxError):
        await resolver.smart_host("nxdomain.example")


# Runs in a fresh interpreter: imports the core alone (as Home Assistant does, off
# the loop), then records every import while a loop looks up a smart host.
_IMPORTS_IN_LOOP = """
import asyncio, json, sys

sys.path.insert(0, sys.argv[1])
from directsend.smarthost import SmartHostResolver

seen = []
recording = [False]

def hook(event, args):
    if event == "import" and recording[0]:
        seen.append(args[0])

sys.addaudithook(hook)

async def main():
    resolver = SmartHostResolver.at(["127.0.0.1"], int(sys.argv[2]), 5.0)
    recording[0] = True
    try:
        found = await resolver.smart_host("contoso.com")
        addresses = await resolver.addresses(found.host)
    finally:
        recording[0] = False
    return found.host, addresses

host, addresses = asyncio.run(main())
print(json.dumps({"host": host, "addresses": addresses, "imports": seen}))
"""


async def test_first_lookup_imports_nothing_in_the_loop(
    dns_server: DnsResponder,
) -> None:
    """The first lookup of a fresh process imports no module inside the event loop.

    dnspython picks its async backend on first use: it would try to import sniffio
    and import dns._asyncio_backend, blocking Home Assistant's loop on file access.
    """
    integration = Path(__file__).parents[2] / "custom_components" / "o365_direct_send"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _IMPORTS_IN_LOOP,
        str(integration),
        str(dns_server.port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 0, stderr.decode()
    report = json.loads(stdout)
    assert report["host"] == MX_HOST
    assert report["addresses"] == ["127.0.0.1"]
    assert report["imports"] == []

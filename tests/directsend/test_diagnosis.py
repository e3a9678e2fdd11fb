"""The connection test against loopback DNS and smart hosts: healthy and failing."""

from __future__ import annotations

import datetime as dt
import json
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
import pytest

from custom_components.o365_direct_send.directsend import (
    DirectSendClient,
    InvalidAddressError,
    SmartHostResolver,
    StartTlsUnavailableError,
    TlsError,
    TransportError,
    TransportSettings,
)
from custom_components.o365_direct_send.directsend.diagnosis import (
    CertificateInfo,
    ConnectionReport,
    FailureKind,
    _inspect,
    _read_tls,
    _tls_failure_kind,
    _transport_failure,
    run_connection_test,
)
from custom_components.o365_direct_send.directsend.replies import Repair, ReplyKey
from custom_components.o365_direct_send.directsend.spf import SpfResult
from tests.loopback import DnsResponder, SilentPort, SmartHost, free_port

from .conftest import MX_HOST, TENANT, make_client

SPF_RECORD = "v=spf1 ip4:127.0.0.1 include:spf.protection.outlook.com -all"


async def _test(
    client: DirectSendClient, dns_server: DnsResponder, domain: str = TENANT
) -> ConnectionReport:
    """Run the connection test with SPF looked up on the loopback responder."""
    return await run_connection_test(
        client,
        domain,
        spf_nameservers=[dns_server.host],
        spf_port=dns_server.port,
        spf_timeout=2.0,
    )


def _client_on_port(
    dns_server: DnsResponder, context: ssl.SSLContext, port: int, timeout: float = 2.0
) -> DirectSendClient:
    """Build a client that resolves on the responder and dials the given port."""
    return DirectSendClient(
        SmartHostResolver.at([dns_server.host], dns_server.port, timeout),
        TransportSettings(
            tls_context=context,
            local_hostname="ha.contoso.com",
            port=port,
            timeout=timeout,
        ),
    )


@pytest.fixture(autouse=True)
def spf_records(dns_server: DnsResponder) -> None:
    """Publish Microsoft's advice for the tenant, with the loopback IP."""
    dns_server.add_txt(TENANT, [SPF_RECORD])
    dns_server.add_txt("spf.protection.outlook.com", ["v=spf1 ip4:40.92.0.0/15 -all"])


async def test_healthy_host(
    client: DirectSendClient, dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """A healthy smart host: every fact reported, SPF passes, no mail sent."""
    dns_server.add_mx(TENANT, [(20, "contoso-com.o-v1.mx.microsoft")], ttl=300)
    report = await _test(client, dns_server, "Contoso.COM.")
    assert report.ok
    assert report.failure is None
    assert report.domain == TENANT
    assert report.host == MX_HOST
    assert report.client_ip == "127.0.0.1"
    assert report.repairs == ()
    assert report.spf.result is SpfResult.PASS
    data = report.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["smart_host"] == {
        "host": MX_HOST,
        "ttl": 300,
        "records": [
            {"preference": 10, "host": MX_HOST},
            {"preference": 20, "host": "contoso-com.o-v1.mx.microsoft"},
        ],
    }
    session = data["session"]
    assert isinstance(session, dict)
    assert session["host"] == MX_HOST
    assert session["address"] == "127.0.0.1"
    assert 0 < session["connect_seconds"] < 2
    assert session["banner"] == (f"220 {MX_HOST} Microsoft ESMTP MAIL Service ready")
    assert session["greeting"] == f"{MX_HOST} Hello [127.0.0.1]"
    assert "SIZE 157286400" in session["extensions"]
    assert "ENHANCEDSTATUSCODES" in session["extensions"]
    assert session["tls"]["version"] in {"TLSv1.2", "TLSv1.3"}
    assert session["tls"]["cipher"]
    assert session["tls"]["verified"] is True
    certificate = session["certificate"]
    assert certificate["subject"].startswith("O=trustme")
    assert "Testing CA" in certificate["issuer"]
    assert certificate["dns_names"] == [MX_HOST]
    assert certificate["expired"] is False
    assert certificate["not_after"].startswith("3000-01-01")
    assert certificate["expires_in_days"] > 300_000
    assert data["failure"] is None
    assert data["spf"] == report.spf.as_dict()
    assert data["repairs"] == []
    assert data["checked_at"] == report.checked_at.isoformat()
    assert report.checked_at.tzinfo is dt.UTC
    assert smart_host.messages == []


async def test_host_without_starttls(dns_server: DnsResponder) -> None:
    """No STARTTLS: reported with the host's EHLO, the client IP and SPF; no mail."""
    async with SmartHost(MX_HOST, starttls=False) as plain:
        report = await _test(make_client(dns_server, plain), dns_server)
        assert plain.messages == []
        assert plain.connections == 2
    assert not report.ok
    assert report.failure is not None
    assert report.failure.kind is FailureKind.STARTTLS_UNAVAILABLE
    assert report.failure.host == MX_HOST
    assert report.repairs == (Repair.TLS_INVALID,)
    assert report.client_ip == "127.0.0.1"
    assert report.spf.result is SpfResult.PASS
    data = report.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["failure"] == {
        "kind": "starttls_unavailable",
        "host": MX_HOST,
        "message": f"{MX_HOST}: STARTTLS is not offered",
        "repair": "tls_invalid",
        "reply": None,
    }
    session = data["session"]
    assert isinstance(session, dict)
    assert session["greeting"] == f"{MX_HOST} Hello [127.0.0.1]"
    assert "STARTTLS" not in session["extensions"]
    assert session["tls"] == {"version": None, "cipher": None, "verified": False}
    assert session["certificate"] is None


async def test_expired_certificate(dns_server: DnsResponder) -> None:
    """An expired certificate: the kind, and the certificate read unverified."""
    async with SmartHost(MX_HOST, expired_cert=True) as expired:
        report = await _test(make_client(dns_server, expired), dns_server)
        assert expired.messages == []
    assert report.failure is not None
    assert report.failure.kind is FailureKind.CERTIFICATE_EXPIRED
    assert report.repairs == (Repair.TLS_INVALID,)
    assert report.client_ip == "127.0.0.1"
    data = report.as_dict()
    assert json.loads(json.dumps(data)) == data
    session = data["session"]
    assert isinstance(session, dict)
    assert session["tls"]["verified"] is False
    assert session["tls"]["version"] in {"TLSv1.2", "TLSv1.3"}
    assert "STARTTLS" in session["extensions"]
    certificate = session["certificate"]
    assert certificate["expired"] is True
    assert certificate["expires_in_days"] == -1
    assert certificate["dns_names"] == [MX_HOST]
    not_after = dt.datetime.fromisoformat(certificate["not_after"])
    assert not_after < report.checked_at


async def test_certificate_for_another_name(dns_server: DnsResponder) -> None:
    """A certificate that does not name the MX host is a name mismatch."""
    async with SmartHost(MX_HOST, cert_hostname="mail.interceptor.example") as other:
        report = await _test(make_client(dns_server, other), dns_server)
    assert report.failure is not None
    assert report.failure.kind is FailureKind.CERTIFICATE_NAME_MISMATCH
    assert report.session is not None
    assert report.session.certificate is not None
    assert report.session.certificate.dns_names == ("mail.interceptor.example",)


async def test_certificate_from_an_untrusted_issuer(
    dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """A certificate from a CA nobody trusts, as a port-25 interceptor shows."""
    async with SmartHost(MX_HOST) as interceptor:
        client = _client_on_port(
            dns_server, smart_host.client_ssl_context(), interceptor.port
        )
        report = await _test(client, dns_server)
    assert report.failure is not None
    assert report.failure.kind is FailureKind.CERTIFICATE_UNTRUSTED
    assert report.session is not None
    assert report.session.certificate is not None
    assert "Testing CA" in report.session.certificate.issuer


async def test_refused_greeting_is_classified(
    client: DirectSendClient, dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """A refusal is reported with its classification and repair; no second look."""
    smart_host.greeting(
        "550 5.7.606 Access denied, banned sending IP [203.0.113.5]", times=None
    )
    report = await _test(client, dns_server)
    assert report.failure is not None
    assert report.failure.kind is FailureKind.SMTP_REFUSED
    assert report.failure.reply is not None
    assert report.failure.reply.key is ReplyKey.IP_BANNED
    assert report.session is None
    assert report.client_ip is None
    assert report.repairs == (Repair.IP_BLOCKED,)
    assert report.as_dict()["failure"] == {
        "kind": "smtp_refused",
        "host": MX_HOST,
        "message": f"{MX_HOST}: 550 5.7.606 Access denied, banned sending IP "
        "[203.0.113.5]",
        "repair": "ip_blocked",
        "reply": {
            "code": 550,
            "enhanced_code": "5.7.606",
            "text": "5.7.606 Access denied, banned sending IP [203.0.113.5]",
            "key": "ip_banned",
            "kind": "permanent",
            "retry": False,
        },
    }
    assert smart_host.connections == 1


async def test_silent_port_is_port_blocked(
    dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """A port that never greets looks like blocked port 25."""
    async with SilentPort() as silent:
        client = _client_on_port(
            dns_server, smart_host.client_ssl_context(), silent.port, timeout=0.3
        )
        report = await _test(client, dns_server)
    assert report.failure is not None
    assert report.failure.kind is FailureKind.PORT_BLOCKED
    assert report.repairs == (Repair.PORT_BLOCKED,)
    assert report.session is None
    assert report.spf.client_ip is None
    assert report.spf.records == (SPF_RECORD,)


async def test_connection_refused(
    dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """Nobody listening: cannot connect, and no repair from one failure."""
    client = _client_on_port(dns_server, smart_host.client_ssl_context(), free_port())
    report = await _test(client, dns_server)
    assert report.failure is not None
    assert report.failure.kind is FailureKind.CANNOT_CONNECT
    assert report.repairs == ()


async def test_disconnect_during_ehlo(
    client: DirectSendClient, dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """A host that drops the connection mid-session is reported as such."""
    smart_host.disconnect_at("EHLO")
    report = await _test(client, dns_server)
    assert report.failure is not None
    assert report.failure.kind is FailureKind.DISCONNECTED


async def test_mx_not_exchange_online(
    client: DirectSendClient, dns_server: DnsResponder
) -> None:
    """An MX elsewhere is named; SPF is still read for the domain."""
    dns_server.add_mx("fabrikam.com", [(10, "eu-smtp-inbound-1.mimecast.example")])
    dns_server.add_txt("fabrikam.com", ["v=spf1 -all"])
    report = await _test(client, dns_server, "fabrikam.com")
    assert report.failure is not None
    assert report.failure.kind is FailureKind.NOT_EXCHANGE_ONLINE
    assert report.failure.host == "eu-smtp-inbound-1.mimecast.example"
    assert report.host == "eu-smtp-inbound-1.mimecast.example"
    assert report.smart_host is None
    assert report.repairs == (Repair.NOT_EXCHANGE_ONLINE,)
    assert report.spf.records == ("v=spf1 -all",)
    assert report.spf.result is None
    data = report.as_dict()
    assert data["smart_host"] is None
    assert data["session"] is None


@pytest.mark.parametrize(
    ("setup", "kind"),
    [("nxdomain", FailureKind.NO_MX), ("servfail", FailureKind.DNS_FAILED)],
)
async def test_smart_host_not_found(
    client: DirectSendClient, dns_server: DnsResponder, setup: str, kind: FailureKind
) -> None:
    """No MX, or DNS failing, is reported without a host."""
    if setup == "servfail":
        dns_server.servfail("fabrikam.com")
    report = await _test(client, dns_server, "fabrikam.com")
    assert report.failure is not None
    assert report.failure.kind is kind
    assert report.failure.repair is None
    assert report.host is None
    assert report.spf.client_ip is None


async def test_smart_host_without_an_address(
    client: DirectSendClient, dns_server: DnsResponder
) -> None:
    """An MX host whose address does not resolve is a DNS failure of that host."""
    dns_server.add_mx("fabrikam.com", [(10, "fabrikam-com.o-v1.mx.microsoft")])
    report = await _test(client, dns_server, "fabrikam.com")
    assert report.failure is not None
    assert report.failure.kind is FailureKind.DNS_FAILED
    assert report.failure.host == "fabrikam-com.o-v1.mx.microsoft"
    assert report.smart_host is not None
    assert report.host == "fabrikam-com.o-v1.mx.microsoft"
    assert report.session is None


async def test_spf_not_covering_the_ip_asks_for_a_repair(
    client: DirectSendClient, dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """A healthy host with SPF that does not list the client IP: the SPF repair."""
    dns_server.remove(TENANT, "TXT")
    dns_server.add_txt(TENANT, ["v=spf1 include:spf.protection.outlook.com ~all"])
    report = await _test(client, dns_server)
    assert report.ok
    assert report.spf.result is SpfResult.SOFTFAIL
    assert report.repairs == (Repair.SPF_NOT_AUTHORIZED,)
    assert report.spf.suggested_record == (
        "v=spf1 ip4:127.0.0.1 include:spf.protection.outlook.com ~all"
    )


async def test_sender_domain_and_sovereign_cloud(dns_server: DnsResponder) -> None:
    """SPF is read for the sender's domain; GCC High expects its own include."""
    gcc_host = "contoso.mail.protection.office365.us"
    dns_server.tenant("contoso.us", gcc_host)
    dns_server.add_txt("alerts.contoso.us", ["v=spf1 -all"])
    async with SmartHost(gcc_host) as gcc:
        report = await run_connection_test(
            make_client(dns_server, gcc),
            "contoso.us",
            sender_domain="alerts.contoso.us",
            spf_nameservers=[dns_server.host],
            spf_port=dns_server.port,
            spf_timeout=2.0,
        )
    assert report.ok
    assert report.spf.domain == "alerts.contoso.us"
    assert report.spf.result is SpfResult.FAIL
    assert report.spf.suggested_record == (
        "v=spf1 ip4:127.0.0.1 include:spf.protection.office365.us -all"
    )


def test_tls_kind_without_a_verify_code() -> None:
    """Without OpenSSL's verify code, an expired certificate still names itself."""
    now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    expired = CertificateInfo(
        subject="CN=x",
        issuer="CN=y",
        not_before=None,
        not_after=now - dt.timedelta(days=3),
    )
    error = TlsError(MX_HOST, "handshake failed")
    assert _tls_failure_kind(error, expired, now) is FailureKind.CERTIFICATE_EXPIRED
    assert _tls_failure_kind(error, None, now) is FailureKind.TLS_FAILED
    not_yet = ssl.SSLCertVerificationError("not yet valid")
    not_yet.verify_code = 9
    assert (
        _tls_failure_kind(not_yet, None, now) is FailureKind.CERTIFICATE_NOT_YET_VALID
    )
    other = ssl.SSLCertVerificationError("other")
    other.verify_code = 7
    assert _tls_failure_kind(other, None, now) is FailureKind.TLS_FAILED


def test_certificate_from_unusual_peercert() -> None:
    """An empty dict means no certificate; odd shapes are skipped, not fatal."""
    assert CertificateInfo.from_peercert({}) is None
    info = CertificateInfo.from_peercert(
        {
            "subject": (
                (("commonName", "mx.example"), ("emailAddress", "a@b")),
                (("lonely",),),
            ),
            "issuer": "not a tuple",
            "notAfter": "Jan  1 00:00:00 2030 GMT",
            "subjectAltName": (("IP Address", "127.0.0.1"), ("DNS", "mx.example")),
        }
    )
    assert info is not None
    assert info.subject == "CN=mx.example, emailAddress=a@b"
    assert info.issuer == ""
    assert info.not_before is None
    assert info.not_after == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert info.dns_names == ("mx.example",)
    assert (
        info.as_dict(dt.datetime(2029, 12, 31, 12, tzinfo=dt.UTC))["expires_in_days"]
        == 0
    )
    no_expiry = CertificateInfo(subject="", issuer="", not_before=None, not_after=None)
    assert no_expiry.as_dict(dt.datetime(2029, 1, 1, tzinfo=dt.UTC)) == {
        "subject": "",
        "issuer": "",
        "not_before": None,
        "not_after": None,
        "dns_names": [],
        "expired": False,
        "expires_in_days": None,
    }


def test_certificate_without_alternative_names() -> None:
    """A DER certificate with no subjectAltName decodes with no DNS names."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Interceptor"),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, "port25.example"),
        ]
    )
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    der = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )
    info = CertificateInfo.from_der(der)
    assert info.subject == "O=Interceptor, CN=port25.example"
    assert info.issuer == info.subject
    assert info.not_after == start + dt.timedelta(days=30)
    assert info.dns_names == ()


async def test_inspection_gives_up_quietly(
    dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """No address, or no answer, for the second look leaves the session unknown."""
    client = _client_on_port(dns_server, smart_host.client_ssl_context(), free_port())
    assert await _inspect(client, TlsError(MX_HOST, "verify failed")) is None
    nowhere = StartTlsUnavailableError("gone.contoso.com", "STARTTLS is not offered")
    assert await _inspect(client, nowhere) is None
    assert _read_tls(None) == (None, None, None)


async def test_invalid_domain_is_refused(client: DirectSendClient) -> None:
    """A tenant domain that is not one is the caller's error, raised at once."""
    with pytest.raises(InvalidAddressError):
        await run_connection_test(client, "not a domain")


def test_unknown_transport_error() -> None:
    """A transport error of no known kind is reported as such."""
    failure = _transport_failure(
        TransportError(MX_HOST, "odd"), None, dt.datetime.now(dt.UTC)
    )
    assert failure.kind is FailureKind.TRANSPORT_FAILED
    assert failure.repair is None

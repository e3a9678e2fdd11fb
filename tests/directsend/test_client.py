"""Sending through a real STARTTLS smart host on loopback, and every way it fails."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default
import ssl
import warnings

import pytest

from custom_components.o365_direct_send.directsend import (
    ConnectFailedError,
    ConnectTimeoutError,
    DirectSendClient,
    DisconnectedError,
    Envelope,
    RecipientInOtherCloudError,
    RecipientOutsideExchangeOnlineError,
    RecipientsRefusedError,
    ReplyError,
    StartTlsUnavailableError,
    TlsError,
    TransportSettings,
    build_alert,
    require_secure_context,
)
from tests.loopback import DnsResponder, SilentPort, SmartHost, free_port

from .conftest import MX_HOST, TENANT, make_client


def _alert(*recipients: str) -> Envelope:
    """Build a small alert to the recipients."""
    return build_alert(
        sender="alerts@contoso.com",
        sender_name="Home Assistant",
        recipients=list(recipients) or ["it@contoso.com"],
        title="Water on the floor",
        body="Leak sensor in the server room: wet.",
    )


async def test_probe_reports_tls_and_sends_nothing(
    client: DirectSendClient, smart_host: SmartHost
) -> None:
    """The probe sees banner, extensions and TLS 1.2+, and delivers no mail."""
    result = await client.probe(await client.smart_host(TENANT))
    assert result.host == MX_HOST
    assert result.address == "127.0.0.1"
    assert result.session.banner.code == 220
    assert "Microsoft ESMTP MAIL Service ready" in result.session.banner.text
    assert result.session.tls.version in {"TLSv1.2", "TLSv1.3"}
    assert result.session.tls.cipher
    assert "starttls" not in result.session.extensions
    assert smart_host.messages == []
    assert smart_host.connections == 1


async def test_send_delivers_over_tls(
    client: DirectSendClient, smart_host: SmartHost
) -> None:
    """The envelope and the bytes arrive unchanged, inside a TLS session."""
    envelope = build_alert(
        sender="alerts@contoso.com",
        sender_name="Home Assistant",
        recipients=["it@contoso.com", "ops@contoso.com"],
        title="Freezer −5 °C",
        body="Gefrierschrank: −5 °C 🥶",
    )
    result = await client.send(TENANT, envelope)
    assert result.accepted == ("it@contoso.com", "ops@contoso.com")
    assert result.refused == {}
    [received] = smart_host.messages
    assert received.tls
    assert received.mail_from == "alerts@contoso.com"
    assert received.rcpt_tos == ("it@contoso.com", "ops@contoso.com")
    parsed = message_from_bytes(received.data, policy=default)
    assert parsed["Subject"] == "Freezer −5 °C"
    assert parsed["Message-ID"] == envelope.message_id
    assert "Gefrierschrank: −5 °C 🥶" in parsed.get_content()
    assert smart_host.ehlo_names[-1] == "ha.contoso.com"


async def test_partial_refusal_reports_each_recipient(
    client: DirectSendClient, smart_host: SmartHost
) -> None:
    """One unknown mailbox is refused; the others still get the message once."""
    smart_host.reply_at(
        "RCPT",
        "550 5.4.1 Recipient address rejected: Access denied",
        recipient="gone@contoso.com",
    )
    result = await client.send(
        TENANT, _alert("it@contoso.com", "gone@contoso.com", "ops@contoso.com")
    )
    assert result.accepted == ("it@contoso.com", "ops@contoso.com")
    assert result.refused["gone@contoso.com"].code == 550
    assert result.refused["gone@contoso.com"].enhanced_code == "5.4.1"
    assert smart_host.delivered_to("it@contoso.com") == 1
    assert smart_host.delivered_to("gone@contoso.com") == 0


async def test_every_recipient_refused(
    client: DirectSendClient, smart_host: SmartHost
) -> None:
    """When no recipient is accepted, the error carries each refusal."""
    smart_host.reply_at("RCPT", "550 5.7.64 TenantAttribution; Relay Access Denied")
    with pytest.raises(RecipientsRefusedError) as caught:
        await client.send(TENANT, _alert("someone@contoso.com"))
    assert caught.value.refused["someone@contoso.com"].enhanced_code == "5.7.64"
    assert smart_host.messages == []


async def test_permanent_reply_carries_code_and_text(
    client: DirectSendClient, smart_host: SmartHost
) -> None:
    """Reject Direct Send at MAIL FROM surfaces 550 5.7.68 and its text."""
    smart_host.reply_at(
        "MAIL",
        "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this "
        "organization from unauthorized sources",
    )
    with pytest.raises(ReplyError) as caught:
        await client.send(TENANT, _alert())
    assert caught.value.reply.code == 550
    assert caught.value.reply.enhanced_code == "5.7.68"
    assert caught.value.reply.is_permanent
    assert "Direct Send not allowed" in caught.value.reply.text
    assert smart_host.messages == []


async def test_temporary_greeting_is_a_reply_error(
    client: DirectSendClient, smart_host: SmartHost
) -> None:
    """A 421 greeting is a temporary refusal."""
    smart_host.greeting("421 4.3.2 Service not available")
    with pytest.raises(ReplyError) as caught:
        await client.send(TENANT, _alert())
    assert caught.value.reply.is_temporary


async def test_disconnect_in_data_is_a_disconnect(
    client: DirectSendClient, smart_host: SmartHost
) -> None:
    """A connection reset in the middle of DATA delivers nothing."""
    smart_host.disconnect_at("DATA")
    with pytest.raises(DisconnectedError):
        await client.send(TENANT, _alert())
    assert smart_host.messages == []


async def test_no_starttls_means_no_mail(dns_server: DnsResponder) -> None:
    """A smart host that does not offer STARTTLS gets no message at all."""
    async with SmartHost(MX_HOST, starttls=False) as plain:
        with pytest.raises(StartTlsUnavailableError):
            await make_client(dns_server, plain).send(TENANT, _alert())
        assert plain.messages == []


@pytest.mark.parametrize(
    "options",
    [{"cert_hostname": "other.example"}, {"expired_cert": True}],
    ids=["wrong-name", "expired"],
)
async def test_bad_certificate_means_no_mail(
    dns_server: DnsResponder, options: dict[str, object]
) -> None:
    """A certificate for another name, or an expired one, fails TLS; nothing sent."""
    async with SmartHost(MX_HOST, **options) as bad:  # type: ignore[arg-type]
        with pytest.raises(TlsError):
            await make_client(dns_server, bad).send(TENANT, _alert())
        assert bad.messages == []


async def test_untrusted_ca_means_no_mail(
    dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """A certificate from a CA the client does not trust fails TLS."""
    async with SmartHost(MX_HOST) as other_ca:
        client = make_client(dns_server, smart_host, port=other_ca.port)
        with pytest.raises(TlsError):
            await client.send(TENANT, _alert())
        assert other_ca.messages == []


async def test_connection_refused(
    dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """Nobody listening on the port is a connect failure."""
    client = make_client(dns_server, smart_host, port=free_port())
    with pytest.raises(ConnectFailedError):
        await client.probe(await client.smart_host(TENANT))


async def test_silent_port_is_a_timeout(
    dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """A port that accepts but never greets looks like blocked port 25."""
    async with SilentPort() as silent:
        client = make_client(dns_server, smart_host, port=silent.port, timeout=0.3)
        with pytest.raises(ConnectTimeoutError):
            await client.probe(await client.smart_host(TENANT))


async def test_unreachable_primary_falls_back_to_next_mx(
    dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """When the preferred MX host cannot be reached, the next one is used."""
    dns_server.add_mx(
        "fabrikam.com",
        [(10, "fabrikam-com.o-v1.mx.microsoft"), (20, MX_HOST)],
    )
    dns_server.add_a("fabrikam-com.o-v1.mx.microsoft", "127.0.0.2")
    client = make_client(dns_server, smart_host, timeout=1.0)
    result = await client.probe(await client.smart_host("fabrikam.com"))
    assert result.host == MX_HOST


async def test_recipients_must_be_in_exchange_online(
    client: DirectSendClient, dns_server: DnsResponder
) -> None:
    """Recipients in other Exchange Online domains pass; others are named."""
    dns_server.tenant("fabrikam.com", "fabrikam-com.o-v1.mx.microsoft")
    dns_server.add_mx("gmail.example", [(5, "gmail-smtp-in.l.google.example")])
    await client.check_recipients(["a@contoso.com", "b@fabrikam.com", "c@contoso.com"])
    with pytest.raises(RecipientOutsideExchangeOnlineError) as caught:
        await client.check_recipients(["a@contoso.com", "friend@gmail.example"])
    assert caught.value.address == "friend@gmail.example"
    assert caught.value.host == "gmail-smtp-in.l.google.example"
    with pytest.raises(RecipientOutsideExchangeOnlineError) as caught:
        await client.check_recipients(["someone@nowhere.example"])
    assert caught.value.host is None


async def test_wrong_region_makes_the_next_send_look_up_the_mx_again(
    client: DirectSendClient, dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """After 451 4.4.62 the next send follows the new MX though the TTL still runs."""
    new_mx = "contoso-com.o-v1.mx.microsoft"
    smart_host.reply_at("MAIL", "451 4.4.62 Mail sent to the wrong Office 365 region")
    with pytest.raises(ReplyError) as caught:
        await client.send(TENANT, _alert())
    assert caught.value.reply.enhanced_code == "4.4.62"
    async with SmartHost(
        new_mx, ca=smart_host.ca, host="127.0.0.2", port=smart_host.port
    ) as moved:
        dns_server.remove(TENANT, "MX")
        dns_server.add_mx(TENANT, [(10, new_mx)], ttl=300)
        dns_server.add_a(new_mx, "127.0.0.2")
        result = await client.send(TENANT, _alert())
        assert result.accepted == ("it@contoso.com",)
        assert moved.delivered_to("it@contoso.com") == 1
    assert smart_host.messages == []


async def test_recipients_must_be_in_the_smart_hosts_cloud(
    client: DirectSendClient, dns_server: DnsResponder
) -> None:
    """A commercial smart host refuses GCC High mail: the check says so up front."""
    dns_server.tenant("fabrikam.com", "fabrikam-com.o-v1.mx.microsoft")
    dns_server.tenant("agency.gov", "agency.mail.protection.office365.us")
    dns_server.tenant("contoso.cn", "contoso-cn.mail.protection.partner.outlook.cn")
    commercial = await client.smart_host(TENANT)
    await client.check_recipients(["a@contoso.com", "b@fabrikam.com"], commercial)
    with pytest.raises(RecipientOutsideExchangeOnlineError) as caught:
        await client.check_recipients(
            ["a@contoso.com", "officer@agency.gov"], smart_host=commercial
        )
    assert isinstance(caught.value, RecipientInOtherCloudError)
    assert caught.value.address == "officer@agency.gov"
    assert caught.value.host == "agency.mail.protection.office365.us"
    assert caught.value.smart_host == MX_HOST
    assert "another Microsoft cloud" in str(caught.value)
    vianet = await client.smart_host("contoso.cn")
    await client.check_recipients(["ops@contoso.cn"], smart_host=vianet)
    with pytest.raises(RecipientInOtherCloudError):
        await client.check_recipients(["it@contoso.com"], smart_host=vianet)
    # Without a smart host only "is it Exchange Online at all" is checked.
    await client.check_recipients(["officer@agency.gov", "ops@contoso.cn"])


def test_insecure_tls_context_is_refused() -> None:
    """A context that skips verification or allows TLS 1.1 cannot be used."""
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    old = ssl.create_default_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1_1
    for context in (unverified, old):
        with pytest.raises(ValueError, match="TLS"):
            require_secure_context(context)
        with pytest.raises(ValueError, match="TLS"):
            TransportSettings(tls_context=context, local_hostname="ha")


def test_context_that_leaves_the_minimum_to_openssl_is_accepted() -> None:
    """Python 3.14's default context says MINIMUM_SUPPORTED; sessions check instead."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    assert require_secure_context(context) is context


async def test_retired_tls_version_means_no_mail(dns_server: DnsResponder) -> None:
    """A session that negotiated TLS 1.1 is dropped before MAIL FROM."""
    async with SmartHost(MX_HOST, legacy_tls=True) as retired:
        context = retired.client_ssl_context()
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        client = make_client(dns_server, retired, tls_context=context)
        with pytest.raises(TlsError, match=r"TLSv1\.1 is older than TLS 1\.2"):
            await client.send(TENANT, _alert())
        assert retired.messages == []

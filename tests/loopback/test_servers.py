"""The loopback servers behave like the real ones, seen through real clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from email.message import EmailMessage
import json
import os
from pathlib import Path
import signal
import ssl
import sys
import time

import aiosmtplib
import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver
import pytest

from . import DelayProxy, DnsResponder, SilentPort, SmartHost, Verb, free_port
from .demo_world import EXCHANGE_TENANTS

SENDER = "alerts@contoso.com"
MESSAGE = (
    b"From: Home <alerts@contoso.com>\r\n"
    b"To: ops@contoso.com\r\n"
    b"Subject: Water leak\r\n"
    b"\r\n"
    b".a line that starts with a dot\r\n"
    b"Caf\xc3\xa9 8-bit body\r\n"
)
REPO = Path(__file__).parents[2]


@pytest.fixture
async def dns_server() -> AsyncIterator[DnsResponder]:
    """Run a DNS responder."""
    async with DnsResponder() as server:
        yield server


@pytest.fixture
async def smart_host() -> AsyncIterator[SmartHost]:
    """Run a STARTTLS smart host."""
    async with SmartHost() as server:
        yield server


def resolver_for(
    server: DnsResponder, lifetime: float = 2
) -> dns.asyncresolver.Resolver:
    """Return a resolver that asks only the responder."""
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [server.host]
    resolver.port = server.port
    resolver.lifetime = lifetime
    return resolver


def client(host: SmartHost, port: int | None = None) -> aiosmtplib.SMTP:
    """Return an SMTP client for the smart host that upgrades only when told."""
    return aiosmtplib.SMTP(
        hostname=host.host,
        port=port or host.port,
        local_hostname="ha.contoso.com",
        start_tls=False,
        timeout=2,
    )


async def open_tls(host: SmartHost, port: int | None = None) -> aiosmtplib.SMTP:
    """Connect, upgrade with a verified certificate for the MX name, and EHLO."""
    smtp = client(host, port)
    await smtp.connect()
    await smtp.starttls(
        server_hostname=host.hostname, tls_context=host.client_ssl_context()
    )
    return smtp


async def send(
    host: SmartHost, recipients: list[str], port: int | None = None
) -> dict[str, aiosmtplib.SMTPResponse]:
    """Send MESSAGE over STARTTLS and return the refused recipients."""
    smtp = await open_tls(host, port)
    try:
        refused, _ = await smtp.sendmail(SENDER, recipients, MESSAGE)
    finally:
        smtp.close()
    return refused


async def test_dns_answers_mx_a_and_long_txt(dns_server: DnsResponder) -> None:
    """MX, A and a TXT over 512 bytes (so via TCP) come back as configured."""
    spf = "v=spf1 " + " ".join(f"ip4:192.0.2.{n}" for n in range(40)) + " ~all"
    dns_server.tenant("Contoso.com.", "contoso-com.mail.protection.outlook.com", ttl=60)
    dns_server.add_txt("contoso.com", [spf])
    resolver = resolver_for(dns_server)

    mx = await resolver.resolve("CONTOSO.COM", "MX")
    a = await resolver.resolve("contoso-com.mail.protection.outlook.com.", "A")
    txt = await resolver.resolve("contoso.com", "TXT")

    # Name compression may copy the question's case into the answer, as in real DNS.
    assert [(r.preference, r.exchange.to_text().lower()) for r in mx] == [
        (10, "contoso-com.mail.protection.outlook.com.")
    ]
    assert mx.rrset is not None
    assert mx.rrset.ttl == 60
    assert [r.address for r in a] == ["127.0.0.1"]
    assert len(spf) > 512
    assert [len(part) for part in txt[0].strings][:2] == [255, 255]
    assert b"".join(txt[0].strings).decode() == spf
    assert dns_server.queries[:2] == [
        ("contoso.com", "MX"),
        ("contoso-com.mail.protection.outlook.com", "A"),
    ]


async def test_dns_nxdomain_nodata_servfail_remove(dns_server: DnsResponder) -> None:
    """Unknown names are NXDOMAIN, missing types NODATA; servfail and remove work."""
    dns_server.add_a("mx.contoso.com", "127.0.0.1")
    dns_server.servfail("broken.contoso.com")
    resolver = resolver_for(dns_server)

    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver.resolve("nobody.contoso.com", "MX")
    with pytest.raises(dns.resolver.NoAnswer):
        await resolver.resolve("mx.contoso.com", "AAAA")
    with pytest.raises(dns.resolver.NoNameservers, match="SERVFAIL"):
        await resolver.resolve("broken.contoso.com", "MX")
    dns_server.remove("MX.contoso.com")
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver.resolve("mx.contoso.com", "A")


async def test_dns_drop_times_out(dns_server: DnsResponder) -> None:
    """A dropped name gets no answer: the client times out."""
    dns_server.tenant("contoso.com", "contoso-com.mail.protection.outlook.com")
    dns_server.drop("contoso.com")

    with pytest.raises(dns.exception.Timeout):
        await resolver_for(dns_server, lifetime=0.3).resolve("contoso.com", "MX")
    assert ("contoso.com", "MX") in dns_server.queries


async def test_starttls_session_delivers_bytes_exactly(smart_host: SmartHost) -> None:
    """Banner, EHLO and a verified STARTTLS session like Microsoft's; bytes intact."""
    smtp = client(smart_host)
    greeting = await smtp.connect()
    before_tls = await smtp.ehlo()
    await smtp.starttls(
        server_hostname=smart_host.hostname,
        tls_context=smart_host.client_ssl_context(),
    )
    after_tls = await smtp.ehlo()
    refused, reply = await smtp.sendmail(SENDER, ["ops@contoso.com"], MESSAGE)
    await smtp.quit()

    assert greeting.code == 220
    assert greeting.message == (
        "contoso-com.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready"
    )
    assert before_tls.message.splitlines() == [
        "contoso-com.mail.protection.outlook.com Hello [127.0.0.1]",
        "SIZE 157286400",
        "PIPELINING",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "8BITMIME",
        "SMTPUTF8",
    ]
    assert "STARTTLS" not in after_tls.message
    assert refused == {}
    assert "Queued mail for delivery" in reply
    (message,) = await smart_host.wait_for_messages(1)
    assert message.data == MESSAGE
    assert message.tls
    assert message.mail_from == SENDER
    assert message.rcpt_tos == ("ops@contoso.com",)
    assert message_from_bytes(message.data, policy=policy.default)["Subject"] == (
        "Water leak"
    )
    assert smart_host.delivered_to("OPS@contoso.com") == 1
    assert smart_host.ehlo_names == ["ha.contoso.com", "ha.contoso.com"]
    assert smart_host.errors == []


async def test_starttls_is_required(smart_host: SmartHost) -> None:
    """Mail in plaintext is refused until STARTTLS."""
    smtp = client(smart_host)
    await smtp.connect()
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as err:
        await smtp.sendmail(SENDER, ["ops@contoso.com"], MESSAGE)
    smtp.close()

    assert err.value.code == 530
    assert smart_host.messages == []


@pytest.mark.parametrize(
    ("cert_hostname", "expired_cert", "reason"),
    [("mail.other.example", False, "match"), (None, True, "expired")],
)
async def test_bad_certificates_are_refused(
    *, cert_hostname: str | None, expired_cert: bool, reason: str
) -> None:
    """A certificate for another name, or an expired one, fails verification."""
    async with SmartHost(
        cert_hostname=cert_hostname, expired_cert=expired_cert
    ) as host:
        smtp = client(host)
        await smtp.connect()
        with pytest.raises(ssl.SSLCertVerificationError, match=reason):
            await smtp.starttls(
                server_hostname=host.hostname, tls_context=host.client_ssl_context()
            )
        smtp.close()
        await asyncio.sleep(0.05)

        assert host.tls_failures == 1
        assert host.errors == []


async def test_plaintext_server_offers_no_starttls() -> None:
    """Without STARTTLS the server accepts plaintext mail."""
    async with SmartHost(starttls=False) as host:
        smtp = client(host)
        await smtp.connect()
        ehlo = await smtp.ehlo()
        await smtp.sendmail(SENDER, ["ops@contoso.com"], MESSAGE)
        await smtp.quit()

    assert "STARTTLS" not in ehlo.message
    assert [m.tls for m in host.messages] == [False]


@pytest.mark.parametrize(
    ("verb", "error"),
    [
        ("MAIL", aiosmtplib.SMTPSenderRefused),
        ("RCPT", aiosmtplib.SMTPRecipientsRefused),
        ("DATA", aiosmtplib.SMTPDataError),
    ],
)
async def test_reply_at_transaction_verbs(
    smart_host: SmartHost, verb: Verb, error: type[Exception]
) -> None:
    """A scripted reply replaces one command's answer; the next send succeeds."""
    reply = "550 5.7.68 TenantInboundAttribution; Direct Send not allowed"
    smart_host.reply_at(verb, reply)

    with pytest.raises(error, match=r"5\.7\.68"):
        await send(smart_host, ["ops@contoso.com"])
    assert smart_host.messages == []
    await send(smart_host, ["ops@contoso.com"])
    assert smart_host.delivered_to("ops@contoso.com") == 1


async def test_reply_at_ehlo_and_starttls(smart_host: SmartHost) -> None:
    """EHLO and STARTTLS answers can be scripted too."""
    smart_host.reply_at("EHLO", "550 5.7.506 Access Denied, Bad HELO")
    smart_host.reply_at("STARTTLS", "454 4.7.0 TLS not available")
    smtp = client(smart_host)
    await smtp.connect()
    with pytest.raises(aiosmtplib.SMTPHeloError, match=r"5\.7\.506"):
        await smtp.ehlo()
    await smtp.ehlo()
    with pytest.raises(aiosmtplib.SMTPResponseException, match=r"4\.7\.0"):
        await smtp.starttls(
            server_hostname=smart_host.hostname,
            tls_context=smart_host.client_ssl_context(),
        )
    smtp.close()


async def test_a_421_reply_closes_the_connection(smart_host: SmartHost) -> None:
    """After a scripted 421 the server hangs up, as Exchange Online does."""
    smart_host.reply_at("EHLO", "421 4.3.2 Service not available")
    reader, writer = await asyncio.open_connection(smart_host.host, smart_host.port)
    await reader.readline()
    writer.write(b"EHLO ha.contoso.com\r\n")

    assert await reader.readline() == b"421 4.3.2 Service not available\r\n"
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()


async def test_reply_at_one_recipient_and_in_order(smart_host: SmartHost) -> None:
    """A recipient fault hits only that address; faults are used in order."""
    smart_host.reply_at(
        "RCPT", "550 5.4.1 Recipient address rejected", recipient="Gone@contoso.com"
    )
    smart_host.reply_at("RCPT", "451 4.7.500 Server busy")
    smart_host.reply_at("RCPT", "550 5.7.64 TenantAttribution; Relay Access Denied")

    refused = await send(
        smart_host, ["a@contoso.com", "gone@contoso.com", "b@contoso.com", "c@x.com"]
    )
    refused_later = await send(smart_host, ["d@contoso.com"])

    assert {address: r.message[:7] for address, r in refused.items()} == {
        "a@contoso.com": "4.7.500",
        "gone@contoso.com": "5.4.1 R",
        "b@contoso.com": "5.7.64 ",
    }
    assert refused_later == {}
    assert [m.rcpt_tos for m in smart_host.messages] == [
        ("c@x.com",),
        ("d@contoso.com",),
    ]


async def test_greeting_fault_then_normal(smart_host: SmartHost) -> None:
    """A scripted greeting answers one connection and closes it."""
    smart_host.greeting("421 4.3.2 Service not available")

    with pytest.raises(aiosmtplib.SMTPConnectResponseError, match=r"4\.3\.2"):
        await client(smart_host).connect()
    await send(smart_host, ["ops@contoso.com"])
    assert smart_host.connections == 2


@pytest.mark.parametrize("verb", ["EHLO", "STARTTLS", "MAIL", "RCPT", "DATA"])
async def test_disconnect_at(smart_host: SmartHost, verb: Verb) -> None:
    """The connection drops at the verb; nothing is recorded; the next try works."""
    smart_host.disconnect_at(verb)

    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await send(smart_host, ["ops@contoso.com"])
    assert smart_host.messages == []
    await send(smart_host, ["ops@contoso.com"])
    assert smart_host.delivered_to("ops@contoso.com") == 1
    assert smart_host.errors == []


async def test_max_recipients(smart_host: SmartHost) -> None:
    """Recipients beyond the limit get 452 4.5.3 in that transaction."""
    smart_host.max_recipients(2)

    refused = await send(
        smart_host, ["a@contoso.com", "b@contoso.com", "c@contoso.com"]
    )

    assert {a: (r.code, r.message) for a, r in refused.items()} == {
        "c@contoso.com": (452, "4.5.3 Too many recipients")
    }
    assert smart_host.messages[0].rcpt_tos == ("a@contoso.com", "b@contoso.com")


async def test_silent_and_closed_ports(smart_host: SmartHost) -> None:
    """Silent servers time out the client; a free port refuses it."""
    smart_host.silent()
    with pytest.raises(aiosmtplib.SMTPTimeoutError):
        await aiosmtplib.SMTP(
            hostname="127.0.0.1", port=smart_host.port, timeout=0.3
        ).connect()
    assert smart_host.connections == 1

    async with SilentPort() as silent:
        with pytest.raises(aiosmtplib.SMTPTimeoutError):
            await aiosmtplib.SMTP(
                hostname="127.0.0.1", port=silent.port, timeout=0.3
            ).connect()
        assert silent.connections == 1

    with pytest.raises(aiosmtplib.SMTPConnectError) as err:
        await aiosmtplib.SMTP(
            hostname="127.0.0.1", port=free_port(), timeout=1
        ).connect()
    assert isinstance(err.value.__cause__, ConnectionRefusedError)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo everything back."""
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_delay_proxy_adds_latency_without_serialising() -> None:
    """Each chunk is delayed by about the delay each way, pipelined, in order."""
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = echo.sockets[0].getsockname()[1]
    try:
        async with DelayProxy("127.0.0.1", port, delay=0.05) as proxy:
            reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
            start = time.monotonic()
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            round_trip = time.monotonic() - start

            start = time.monotonic()
            for n in range(10):
                writer.write(f"{n}".encode())
                await writer.drain()
                await asyncio.sleep(0.005)
            echoed = await reader.readexactly(10)
            burst = time.monotonic() - start
            writer.close()
            await writer.wait_closed()
    finally:
        echo.close()
        await echo.wait_closed()

    assert 0.1 <= round_trip < 0.5
    assert echoed == b"0123456789"
    assert burst < 0.6
    assert proxy.connections == 1


async def test_delay_proxy_carries_a_tls_session(smart_host: SmartHost) -> None:
    """A whole STARTTLS delivery works through the proxy."""
    async with DelayProxy(smart_host.host, smart_host.port) as proxy:
        await send(smart_host, ["ops@contoso.com"], port=proxy.port)

    assert smart_host.delivered_to("ops@contoso.com") == 1


async def test_demo_world_serves_and_writes_settings(tmp_path: Path) -> None:
    """The demo publishes its settings, accepts mail for a demo tenant, saves it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.loopback.demo_world",
        "--state-dir",
        str(tmp_path),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    settings_path = tmp_path / "development.json"
    try:
        async with asyncio.timeout(10):
            assert process.stdout is not None
            ready = await process.stdout.readline()
        assert b"Demo world ready" in ready
        settings = json.loads(settings_path.read_text())
        assert set(settings) == {"nameservers", "dns_port", "smtp_port", "ca_file"}
        assert settings["nameservers"] == ["127.0.0.1"]
        assert settings["ca_file"] == str(tmp_path / "ca.pem")

        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = settings["nameservers"]
        resolver.port = settings["dns_port"]
        mx = await resolver.resolve("fabrikam.example", "MX")
        gmail = await resolver.resolve("gmail.example", "MX")
        mx_host = mx[0].exchange.to_text(omit_final_dot=True)
        assert mx_host == EXCHANGE_TENANTS[1][1]
        assert gmail[0].exchange.to_text() == "gmail-smtp-in.l.google.example."

        smtp = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=settings["smtp_port"], start_tls=False, timeout=5
        )
        await smtp.connect()
        await smtp.starttls(
            server_hostname=mx_host,
            tls_context=ssl.create_default_context(cafile=settings["ca_file"]),
        )
        mail = EmailMessage()
        mail["From"] = SENDER
        mail["To"] = "ops@fabrikam.example"
        mail["Subject"] = "Water leak"
        mail.set_content("Café: water under the sink")
        await smtp.send_message(mail)
        await smtp.quit()
        async with asyncio.timeout(5):
            printed = b""
            while b"Saved" not in printed:
                printed += await process.stdout.readline()
        assert b"Subject: Water leak" in printed
        assert "Café: water under the sink".encode() in printed
        (saved,) = (tmp_path / "mail").glob("*-1.eml")
        assert message_from_bytes(saved.read_bytes(), policy=policy.default)[
            "Subject"
        ] == ("Water leak")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(5):
            code = await process.wait()
    assert code == 0
    assert not settings_path.exists()

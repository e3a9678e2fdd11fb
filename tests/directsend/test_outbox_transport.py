"""The transport under the outbox: error mapping, SIZE, sessions, stale addresses."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiosmtpd.smtp import Envelope as ServerEnvelope, Session
import aiosmtplib
import pytest

from custom_components.o365_direct_send.directsend import (
    DirectSendClient,
    DisconnectedError,
    DnsLookupError,
    NoMxError,
    Outcome,
    SmtpSession,
    TlsError,
    TransportError,
    TransportSettings,
    build_alert,
)
from custom_components.o365_direct_send.directsend.transport import (
    DATA_TIMEOUT,
    _translate,
)
from tests.loopback import DnsResponder, SmartHost
from tests.loopback.smtp_session import Handler, MicrosoftSMTP

from .conftest import MX_HOST, TENANT, make_client
from .test_outbox import Clock, MemoryStorage, alert, client_at, outbox_factory

SENDER = "alerts@contoso.com"


def _connect_error(cause: BaseException) -> aiosmtplib.SMTPConnectError:
    """Return aiosmtplib's connect error caused by another error."""
    error = aiosmtplib.SMTPConnectError("Error connecting")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
            DisconnectedError,
        ),
        (
            ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed"),
            DisconnectedError,
        ),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), TlsError),
        (ssl.CertificateError("hostname mismatch"), TlsError),
        (_connect_error(ssl.SSLEOFError(8, "EOF")), DisconnectedError),
        (_connect_error(ssl.SSLCertVerificationError(1, "verify failed")), TlsError),
        (ConnectionResetError(104, "Connection reset by peer"), DisconnectedError),
        (aiosmtplib.SMTPException("something else"), TransportError),
    ],
    ids=[
        "tls-eof",
        "tls-zero-return",
        "certificate",
        "hostname",
        "connect-tls-eof",
        "connect-certificate",
        "reset",
        "other",
    ],
)
def test_tls_cut_is_a_disconnect_and_a_bad_certificate_is_not(
    error: BaseException, expected: type[TransportError]
) -> None:
    """A handshake cut short is retried later; a certificate that fails is not."""
    translated = _translate(MX_HOST, error)
    assert type(translated) is expected
    assert translated.host == MX_HOST


async def test_session_as_context_manager_declares_the_size(
    client: DirectSendClient, smart_host: SmartHost
) -> None:
    """SIZE counts the CRLF that DATA adds to a message without a final line end."""
    smart_host_record = await client.smart_host(TENANT)
    data = b"Subject: x\r\n\r\nno final line end"
    async with SmtpSession(client.settings, MX_HOST, "127.0.0.1") as session:
        assert session._mail_options(data) == [f"SIZE={len(data) + 2}"]
        result = await session.transaction(SENDER, ["it@contoso.com"], data)
    assert result.accepted == ("it@contoso.com",)
    assert not session.is_open
    assert smart_host_record.host == MX_HOST
    assert smart_host.delivered_to("it@contoso.com") == 1


def test_no_size_without_the_extension(client: DirectSendClient) -> None:
    """A host that does not offer SIZE is not sent the parameter."""
    session = SmtpSession(client.settings, MX_HOST, "127.0.0.1")
    assert session._mail_options(b"x\r\n") == []


async def test_send_splits_and_continues_after_too_many_recipients(
    client: DirectSendClient, smart_host: SmartHost
) -> None:
    """DirectSendClient.send still works: 452 4.5.3 and 200-recipient chunks."""
    smart_host.max_recipients(150)
    recipients = [f"user{n:03}@contoso.com" for n in range(250)]
    envelope = build_alert(
        sender=SENDER,
        sender_name=None,
        recipients=recipients,
        title="Leak",
        body="Water",
    )
    result = await client.send(TENANT, envelope)
    assert result.accepted == tuple(recipients)
    assert [len(m.rcpt_tos) for m in smart_host.messages] == [150, 100]
    assert smart_host.connections == 1


async def test_known_addresses_stand_in_only_within_the_grace(
    dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """The last good address answers while DNS is down, until the grace ends."""
    monotonic = Clock(0.0)
    client = client_at(
        dns_server, smart_host, smart_host.port, timeout=0.3, clock=monotonic
    )
    dns_server.drop(MX_HOST)
    with pytest.raises(DnsLookupError):
        await client.addresses(MX_HOST)
    dns_server.remove(MX_HOST)
    dns_server.add_a(MX_HOST, "127.0.0.1")
    assert await client.addresses(MX_HOST) == ["127.0.0.1"]
    dns_server.drop(MX_HOST)
    monotonic.advance(3600.0)
    assert await client.addresses(MX_HOST) == ["127.0.0.1"]
    monotonic.advance(1.0)
    with pytest.raises(DnsLookupError):
        await client.addresses(MX_HOST)


async def test_concurrent_lookups_share_one_query(
    client: DirectSendClient, dns_server: DnsResponder
) -> None:
    """Callers that ask at once share one DNS query, and its failure."""
    found = await asyncio.gather(*(client.smart_host(TENANT) for _ in range(5)))
    assert {record.host for record in found} == {MX_HOST}
    results = await asyncio.gather(
        *(client.smart_host("nowhere.example") for _ in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(result, NoMxError) for result in results)
    assert dns_server.queries.count((TENANT, "MX")) == 1
    assert dns_server.queries.count(("nowhere.example", "MX")) == 1


async def test_waiting_caller_takes_over_a_cancelled_lookup(
    dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """When the caller doing the lookup is cancelled, a waiting one looks up itself."""
    client = client_at(dns_server, smart_host, smart_host.port, timeout=5.0)
    dns_server.drop(TENANT)
    leader = asyncio.create_task(client.smart_host(TENANT))
    await asyncio.sleep(0.05)
    follower = asyncio.create_task(client.smart_host(TENANT))
    await asyncio.sleep(0.05)
    dns_server.remove(TENANT)
    dns_server.tenant(TENANT, MX_HOST)
    leader.cancel()
    record = await follower
    assert record.host == MX_HOST
    assert leader.cancelled()
    assert dns_server.queries.count((TENANT, "MX")) >= 2


class _SlowDataHandler(Handler):
    """Take the message at once but answer the final "." only after a delay."""

    def __init__(self, smart_host: SmartHost, delay: float) -> None:
        """Serve the smart host's state; delay the DATA reply by `delay` seconds."""
        super().__init__(smart_host._shared)
        self.delay = delay

    async def handle_DATA(  # noqa: N802
        self, server: MicrosoftSMTP, session: Session, envelope: ServerEnvelope
    ) -> str:
        """Think about the message for a while, as a loaded server may."""
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def test_data_reply_waits_ten_minutes_or_the_longer_timeout(
    client: DirectSendClient,
) -> None:
    """RFC 5321 4.5.3.2.6: the reply to the final "." gets 10 minutes at least."""
    settings: dict[str, Any] = {
        "tls_context": client.settings.tls_context,
        "local_hostname": "ha.contoso.com",
    }
    assert DATA_TIMEOUT == 600.0
    assert TransportSettings(**settings, timeout=30.0).data_timeout == 600.0
    assert TransportSettings(**settings, timeout=900.0).data_timeout == 900.0


async def test_slow_reply_to_data_is_awaited_not_retried(
    dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """A host that accepts after the command timeout delivers once, not twice."""
    smart_host._handler = _SlowDataHandler(smart_host, delay=1.0)
    client = make_client(dns_server, smart_host, timeout=0.3)
    async with outbox_factory() as new_outbox:
        outbox = new_outbox(client, MemoryStorage())
        attempt = await outbox.submit(TENANT, alert())
    assert attempt.outcome is Outcome.DELIVERED
    assert attempt.failure is None
    assert len(smart_host.messages) == 1

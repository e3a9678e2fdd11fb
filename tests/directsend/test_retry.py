"""The retry decision: backoff with jitter, and which failures are worth retrying."""

from __future__ import annotations

import random

import pytest

from custom_components.o365_direct_send.directsend import (
    ConnectFailedError,
    ConnectTimeoutError,
    DirectSendError,
    DisconnectedError,
    DiscoveryError,
    Disposition,
    DnsLookupError,
    ErrorKind,
    InvalidAddressError,
    NoMxError,
    NotExchangeOnlineError,
    RecipientOutsideExchangeOnlineError,
    RecipientsRefusedError,
    Reply,
    ReplyError,
    RetryPolicy,
    StartTlsUnavailableError,
    TlsError,
    TransportError,
    decide,
    error_kind,
)

HOST = "contoso-com.mail.protection.outlook.com"
BUSY = Reply(451, "4.7.500 Server busy. Please try again later")
NO_MAILBOX = Reply(550, "5.4.1 Recipient address rejected: Access denied")

RETRY, FAIL = Disposition.RETRY, Disposition.FAIL


@pytest.mark.parametrize(
    ("outcome", "disposition"),
    [
        (BUSY, RETRY),
        (Reply(421, "4.3.2 Service not available"), RETRY),
        (NO_MAILBOX, FAIL),
        (Reply(554, "5.7.512 Access denied"), FAIL),
        (Reply(-1, "Malformed SMTP response line"), RETRY),
        (ReplyError(HOST, BUSY), RETRY),
        (ReplyError(HOST, Reply(550, "5.7.68 TenantInboundAttribution")), FAIL),
        (RecipientsRefusedError(HOST, {"a@contoso.com": BUSY}), RETRY),
        (
            RecipientsRefusedError(
                HOST, {"a@contoso.com": NO_MAILBOX, "b@contoso.com": BUSY}
            ),
            RETRY,
        ),
        (RecipientsRefusedError(HOST, {"a@contoso.com": NO_MAILBOX}), FAIL),
        (DnsLookupError("contoso.com", "DNS timed out"), RETRY),
        (NoMxError("contoso.com", "no MX record"), RETRY),
        (NotExchangeOnlineError("contoso.com", "mx.example.net"), FAIL),
        (DiscoveryError("contoso.com", "something else"), RETRY),
        (ConnectFailedError(HOST, "Connection refused"), RETRY),
        (ConnectTimeoutError(HOST, "Timed out connecting"), RETRY),
        (DisconnectedError(HOST, "Connection lost"), RETRY),
        (DisconnectedError(HOST, "TLS handshake cut: EOF"), RETRY),
        (StartTlsUnavailableError(HOST, "STARTTLS is not offered"), FAIL),
        (TlsError(HOST, "certificate verify failed"), FAIL),
        (TransportError(HOST, "odd"), RETRY),
        (InvalidAddressError("not an address"), FAIL),
        (RecipientOutsideExchangeOnlineError("x@gmail.example", None), FAIL),
        (DirectSendError("unknown"), RETRY),
        (RuntimeError("a bug"), RETRY),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, Reply) else None,
)
def test_decide(outcome: Exception | Reply, disposition: Disposition) -> None:
    """Temporary trouble is retried; 5xx, TLS and wrong endpoints fail at once."""
    assert decide(outcome) is disposition


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ReplyError(HOST, BUSY), ErrorKind.SMTP_REFUSED),
        (RecipientsRefusedError(HOST, {"a@b.c": BUSY}), ErrorKind.RECIPIENTS_REFUSED),
        (StartTlsUnavailableError(HOST, "x"), ErrorKind.STARTTLS_UNAVAILABLE),
        (TlsError(HOST, "x"), ErrorKind.TLS_FAILED),
        (ConnectTimeoutError(HOST, "x"), ErrorKind.PORT_BLOCKED),
        (ConnectFailedError(HOST, "x"), ErrorKind.CANNOT_CONNECT),
        (DisconnectedError(HOST, "x"), ErrorKind.DISCONNECTED),
        (TransportError(HOST, "x"), ErrorKind.TRANSPORT_FAILED),
        (NotExchangeOnlineError("b.c", "mx.b.c"), ErrorKind.NOT_EXCHANGE_ONLINE),
        (NoMxError("b.c", "x"), ErrorKind.NO_MX),
        (DnsLookupError("b.c", "x"), ErrorKind.DNS_FAILED),
        (InvalidAddressError("x"), ErrorKind.INVALID_ADDRESS),
        (
            RecipientOutsideExchangeOnlineError("x@b.c", None),
            ErrorKind.RECIPIENT_NOT_IN_TENANT,
        ),
        (RuntimeError("a bug"), ErrorKind.UNEXPECTED_ERROR),
    ],
    ids=lambda value: type(value).__name__,
)
def test_error_kind(error: Exception, kind: ErrorKind) -> None:
    """Every error maps to a translation key the status entities can show."""
    assert error_kind(error) is kind


def test_delay_doubles_up_to_the_cap() -> None:
    """Without jitter: 30 s, 60 s, 120 s ... then 15 minutes for ever."""
    policy = RetryPolicy(jitter=0.0)
    rng = random.Random(0)  # noqa: S311 - repeatable jitter
    delays = [policy.delay(attempts, rng) for attempts in range(1, 9)]
    assert delays == [30.0, 60.0, 120.0, 240.0, 480.0, 900.0, 900.0, 900.0]
    assert policy.delay(0, rng) == 30.0
    assert policy.delay(100_000, rng) == 900.0


def test_delay_jitter_stays_within_bounds() -> None:
    """Jitter spreads retries by up to 20% either way, also at the cap."""
    policy = RetryPolicy()
    rng = random.Random(42)  # noqa: S311 - repeatable jitter
    first = [policy.delay(1, rng) for _ in range(500)]
    capped = [policy.delay(20, rng) for _ in range(500)]
    assert all(24.0 <= delay <= 36.0 for delay in first)
    assert all(720.0 <= delay <= 1080.0 for delay in capped)
    assert max(first) - min(first) > 10.0
    assert len(set(capped)) > 400


@pytest.mark.parametrize(
    "options",
    [
        {"initial": 0.0},
        {"initial": 1000.0},
        {"factor": 0.5},
        {"jitter": 1.0},
        {"jitter": -0.1},
        {"max_age": 0.0},
    ],
)
def test_unusable_policies_are_refused(options: dict[str, float]) -> None:
    """A policy that would spin or never retry is refused."""
    with pytest.raises(ValueError, match="Unusable retry policy"):
        RetryPolicy(**options)

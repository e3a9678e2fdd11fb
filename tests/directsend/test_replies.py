"""Every reply of DIRECT_SEND.md classified, on its own and through a real smart host."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from custom_components.o365_direct_send.directsend import (
    DirectSendClient,
    RecipientsRefusedError,
    ReplyError,
    build_alert,
)
from custom_components.o365_direct_send.directsend.replies import (
    UNKNOWN,
    Repair,
    Reply,
    ReplyKey,
    ReplyKind,
    classify,
    parse_client_ip,
)
from tests.loopback import SmartHost

from .conftest import MX_HOST, TENANT

TEMPORARY = ReplyKind.TEMPORARY
PERMANENT = ReplyKind.PERMANENT
CONFIGURATION = ReplyKind.CONFIGURATION
RECIPIENT = ReplyKind.RECIPIENT


@dataclass(frozen=True, slots=True)
class Case:
    """One reply as the smart host sends it, where it comes, and what it means."""

    line: str
    kind: ReplyKind
    key: ReplyKey
    repair: Repair | None = None
    at: str = "MAIL"

    @property
    def reply(self) -> Reply:
        """Return the reply the line stands for."""
        code, _, text = self.line.partition(" ")
        return Reply(int(code), text)


# The texts are DIRECT_SEND.md's, "..." and all; a code it omits is Microsoft's 550.
TABLE = [
    Case(
        "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this "
        "organization from unauthorized sources",
        PERMANENT,
        ReplyKey.REJECT_DIRECT_SEND,
        Repair.REJECT_DIRECT_SEND,
    ),
    Case(
        "550 5.7.64 TenantAttribution; Relay Access Denied",
        PERMANENT,
        ReplyKey.RELAY_DENIED,
        at="RCPT",
    ),
    Case(
        "550 5.4.1 Recipient address rejected: Access denied",
        RECIPIENT,
        ReplyKey.RECIPIENT_UNKNOWN,
        at="RCPT",
    ),
    Case(
        "550 5.7.606 Access denied, banned sending IP [203.0.113.5]",
        PERMANENT,
        ReplyKey.IP_BANNED,
        Repair.IP_BLOCKED,
        at="greeting",
    ),
    Case(
        "550 5.7.627 Access denied, banned sending IP [203.0.113.5]",
        PERMANENT,
        ReplyKey.IP_BANNED,
        Repair.IP_BLOCKED,
    ),
    Case(
        "550 5.7.649 Access denied, banned sending IP [ip]",
        PERMANENT,
        ReplyKey.IP_BANNED,
        Repair.IP_BLOCKED,
    ),
    Case(
        "550 5.7.708 ... traffic not accepted from this IP",
        PERMANENT,
        ReplyKey.IP_REPUTATION,
        Repair.IP_BLOCKED,
    ),
    Case("550 5.7.705", PERMANENT, ReplyKey.IP_REPUTATION, Repair.IP_BLOCKED),
    Case("550 5.7.750", PERMANENT, ReplyKey.IP_REPUTATION, Repair.IP_BLOCKED),
    Case(
        "550 5.7.1 Service unavailable, Client host [203.0.113.5] blocked using "
        "Spamhaus",
        PERMANENT,
        ReplyKey.IP_BLOCKLISTED,
        Repair.IP_BLOCKED,
        at="RCPT",
    ),
    Case(
        "550 5.7.512 ... must be RFC 5322 section 3.6.2 compliant",
        PERMANENT,
        ReplyKey.BAD_FROM,
        at="DATA",
    ),
    Case(
        "550 5.7.506 Access Denied, Bad HELO",
        PERMANENT,
        ReplyKey.BAD_HELO,
        at="EHLO",
    ),
    Case(
        "530 5.7.57 ... not authenticated",
        CONFIGURATION,
        ReplyKey.CLIENT_SUBMISSION,
        Repair.CLIENT_SUBMISSION,
    ),
    Case(
        "451 5.7.3 STARTTLS is required",
        CONFIGURATION,
        ReplyKey.CLIENT_SUBMISSION,
        Repair.CLIENT_SUBMISSION,
    ),
    Case("451 4.7.500", TEMPORARY, ReplyKey.IP_THROTTLED),
    Case("451 4.7.500 Server busy", TEMPORARY, ReplyKey.IP_THROTTLED),
    Case("451 4.7.699", TEMPORARY, ReplyKey.IP_THROTTLED),
    Case("451 4.7.850", TEMPORARY, ReplyKey.IP_THROTTLED),
    Case("451 4.7.899", TEMPORARY, ReplyKey.IP_THROTTLED, at="RCPT"),
    Case("421 4.3.2 ...", TEMPORARY, ReplyKey.SERVICE_BUSY, at="greeting"),
    Case("451 4.7.0", TEMPORARY, ReplyKey.SERVICE_BUSY),
    Case("451 4.3.2", TEMPORARY, ReplyKey.SERVICE_BUSY, at="DATA"),
    Case("451 4.4.3", TEMPORARY, ReplyKey.SERVICE_BUSY),
    Case(
        "452 4.5.3 Too many recipients",
        RECIPIENT,
        ReplyKey.TOO_MANY_RECIPIENTS,
        at="RCPT",
    ),
    Case(
        "451 4.4.62 Mail sent to the wrong Office 365 region",
        TEMPORARY,
        ReplyKey.WRONG_REGION,
    ),
    # From the Limits and Connection sections.
    Case("550 5.2.121", RECIPIENT, ReplyKey.RATE_LIMITED, at="RCPT"),
    Case("550 5.2.122", RECIPIENT, ReplyKey.RATE_LIMITED, at="RCPT"),
    Case("450 4.7.25", TEMPORARY, ReplyKey.IPV6_NOT_ALLOWED, Repair.IPV6_NOT_ALLOWED),
    Case("450 4.7.26", TEMPORARY, ReplyKey.IPV6_NOT_ALLOWED, Repair.IPV6_NOT_ALLOWED),
    Case(
        "550 5.2.1 Service unavailable, [contoso.com] does not accept email over IPv6",
        PERMANENT,
        ReplyKey.IPV6_NOT_ALLOWED,
        Repair.IPV6_NOT_ALLOWED,
        at="RCPT",
    ),
]

UNKNOWN_REPLIES = [
    Case("450 4.2.0 Mailbox busy", TEMPORARY, ReplyKey.TEMPORARY_OTHER),
    Case(
        "421 Service closing transmission channel", TEMPORARY, ReplyKey.TEMPORARY_OTHER
    ),
    Case("451 5.7.3 Requested action aborted", TEMPORARY, ReplyKey.TEMPORARY_OTHER),
    Case(
        "451 4.7.700 Not in the throttling ranges", TEMPORARY, ReplyKey.TEMPORARY_OTHER
    ),
    Case("554 5.6.0 Corrupt message content", PERMANENT, ReplyKey.PERMANENT_OTHER),
    Case("550 Rejected", PERMANENT, ReplyKey.PERMANENT_OTHER),
    Case("550 5.7.1 Delivery not authorized", PERMANENT, ReplyKey.PERMANENT_OTHER),
    Case("550 5.7.605 Below the banned range", PERMANENT, ReplyKey.PERMANENT_OTHER),
    Case("550 5.2.1 Mailbox disabled", PERMANENT, ReplyKey.PERMANENT_OTHER),
    # Not a refusal at all: like retry.decide, only 5xx is final.
    Case("354 Start mail input", TEMPORARY, ReplyKey.TEMPORARY_OTHER),
]


def _id(case: Case) -> str:
    """Name a case by its reply code and enhanced code."""
    return " ".join(case.line.split(" ")[:2])


@pytest.mark.parametrize("case", TABLE + UNKNOWN_REPLIES, ids=_id)
def test_reply_is_classified(case: Case) -> None:
    """Each reply maps to its kind, key and repair; 5xx fail at once, 4xx retry."""
    classification = classify(case.reply, MX_HOST)
    assert classification.kind is case.kind
    assert classification.key is case.key
    assert classification.repair is case.repair
    assert classification.retry is not (500 <= case.reply.code < 600)
    if classification.kind is TEMPORARY:
        assert classification.retry
    if classification.kind is PERMANENT:
        assert not classification.retry


def test_every_key_is_exercised() -> None:
    """The cases above cover every key the lead must translate."""
    assert {case.key for case in TABLE + UNKNOWN_REPLIES} == set(ReplyKey)


def test_placeholders_carry_the_facts() -> None:
    """Code, enhanced code, server text, host and client IP fill the translation."""
    classification = classify(
        Reply(
            550,
            "5.7.1 Service unavailable, Client host [203.0.113.5] blocked using "
            "Spamhaus",
        ),
        MX_HOST,
    )
    assert classification.client_ip == "203.0.113.5"
    assert classification.placeholders == {
        "code": "550",
        "enhanced_code": "5.7.1",
        "text": "5.7.1 Service unavailable, Client host [203.0.113.5] blocked "
        "using Spamhaus",
        "host": MX_HOST,
        "client_ip": "203.0.113.5",
    }


def test_placeholders_for_missing_facts() -> None:
    """Facts the reply lacks read as the same placeholder, so strings always format."""
    placeholders = classify(Reply(421, "")).placeholders
    assert placeholders == {
        "code": "421",
        "enhanced_code": UNKNOWN,
        "text": UNKNOWN,
        "host": UNKNOWN,
        "client_ip": UNKNOWN,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("contoso-com.mail.protection.outlook.com Hello [203.0.113.5]", "203.0.113.5"),
        (
            "contoso-com.mail.protection.outlook.com Hello [203.0.113.5]\nSIZE 1\n",
            "203.0.113.5",
        ),
        ("Hello [2001:DB8::5]", "2001:db8::5"),
        ("Hello [IPv6:2001:db8::5]", "2001:db8::5"),
        ("[Hostname=BN8NAM12FT065] from [198.51.100.7]", "198.51.100.7"),
        ("banned sending IP [ip]", None),
        ("Hello [999.1.1.1]", None),
        ("no address here", None),
    ],
)
def test_client_ip_is_parsed(text: str, expected: str | None) -> None:
    """The first bracketed valid IP is the client's; other brackets are skipped."""
    assert parse_client_ip(text) == expected


@pytest.mark.parametrize("case", TABLE, ids=_id)
async def test_reply_through_a_real_smart_host(
    client: DirectSendClient, smart_host: SmartHost, case: Case
) -> None:
    """The Reply the client gets from a loopback smart host classifies as expected."""
    alert = build_alert(
        sender="alerts@contoso.com",
        sender_name="Home Assistant",
        recipients=["it@contoso.com", "ops@contoso.com"],
        title="Door open",
        body="The back door is open.",
    )
    if case.at == "greeting":
        smart_host.greeting(case.line)
    elif case.at == "RCPT":
        # Always: a deferred recipient (452 4.5.3) is tried again in a new transaction.
        smart_host.reply_at("RCPT", case.line, times=None, recipient="ops@contoso.com")
    else:
        smart_host.reply_at(case.at, case.line)  # type: ignore[arg-type]
    if case.at == "RCPT":
        result = await client.send(TENANT, alert)
        assert result.accepted == ("it@contoso.com",)
        reply = result.refused["ops@contoso.com"]
    else:
        with pytest.raises(ReplyError) as caught:
            await client.send(TENANT, alert)
        reply = caught.value.reply
    assert reply == case.reply
    classification = classify(reply, MX_HOST)
    assert (classification.kind, classification.key) == (case.kind, case.key)
    assert classification.repair is case.repair
    if case.at != "RCPT":
        assert smart_host.messages == []


async def test_every_recipient_refused_still_classifies(
    client: DirectSendClient, smart_host: SmartHost
) -> None:
    """When all recipients are refused, each carried reply classifies per recipient."""
    smart_host.reply_at("RCPT", "550 5.4.1 Recipient address rejected: Access denied")
    alert = build_alert(
        sender="alerts@contoso.com",
        sender_name="Home Assistant",
        recipients=["gone@contoso.com"],
        title="Door open",
        body="The back door is open.",
    )
    with pytest.raises(RecipientsRefusedError) as caught:
        await client.send(TENANT, alert)
    classification = classify(caught.value.refused["gone@contoso.com"])
    assert classification.kind is RECIPIENT
    assert classification.key is ReplyKey.RECIPIENT_UNKNOWN
    assert not classification.retry

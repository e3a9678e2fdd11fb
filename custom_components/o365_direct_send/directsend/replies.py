"""SMTP replies as values, and what each of Exchange Online's replies means."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
import ipaddress
import re

_ENHANCED_CODE = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")
_BRACKETED = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]")
# Placeholder value when a reply does not carry the fact; translations show it as is.
UNKNOWN = "-"


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply from the smart host."""

    code: int
    text: str

    @property
    def enhanced_code(self) -> str | None:
        """Return the RFC 3463 enhanced status code at the start of the text."""
        match = _ENHANCED_CODE.match(self.text)
        return match.group(1) if match else None

    @property
    def is_temporary(self) -> bool:
        """Return whether the reply is a 4xx that a later attempt may overcome."""
        return 400 <= self.code < 500  # noqa: PLR2004

    @property
    def is_permanent(self) -> bool:
        """Return whether the reply is a 5xx that no retry will change."""
        return 500 <= self.code < 600  # noqa: PLR2004

    def __str__(self) -> str:
        """Render the reply as the server sent it."""
        return f"{self.code} {self.text}"


class ReplyKind(StrEnum):
    """What a refusal means for the message and for whoever must act on it."""

    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    CONFIGURATION = "configuration"
    RECIPIENT = "recipient"


class ReplyKey(StrEnum):
    """The stable name of each reply Exchange Online is known to give."""

    REJECT_DIRECT_SEND = "reject_direct_send"
    RELAY_DENIED = "relay_denied"
    RECIPIENT_UNKNOWN = "recipient_unknown"
    IP_BANNED = "ip_banned"
    IP_REPUTATION = "ip_reputation"
    IP_BLOCKLISTED = "ip_blocklisted"
    BAD_FROM = "bad_from"
    BAD_HELO = "bad_helo"
    CLIENT_SUBMISSION = "client_submission"
    IP_THROTTLED = "ip_throttled"
    SERVICE_BUSY = "service_busy"
    TOO_MANY_RECIPIENTS = "too_many_recipients"
    WRONG_REGION = "wrong_region"
    RATE_LIMITED = "rate_limited"
    IPV6_NOT_ALLOWED = "ipv6_not_allowed"
    TEMPORARY_OTHER = "temporary_other"
    PERMANENT_OTHER = "permanent_other"


class Repair(StrEnum):
    """The repair issues the core can ask for: problems only a person can fix."""

    REJECT_DIRECT_SEND = "reject_direct_send"
    IP_BLOCKED = "ip_blocked"
    CLIENT_SUBMISSION = "client_submission"
    IPV6_NOT_ALLOWED = "ipv6_not_allowed"
    PORT_BLOCKED = "port_blocked"
    TLS_INVALID = "tls_invalid"
    NOT_EXCHANGE_ONLINE = "not_exchange_online"
    SPF_NOT_AUTHORIZED = "spf_not_authorized"


@dataclass(frozen=True, slots=True)
class _Rule:
    """Recognise replies by enhanced status code and, where codes are shared, text."""

    key: ReplyKey
    status: str
    details: Collection[int]
    # None: temporary or permanent as the reply code says (4xx retry, 5xx fail).
    kind: ReplyKind | None = None
    repair: Repair | None = None
    text: re.Pattern[str] | None = None

    def matches(self, enhanced_code: str, text: str) -> bool:
        """Return whether the reply is the one this rule describes."""
        status, _, detail = enhanced_code.rpartition(".")
        return (
            status == self.status
            and int(detail) in self.details
            and (self.text is None or self.text.search(text) is not None)
        )


_RULES = (
    _Rule(ReplyKey.REJECT_DIRECT_SEND, "5.7", {68}, repair=Repair.REJECT_DIRECT_SEND),
    _Rule(ReplyKey.RELAY_DENIED, "5.7", {64}),
    _Rule(ReplyKey.RECIPIENT_UNKNOWN, "5.4", {1}, ReplyKind.RECIPIENT),
    _Rule(ReplyKey.IP_BANNED, "5.7", range(606, 650), repair=Repair.IP_BLOCKED),
    _Rule(ReplyKey.IP_REPUTATION, "5.7", {705, 708, 750}, repair=Repair.IP_BLOCKED),
    # 5.7.1 is every kind of policy refusal; only a blocklist hit names its list.
    _Rule(
        ReplyKey.IP_BLOCKLISTED,
        "5.7",
        {1},
        repair=Repair.IP_BLOCKED,
        text=re.compile(r"spamhaus|blocked using", re.IGNORECASE),
    ),
    _Rule(ReplyKey.BAD_FROM, "5.7", {512}),
    _Rule(ReplyKey.BAD_HELO, "5.7", {506}),
    _Rule(
        ReplyKey.CLIENT_SUBMISSION,
        "5.7",
        {57},
        ReplyKind.CONFIGURATION,
        Repair.CLIENT_SUBMISSION,
    ),
    # X.7.3 is generic (security conversion); client submission says why.
    _Rule(
        ReplyKey.CLIENT_SUBMISSION,
        "5.7",
        {3},
        ReplyKind.CONFIGURATION,
        Repair.CLIENT_SUBMISSION,
        re.compile(r"STARTTLS", re.IGNORECASE),
    ),
    _Rule(ReplyKey.IP_THROTTLED, "4.7", {*range(500, 700), *range(850, 900)}),
    _Rule(ReplyKey.SERVICE_BUSY, "4.3", {2}),
    _Rule(ReplyKey.SERVICE_BUSY, "4.7", {0}),
    _Rule(ReplyKey.SERVICE_BUSY, "4.4", {3}),
    _Rule(ReplyKey.TOO_MANY_RECIPIENTS, "4.5", {3}, ReplyKind.RECIPIENT),
    _Rule(ReplyKey.WRONG_REGION, "4.4", {62}),
    # Hourly per-recipient limits: the condition passes, but Microsoft answers 5xx
    # so senders stop adding to the flood; no retry, coalesce instead.
    _Rule(ReplyKey.RATE_LIMITED, "5.2", {121, 122}, ReplyKind.RECIPIENT),
    _Rule(ReplyKey.IPV6_NOT_ALLOWED, "4.7", {25, 26}, repair=Repair.IPV6_NOT_ALLOWED),
    # X.2.1 is also "mailbox disabled"; only the IPv6 refusal says IPv6.
    _Rule(
        ReplyKey.IPV6_NOT_ALLOWED,
        "5.2",
        {1},
        repair=Repair.IPV6_NOT_ALLOWED,
        text=re.compile(r"IPv6", re.IGNORECASE),
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Classification:
    """What a reply means: its kind, its translation key and the repair it needs."""

    reply: Reply
    kind: ReplyKind
    key: ReplyKey
    repair: Repair | None
    host: str | None = None

    @property
    def retry(self) -> bool:
        """Return whether to try again with backoff: 4xx yes, 5xx never."""
        return not self.reply.is_permanent

    @property
    def client_ip(self) -> str | None:
        """Return the client IP the server named in its text, if any."""
        return parse_client_ip(self.reply.text)

    @property
    def placeholders(self) -> dict[str, str]:
        """Return the translation placeholders; absent facts read as UNKNOWN."""
        return {
            "code": str(self.reply.code),
            "enhanced_code": self.reply.enhanced_code or UNKNOWN,
            "text": self.reply.text.strip() or UNKNOWN,
            "host": self.host or UNKNOWN,
            "client_ip": self.client_ip or UNKNOWN,
        }


def classify(reply: Reply, host: str | None = None) -> Classification:
    """Say what a refusal means; only 5xx is permanent, as retry.decide holds."""
    enhanced_code = reply.enhanced_code
    by_code = ReplyKind.PERMANENT if reply.is_permanent else ReplyKind.TEMPORARY
    if enhanced_code is not None:
        for rule in _RULES:
            if rule.matches(enhanced_code, reply.text):
                return Classification(
                    reply=reply,
                    kind=by_code if rule.kind is None else rule.kind,
                    key=rule.key,
                    repair=rule.repair,
                    host=host,
                )
    return Classification(
        reply=reply,
        kind=by_code,
        key=(
            ReplyKey.PERMANENT_OTHER if reply.is_permanent else ReplyKey.TEMPORARY_OTHER
        ),
        repair=None,
        host=host,
    )


def parse_client_ip(text: str) -> str | None:
    """Return the first bracketed IP address in a reply, as in `Hello [203.0.113.5]`."""
    for match in _BRACKETED.finditer(text):
        try:
            return str(ipaddress.ip_address(match.group(1)))
        except ValueError:
            continue
    return None

"""When to try a message again: backoff with jitter, and temporary versus permanent."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
import random

from .errors import (
    ConnectFailedError,
    ConnectTimeoutError,
    DisconnectedError,
    DnsLookupError,
    InvalidAddressError,
    NoMxError,
    NotExchangeOnlineError,
    RecipientOutsideExchangeOnlineError,
    RecipientsRefusedError,
    ReplyError,
    StartTlsUnavailableError,
    TlsError,
    TransportError,
)
from .replies import Reply


class Disposition(StrEnum):
    """What to do with a message, or a recipient, after a failed attempt."""

    RETRY = "retry"
    FAIL = "fail"


class ErrorKind(StrEnum):
    """What kind of failure an attempt met; the values are translation keys."""

    SMTP_REFUSED = "smtp_refused"
    RECIPIENTS_REFUSED = "recipients_refused"
    DNS_FAILED = "dns_failed"
    NO_MX = "no_mx"
    NOT_EXCHANGE_ONLINE = "not_exchange_online"
    PORT_BLOCKED = "port_blocked"
    CANNOT_CONNECT = "cannot_connect"
    STARTTLS_UNAVAILABLE = "starttls_unavailable"
    TLS_FAILED = "tls_failed"
    DISCONNECTED = "disconnected"
    TRANSPORT_FAILED = "transport_failed"
    INVALID_ADDRESS = "invalid_address"
    RECIPIENT_NOT_IN_TENANT = "recipient_not_in_tenant"
    EXPIRED = "expired"
    UNEXPECTED_ERROR = "unexpected_error"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped, and the age at which mail is stale."""

    initial: float = 30.0
    factor: float = 2.0
    cap: float = 900.0
    jitter: float = 0.2
    max_age: float = 86400.0

    def __post_init__(self) -> None:
        """Refuse settings that would retry at once forever or never."""
        if not (
            0 < self.initial <= self.cap
            and self.factor >= 1
            and 0 <= self.jitter < 1
            and self.max_age > 0
        ):
            msg = f"Unusable retry policy: {self}"
            raise ValueError(msg)

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Return the wait before the next try after `attempts` failed ones."""
        try:
            base = min(self.cap, self.initial * self.factor ** max(attempts - 1, 0))
        except OverflowError:
            base = self.cap
        # Jitter around the capped delay spreads a storm's retries even at the cap.
        return base * (1 + self.jitter * rng.uniform(-1.0, 1.0))


def decide(outcome: Exception | Reply) -> Disposition:
    """Say whether a failed attempt, or one recipient's reply, is worth retrying."""
    match outcome:
        case Reply():
            return Disposition.FAIL if outcome.is_permanent else Disposition.RETRY
        case ReplyError():
            return decide(outcome.reply)
        case RecipientsRefusedError():
            temporary = any(reply.is_temporary for reply in outcome.refused.values())
            return Disposition.RETRY if temporary else Disposition.FAIL
        # We never send without verified TLS, so the user has to act now.
        case StartTlsUnavailableError() | TlsError():
            return Disposition.FAIL
        case (
            ConnectFailedError()
            | ConnectTimeoutError()
            | DisconnectedError()
            | TransportError()
        ):
            return Disposition.RETRY
        case NotExchangeOnlineError():
            return Disposition.FAIL
        # DNS may be in the middle of a change; the maximum age bounds the wait.
        case NoMxError() | DnsLookupError():
            return Disposition.RETRY
        case InvalidAddressError() | RecipientOutsideExchangeOnlineError():
            return Disposition.FAIL
    # An error we do not know may be transient; the maximum age bounds it.
    return Disposition.RETRY


def error_kind(error: Exception) -> ErrorKind:
    """Return the kind of a failure, for status and translated messages."""
    match error:
        case ReplyError():
            return ErrorKind.SMTP_REFUSED
        case RecipientsRefusedError():
            return ErrorKind.RECIPIENTS_REFUSED
        case StartTlsUnavailableError():
            return ErrorKind.STARTTLS_UNAVAILABLE
        case TlsError():
            return ErrorKind.TLS_FAILED
        case ConnectTimeoutError():
            return ErrorKind.PORT_BLOCKED
        case ConnectFailedError():
            return ErrorKind.CANNOT_CONNECT
        case DisconnectedError():
            return ErrorKind.DISCONNECTED
        case TransportError():
            return ErrorKind.TRANSPORT_FAILED
        case NotExchangeOnlineError():
            return ErrorKind.NOT_EXCHANGE_ONLINE
        case NoMxError():
            return ErrorKind.NO_MX
        case DnsLookupError():
            return ErrorKind.DNS_FAILED
        case InvalidAddressError():
            return ErrorKind.INVALID_ADDRESS
        case RecipientOutsideExchangeOnlineError():
            return ErrorKind.RECIPIENT_NOT_IN_TENANT
    return ErrorKind.UNEXPECTED_ERROR

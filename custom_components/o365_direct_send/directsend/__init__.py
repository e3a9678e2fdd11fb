"""Direct Send to Exchange Online: the protocol core, free of Home Assistant."""

from .addresses import domain_of, is_ip_literal, normalize_address, normalize_domain
from .client import DirectSendClient, ProbeResult
from .errors import (
    ConnectFailedError,
    ConnectTimeoutError,
    DirectSendError,
    DisconnectedError,
    DiscoveryError,
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
from .message import DEFAULT_SUBJECT, Envelope, build_alert, single_line
from .outbox import Attempt, Failure, Outbox, OutboxStorage, Outcome, QueuedMessage
from .pool import PooledSession, SessionPool
from .render import RENDER_IN_THREAD_ABOVE, render_alert
from .replies import Reply
from .retry import Disposition, ErrorKind, RetryPolicy, decide, error_kind
from .smarthost import MxRecord, SmartHost, SmartHostResolver, is_exchange_online_host
from .transport import (
    MAX_RECIPIENTS,
    DeliveryResult,
    SessionInfo,
    SmtpSession,
    TlsDetails,
    TransportSettings,
    is_too_many_recipients,
    require_secure_context,
)

__all__ = [
    "DEFAULT_SUBJECT",
    "MAX_RECIPIENTS",
    "RENDER_IN_THREAD_ABOVE",
    "Attempt",
    "ConnectFailedError",
    "ConnectTimeoutError",
    "DeliveryResult",
    "DirectSendClient",
    "DirectSendError",
    "DisconnectedError",
    "DiscoveryError",
    "Disposition",
    "DnsLookupError",
    "Envelope",
    "ErrorKind",
    "Failure",
    "InvalidAddressError",
    "MxRecord",
    "NoMxError",
    "NotExchangeOnlineError",
    "Outbox",
    "OutboxStorage",
    "Outcome",
    "PooledSession",
    "ProbeResult",
    "QueuedMessage",
    "RecipientOutsideExchangeOnlineError",
    "RecipientsRefusedError",
    "Reply",
    "ReplyError",
    "RetryPolicy",
    "SessionInfo",
    "SessionPool",
    "SmartHost",
    "SmartHostResolver",
    "SmtpSession",
    "StartTlsUnavailableError",
    "TlsDetails",
    "TlsError",
    "TransportError",
    "TransportSettings",
    "build_alert",
    "decide",
    "domain_of",
    "error_kind",
    "is_exchange_online_host",
    "is_ip_literal",
    "is_too_many_recipients",
    "normalize_address",
    "normalize_domain",
    "render_alert",
    "require_secure_context",
    "single_line",
]

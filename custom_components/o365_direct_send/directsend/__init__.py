"""Direct Send to Exchange Online: the protocol core, free of Home Assistant."""

from .addresses import domain_of, is_ip_literal, normalize_address, normalize_domain
from .client import DirectSendClient, ProbeResult
from .errors import (
    ConnectFailedError,
    ConnectTimeoutError,
    DirectSendError,
    DiscoveryError,
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
from .message import DEFAULT_SUBJECT, Envelope, build_alert, single_line
from .replies import Reply
from .smarthost import MxRecord, SmartHost, SmartHostResolver, is_exchange_online_host
from .transport import (
    DeliveryResult,
    SessionInfo,
    SmtpSession,
    TlsDetails,
    TransportSettings,
    require_secure_context,
)

__all__ = [
    "DEFAULT_SUBJECT",
    "ConnectFailedError",
    "ConnectTimeoutError",
    "DeliveryResult",
    "DirectSendClient",
    "DirectSendError",
    "DisconnectedError",
    "DiscoveryError",
    "DnsLookupError",
    "Envelope",
    "InvalidAddressError",
    "MxRecord",
    "NoMxError",
    "NotExchangeOnlineError",
    "ProbeResult",
    "RecipientOutsideExchangeOnlineError",
    "RecipientsRefusedError",
    "Reply",
    "ReplyError",
    "SessionInfo",
    "SmartHost",
    "SmartHostResolver",
    "SmtpSession",
    "StartTlsUnavailableError",
    "TlsDetails",
    "TlsError",
    "TransportError",
    "TransportSettings",
    "build_alert",
    "domain_of",
    "is_exchange_online_host",
    "is_ip_literal",
    "normalize_address",
    "normalize_domain",
    "require_secure_context",
    "single_line",
]

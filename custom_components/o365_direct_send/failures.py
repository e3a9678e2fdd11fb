"""Turn Direct Send core errors into translation keys and placeholders."""

from __future__ import annotations

from .directsend import (
    ConnectFailedError,
    ConnectTimeoutError,
    DirectSendError,
    DisconnectedError,
    DnsLookupError,
    InvalidAddressError,
    NoMxError,
    NotExchangeOnlineError,
    RecipientOutsideExchangeOnlineError,
    RecipientsRefusedError,
    Reply,
    ReplyError,
    StartTlsUnavailableError,
    TlsError,
    TransportError,
)
from .directsend.replies import classify as classify_reply


def describe_refusals(refused: dict[str, Reply | None]) -> str:
    """List refused recipients with the reply each one got."""
    return "; ".join(
        f"{address}: {reply if reply is not None else 'expired'}"
        for address, reply in refused.items()
    )


def translate_reply(reply: Reply, host: str | None) -> tuple[str, dict[str, str]]:
    """Return the translation key and placeholders that explain a server reply."""
    classification = classify_reply(reply, host)
    return classification.key.value, classification.placeholders


def translate_error(err: DirectSendError) -> tuple[str, dict[str, str]]:
    """Return the translation key and placeholders that explain an error."""
    match err:
        case RecipientOutsideExchangeOnlineError():
            return "recipient_not_in_tenant", {
                "address": err.address,
                "host": err.host or "-",
            }
        case NotExchangeOnlineError():
            return "not_exchange_online", {"domain": err.domain, "host": err.host}
        case NoMxError():
            return "no_mx", {"domain": err.domain}
        case DnsLookupError():
            return "dns_failed", {"domain": err.domain, "error": str(err)}
        case ConnectTimeoutError():
            return "port_blocked", {"host": err.host}
        case ConnectFailedError():
            return "cannot_connect", {"host": err.host, "error": str(err)}
        case StartTlsUnavailableError():
            return "starttls_unavailable", {"host": err.host}
        case TlsError():
            return "tls_failed", {"host": err.host, "error": str(err)}
        case ReplyError():
            return translate_reply(err.reply, err.host)
        case RecipientsRefusedError():
            return "recipients_refused", {
                "host": err.host,
                "refusals": describe_refusals(dict(err.refused)),
            }
        case DisconnectedError():
            return "disconnected", {"host": err.host, "error": str(err)}
        case InvalidAddressError():
            return "invalid_address", {"address": err.value}
        case TransportError():
            return "transport_failed", {"host": err.host, "error": str(err)}
    return "unexpected_error", {"error": str(err)}

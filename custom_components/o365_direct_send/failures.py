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


def describe_refusals(refused: dict[str, Reply]) -> str:
    """List refused recipients with the reply each one got."""
    return "; ".join(f"{address}: {reply}" for address, reply in refused.items())


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
            return "smtp_refused", {
                "host": err.host,
                "code": str(err.reply.code),
                "text": err.reply.text,
            }
        case RecipientsRefusedError():
            return "recipients_refused", {
                "host": err.host,
                "refusals": describe_refusals(err.refused),
            }
        case DisconnectedError():
            return "disconnected", {"host": err.host, "error": str(err)}
        case InvalidAddressError():
            return "invalid_address", {"address": err.value}
        case TransportError():
            return "transport_failed", {"host": err.host, "error": str(err)}
    return "unexpected_error", {"error": str(err)}

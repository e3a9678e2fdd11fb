"""Errors raised by the Direct Send core, each naming what went wrong."""

from __future__ import annotations

from .replies import Reply


class DirectSendError(Exception):
    """Base class of every error the Direct Send core raises."""


class InvalidAddressError(DirectSendError):
    """An e-mail address or domain is not usable."""

    def __init__(self, value: str) -> None:
        """Name the rejected value."""
        super().__init__(f"Not a valid address or domain: {value!r}")
        self.value = value


class DiscoveryError(DirectSendError):
    """The smart host of a domain could not be found."""

    def __init__(self, domain: str, message: str) -> None:
        """Name the domain that failed."""
        super().__init__(f"{domain}: {message}")
        self.domain = domain


class NoMxError(DiscoveryError):
    """The domain does not exist or publishes no MX record."""


class DnsLookupError(DiscoveryError):
    """DNS did not answer in time or answered with a server failure."""


class NotExchangeOnlineError(DiscoveryError):
    """The domain's MX is not an Exchange Online endpoint."""

    def __init__(self, domain: str, host: str) -> None:
        """Name the domain and the MX host that was found."""
        super().__init__(domain, f"MX {host} is not Exchange Online")
        self.host = host


class TransportError(DirectSendError):
    """The SMTP session with the smart host failed."""

    # The command of a mail transaction that failed ("MAIL", "RCPT" or "DATA"),
    # or None outside a transaction: only a failure at MAIL proves nothing was sent.
    stage: str | None = None

    def __init__(self, host: str, message: str) -> None:
        """Name the smart host."""
        super().__init__(f"{host}: {message}")
        self.host = host


class ConnectFailedError(TransportError):
    """The TCP connection to the smart host was refused or could not be made."""


class ConnectTimeoutError(TransportError):
    """The smart host did not answer in time (outbound port 25 is often blocked)."""


class StartTlsUnavailableError(TransportError):
    """The smart host did not offer STARTTLS, so nothing was sent."""


class TlsError(TransportError):
    """The TLS handshake failed or the certificate did not verify."""


class DisconnectedError(TransportError):
    """The smart host closed the connection or stopped answering mid-session."""


class ReplyError(TransportError):
    """The smart host answered a command with an error reply."""

    def __init__(self, host: str, reply: Reply) -> None:
        """Keep the reply that refused the command."""
        super().__init__(host, str(reply))
        self.reply = reply


class RecipientsRefusedError(TransportError):
    """The smart host refused every recipient of a message."""

    def __init__(self, host: str, refused: dict[str, Reply]) -> None:
        """Keep the reply given for each refused recipient."""
        details = "; ".join(f"{rcpt}: {reply}" for rcpt, reply in refused.items())
        super().__init__(host, f"all recipients refused ({details})")
        self.refused = refused


class RecipientOutsideExchangeOnlineError(DirectSendError):
    """A recipient's domain is not hosted in Exchange Online."""

    def __init__(self, address: str, host: str | None) -> None:
        """Name the address and the MX host found for its domain, if any."""
        found = f"its MX is {host}" if host else "its domain has no MX"
        super().__init__(f"{address} is not in Exchange Online: {found}")
        self.address = address
        self.host = host


class RecipientInOtherCloudError(RecipientOutsideExchangeOnlineError):
    """A recipient's mailbox is in another Microsoft cloud than the smart host's."""

    def __init__(self, address: str, host: str, smart_host: str) -> None:
        """Name the address, the MX host of its domain and the smart host used."""
        DirectSendError.__init__(
            self,
            f"{address} is in another Microsoft cloud: its MX is {host}, "
            f"which {smart_host} does not serve",
        )
        self.address = address
        self.host = host
        self.smart_host = smart_host

"""Alert messages as RFC 5322 mail: headers that cannot be injected, UTF-8 bodies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
import re

DEFAULT_SUBJECT = "Home Assistant alert"
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """The SMTP envelope and rendered bytes of one message."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    data: bytes


def single_line(text: str) -> str:
    """Fold every line break into a space so a value cannot start a new header."""
    return _LINE_BREAKS.sub(" ", text).strip()


def build_alert(
    *,
    sender: str,
    sender_name: str | None,
    recipients: Sequence[str],
    title: str | None,
    body: str,
    message_id: str | None = None,
    date: datetime | None = None,
) -> Envelope:
    """Build a plain-text alert from the sender to every recipient in To."""
    local, _, domain = sender.rpartition("@")
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(single_line(sender_name or ""), local, domain)
    message["To"] = ", ".join(recipients)
    message["Subject"] = single_line(title or "") or DEFAULT_SUBJECT
    message["Date"] = format_datetime(date or datetime.now(UTC))
    message["Message-ID"] = message_id or make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    return Envelope(
        message_id=message["Message-ID"],
        sender=sender,
        recipients=tuple(recipients),
        data=message.as_bytes(policy=SMTP),
    )

"""Alert messages: headers, encoding and header injection."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

from custom_components.o365_direct_send.directsend import DEFAULT_SUBJECT, build_alert


def _parse(data: bytes) -> EmailMessage:
    """Parse rendered bytes the way a mail client would."""
    parsed = message_from_bytes(data, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_alert_has_the_headers_a_mailbox_expects() -> None:
    """From with a display name, To, Subject, Date and a Message-ID in the domain."""
    envelope = build_alert(
        sender="alerts@contoso.com",
        sender_name="Home Assistant",
        recipients=["it@contoso.com", "ops@contoso.com"],
        title="Freezer warm",
        body="The freezer is at -5 °C.",
        date=datetime(2026, 12, 4, 8, 30, tzinfo=UTC),
    )
    parsed = _parse(envelope.data)
    assert parsed["From"] == "Home Assistant <alerts@contoso.com>"
    assert parsed["To"] == "it@contoso.com, ops@contoso.com"
    assert parsed["Subject"] == "Freezer warm"
    assert parsed["Date"] == "Fri, 04 Dec 2026 08:30:00 +0000"
    assert parsed["Message-ID"] == envelope.message_id
    assert envelope.message_id.endswith("@contoso.com>")
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert envelope.sender == "alerts@contoso.com"
    assert envelope.recipients == ("it@contoso.com", "ops@contoso.com")
    assert b"\r\n" in envelope.data
    assert all(byte < 0x80 for byte in envelope.data)


def test_non_ascii_round_trips() -> None:
    """Umlauts, emoji and degree signs survive in name, subject and body."""
    envelope = build_alert(
        sender="alerts@contoso.com",
        sender_name="Hüttenwärter 🏠",
        recipients=["it@contoso.com"],
        title="Kühlschrank 8 °C 🥵",
        body="Grüße aus dem Keller: 8 °C 🥵\nZweite Zeile",
    )
    parsed = _parse(envelope.data)
    assert parsed["Subject"] == "Kühlschrank 8 °C 🥵"
    assert parsed["From"].addresses[0].display_name == "Hüttenwärter 🏠"
    body = parsed.get_content().replace("\r\n", "\n")
    assert body == "Grüße aus dem Keller: 8 °C 🥵\nZweite Zeile\n"


def test_line_breaks_in_title_never_make_a_header() -> None:
    """CR/LF in the title or name is folded into the subject, not a new header."""
    envelope = build_alert(
        sender="alerts@contoso.com",
        sender_name="HA\r\nX-Injected: name",
        recipients=["it@contoso.com"],
        title="Alarm\r\nBcc: attacker@evil.example\nX-Injected: yes",
        body="body",
    )
    parsed = _parse(envelope.data)
    assert parsed["Bcc"] is None
    assert parsed["X-Injected"] is None
    assert parsed["Subject"] == "Alarm Bcc: attacker@evil.example X-Injected: yes"


def test_missing_title_gets_a_default_subject() -> None:
    """Without a title, or with a blank one, the subject says what the mail is."""
    for title in (None, "", " \r\n "):
        envelope = build_alert(
            sender="alerts@contoso.com",
            sender_name=None,
            recipients=["it@contoso.com"],
            title=title,
            body="body",
        )
        parsed = _parse(envelope.data)
        assert parsed["Subject"] == DEFAULT_SUBJECT
        assert parsed["From"] == "alerts@contoso.com"


def test_message_id_is_kept_when_given() -> None:
    """A message built again for a retry keeps its Message-ID."""
    envelope = build_alert(
        sender="alerts@contoso.com",
        sender_name=None,
        recipients=["it@contoso.com"],
        title="t",
        body="b",
        message_id="<fixed@contoso.com>",
    )
    assert _parse(envelope.data)["Message-ID"] == "<fixed@contoso.com>"

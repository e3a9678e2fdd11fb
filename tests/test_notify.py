"""Sending alerts with notify.send_message, checked on the bytes the server got."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

from homeassistant.components.notify import (
    ATTR_MESSAGE,
    ATTR_TITLE,
    DOMAIN as NOTIFY_DOMAIN,
    SERVICE_SEND_MESSAGE,
    NotifyEntityFeature,
)
from homeassistant.const import ATTR_ENTITY_ID, ATTR_SUPPORTED_FEATURES
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.loopback import DnsResponder, SmartHost

from .conftest import MX_HOST, RECIPIENTS, SENDER, mx_served_by

ENTITY_ID = "notify.contoso_com_mail"

pytestmark = pytest.mark.usefixtures("short_timeouts", "init_integration")


async def _send(hass: HomeAssistant, message: str, title: str | None = None) -> None:
    """Send through the notify entity the way an automation does."""
    data = {ATTR_ENTITY_ID: ENTITY_ID, ATTR_MESSAGE: message}
    if title is not None:
        data[ATTR_TITLE] = title
    await hass.services.async_call(
        NOTIFY_DOMAIN, SERVICE_SEND_MESSAGE, data, blocking=True
    )


def _parse(data: bytes) -> EmailMessage:
    """Parse the received bytes as a mail client would."""
    parsed = message_from_bytes(data, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def test_entity_is_named_and_grouped_under_the_tenant(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The entity has a translated name, title support and a service device."""
    state = hass.states.get(ENTITY_ID)
    assert state is not None
    assert state.attributes[ATTR_SUPPORTED_FEATURES] == NotifyEntityFeature.TITLE
    entry = entity_registry.async_get(ENTITY_ID)
    assert entry is not None
    assert entry.unique_id == f"{SENDER}_notify"
    assert entry.translation_key == "mail"
    assert entry.device_id is not None
    device = device_registry.async_get(entry.device_id)
    # A main device, not a child: Home Assistant 2026.10 can return a ChildDeviceEntry,
    # which has no entry_type.
    assert isinstance(device, dr.DeviceEntry)
    assert device.name == "contoso.com"
    assert device.entry_type is dr.DeviceEntryType.SERVICE
    assert device.identifiers == {("o365_direct_send", init_integration.entry_id)}


async def test_alert_arrives_with_the_right_envelope_and_headers(
    hass: HomeAssistant, smart_host: SmartHost
) -> None:
    """One mail over TLS, every default recipient in To, the title as Subject."""
    await _send(hass, "The freezer is at -5 °C.", "Freezer warm")
    [received] = smart_host.messages
    assert received.tls
    assert received.mail_from == SENDER
    assert received.rcpt_tos == tuple(RECIPIENTS)
    parsed = _parse(received.data)
    assert parsed["From"] == f"Home Assistant <{SENDER}>"
    assert parsed["To"] == ", ".join(RECIPIENTS)
    assert parsed["Subject"] == "Freezer warm"
    assert parsed["Date"] is not None
    assert parsed["Message-ID"].endswith("@contoso.com>")
    assert parsed.get_content().rstrip() == "The freezer is at -5 °C."


async def test_non_ascii_round_trips(
    hass: HomeAssistant, smart_host: SmartHost
) -> None:
    """Umlauts, emoji and degree signs survive subject and body."""
    await _send(hass, "Keller: 8 °C, Wasser auf dem Boden 💧", "Kühlraum 🥵 8 °C")
    parsed = _parse(smart_host.messages[0].data)
    assert parsed["Subject"] == "Kühlraum 🥵 8 °C"
    assert "Keller: 8 °C, Wasser auf dem Boden 💧" in parsed.get_content()


async def test_default_subject_without_title(
    hass: HomeAssistant, smart_host: SmartHost
) -> None:
    """Without a title the subject still says what the mail is."""
    await _send(hass, "Door open")
    assert _parse(smart_host.messages[0].data)["Subject"] == "Home Assistant alert"


async def test_title_with_line_breaks_adds_no_header(
    hass: HomeAssistant, smart_host: SmartHost
) -> None:
    """CR/LF in a title cannot inject Bcc or any other header."""
    await _send(hass, "body", "Alarm\r\nBcc: attacker@evil.example")
    [received] = smart_host.messages
    assert received.rcpt_tos == tuple(RECIPIENTS)
    parsed = _parse(received.data)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Alarm Bcc: attacker@evil.example"


async def test_permanent_refusal_names_code_and_text(
    hass: HomeAssistant, smart_host: SmartHost
) -> None:
    """A 5xx reply reaches the caller as a translated error with code and text."""
    smart_host.reply_at(
        "MAIL",
        "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this "
        "organization from unauthorized sources",
    )
    with pytest.raises(
        HomeAssistantError,
        match=r"tenant rejects Direct Send .*\(550 5\.7\.68 TenantInboundAttribution",
    ):
        await _send(hass, "body", "title")
    assert smart_host.messages == []


async def test_partial_refusal_is_reported(
    hass: HomeAssistant, smart_host: SmartHost
) -> None:
    """When one recipient is refused, the caller learns who got it and who not."""
    smart_host.reply_at(
        "RCPT",
        "550 5.4.1 Recipient address rejected: Access denied",
        recipient="ops@contoso.com",
    )
    with pytest.raises(
        HomeAssistantError,
        match=(
            r"refused for good: ops@contoso\.com: 550 5\.4\.1 .*"
            r"Delivered to: it@contoso\.com\. Still queued for a retry: -"
        ),
    ):
        await _send(hass, "body")
    assert smart_host.delivered_to("it@contoso.com") == 1
    assert smart_host.delivered_to("ops@contoso.com") == 0


async def test_all_recipients_refused(
    hass: HomeAssistant, smart_host: SmartHost
) -> None:
    """When every recipient is refused, each refusal is named."""
    smart_host.reply_at(
        "RCPT", "550 5.7.64 TenantAttribution; Relay Access Denied", times=2
    )
    with pytest.raises(
        HomeAssistantError,
        match=rf"{MX_HOST} refused every recipient for good: .*5\.7\.64",
    ):
        await _send(hass, "body")
    assert smart_host.messages == []


async def test_server_without_starttls_gets_nothing(
    hass: HomeAssistant, dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """A smart host that does not offer STARTTLS receives no mail at all."""
    async with mx_served_by(
        dns_server, smart_host, "127.0.0.2", starttls=False
    ) as plain:
        with pytest.raises(HomeAssistantError, match="did not offer STARTTLS"):
            await _send(hass, "secret sensor values")
        assert plain.messages == []


async def test_certificate_for_another_name_gets_nothing(
    hass: HomeAssistant, dns_server: DnsResponder, smart_host: SmartHost
) -> None:
    """A certificate that does not match the MX name stops the send."""
    async with mx_served_by(
        dns_server, smart_host, "127.0.0.3", cert_hostname="mail.example.net"
    ) as impostor:
        with pytest.raises(HomeAssistantError, match=r"TLS connection to \S+ failed"):
            await _send(hass, "secret sensor values")
        assert impostor.messages == []

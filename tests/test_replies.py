"""Every Microsoft reply, answered by a loopback smart host, told to the user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.o365_direct_send.const import DOMAIN
from tests.loopback import SmartHost
from tests.loopback.smtp_script import Verb

from .conftest import RECIPIENTS

pytestmark = pytest.mark.usefixtures("short_timeouts")


@dataclass(frozen=True)
class Case:
    """A reply from the table in DIRECT_SEND.md and what the user must see."""

    reply: str
    verb: Verb
    key: str
    permanent: bool
    repair: str | None = None


CASES = [
    Case(
        "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this "
        "organization from unauthorized sources",
        "MAIL",
        "reject_direct_send",
        permanent=True,
        repair="reject_direct_send",
    ),
    Case(
        "550 5.7.64 TenantAttribution; Relay Access Denied",
        "RCPT",
        "relay_denied",
        permanent=True,
    ),
    Case(
        "550 5.4.1 Recipient address rejected: Access denied",
        "RCPT",
        "recipient_unknown",
        permanent=True,
    ),
    Case(
        "550 5.7.606 Access denied, banned sending IP [203.0.113.5]",
        "MAIL",
        "ip_banned",
        permanent=True,
        repair="ip_blocked",
    ),
    Case(
        "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP",
        "MAIL",
        "ip_reputation",
        permanent=True,
        repair="ip_blocked",
    ),
    Case(
        "550 5.7.1 Service unavailable, Client host [203.0.113.5] blocked using Spamhaus",
        "MAIL",
        "ip_blocklisted",
        permanent=True,
        repair="ip_blocked",
    ),
    Case(
        "550 5.7.512 Access denied, message must be RFC 5322 section 3.6.2 compliant",
        "DATA",
        "bad_from",
        permanent=True,
    ),
    Case("550 5.7.506 Access Denied, Bad HELO", "MAIL", "bad_helo", permanent=True),
    Case(
        "530 5.7.57 Client not authenticated to send mail",
        "MAIL",
        "client_submission",
        permanent=True,
        repair="client_submission",
    ),
    Case(
        "451 5.7.3 STARTTLS is required to send mail",
        "MAIL",
        "client_submission",
        permanent=False,
        repair="client_submission",
    ),
    Case(
        "451 4.7.500 Server busy. Please try again later",
        "MAIL",
        "ip_throttled",
        permanent=False,
    ),
    Case("421 4.3.2 Service not available", "MAIL", "service_busy", permanent=False),
    Case("451 4.7.0 Temporary server error", "DATA", "service_busy", permanent=False),
    Case(
        "452 4.5.3 Too many recipients", "RCPT", "too_many_recipients", permanent=False
    ),
    Case(
        "451 4.4.62 Mail sent to the wrong Office 365 region",
        "MAIL",
        "wrong_region",
        permanent=False,
    ),
]


async def _send(hass: HomeAssistant) -> None:
    """Send an alert through the notify entity."""
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.contoso_com_mail", "message": "Freezer warm"},
        blocking=True,
    )


def _state(hass: HomeAssistant, entity_id: str) -> str:
    """Return the state of an entity that must exist."""
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


@pytest.mark.parametrize("case", CASES, ids=[f"{c.reply[:3]}-{c.key}" for c in CASES])
async def test_reply_is_explained_where_the_user_looks(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    smart_host: SmartHost,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
    case: Case,
) -> None:
    """The error, the last-failure state and the repair name what happened."""
    times = len(RECIPIENTS) if case.verb == "RCPT" else 1
    smart_host.reply_at(case.verb, case.reply, times=times)
    issue_id = f"{case.repair}_{init_integration.entry_id}"
    code = case.reply[:3]

    if case.permanent:
        with pytest.raises(HomeAssistantError) as caught:
            await _send(hass)
        expected_key = "recipients_refused" if case.verb == "RCPT" else case.key
        assert caught.value.translation_key == expected_key
        assert code in str(caught.value)
        assert _state(hass, "sensor.contoso_com_queued_alerts") == "0"
    else:
        await _send(hass)
        assert _state(hass, "sensor.contoso_com_queued_alerts") == "1"
    assert _state(hass, "sensor.contoso_com_last_failure") == case.key
    assert _state(hass, "binary_sensor.contoso_com_delivery_problem") == "on"
    assert (issue_registry.async_get_issue(DOMAIN, issue_id) is not None) is (
        case.repair is not None
    )
    assert smart_host.messages == []

    if case.permanent:
        await _send(hass)
    else:
        for _ in range(3):
            freezer.tick(timedelta(minutes=5))
            async_fire_time_changed(hass)
            await hass.async_block_till_done()
    assert smart_host.delivered_to(RECIPIENTS[0]) == 1
    assert _state(hass, "binary_sensor.contoso_com_delivery_problem") == "off"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None

"""Alerts are never lost: the outbox behind notify.send_message, seen by the user."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.o365_direct_send.const import (
    CONF_MAX_AGE_HOURS,
    DOMAIN,
    EVENT_DELIVERY_FAILED,
)
from tests.loopback import SmartHost

from .conftest import RECIPIENTS

QUEUED = "sensor.contoso_com_queued_alerts"
LAST_DELIVERED = "sensor.contoso_com_last_delivered"
LAST_FAILURE = "sensor.contoso_com_last_failure"
PROBLEM = "binary_sensor.contoso_com_delivery_problem"

pytestmark = pytest.mark.usefixtures("short_timeouts", "init_integration")


async def _send(hass: HomeAssistant, message: str = "Water on the floor") -> None:
    """Send an alert through the notify entity."""
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.contoso_com_mail", "message": message},
        blocking=True,
    )


async def _advance(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float
) -> None:
    """Let time pass so that due retries run."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


def _state(hass: HomeAssistant, entity_id: str) -> str:
    """Return the state of an entity that must exist."""
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


async def test_status_entities_start_quiet(hass: HomeAssistant) -> None:
    """A fresh entry has an empty queue and no problem."""
    assert _state(hass, QUEUED) == "0"
    assert _state(hass, LAST_DELIVERED) == "unknown"
    assert _state(hass, LAST_FAILURE) == "unknown"
    assert _state(hass, PROBLEM) == "off"


async def test_busy_server_queues_then_delivers_once(
    hass: HomeAssistant, smart_host: SmartHost, freezer: FrozenDateTimeFactory
) -> None:
    """A 451 queues the alert without an error; the retry delivers it exactly once."""
    smart_host.reply_at(
        "RCPT", "451 4.7.500 Server busy. Please try again later", times=len(RECIPIENTS)
    )
    await _send(hass)
    assert smart_host.messages == []
    assert _state(hass, QUEUED) == "1"
    assert _state(hass, PROBLEM) == "on"
    assert _state(hass, LAST_FAILURE) == "ip_throttled"
    failure = hass.states.get(LAST_FAILURE)
    assert failure is not None
    assert failure.attributes["reply_code"] == 451

    await _advance(hass, freezer, 60)
    for address in RECIPIENTS:
        assert smart_host.delivered_to(address) == 1
    assert _state(hass, QUEUED) == "0"
    assert _state(hass, PROBLEM) == "off"
    assert _state(hass, LAST_DELIVERED) != "unknown"

    await _advance(hass, freezer, 3600)
    assert len(smart_host.messages) == 1


async def test_permanent_refusal_fires_event_and_repair(
    hass: HomeAssistant, smart_host: SmartHost, issue_registry: ir.IssueRegistry
) -> None:
    """Reject Direct Send: an error, an event for fallbacks, a repair issue."""
    events = async_capture_events(hass, EVENT_DELIVERY_FAILED)
    smart_host.reply_at(
        "MAIL",
        "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this "
        "organization from unauthorized sources",
    )
    with pytest.raises(HomeAssistantError, match="rejects Direct Send"):
        await _send(hass)
    await hass.async_block_till_done()
    assert _state(hass, QUEUED) == "0"
    assert _state(hass, LAST_FAILURE) == "reject_direct_send"
    [event] = events
    assert event.data["outcome"] == "failed"
    assert event.data["recipients"] == RECIPIENTS
    assert event.data["reply_code"] == 550
    assert "5.7.68" in event.data["reply_text"]
    issue = next(
        issue
        for (domain, _), issue in issue_registry.issues.items()
        if domain == DOMAIN and issue.translation_key == "reject_direct_send"
    )
    assert issue.severity is ir.IssueSeverity.ERROR

    await _send(hass, "after the admin added a connector")
    assert not [
        issue
        for (domain, _), issue in issue_registry.issues.items()
        if domain == DOMAIN
    ]
    assert _state(hass, PROBLEM) == "off"


async def test_queued_alerts_survive_a_restart(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    smart_host: SmartHost,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Alerts queued when Home Assistant stops are delivered once after it starts."""
    smart_host.reply_at("MAIL", "421 4.3.2 Service not available", times=3)
    for number in range(3):
        await _send(hass, f"alert {number}")
    assert _state(hass, QUEUED) == "3"
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.NOT_LOADED

    assert await hass.config_entries.async_setup(init_integration.entry_id)
    await hass.async_block_till_done()
    assert _state(hass, QUEUED) == "3"
    await _advance(hass, freezer, 60)
    assert _state(hass, QUEUED) == "0"
    bodies = sorted(
        m.data.split(b"\r\n\r\n", 1)[1].strip() for m in smart_host.messages
    )
    assert bodies == [b"alert 0", b"alert 1", b"alert 2"]
    for address in RECIPIENTS:
        assert smart_host.delivered_to(address) == 3


async def test_stale_alert_expires_and_the_user_is_told(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    smart_host: SmartHost,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An alert that cannot be delivered within the maximum age is dropped, loudly."""
    hass.config_entries.async_update_entry(
        init_integration,
        options={**init_integration.options, CONF_MAX_AGE_HOURS: 1},
    )
    await hass.async_block_till_done()
    events = async_capture_events(hass, EVENT_DELIVERY_FAILED)
    smart_host.reply_at("MAIL", "451 4.4.3 Temporary server error", times=None)
    await _send(hass)
    for _ in range(8):
        await _advance(hass, freezer, 900)
    assert _state(hass, QUEUED) == "0"
    assert smart_host.messages == []
    [event] = events
    assert event.data["outcome"] == "expired"
    assert event.data["recipients"] == RECIPIENTS
    assert _state(hass, LAST_FAILURE) == "expired"


async def test_failing_delivery_is_logged_once_and_its_recovery_too(
    hass: HomeAssistant,
    smart_host: SmartHost,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One warning when alerts stop getting through, one line when they resume."""
    smart_host.reply_at("MAIL", "451 4.4.3 Temporary server error", times=3)
    await _send(hass)
    for _ in range(3):
        await _advance(hass, freezer, 900)
    warnings = [
        record
        for record in caplog.records
        if record.levelname == "WARNING" and record.name.startswith("custom_components")
    ]
    assert len(warnings) == 1
    assert "will retry" in warnings[0].getMessage()
    assert "Alerts are delivered again" in caplog.text
    assert smart_host.delivered_to(RECIPIENTS[0]) == 1

"""Setting up and unloading an entry, and the network it uses."""

from __future__ import annotations

from pathlib import Path
import ssl
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.o365_direct_send.const import DEVELOPMENT_ENV
from custom_components.o365_direct_send.network import (
    async_create_client,
    async_get_network,
    load_network,
)
from tests.loopback import DnsResponder, SmartHost

from .conftest import MX_HOST


async def test_setup_finds_the_smart_host_and_unload_releases_it(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A loaded entry carries the smart host; unloading removes the entity."""
    assert init_integration.state is ConfigEntryState.LOADED
    assert init_integration.runtime_data.smart_host.host == MX_HOST
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.NOT_LOADED
    state = hass.states.get("notify.contoso_com_mail")
    assert state is not None
    assert state.state == "unavailable"


@pytest.mark.usefixtures("development_network", "short_timeouts")
async def test_setup_does_not_wait_for_dns(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    dns_server: DnsResponder,
    smart_host: SmartHost,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With DNS down at boot the entry loads, and an alert waits in the outbox."""
    dns_server.drop("contoso.com")
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert mock_config_entry.runtime_data.smart_host is None
    assert "The smart host of contoso.com is not known yet" in caplog.text
    await _send(hass, "power is back")
    state = hass.states.get("sensor.contoso_com_queued_alerts")
    assert state is not None
    assert state.state == "1"
    assert smart_host.messages == []


@pytest.mark.usefixtures("development_network", "short_timeouts")
async def test_mx_that_left_exchange_online_is_a_repair(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    dns_server: DnsResponder,
    issue_registry: ir.IssueRegistry,
) -> None:
    """An MX that moved to a gateway is a repair naming the new host."""
    dns_server.remove("contoso.com")
    dns_server.add_mx("contoso.com", [(10, "mx.gateway.example")])
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert mock_config_entry.state is ConfigEntryState.LOADED
    issue = issue_registry.async_get_issue(
        "o365_direct_send", f"not_exchange_online_{mock_config_entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["host"] == "mx.gateway.example"
    with pytest.raises(HomeAssistantError, match=r"mx\.gateway\.example"):
        await _send(hass, "cannot go out")


def test_without_development_file_the_real_network_is_used() -> None:
    """A real installation uses system DNS, port 25 and Home Assistant's CA store."""
    network = load_network(None)
    assert network.nameservers is None
    assert network.dns_port == 53
    assert network.smtp_port == 25
    assert network.tls_context.verify_mode == ssl.CERT_REQUIRED
    assert network.tls_context.check_hostname


async def test_client_on_the_system_resolver(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the development file the client dials port 25 and system DNS."""
    monkeypatch.delenv(DEVELOPMENT_ENV, raising=False)
    client = await async_create_client(hass, timeout=5.0)
    assert client.settings.port == 25
    assert client.settings.timeout == 5.0
    assert await async_get_network(hass) is await async_get_network(hass)


async def test_development_file_points_at_loopback(
    hass: HomeAssistant, development_network: Path, dns_server: DnsResponder
) -> None:
    """The development file replaces nameservers, smart host port and CA."""
    network = await async_get_network(hass)
    assert network.nameservers == ["127.0.0.1"]
    assert network.dns_port == dns_server.port
    assert network.smtp_port != 25


async def test_removing_the_entry_deletes_its_outbox_and_issues(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_storage: dict[str, Any],
    smart_host: SmartHost,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A removed sender leaves no stored alerts and no repair issues behind."""
    smart_host.reply_at("MAIL", "550 5.7.68 TenantInboundAttribution; rejected")
    smart_host.reply_at("MAIL", "451 4.7.500 Server busy")
    with pytest.raises(HomeAssistantError, match="rejects Direct Send"):
        await _send(hass, "refused for good")
    await _send(hass, "queued for a retry")
    key = f"o365_direct_send.outbox.{init_integration.entry_id}"
    await hass.async_block_till_done()
    assert len(hass_storage[key]["data"]) == 1
    assert issue_registry.issues
    await hass.config_entries.async_remove(init_integration.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage
    assert not [
        i
        for (domain, _), i in issue_registry.issues.items()
        if domain == "o365_direct_send"
    ]


async def test_alert_sent_while_home_assistant_stops_is_kept(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_storage: dict[str, Any],
    smart_host: SmartHost,
) -> None:
    """After stop, sessions are closed; a late alert is stored for the next start."""
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    await _send(hass, "Home Assistant is shutting down")
    await hass.async_block_till_done()
    key = f"o365_direct_send.outbox.{init_integration.entry_id}"
    [stored] = hass_storage[key]["data"]
    assert "shutting down" in stored["data"]
    assert smart_host.messages == []


async def _send(hass: HomeAssistant, message: str) -> None:
    """Send an alert through the notify entity."""
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.contoso_com_mail", "message": message},
        blocking=True,
    )


@pytest.mark.usefixtures("development_network")
async def test_two_senders_share_one_network_load(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Entries set up together load the development settings, and warn, once."""
    second = MockConfigEntry(
        domain="o365_direct_send",
        unique_id="ha@fabrikam.com",
        data={"tenant_domain": "fabrikam.com", "sender": "ha@fabrikam.com"},
        options={"recipients": ["it@fabrikam.com"]},
    )
    mock_config_entry.add_to_hass(hass)
    second.add_to_hass(hass)
    assert await async_setup_component(hass, "o365_direct_send", {})
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert second.state is ConfigEntryState.LOADED
    assert caplog.text.count(f"{DEVELOPMENT_ENV} is set") == 1

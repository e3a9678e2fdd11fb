"""Changing recipients and limits, and moving an entry to another tenant or host."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.o365_direct_send import async_setup_entry
from custom_components.o365_direct_send.const import (
    CONF_MAX_AGE_HOURS,
    CONF_RECIPIENTS,
    CONF_SENDER,
    CONF_SENDER_NAME,
    CONF_SMART_HOST,
    CONF_TENANT_DOMAIN,
    DOMAIN,
)
from tests.loopback import DnsResponder, SmartHost

from .conftest import DANE_MX_HOST, MX_HOST, suggested_values

pytestmark = pytest.mark.usefixtures("short_timeouts")


async def test_options_change_recipients_and_reload(
    hass: HomeAssistant, init_integration: MockConfigEntry, smart_host: SmartHost
) -> None:
    """New recipients and a shorter maximum age take effect after a reload."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert suggested_values(result)[CONF_RECIPIENTS] == [
        "it@contoso.com",
        "ops@contoso.com",
    ]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_RECIPIENTS: ["facilities@fabrikam.com", "it@contoso.com"],
            CONF_SENDER_NAME: "  ",
            CONF_MAX_AGE_HOURS: 6,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    assert init_integration.options == {
        CONF_RECIPIENTS: ["facilities@fabrikam.com", "it@contoso.com"],
        CONF_SENDER_NAME: None,
        CONF_MAX_AGE_HOURS: 6,
    }
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.contoso_com_mail", "message": "after options"},
        blocking=True,
    )
    [received] = smart_host.messages
    assert received.rcpt_tos == ("facilities@fabrikam.com", "it@contoso.com")


@pytest.mark.parametrize(
    ("recipients", "error"),
    [
        (["it@contoso.com", "bad address"], "invalid_recipient"),
        ([], "no_recipients"),
        (["friend@gmail.example"], "recipient_not_in_tenant"),
    ],
)
async def test_options_refuse_bad_recipients(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    recipients: list[str],
    error: str,
) -> None:
    """Bad or external recipients are named, and the form keeps the input."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    user_input = {CONF_RECIPIENTS: recipients, CONF_MAX_AGE_HOURS: 24}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], user_input
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_RECIPIENTS: error}
    assert suggested_values(result)[CONF_RECIPIENTS] == recipients
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_RECIPIENTS: ["it@contoso.com"], CONF_MAX_AGE_HOURS: 24}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def _reconfigure(hass: HomeAssistant, entry: MockConfigEntry) -> ConfigFlowResult:
    """Open the reconfigure form of an entry."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    return result


async def test_reconfigure_to_another_tenant(
    hass: HomeAssistant, init_integration: MockConfigEntry, smart_host: SmartHost
) -> None:
    """Moving to another tenant and sender is probed, saved and reloaded."""
    result = await _reconfigure(hass, init_integration)
    assert suggested_values(result)[CONF_TENANT_DOMAIN] == "contoso.com"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_TENANT_DOMAIN: "fabrikam.com", CONF_SENDER: "ha@fabrikam.com"},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert init_integration.unique_id == "ha@fabrikam.com"
    assert init_integration.title == "ha@fabrikam.com"
    assert init_integration.data == {
        CONF_TENANT_DOMAIN: "fabrikam.com",
        CONF_SENDER: "ha@fabrikam.com",
        CONF_SMART_HOST: None,
    }
    assert init_integration.runtime_data.smart_host is not None
    assert init_integration.runtime_data.smart_host.host == DANE_MX_HOST


async def test_reconfigure_with_a_manual_smart_host(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    dns_server: DnsResponder,
    smart_host: SmartHost,
) -> None:
    """A manual Exchange Online host replaces the MX lookup after checks."""
    dns_server.add_a("contoso-com.r-v1.mx.microsoft", "127.0.0.1")
    result = await _reconfigure(hass, init_integration)
    bad = {
        CONF_TENANT_DOMAIN: "contoso.com",
        CONF_SENDER: "alerts@contoso.com",
        CONF_SMART_HOST: "52.101.0.1",
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], bad)
    assert result["errors"] == {CONF_SMART_HOST: "smart_host_ip_literal"}
    assert suggested_values(result) == bad
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**bad, CONF_SMART_HOST: "smtp.office365.com"}
    )
    assert result["errors"] == {CONF_SMART_HOST: "smart_host_not_exchange_online"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**bad, CONF_SMART_HOST: "contoso-com.r-v1.mx.microsoft"}
    )
    assert result["errors"] == {"base": "tls_failed"}
    assert result["description_placeholders"] is not None
    assert result["description_placeholders"]["host"] == "contoso-com.r-v1.mx.microsoft"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**bad, CONF_SMART_HOST: f"{MX_HOST.upper()}."}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert init_integration.data[CONF_SMART_HOST] == MX_HOST
    assert init_integration.runtime_data.smart_host is not None
    assert init_integration.runtime_data.smart_host.records[0].preference == 0
    mx_lookups = dns_server.queries.count(("contoso.com", "MX"))
    await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert dns_server.queries.count(("contoso.com", "MX")) == mx_lookups


async def test_reconfigure_errors_recover(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    smart_host: SmartHost,
    dns_server: DnsResponder,
) -> None:
    """A bad sender and a failing probe are shown; the corrected input saves."""
    result = await _reconfigure(hass, init_integration)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_TENANT_DOMAIN: "contoso.com", CONF_SENDER: "alerts@fabrikam.com"},
    )
    assert result["errors"] == {CONF_SENDER: "sender_not_in_domain"}
    smart_host.greeting("421 4.3.2 Service not available")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_TENANT_DOMAIN: "contoso.com", CONF_SENDER: "Alerts@contoso.com"},
    )
    assert result["errors"] == {"base": "service_busy"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_TENANT_DOMAIN: "contoso.com", CONF_SENDER: "Alerts@contoso.com"},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert init_integration.data[CONF_SENDER] == "Alerts@contoso.com"
    assert init_integration.runtime_data.smart_host.host == MX_HOST


async def test_reconfigure_to_a_sender_of_another_entry_aborts(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Two entries can never end up with the same sender."""
    other = MockConfigEntry(
        domain=DOMAIN,
        unique_id="ha@fabrikam.com",
        data={CONF_TENANT_DOMAIN: "fabrikam.com", CONF_SENDER: "ha@fabrikam.com"},
        options={CONF_RECIPIENTS: ["it@contoso.com"]},
    )
    other.add_to_hass(hass)
    result = await _reconfigure(hass, init_integration)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_TENANT_DOMAIN: "fabrikam.com", CONF_SENDER: "HA@fabrikam.com"},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reconfigured_sender_keeps_its_entities_and_reloads_once(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    smart_host: SmartHost,
) -> None:
    """Automations keep working: same entity ids, new unique ids, one reload."""
    before = {
        entity.entity_id
        for entity in er.async_entries_for_config_entry(
            entity_registry, init_integration.entry_id
        )
    }
    result = await _reconfigure(hass, init_integration)
    with patch(
        "custom_components.o365_direct_send.async_setup_entry",
        wraps=async_setup_entry,
    ) as setup:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {CONF_TENANT_DOMAIN: "contoso.com", CONF_SENDER: "ops@contoso.com"},
        )
        await hass.async_block_till_done(wait_background_tasks=True)
    assert result["reason"] == "reconfigure_successful"
    assert setup.call_count == 1
    after = er.async_entries_for_config_entry(
        entity_registry, init_integration.entry_id
    )
    assert {entity.entity_id for entity in after} == before
    assert all(entity.unique_id.startswith("ops@contoso.com_") for entity in after)
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.contoso_com_mail", "message": "from the new sender"},
        blocking=True,
    )
    assert smart_host.messages[-1].mail_from == "ops@contoso.com"


async def test_options_use_the_manual_smart_host(
    hass: HomeAssistant, dns_server: DnsResponder, development_network: Path
) -> None:
    """With a manual smart host, tenant recipients pass although the MX is elsewhere."""
    dns_server.remove("contoso.com", "MX")
    dns_server.add_mx("contoso.com", [(10, "mx.gateway.example")])
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="alerts@contoso.com",
        data={
            CONF_TENANT_DOMAIN: "contoso.com",
            CONF_SENDER: "alerts@contoso.com",
            CONF_SMART_HOST: MX_HOST,
        },
        options={CONF_RECIPIENTS: ["it@contoso.com"], CONF_MAX_AGE_HOURS: 24},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_RECIPIENTS: ["it@contoso.com", "ops@contoso.com"],
            CONF_MAX_AGE_HOURS: 24,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY

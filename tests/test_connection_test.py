"""The connection test action and button: what the user learns, and the repairs."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.o365_direct_send.const import DOMAIN
from tests.loopback import DnsResponder, SmartHost

from .conftest import MX_HOST, mx_served_by

pytestmark = pytest.mark.usefixtures("short_timeouts")

COVERING_SPF = "v=spf1 ip4:127.0.0.1 include:spf.protection.outlook.com ~all"
MICROSOFT_SPF = "v=spf1 ip4:40.92.0.0/15 ip4:52.100.0.0/14 -all"


@pytest.fixture
def spf(dns_server: DnsResponder) -> DnsResponder:
    """Publish Microsoft's SPF include; the tenant's own record is up to the test."""
    dns_server.add_txt("spf.protection.outlook.com", [MICROSOFT_SPF])
    return dns_server


async def _test(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    """Run the test_connection action and return its response."""
    response = await hass.services.async_call(
        DOMAIN,
        "test_connection",
        {"config_entry_id": entry.entry_id},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


def _issues(issue_registry: ir.IssueRegistry) -> set[str]:
    """Return the translation keys of this integration's open issues."""
    return {
        str(issue.translation_key)
        for (domain, _), issue in issue_registry.issues.items()
        if domain == DOMAIN
    }


async def test_healthy_host_report(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    spf: DnsResponder,
    smart_host: SmartHost,
    issue_registry: ir.IssueRegistry,
) -> None:
    """MX, banner, TLS, certificate and a passing SPF check; no mail is sent."""
    spf.add_txt("contoso.com", [COVERING_SPF])
    report = await _test(hass, init_integration)
    assert report["ok"] is True
    assert report["smart_host"]["host"] == MX_HOST
    assert report["smart_host"]["records"] == [{"preference": 10, "host": MX_HOST}]
    session = report["session"]
    assert "Microsoft ESMTP MAIL Service ready" in session["banner"]
    assert session["tls"]["version"] in {"TLSv1.2", "TLSv1.3"}
    assert MX_HOST in session["certificate"]["dns_names"]
    assert report["client_ip"] == "127.0.0.1"
    assert report["spf"]["result"] == "pass"
    assert report["spf"]["microsoft_include"] == "spf.protection.outlook.com"
    assert report["repairs"] == []
    assert smart_host.messages == []
    assert _issues(issue_registry) == set()


async def test_spf_that_misses_the_ip_raises_and_clears_a_repair(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    spf: DnsResponder,
    issue_registry: ir.IssueRegistry,
) -> None:
    """An SPF record without this IP is a repair until the record is fixed."""
    spf.add_txt("contoso.com", ["v=spf1 include:spf.protection.outlook.com ~all"])
    report = await _test(hass, init_integration)
    assert report["spf"]["result"] == "softfail"
    assert report["repairs"] == ["spf_not_authorized"]
    issue = issue_registry.async_get_issue(
        DOMAIN, f"spf_not_authorized_{init_integration.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["client_ip"] == "127.0.0.1"
    assert "ip4:127.0.0.1" in issue.translation_placeholders["suggested_record"]

    spf.remove("contoso.com", "TXT")
    spf.add_txt("contoso.com", [COVERING_SPF])
    await _test(hass, init_integration)
    assert _issues(issue_registry) == set()


async def test_host_without_starttls_is_reported_and_repaired(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    spf: DnsResponder,
    smart_host: SmartHost,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A smart host without STARTTLS fails the test and raises the TLS repair."""
    spf.add_txt("contoso.com", [COVERING_SPF])
    async with mx_served_by(spf, smart_host, "127.0.0.2", starttls=False) as plain:
        report = await _test(hass, init_integration)
        assert report["ok"] is False
        assert report["failure"]["kind"] == "starttls_unavailable"
        assert report["repairs"] == ["tls_invalid"]
        assert _issues(issue_registry) == {"tls_invalid"}
        with pytest.raises(HomeAssistantError, match=r"connection test of \S+ failed"):
            await hass.services.async_call(
                "button",
                "press",
                {"entity_id": "button.contoso_com_test_connection"},
                blocking=True,
            )
        assert plain.messages == []

    await hass.services.async_call(
        "button",
        "press",
        {"entity_id": "button.contoso_com_test_connection"},
        blocking=True,
    )
    assert init_integration.runtime_data.last_report is not None
    assert init_integration.runtime_data.last_report.ok
    assert _issues(issue_registry) == set()


async def test_action_needs_a_loaded_entry_of_this_integration(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """An unknown or unloaded entry is a validation error naming it."""
    with pytest.raises(ServiceValidationError, match="no-such-entry"):
        await hass.services.async_call(
            DOMAIN,
            "test_connection",
            {"config_entry_id": "no-such-entry"},
            blocking=True,
            return_response=True,
        )
    await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError, match="is not loaded"):
        await _test(hass, init_integration)


async def test_diagnostics_are_redacted(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    spf: DnsResponder,
    smart_host: SmartHost,
    snapshot: SnapshotAssertion,
) -> None:
    """The download shows settings, smart host, outbox and last test, no addresses."""
    spf.add_txt("contoso.com", [COVERING_SPF])
    smart_host.reply_at("MAIL", "451 4.7.500 Server busy. Please try again later")
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.contoso_com_mail", "message": "queued"},
        blocking=True,
    )
    await _test(hass, init_integration)
    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, init_integration
    )
    text = repr(diagnostics)
    for secret in ("alerts@contoso.com", "it@contoso.com", "127.0.0.1", "ip4:"):
        assert secret not in text
    assert diagnostics == snapshot(
        exclude=props(
            "when",
            "created_at",
            "next_attempt_at",
            "checked_at",
            "connect_seconds",
            "cipher",
            "version",
            "not_before",
            "not_after",
            "expires_in_days",
            "serial_number",
            "subject",
            "issuer",
            "port",
        )
    )


async def test_expired_certificate_is_reported_with_its_dates(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    spf: DnsResponder,
    smart_host: SmartHost,
    issue_registry: ir.IssueRegistry,
) -> None:
    """An expired certificate fails the test; the report shows when it expired."""
    spf.add_txt("contoso.com", [COVERING_SPF])
    async with mx_served_by(spf, smart_host, "127.0.0.3", expired_cert=True) as expired:
        report = await _test(hass, init_integration)
        assert expired.messages == []
    assert report["ok"] is False
    assert report["failure"]["kind"] == "certificate_expired"
    certificate = report["session"]["certificate"]
    assert certificate["expired"] is True
    assert certificate["not_after"] < report["checked_at"]
    assert report["session"]["tls"]["verified"] is False
    assert _issues(issue_registry) == {"tls_invalid"}


async def test_missing_spf_record_is_a_repair(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    spf: DnsResponder,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Without an SPF record the test suggests one that covers this IP."""
    report = await _test(hass, init_integration)
    assert report["ok"] is True
    assert report["spf"]["result"] == "none"
    assert report["spf"]["records"] == []
    assert "include:spf.protection.outlook.com" in report["spf"]["suggested_record"]
    assert _issues(issue_registry) == {"spf_not_authorized"}

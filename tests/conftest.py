"""Fixtures: a Home Assistant with the integration, on real loopback servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import pytest_socket

from custom_components.o365_direct_send.const import (
    CONF_RECIPIENTS,
    CONF_SENDER,
    CONF_SENDER_NAME,
    CONF_TENANT_DOMAIN,
    DEVELOPMENT_ENV,
    DOMAIN,
)
from tests.loopback import DnsResponder, SmartHost

TENANT = "contoso.com"
MX_HOST = "contoso-com.mail.protection.outlook.com"
DANE_TENANT = "fabrikam.com"
DANE_MX_HOST = "fabrikam-com.o-v1.mx.microsoft"
SENDER = "alerts@contoso.com"
RECIPIENTS = ["it@contoso.com", "ops@contoso.com"]


def suggested_values(result: ConfigFlowResult) -> dict[str, Any]:
    """Return the values a flow's form shows pre-filled."""
    schema = result["data_schema"]
    assert schema is not None
    return {
        str(key): key.description["suggested_value"]
        for key in schema.schema
        if key.description and "suggested_value" in key.description
    }


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom integrations in every test."""


@pytest.fixture
def loopback(socket_enabled: None) -> None:
    """Allow sockets to 127.0.0.1-127.0.0.9 only: extra hosts for faulty servers."""
    hosts = [f"127.0.0.{n}" for n in range(1, 10)]
    # pytest-socket 0.7.0 (the minimum target's pin) is untyped, 0.8.1 (current) is
    # typed: unused-ignore keeps the ignore valid on both. Drop the ignore once the
    # minimum target's pytest-homeassistant-custom-component pins pytest-socket >= 0.8.
    pytest_socket.socket_allow_hosts(hosts)  # type: ignore[no-untyped-call,unused-ignore]


@pytest.fixture
async def dns_server(loopback: None) -> AsyncIterator[DnsResponder]:
    """Serve a classic and a DNSSEC/DANE tenant from a loopback DNS responder."""
    async with DnsResponder() as server:
        server.tenant(TENANT, MX_HOST)
        server.tenant(DANE_TENANT, DANE_MX_HOST)
        server.add_mx("gmail.example", [(5, "gmail-smtp-in.l.google.example")])
        yield server


@pytest.fixture
async def smart_host(loopback: None) -> AsyncIterator[SmartHost]:
    """Run one STARTTLS smart host for both tenants' MX names."""
    async with SmartHost([MX_HOST, DANE_MX_HOST]) as server:
        yield server


@asynccontextmanager
async def mx_served_by(
    dns_server: DnsResponder, smart_host: SmartHost, address: str, **options: Any
) -> AsyncIterator[SmartHost]:
    """Answer for the contoso MX name from another loopback server at address.

    The other server shares the smart host's port and CA; options change the rest
    (no STARTTLS, a certificate for another name, an expired one). Afterwards the
    MX name points at the working smart host again.
    """
    async with SmartHost(
        MX_HOST, ca=smart_host.ca, host=address, port=smart_host.port, **options
    ) as other:
        dns_server.remove(MX_HOST, "A")
        dns_server.add_a(MX_HOST, address)
        try:
            yield other
        finally:
            dns_server.remove(MX_HOST, "A")
            dns_server.add_a(MX_HOST, smart_host.host)


@pytest.fixture
def development_network(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dns_server: DnsResponder,
    smart_host: SmartHost,
) -> Path:
    """Point the integration at the loopback servers through its development seam."""
    ca_file = tmp_path / "ca.pem"
    smart_host.ca.cert_pem.write_to_path(str(ca_file))
    settings = tmp_path / "development.json"
    settings.write_text(
        json.dumps(
            {
                "nameservers": [dns_server.host],
                "dns_port": dns_server.port,
                "smtp_port": smart_host.port,
                "ca_file": str(ca_file),
            }
        )
    )
    monkeypatch.setenv(DEVELOPMENT_ENV, str(settings))
    return settings


@pytest.fixture
def short_timeouts() -> Iterator[None]:
    """Make DNS and connection timeouts short so timeout tests finish quickly."""
    with (
        patch("custom_components.o365_direct_send.network.DNS_TIMEOUT", 0.3),
        patch("custom_components.o365_direct_send.validation.PROBE_TIMEOUT", 0.5),
        patch("custom_components.o365_direct_send.SEND_TIMEOUT", 0.5),
    ):
        yield


@pytest.fixture
def mock_config_entry() -> MockConfigEntry:
    """Return the config entry of the contoso.com alerts sender."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=SENDER,
        unique_id=SENDER,
        data={CONF_TENANT_DOMAIN: TENANT, CONF_SENDER: SENDER},
        options={CONF_RECIPIENTS: RECIPIENTS, CONF_SENDER_NAME: "Home Assistant"},
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    development_network: Path,
) -> MockConfigEntry:
    """Set up the integration against the loopback servers."""
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    return mock_config_entry

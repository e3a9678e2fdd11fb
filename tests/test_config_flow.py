"""The config flow: a user adds a tenant, fixes every mistake, and gets an entry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.o365_direct_send.const import (
    CONF_MAX_AGE_HOURS,
    CONF_RECIPIENTS,
    CONF_SENDER,
    CONF_SENDER_NAME,
    CONF_TENANT_DOMAIN,
    DOMAIN,
)
from tests.loopback import DnsResponder, SmartHost

from .conftest import DANE_MX_HOST, MX_HOST, mx_served_by, suggested_values

pytestmark = pytest.mark.usefixtures("development_network", "short_timeouts")

VALID_INPUT = {
    CONF_TENANT_DOMAIN: "Contoso.com",
    CONF_SENDER: "Alerts@contoso.com",
    CONF_RECIPIENTS: ["it@contoso.com", "ops@contoso.com"],
    CONF_SENDER_NAME: "Home Assistant",
}


async def _start(hass: HomeAssistant) -> ConfigFlowResult:
    """Open the config flow's first form."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return result


async def test_classic_tenant_creates_entry(
    hass: HomeAssistant, smart_host: SmartHost
) -> None:
    """A classic tenant is found, probed over TLS, and saved; no mail is sent."""
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], VALID_INPUT
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Alerts@contoso.com"
    assert result["data"] == {
        CONF_TENANT_DOMAIN: "contoso.com",
        CONF_SENDER: "Alerts@contoso.com",
    }
    assert result["options"] == {
        CONF_RECIPIENTS: ["it@contoso.com", "ops@contoso.com"],
        CONF_SENDER_NAME: "Home Assistant",
        CONF_MAX_AGE_HOURS: 24,
    }
    assert result["result"].unique_id == "alerts@contoso.com"
    assert result["description_placeholders"] is not None
    assert result["description_placeholders"]["smart_host"] == MX_HOST
    assert result["description_placeholders"]["tls_version"].startswith("TLSv1.")
    assert smart_host.connections == 1
    assert smart_host.messages == []


async def test_dane_tenant_creates_entry(hass: HomeAssistant) -> None:
    """A tenant on the mx.microsoft endpoint works the same way."""
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_TENANT_DOMAIN: "fabrikam.com",
            CONF_SENDER: "ha@fabrikam.com",
            CONF_RECIPIENTS: ["facilities@fabrikam.com", "it@contoso.com"],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["options"][CONF_SENDER_NAME] is None
    assert result["description_placeholders"] is not None
    assert result["description_placeholders"]["smart_host"] == DANE_MX_HOST


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    """Keep servers a breaker starts running until the test ends."""
    async with AsyncExitStack() as servers:
        yield servers


type Breaker = Callable[[DnsResponder, SmartHost, AsyncExitStack], Awaitable[None]]


async def _no_starttls(
    dns: DnsResponder, smart_host: SmartHost, stack: AsyncExitStack
) -> None:
    """Put a smart host without STARTTLS at the MX's address."""
    await stack.enter_async_context(
        mx_served_by(dns, smart_host, "127.0.0.2", starttls=False)
    )


async def _wrong_certificate(
    dns: DnsResponder, smart_host: SmartHost, stack: AsyncExitStack
) -> None:
    """Put a smart host with a certificate for another name at the MX's address."""
    await stack.enter_async_context(
        mx_served_by(dns, smart_host, "127.0.0.3", cert_hostname="mail.example.net")
    )


async def _refused(dns: DnsResponder, smart_host: SmartHost, _: AsyncExitStack) -> None:
    """Point the MX at a loopback address where nothing listens."""
    dns.remove(MX_HOST, "A")
    dns.add_a(MX_HOST, "127.0.0.4")


async def _silent(dns: DnsResponder, smart_host: SmartHost, _: AsyncExitStack) -> None:
    """Accept the connection but never greet, as a blocked port 25 looks."""
    smart_host.silent(times=1)


async def _busy(dns: DnsResponder, smart_host: SmartHost, _: AsyncExitStack) -> None:
    """Greet with 421."""
    smart_host.greeting("421 4.3.2 Service not available")


async def _cut(dns: DnsResponder, smart_host: SmartHost, _: AsyncExitStack) -> None:
    """Drop the connection at STARTTLS."""
    smart_host.disconnect_at("STARTTLS")


async def _dns_down(
    dns: DnsResponder, smart_host: SmartHost, _: AsyncExitStack
) -> None:
    """Stop answering for the tenant domain."""
    dns.drop("contoso.com")


async def _no_change(
    dns: DnsResponder, smart_host: SmartHost, _: AsyncExitStack
) -> None:
    """Break nothing: the input itself is wrong."""


def _with(**changes: Any) -> dict[str, Any]:
    """Return the valid input with some fields changed."""
    return {**VALID_INPUT, **changes}


async def _repair(dns: DnsResponder, smart_host: SmartHost) -> None:
    """Undo every break: the tenant resolves to the working smart host again."""
    smart_host.clear_faults()
    dns.remove("contoso.com")
    dns.remove(MX_HOST)
    dns.tenant("contoso.com", MX_HOST)


@pytest.mark.parametrize(
    ("user_input", "breaker", "field", "error", "placeholder"),
    [
        (
            _with(tenant_domain="contoso"),
            _no_change,
            "tenant_domain",
            "invalid_domain",
            None,
        ),
        (_with(sender="alerts"), _no_change, "sender", "invalid_sender", None),
        (
            _with(sender="alerts@fabrikam.com"),
            _no_change,
            "sender",
            "sender_not_in_domain",
            ("domain", "contoso.com"),
        ),
        (
            _with(recipients=["it@contoso.com", "not an address"]),
            _no_change,
            "recipients",
            "invalid_recipient",
            ("address", "not an address"),
        ),
        (_with(recipients=[]), _no_change, "recipients", "no_recipients", None),
        (
            _with(tenant_domain="nomx.example", sender="a@nomx.example"),
            _no_change,
            "tenant_domain",
            "no_mx",
            ("domain", "nomx.example"),
        ),
        (
            _with(tenant_domain="gmail.example", sender="a@gmail.example"),
            _no_change,
            "tenant_domain",
            "not_exchange_online",
            ("host", "gmail-smtp-in.l.google.example"),
        ),
        (
            _with(recipients=["it@contoso.com", "friend@gmail.example"]),
            _no_change,
            "recipients",
            "recipient_not_in_tenant",
            ("address", "friend@gmail.example"),
        ),
        (
            VALID_INPUT,
            _dns_down,
            "tenant_domain",
            "dns_failed",
            ("domain", "contoso.com"),
        ),
        (VALID_INPUT, _refused, "base", "cannot_connect", ("host", MX_HOST)),
        (VALID_INPUT, _silent, "base", "port_blocked", ("host", MX_HOST)),
        (VALID_INPUT, _no_starttls, "base", "starttls_unavailable", ("host", MX_HOST)),
        (VALID_INPUT, _wrong_certificate, "base", "tls_failed", ("host", MX_HOST)),
        (VALID_INPUT, _busy, "base", "service_busy", ("code", "421")),
        (VALID_INPUT, _cut, "base", "disconnected", ("host", MX_HOST)),
    ],
)
async def test_each_error_recovers_to_an_entry(
    hass: HomeAssistant,
    dns_server: DnsResponder,
    smart_host: SmartHost,
    stack: AsyncExitStack,
    user_input: dict[str, Any],
    breaker: Breaker,
    field: str,
    error: str,
    placeholder: tuple[str, str] | None,
) -> None:
    """Each mistake is shown on its field, the input stays, and fixing it works."""
    await breaker(dns_server, smart_host, stack)
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}
    if placeholder is not None:
        assert result["description_placeholders"] is not None
        assert result["description_placeholders"][placeholder[0]] == placeholder[1]
    assert suggested_values(result) == user_input
    assert smart_host.messages == []

    await _repair(dns_server, smart_host)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], VALID_INPUT
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == "alerts@contoso.com"


async def test_same_sender_twice_aborts(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, smart_host: SmartHost
) -> None:
    """A sender that is already configured aborts before any network traffic."""
    mock_config_entry.add_to_hass(hass)
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _with(sender="ALERTS@Contoso.com")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert smart_host.connections == 0

"""Check a tenant's settings the way a send would use them, without sending."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.core import HomeAssistant

from .const import (
    CONF_RECIPIENTS,
    CONF_SENDER,
    CONF_SMART_HOST,
    CONF_TENANT_DOMAIN,
    PROBE_TIMEOUT,
)
from .directsend import (
    DirectSendError,
    InvalidAddressError,
    ProbeResult,
    SmartHost,
    domain_of,
    is_exchange_online_host,
    is_ip_literal,
    normalize_address,
    normalize_domain,
)
from .failures import translate_error
from .network import async_create_client


class SettingsError(Exception):
    """A setting the user must correct: the form field, key and placeholders."""

    def __init__(
        self, field: str, key: str, placeholders: dict[str, str] | None = None
    ) -> None:
        """Name the field to mark and the translated error to show."""
        super().__init__(key)
        self.field = field
        self.key = key
        self.placeholders = placeholders or {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Tenant:
    """A tenant domain with the sender address that speaks for it."""

    domain: str
    sender: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedTenant:
    """A tenant whose smart host was found and answered over verified TLS."""

    smart_host: SmartHost
    probe: ProbeResult


def parse_tenant(user_input: Mapping[str, Any]) -> Tenant:
    """Normalize the tenant domain and sender, or raise for the bad field."""
    try:
        domain = normalize_domain(user_input[CONF_TENANT_DOMAIN])
    except InvalidAddressError as err:
        raise SettingsError(CONF_TENANT_DOMAIN, "invalid_domain") from err
    try:
        sender = normalize_address(user_input[CONF_SENDER])
    except InvalidAddressError as err:
        raise SettingsError(CONF_SENDER, "invalid_sender") from err
    if domain_of(sender) != domain:
        raise SettingsError(CONF_SENDER, "sender_not_in_domain", {"domain": domain})
    return Tenant(domain=domain, sender=sender)


def parse_recipients(values: Iterable[str]) -> list[str]:
    """Normalize the recipients, dropping repeats, or raise for a bad one."""
    recipients: list[str] = []
    for value in values:
        try:
            address = normalize_address(value)
        except InvalidAddressError as err:
            raise SettingsError(
                CONF_RECIPIENTS, "invalid_recipient", {"address": value}
            ) from err
        if address not in recipients:
            recipients.append(address)
    if not recipients:
        raise SettingsError(CONF_RECIPIENTS, "no_recipients")
    return recipients


def parse_smart_host(value: str | None) -> str | None:
    """Return a manual smart host, which must be an Exchange Online host name."""
    host = (value or "").strip().rstrip(".").lower()
    if not host:
        return None
    if is_ip_literal(host):
        raise SettingsError(CONF_SMART_HOST, "smart_host_ip_literal")
    if not is_exchange_online_host(host):
        raise SettingsError(CONF_SMART_HOST, "smart_host_not_exchange_online")
    return host


async def async_check_recipients(
    hass: HomeAssistant,
    recipients: list[str],
    tenant_domain: str,
    smart_host: str | None = None,
) -> None:
    """Raise unless every recipient can be reached through the tenant's smart host."""
    client = await async_create_client(hass, timeout=PROBE_TIMEOUT)
    if smart_host is None:
        found = await _checked(client.smart_host(tenant_domain), "base")
    else:
        found = client.resolver.pin(tenant_domain, smart_host)
    await _checked(client.check_recipients(recipients, found), CONF_RECIPIENTS)


async def async_check_tenant(
    hass: HomeAssistant,
    tenant: Tenant,
    recipients: list[str],
    smart_host: str | None = None,
) -> CheckedTenant:
    """Find the smart host, check the recipients, and probe the connection."""
    client = await async_create_client(hass, timeout=PROBE_TIMEOUT)
    if smart_host is None:
        found = await _checked(client.smart_host(tenant.domain), CONF_TENANT_DOMAIN)
    else:
        found = client.resolver.pin(tenant.domain, smart_host)
    await _checked(client.check_recipients(recipients, found), CONF_RECIPIENTS)
    probe = await _checked(client.probe(found), "base")
    return CheckedTenant(smart_host=found, probe=probe)


async def _checked[T](step: Awaitable[T], field: str) -> T:
    """Await a check and turn a core error into a SettingsError for the field."""
    try:
        return await step
    except DirectSendError as err:
        key, placeholders = translate_error(err)
        raise SettingsError(field, key, placeholders) from err

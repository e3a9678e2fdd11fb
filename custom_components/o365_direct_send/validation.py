"""Check a tenant's settings the way a send would use them, without sending."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.core import HomeAssistant

from .const import (
    CONF_RECIPIENTS,
    CONF_SENDER,
    CONF_SENDER_NAME,
    CONF_TENANT_DOMAIN,
    PROBE_TIMEOUT,
)
from .directsend import (
    DirectSendError,
    InvalidAddressError,
    ProbeResult,
    SmartHost,
    domain_of,
    normalize_address,
    normalize_domain,
)
from .failures import translate_error
from .network import async_create_client


class SettingsError(Exception):
    """A setting the user must correct: the form field, key and placeholders."""

    def __init__(self, field: str, key: str, placeholders: dict[str, str]) -> None:
        """Name the field to mark and the translated error to show."""
        super().__init__(key)
        self.field = field
        self.key = key
        self.placeholders = placeholders


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantSettings:
    """A tenant domain, its sender and default recipients, normalized."""

    tenant_domain: str
    sender: str
    sender_name: str | None
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidatedTenant:
    """Settings that passed every check, with the smart host and probe result."""

    settings: TenantSettings
    smart_host: SmartHost
    probe: ProbeResult


def parse_settings(user_input: Mapping[str, Any]) -> TenantSettings:
    """Normalize the form input, or raise SettingsError for the first bad field."""
    try:
        tenant_domain = normalize_domain(user_input[CONF_TENANT_DOMAIN])
    except InvalidAddressError as err:
        raise SettingsError(CONF_TENANT_DOMAIN, "invalid_domain", {}) from err
    try:
        sender = normalize_address(user_input[CONF_SENDER])
    except InvalidAddressError as err:
        raise SettingsError(CONF_SENDER, "invalid_sender", {}) from err
    if domain_of(sender) != tenant_domain:
        raise SettingsError(
            CONF_SENDER, "sender_not_in_domain", {"domain": tenant_domain}
        )
    recipients: list[str] = []
    for value in user_input[CONF_RECIPIENTS]:
        try:
            address = normalize_address(value)
        except InvalidAddressError as err:
            raise SettingsError(
                CONF_RECIPIENTS, "invalid_recipient", {"address": value}
            ) from err
        if address not in recipients:
            recipients.append(address)
    if not recipients:
        raise SettingsError(CONF_RECIPIENTS, "no_recipients", {})
    sender_name = (user_input.get(CONF_SENDER_NAME) or "").strip() or None
    return TenantSettings(
        tenant_domain=tenant_domain,
        sender=sender,
        sender_name=sender_name,
        recipients=tuple(recipients),
    )


async def async_validate_tenant(
    hass: HomeAssistant, settings: TenantSettings
) -> ValidatedTenant:
    """Resolve the smart host, check the recipients and probe the connection."""
    client = await async_create_client(hass, timeout=PROBE_TIMEOUT)
    field = CONF_TENANT_DOMAIN
    try:
        smart_host = await client.smart_host(settings.tenant_domain)
        field = CONF_RECIPIENTS
        await client.check_recipients(settings.recipients)
        field = "base"
        probe = await client.probe(smart_host)
    except DirectSendError as err:
        key, placeholders = translate_error(err)
        raise SettingsError(field, key, placeholders) from err
    return ValidatedTenant(settings=settings, smart_host=smart_host, probe=probe)

"""Config flow for Office 365 Direct Send."""

from __future__ import annotations

from typing import Any

import voluptuous as vol

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .const import (
    CONF_RECIPIENTS,
    CONF_SENDER,
    CONF_SENDER_NAME,
    CONF_TENANT_DOMAIN,
    DOMAIN,
)
from .validation import SettingsError, async_validate_tenant, parse_settings

_EMAIL = TextSelectorConfig(type=TextSelectorType.EMAIL)

USER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_TENANT_DOMAIN): TextSelector(),
        vol.Required(CONF_SENDER): TextSelector(_EMAIL),
        vol.Required(CONF_RECIPIENTS): TextSelector(
            TextSelectorConfig(type=TextSelectorType.EMAIL, multiple=True)
        ),
        vol.Optional(CONF_SENDER_NAME): TextSelector(),
    }
)


class DirectSendConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up Direct Send for one sender address of a Microsoft 365 tenant."""

    VERSION = 1

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the tenant, sender and recipients; check them before saving."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            try:
                settings = parse_settings(user_input)
                await self.async_set_unique_id(settings.sender.lower())
                self._abort_if_unique_id_configured()
                tenant = await async_validate_tenant(self.hass, settings)
            except SettingsError as err:
                errors[err.field] = err.key
                placeholders = err.placeholders
            else:
                return self.async_create_entry(
                    title=settings.sender,
                    data={
                        CONF_TENANT_DOMAIN: settings.tenant_domain,
                        CONF_SENDER: settings.sender,
                    },
                    options={
                        CONF_RECIPIENTS: list(settings.recipients),
                        CONF_SENDER_NAME: settings.sender_name,
                    },
                    description_placeholders={
                        "smart_host": tenant.smart_host.host,
                        "tls_version": tenant.probe.session.tls.version or "-",
                    },
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

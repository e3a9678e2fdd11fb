"""Config, reconfigure and options flows for Office 365 Direct Send."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import voluptuous as vol

from .const import (
    CONF_MAX_AGE_HOURS,
    CONF_RECIPIENTS,
    CONF_SENDER,
    CONF_SENDER_NAME,
    CONF_SMART_HOST,
    CONF_TENANT_DOMAIN,
    DEFAULT_MAX_AGE_HOURS,
    DOMAIN,
    MAX_MAX_AGE_HOURS,
)
from .validation import (
    SettingsError,
    async_check_recipients,
    async_check_tenant,
    parse_recipients,
    parse_smart_host,
    parse_tenant,
)

_TEXT = TextSelector()
_EMAIL = TextSelector(TextSelectorConfig(type=TextSelectorType.EMAIL))
_EMAILS = TextSelector(TextSelectorConfig(type=TextSelectorType.EMAIL, multiple=True))

USER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_TENANT_DOMAIN): _TEXT,
        vol.Required(CONF_SENDER): _EMAIL,
        vol.Required(CONF_RECIPIENTS): _EMAILS,
        vol.Optional(CONF_SENDER_NAME): _TEXT,
    }
)
RECONFIGURE_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_TENANT_DOMAIN): _TEXT,
        vol.Required(CONF_SENDER): _EMAIL,
        vol.Optional(CONF_SMART_HOST): _TEXT,
    }
)
OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_RECIPIENTS): _EMAILS,
        vol.Optional(CONF_SENDER_NAME): _TEXT,
        vol.Required(CONF_MAX_AGE_HOURS, default=DEFAULT_MAX_AGE_HOURS): NumberSelector(
            NumberSelectorConfig(
                min=1,
                max=MAX_MAX_AGE_HOURS,
                step=1,
                unit_of_measurement="h",
                mode=NumberSelectorMode.BOX,
            )
        ),
    }
)


async def _async_move_entity_ids(
    hass: HomeAssistant, entry: ConfigEntry, unique_id: str
) -> None:
    """Keep the entities (and their ids in automations) when the sender changes."""
    old_prefix = f"{entry.unique_id}_"

    @callback
    def move(entity: er.RegistryEntry) -> dict[str, str] | None:
        """Give an entity the unique id it has under the new sender."""
        if not entity.unique_id.startswith(old_prefix):
            return None
        return {
            "new_unique_id": unique_id + "_" + entity.unique_id.removeprefix(old_prefix)
        }

    if entry.unique_id != unique_id:
        await er.async_migrate_entries(hass, entry.entry_id, move)


def _sender_name(user_input: dict[str, Any]) -> str | None:
    """Return the trimmed display name, or None when blank."""
    return (user_input.get(CONF_SENDER_NAME) or "").strip() or None


class DirectSendConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up Direct Send for one sender address of a Microsoft 365 tenant."""

    VERSION = 1

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> DirectSendOptionsFlow:
        """Return the options flow."""
        return DirectSendOptionsFlow()

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the tenant, sender and recipients; check them before saving."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            try:
                tenant = parse_tenant(user_input)
                recipients = parse_recipients(user_input[CONF_RECIPIENTS])
                await self.async_set_unique_id(tenant.sender.lower())
                self._abort_if_unique_id_configured()
                checked = await async_check_tenant(self.hass, tenant, recipients)
            except SettingsError as err:
                errors[err.field] = err.key
                placeholders = err.placeholders
            else:
                return self.async_create_entry(
                    title=tenant.sender,
                    data={
                        CONF_TENANT_DOMAIN: tenant.domain,
                        CONF_SENDER: tenant.sender,
                    },
                    options={
                        CONF_RECIPIENTS: recipients,
                        CONF_SENDER_NAME: _sender_name(user_input),
                        CONF_MAX_AGE_HOURS: DEFAULT_MAX_AGE_HOURS,
                    },
                    description_placeholders={
                        "smart_host": checked.smart_host.host,
                        "tls_version": checked.probe.session.tls.version or "-",
                    },
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change tenant, sender or smart host; check them like the first setup."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            try:
                tenant = parse_tenant(user_input)
                smart_host = parse_smart_host(user_input.get(CONF_SMART_HOST))
                await self.async_set_unique_id(tenant.sender.lower())
                if self.unique_id != entry.unique_id:
                    self._abort_if_unique_id_configured()
                await async_check_tenant(
                    self.hass, tenant, entry.options[CONF_RECIPIENTS], smart_host
                )
            except SettingsError as err:
                errors[err.field] = err.key
                placeholders = err.placeholders
            else:
                await _async_move_entity_ids(self.hass, entry, tenant.sender.lower())
                # The entry's update listener reloads it, once.
                self.hass.config_entries.async_update_entry(
                    entry,
                    unique_id=tenant.sender.lower(),
                    title=tenant.sender,
                    data={
                        CONF_TENANT_DOMAIN: tenant.domain,
                        CONF_SENDER: tenant.sender,
                        CONF_SMART_HOST: smart_host,
                    },
                )
                return self.async_abort(reason="reconfigure_successful")
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                RECONFIGURE_SCHEMA, user_input or entry.data
            ),
            errors=errors,
            description_placeholders=placeholders,
        )


class DirectSendOptionsFlow(OptionsFlow):
    """Change recipients, sender name and how long an alert may wait."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the options; check that every recipient is in Exchange Online."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            try:
                recipients = parse_recipients(user_input[CONF_RECIPIENTS])
                await async_check_recipients(
                    self.hass,
                    recipients,
                    self.config_entry.data[CONF_TENANT_DOMAIN],
                    self.config_entry.data.get(CONF_SMART_HOST),
                )
            except SettingsError as err:
                errors[err.field] = err.key
                placeholders = err.placeholders
            else:
                return self.async_create_entry(
                    data={
                        CONF_RECIPIENTS: recipients,
                        CONF_SENDER_NAME: _sender_name(user_input),
                        CONF_MAX_AGE_HOURS: int(user_input[CONF_MAX_AGE_HOURS]),
                    }
                )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                OPTIONS_SCHEMA, user_input or self.config_entry.options
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

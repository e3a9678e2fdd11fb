"""Actions of Office 365 Direct Send."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
import voluptuous as vol

from .connection_test import async_test_connection
from .const import DOMAIN
from .models import DirectSendConfigEntry

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
SERVICE_TEST_CONNECTION = "test_connection"

TEST_CONNECTION_SCHEMA = vol.Schema({vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string})


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_TEST_CONNECTION,
        _async_test_connection,
        schema=TEST_CONNECTION_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )


def _loaded_entry(hass: HomeAssistant, entry_id: str) -> DirectSendConfigEntry:
    """Return a loaded entry of this integration, or raise a validation error."""
    entry: DirectSendConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"entry": entry.title},
        )
    return entry


async def _async_test_connection(call: ServiceCall) -> ServiceResponse:
    """Test the smart host of an entry and return what was found; send no mail."""
    entry = _loaded_entry(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    report = await async_test_connection(call.hass, entry)
    return report.as_dict()  # type: ignore[return-value]

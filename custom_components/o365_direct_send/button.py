"""Button that runs the connection test."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .connection_test import async_test_connection
from .const import DOMAIN
from .entity import DirectSendEntity
from .models import DirectSendConfigEntry

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DirectSendConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add the connection test button of a tenant sender."""
    async_add_entities([DirectSendTestButton(entry)])


class DirectSendTestButton(DirectSendEntity, ButtonEntity):
    """Test the smart host, TLS and SPF without sending mail."""

    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "test_connection"

    def __init__(self, entry: DirectSendConfigEntry) -> None:
        """Create the button of an entry."""
        super().__init__(entry, "test_connection")

    async def async_press(self) -> None:
        """Run the test; a failure is raised so the user sees it at once."""
        report = await async_test_connection(self.hass, self.entry)
        if report.failure is not None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="connection_test_failed",
                translation_placeholders={
                    "host": report.host or "-",
                    "error": report.failure.message,
                },
            )

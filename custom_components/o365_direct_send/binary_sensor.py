"""Binary sensor that is on while alerts cannot be delivered."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .entity import DirectSendStatusEntity
from .models import DirectSendConfigEntry

# Entities only read the coordinator's data.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DirectSendConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add the delivery problem sensor of a tenant sender."""
    async_add_entities([DirectSendProblemSensor(entry)])


class DirectSendProblemSensor(DirectSendStatusEntity, BinarySensorEntity):
    """On while the latest delivery attempt failed; off after a success."""

    _attr_device_class = BinarySensorDeviceClass.PROBLEM
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "delivery_problem"

    def __init__(self, entry: DirectSendConfigEntry) -> None:
        """Create the problem sensor of an entry."""
        super().__init__(entry, "delivery_problem")

    @property
    def is_on(self) -> bool:
        """Return whether delivery is failing."""
        return self.coordinator.data.problem

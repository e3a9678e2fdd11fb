"""Base entities for Office 365 Direct Send."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_TENANT_DOMAIN, DOMAIN
from .coordinator import DeliveryCoordinator
from .models import DirectSendConfigEntry


def device_info(entry: DirectSendConfigEntry) -> DeviceInfo:
    """Describe the tenant sender as a service device."""
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        entry_type=DeviceEntryType.SERVICE,
        manufacturer="Microsoft",
        model="Exchange Online Direct Send",
        name=entry.data[CONF_TENANT_DOMAIN],
        configuration_url="https://admin.exchange.microsoft.com/",
    )


class DirectSendEntity(Entity):
    """An entity of one tenant sender, grouped under a service device."""

    _attr_has_entity_name = True

    def __init__(self, entry: DirectSendConfigEntry, key: str) -> None:
        """Name the entity after its key and attach it to the tenant's device."""
        self.entry = entry
        self._attr_unique_id = f"{entry.unique_id}_{key}"
        self._attr_device_info = device_info(entry)


class DirectSendStatusEntity(CoordinatorEntity[DeliveryCoordinator]):
    """A status entity that follows the entry's outbox."""

    _attr_has_entity_name = True

    def __init__(self, entry: DirectSendConfigEntry, key: str) -> None:
        """Follow the outbox of the entry."""
        super().__init__(entry.runtime_data.delivery)
        self._attr_unique_id = f"{entry.unique_id}_{key}"
        self._attr_device_info = device_info(entry)

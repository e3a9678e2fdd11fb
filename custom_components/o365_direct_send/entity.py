"""Base entity for Office 365 Direct Send."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity

from .const import CONF_TENANT_DOMAIN, DOMAIN
from .models import DirectSendConfigEntry


class DirectSendEntity(Entity):
    """An entity of one tenant sender, grouped under a service device."""

    _attr_has_entity_name = True

    def __init__(self, entry: DirectSendConfigEntry, key: str) -> None:
        """Name the entity after its key and attach it to the tenant's device."""
        self.entry = entry
        self._attr_unique_id = f"{entry.unique_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            entry_type=DeviceEntryType.SERVICE,
            manufacturer="Microsoft",
            model="Exchange Online Direct Send",
            name=entry.data[CONF_TENANT_DOMAIN],
            configuration_url="https://admin.exchange.microsoft.com/",
        )

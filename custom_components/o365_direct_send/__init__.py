"""The Office 365 Direct Send integration."""

from __future__ import annotations

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .const import CONF_SMART_HOST, CONF_TENANT_DOMAIN, DOMAIN, LOGGER, SEND_TIMEOUT
from .coordinator import DeliveryCoordinator, OutboxStore
from .directsend import Attempt, DiscoveryError, NotExchangeOnlineError
from .directsend.replies import Repair
from .failures import translate_error
from .models import DirectSendConfigEntry, DirectSendData
from .network import async_create_client
from .repairs import (
    async_clear,
    async_clear_all,
    async_raise,
    async_update_from_attempt,
)
from .services import async_setup_services

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.NOTIFY,
    Platform.SENSOR,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's actions."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: DirectSendConfigEntry) -> bool:
    """Find the smart host, load the outbox and set up the entities."""
    client = await async_create_client(hass, timeout=SEND_TIMEOUT)
    domain = entry.data[CONF_TENANT_DOMAIN]
    if manual_host := entry.data.get(CONF_SMART_HOST):
        try:
            client.resolver.pin(domain, manual_host)
        except NotExchangeOnlineError as err:
            key, placeholders = translate_error(err)
            raise ConfigEntryError(
                translation_domain=DOMAIN,
                translation_key=key,
                translation_placeholders=placeholders,
            ) from err

    def attempted(attempt: Attempt) -> None:
        """Raise or clear repair issues after each delivery attempt."""
        async_update_from_attempt(hass, entry, attempt)

    delivery = DeliveryCoordinator(hass, entry, client, attempted)
    entry.runtime_data = DirectSendData(client=client, delivery=delivery)
    await _async_find_smart_host(hass, entry)
    await delivery.async_start()

    async def stop_delivery(_: Event) -> None:
        """Close the outbox's sessions when Home Assistant stops."""
        await delivery.async_stop()

    entry.async_on_unload(
        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, stop_delivery)
    )
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_find_smart_host(
    hass: HomeAssistant, entry: DirectSendConfigEntry
) -> None:
    """Resolve the smart host now, and raise a repair if it left Exchange Online.

    Setup never fails on DNS: an entry in setup retry has no notify entity, so
    alerts sent while the network comes up would vanish; the outbox queues them.
    """
    domain = entry.data[CONF_TENANT_DOMAIN]
    try:
        entry.runtime_data.smart_host = await entry.runtime_data.client.smart_host(
            domain
        )
    except NotExchangeOnlineError as err:
        async_raise(hass, entry, Repair.NOT_EXCHANGE_ONLINE, {"host": err.host})
    except DiscoveryError as err:
        LOGGER.warning(
            "The smart host of %s is not known yet (%s); alerts wait in the outbox",
            domain,
            err,
        )
    else:
        async_clear(hass, entry, frozenset({Repair.NOT_EXCHANGE_ONLINE}))


async def async_unload_entry(hass: HomeAssistant, entry: DirectSendConfigEntry) -> bool:
    """Unload the entities and stop the outbox; queued alerts stay stored."""
    if unloaded := await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        await entry.runtime_data.delivery.async_stop()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: DirectSendConfigEntry) -> None:
    """Delete the stored outbox and the repair issues of a removed entry."""
    await OutboxStore(hass, entry.entry_id).remove()
    async_clear_all(hass, entry)


async def _async_options_updated(
    hass: HomeAssistant, entry: DirectSendConfigEntry
) -> None:
    """Reload the entry so new recipients and limits take effect."""
    await hass.config_entries.async_reload(entry.entry_id)

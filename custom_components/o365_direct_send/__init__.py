"""The Office 365 Direct Send integration."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady

from .const import CONF_SMART_HOST, CONF_TENANT_DOMAIN, DOMAIN, SEND_TIMEOUT
from .directsend import DiscoveryError, NotExchangeOnlineError
from .failures import translate_error
from .models import DirectSendConfigEntry, DirectSendData
from .network import async_create_client

PLATFORMS: list[Platform] = [Platform.NOTIFY]


async def async_setup_entry(hass: HomeAssistant, entry: DirectSendConfigEntry) -> bool:
    """Find the tenant's smart host and set up the notify entity."""
    client = await async_create_client(hass, timeout=SEND_TIMEOUT)
    domain = entry.data[CONF_TENANT_DOMAIN]
    try:
        if manual_host := entry.data.get(CONF_SMART_HOST):
            client.resolver.pin(domain, manual_host)
        smart_host = await client.smart_host(domain)
    except NotExchangeOnlineError as err:
        key, placeholders = translate_error(err)
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders=placeholders,
        ) from err
    except DiscoveryError as err:
        key, placeholders = translate_error(err)
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders=placeholders,
        ) from err
    entry.runtime_data = DirectSendData(client=client, smart_host=smart_host)
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_options_updated(
    hass: HomeAssistant, entry: DirectSendConfigEntry
) -> None:
    """Reload the entry so new recipients and limits take effect."""
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: DirectSendConfigEntry) -> bool:
    """Unload the notify entity."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)

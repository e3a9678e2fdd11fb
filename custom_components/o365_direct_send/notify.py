"""Notify entity that mails alerts into the tenant's mailboxes."""

from __future__ import annotations

from homeassistant.components.notify import NotifyEntity, NotifyEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .const import (
    CONF_RECIPIENTS,
    CONF_SENDER,
    CONF_SENDER_NAME,
    CONF_TENANT_DOMAIN,
    DOMAIN,
    LOGGER,
)
from .directsend import DirectSendError, build_alert
from .entity import DirectSendEntity
from .failures import describe_refusals, translate_error
from .models import DirectSendConfigEntry

# Each send opens its own session; the smart host, not Home Assistant, limits them.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DirectSendConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add the notify entity of a tenant sender."""
    async_add_entities([DirectSendNotifyEntity(entry)])


class DirectSendNotifyEntity(DirectSendEntity, NotifyEntity):
    """Send a message to the default recipients through the smart host."""

    _attr_supported_features = NotifyEntityFeature.TITLE
    _attr_translation_key = "mail"

    def __init__(self, entry: DirectSendConfigEntry) -> None:
        """Create the notify entity of an entry."""
        super().__init__(entry, "notify")

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Mail the message to every default recipient in one message."""
        options = self.entry.options
        envelope = build_alert(
            sender=self.entry.data[CONF_SENDER],
            sender_name=options.get(CONF_SENDER_NAME),
            recipients=options[CONF_RECIPIENTS],
            title=title,
            body=message,
        )
        try:
            result = await self.entry.runtime_data.client.send(
                self.entry.data[CONF_TENANT_DOMAIN], envelope
            )
        except DirectSendError as err:
            key, placeholders = translate_error(err)
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key=key,
                translation_placeholders=placeholders,
            ) from err
        LOGGER.debug(
            "%s accepted %s for %s", result.host, envelope.message_id, result.accepted
        )
        if result.refused:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="some_recipients_refused",
                translation_placeholders={
                    "host": result.host,
                    "accepted": ", ".join(result.accepted),
                    "refusals": describe_refusals(result.refused),
                },
            )

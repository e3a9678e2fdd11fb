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
)
from .directsend import Attempt, render_alert
from .entity import DirectSendEntity
from .failures import describe_refusals, translate_error
from .models import DirectSendConfigEntry

# The outbox bounds sessions per smart host; callers need not wait on each other.
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
        """Queue one mail to every default recipient and attempt it at once."""
        options = self.entry.options
        envelope = await render_alert(
            sender=self.entry.data[CONF_SENDER],
            sender_name=options.get(CONF_SENDER_NAME),
            recipients=options[CONF_RECIPIENTS],
            title=title,
            body=message,
        )
        attempt = await self.entry.runtime_data.delivery.async_submit(
            self.entry.data[CONF_TENANT_DOMAIN], envelope
        )
        smart_host = self.entry.runtime_data.smart_host
        raise_for_refusal(attempt, smart_host.host if smart_host else "-")


def raise_for_refusal(attempt: Attempt, host: str) -> None:
    """Raise when recipients were refused for good; temporary trouble stays queued."""
    if not attempt.failed:
        return
    if attempt.delivered or attempt.pending:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="some_recipients_refused",
            translation_placeholders={
                "refusals": describe_refusals(attempt.failed),
                "delivered": ", ".join(attempt.delivered) or "-",
                "queued": ", ".join(attempt.pending) or "-",
            },
        )
    if attempt.error is not None:
        key, placeholders = translate_error(attempt.error)
    else:
        key = "recipients_refused"
        placeholders = {"host": host, "refusals": describe_refusals(attempt.failed)}
    raise HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders,
    )

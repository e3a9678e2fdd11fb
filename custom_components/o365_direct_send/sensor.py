"""Sensors that show the outbox: queued alerts, last delivery, last failure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.util import dt as dt_util

from .coordinator import DeliveryStatus
from .directsend import ErrorKind, Failure
from .directsend.replies import ReplyKey, classify as classify_reply
from .entity import DirectSendStatusEntity
from .models import DirectSendConfigEntry

# Entities only read the coordinator's data.
PARALLEL_UPDATES = 0


def failure_reason(failure: Failure) -> str:
    """Return the most specific reason: the reply's meaning, else the error kind."""
    if failure.reply is not None and failure.kind is not ErrorKind.EXPIRED:
        return classify_reply(failure.reply).key.value
    return failure.kind.value


def _failure_attributes(status: DeliveryStatus) -> dict[str, Any]:
    """Describe the last failure: when, which message, what the server said."""
    failure = status.last_failure
    if failure is None:
        return {}
    reply = failure.reply
    return {
        "at": dt_util.utc_from_timestamp(failure.when).isoformat(),
        "message_id": failure.message_id,
        "reply_code": None if reply is None else reply.code,
        "reply_text": None if reply is None else reply.text,
        "error": failure.error,
    }


@dataclass(frozen=True, kw_only=True)
class DirectSendSensorDescription(SensorEntityDescription):
    """A sensor over the outbox status."""

    value_fn: Callable[[DeliveryStatus], str | int | datetime | None]
    attributes_fn: Callable[[DeliveryStatus], dict[str, Any]] = lambda _: {}


SENSORS: tuple[DirectSendSensorDescription, ...] = (
    DirectSendSensorDescription(
        key="queued",
        translation_key="queued",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda status: status.queued,
    ),
    DirectSendSensorDescription(
        key="last_delivered",
        translation_key="last_delivered",
        entity_category=EntityCategory.DIAGNOSTIC,
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda status: status.last_delivered,
    ),
    DirectSendSensorDescription(
        key="last_failure",
        translation_key="last_failure",
        entity_category=EntityCategory.DIAGNOSTIC,
        device_class=SensorDeviceClass.ENUM,
        options=sorted(
            {kind.value for kind in ErrorKind} | {k.value for k in ReplyKey}
        ),
        value_fn=lambda status: (
            None if status.last_failure is None else failure_reason(status.last_failure)
        ),
        attributes_fn=_failure_attributes,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: DirectSendConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add the outbox sensors of a tenant sender."""
    async_add_entities(DirectSendSensor(entry, description) for description in SENSORS)


class DirectSendSensor(DirectSendStatusEntity, SensorEntity):
    """One figure of the outbox."""

    entity_description: DirectSendSensorDescription

    def __init__(
        self, entry: DirectSendConfigEntry, description: DirectSendSensorDescription
    ) -> None:
        """Create the sensor for a description."""
        super().__init__(entry, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> str | int | datetime | None:
        """Return the figure from the latest status."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return details of the figure."""
        return self.entity_description.attributes_fn(self.coordinator.data)

"""Runtime data that a loaded config entry carries."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .coordinator import DeliveryCoordinator
from .directsend import DirectSendClient, SmartHost
from .directsend.diagnosis import ConnectionReport


@dataclass(slots=True, kw_only=True)
class DirectSendData:
    """The client, smart host, outbox and last connection test of a sender."""

    client: DirectSendClient
    smart_host: SmartHost
    delivery: DeliveryCoordinator
    last_report: ConnectionReport | None = None


type DirectSendConfigEntry = ConfigEntry[DirectSendData]

"""Runtime data that a loaded config entry carries."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .coordinator import DeliveryCoordinator
from .directsend import DirectSendClient, SmartHost
from .directsend.diagnosis import ConnectionReport


@dataclass(slots=True, kw_only=True)
class DirectSendData:
    """The client, outbox, smart host (once found) and last test of a sender."""

    client: DirectSendClient
    delivery: DeliveryCoordinator
    smart_host: SmartHost | None = None
    last_report: ConnectionReport | None = None


type DirectSendConfigEntry = ConfigEntry[DirectSendData]

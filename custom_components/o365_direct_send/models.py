"""Runtime data that a loaded config entry carries."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .directsend import DirectSendClient, SmartHost


@dataclass(slots=True, kw_only=True)
class DirectSendData:
    """The client and the smart host found at setup for one tenant sender."""

    client: DirectSendClient
    smart_host: SmartHost


type DirectSendConfigEntry = ConfigEntry[DirectSendData]

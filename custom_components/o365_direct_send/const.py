"""Constants for the Office 365 Direct Send integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "o365_direct_send"
LOGGER = logging.getLogger(__package__)

CONF_TENANT_DOMAIN: Final = "tenant_domain"
CONF_SENDER: Final = "sender"
CONF_SENDER_NAME: Final = "sender_name"
CONF_RECIPIENTS: Final = "recipients"
CONF_SMART_HOST: Final = "smart_host"
CONF_MAX_AGE_HOURS: Final = "max_age_hours"

# An alert older than a day describes a world that has moved on.
DEFAULT_MAX_AGE_HOURS: Final = 24
MAX_MAX_AGE_HOURS: Final = 168

# Fired for every message that failed for good or expired, for fallbacks.
EVENT_DELIVERY_FAILED: Final = f"{DOMAIN}_delivery_failed"

# Seconds. DNS answers quickly or not at all; the config flow's probe keeps the
# user waiting, while a send may meet a slow, throttled smart host.
DNS_TIMEOUT: Final = 10.0
PROBE_TIMEOUT: Final = 15.0
SEND_TIMEOUT: Final = 30.0

# Development only: the path of a JSON file that points the integration at a
# loopback DNS responder, smart host port and CA (scripts/develop, tests).
DEVELOPMENT_ENV: Final = "O365_DIRECT_SEND_DEVELOPMENT"

"""How the integration reaches DNS and smart hosts, and the development seam."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import json
import os
from pathlib import Path
import socket
import ssl

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey
from homeassistant.util.ssl import client_context

from .const import DEVELOPMENT_ENV, DNS_TIMEOUT, DOMAIN, LOGGER
from .directsend import DirectSendClient, SmartHostResolver, TransportSettings
from .directsend.transport import SMTP_PORT

NETWORK_KEY: HassKey[asyncio.Future[Network]] = HassKey(f"{DOMAIN}_network")


@dataclass(frozen=True, slots=True, kw_only=True)
class Network:
    """Nameservers, smart host port, TLS trust and EHLO name in use."""

    nameservers: list[str] | None
    dns_port: int
    smtp_port: int
    tls_context: ssl.SSLContext
    local_hostname: str


async def async_get_network(hass: HomeAssistant) -> Network:
    """Return the network settings, loading them once off the event loop."""
    # Entries set up together share one load, so it also logs only once.
    if (loading := hass.data.get(NETWORK_KEY)) is None:
        path = os.environ.get(DEVELOPMENT_ENV)
        loading = hass.data[NETWORK_KEY] = hass.async_add_executor_job(
            load_network, path
        )
    return await loading


def load_network(development_file: str | None) -> Network:
    """Build the network settings; a development file replaces DNS, port and CA."""
    local_hostname = socket.getfqdn()
    if not development_file:
        return Network(
            nameservers=None,
            dns_port=53,
            smtp_port=SMTP_PORT,
            tls_context=client_context(),
            local_hostname=local_hostname,
        )
    settings = json.loads(Path(development_file).read_text(encoding="utf-8"))
    LOGGER.warning(
        "%s is set: using the development DNS server %s port %s, smart host port %s "
        "and CA %s. Never set it on a real installation",
        DEVELOPMENT_ENV,
        settings["nameservers"],
        settings["dns_port"],
        settings["smtp_port"],
        settings["ca_file"],
    )
    return Network(
        nameservers=list(settings["nameservers"]),
        dns_port=int(settings["dns_port"]),
        smtp_port=int(settings["smtp_port"]),
        tls_context=ssl.create_default_context(cafile=settings["ca_file"]),
        local_hostname=local_hostname,
    )


async def async_create_client(
    hass: HomeAssistant, *, timeout: float
) -> DirectSendClient:
    """Create a Direct Send client on this installation's network settings."""
    network = await async_get_network(hass)
    if network.nameservers is None:
        resolver = await hass.async_add_executor_job(
            SmartHostResolver.from_system, DNS_TIMEOUT
        )
    else:
        resolver = SmartHostResolver.at(
            network.nameservers, network.dns_port, DNS_TIMEOUT
        )
    return DirectSendClient(
        resolver,
        TransportSettings(
            tls_context=network.tls_context,
            local_hostname=network.local_hostname,
            port=network.smtp_port,
            timeout=timeout,
        ),
    )

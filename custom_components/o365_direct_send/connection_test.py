"""The connection test: what the smart host, TLS and SPF look like from here."""

from __future__ import annotations

from homeassistant.core import HomeAssistant

from .const import CONF_SENDER, CONF_TENANT_DOMAIN, DNS_TIMEOUT
from .directsend import domain_of
from .directsend.diagnosis import ConnectionReport, run_connection_test
from .models import DirectSendConfigEntry
from .network import async_get_network
from .repairs import async_update_from_report


async def async_test_connection(
    hass: HomeAssistant, entry: DirectSendConfigEntry
) -> ConnectionReport:
    """Test the entry's smart host without sending mail; keep and act on the report."""
    network = await async_get_network(hass)
    report = await run_connection_test(
        entry.runtime_data.client,
        entry.data[CONF_TENANT_DOMAIN],
        sender_domain=domain_of(entry.data[CONF_SENDER]),
        spf_nameservers=network.nameservers,
        spf_port=network.dns_port,
        spf_timeout=DNS_TIMEOUT,
    )
    entry.runtime_data.last_report = report
    async_update_from_report(hass, entry, report)
    return report

"""Diagnostics download: settings, smart host, last test and outbox, redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_RECIPIENTS, CONF_SENDER
from .directsend import Failure
from .models import DirectSendConfigEntry
from .network import async_get_network

# Addresses identify people; IPs and SPF records identify the site.
TO_REDACT = {
    CONF_SENDER,
    CONF_RECIPIENTS,
    "client_ip",
    "address",
    "record",
    "records",
    "suggested_record",
    "ehlo",
    "greeting",
    "mechanism",
    "text",
    "error",
    "message",
    "reply_text",
}


def _failure(failure: Failure) -> dict[str, Any]:
    """Describe a failure without the message's addresses."""
    return {
        "when": failure.when,
        "kind": failure.kind.value,
        "reply_code": None if failure.reply is None else failure.reply.code,
        "enhanced_code": None if failure.reply is None else failure.reply.enhanced_code,
        "reply_text": None if failure.reply is None else failure.reply.text,
        "error": failure.error,
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: DirectSendConfigEntry
) -> dict[str, Any]:
    """Return what helps to understand a delivery problem, without personal data."""
    runtime = entry.runtime_data
    network = await async_get_network(hass)
    outbox = runtime.delivery.outbox
    report = runtime.last_report
    return async_redact_data(
        {
            "data": dict(entry.data),
            "options": dict(entry.options),
            "development_network": network.nameservers is not None,
            "smart_host": None
            if (smart_host := runtime.smart_host) is None
            else {
                "host": smart_host.host,
                "ttl": smart_host.ttl,
                "mx": [
                    {"preference": record.preference, "host": record.host}
                    for record in smart_host.records
                ],
            },
            "outbox": {
                "queued": outbox.pending,
                "delivered": outbox.delivered,
                "failed": outbox.failed,
                "expired": outbox.expired,
                "problem": outbox.problem,
                "messages": [
                    {
                        "created_at": message.created_at,
                        "attempts": message.attempts,
                        "next_attempt_at": message.next_attempt_at,
                        "pending": len(message.pending),
                        "delivered": len(message.delivered),
                        "failed": len(message.failed),
                        "last_error_kind": message.last_error_kind,
                    }
                    for message in outbox.queued()
                ],
                "recent_failures": [
                    _failure(failure) for failure in runtime.delivery.recent_failures
                ],
            },
            "last_connection_test": None if report is None else report.as_dict(),
        },
        TO_REDACT,
    )

"""Connect timeouts in real time: a blocked port 25 becomes a repair issue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from functools import partial
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.o365_direct_send.const import DOMAIN
from custom_components.o365_direct_send.directsend import RetryPolicy
from tests.loopback import SmartHost

from .conftest import RECIPIENTS


@pytest.fixture
def fast_retries() -> Iterator[None]:
    """Retry after tens of milliseconds: timeouts need real time to pass."""
    fast = partial(RetryPolicy, initial=0.05, cap=0.1, jitter=0.0)
    with patch("custom_components.o365_direct_send.coordinator.RetryPolicy", fast):
        yield


pytestmark = pytest.mark.usefixtures(
    "short_timeouts", "fast_retries", "init_integration"
)


async def _until(hass: HomeAssistant, condition: Callable[[], bool]) -> None:
    """Wait, at most ten seconds, until a condition holds."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.05)
            await hass.async_block_till_done()


async def test_blocked_port_becomes_a_repair_after_repeated_timeouts(
    hass: HomeAssistant, smart_host: SmartHost, issue_registry: ir.IssueRegistry
) -> None:
    """Timeouts queue the alert; the third in a row raises the port 25 repair."""
    [entry] = hass.config_entries.async_entries(DOMAIN)
    issue_id = f"port_blocked_{entry.entry_id}"
    smart_host.silent()
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.contoso_com_mail", "message": "Door open"},
        blocking=True,
    )
    state = hass.states.get("sensor.contoso_com_last_failure")
    assert state is not None
    assert state.state == "port_blocked"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None

    await _until(
        hass, lambda: issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    )
    assert smart_host.messages == []

    smart_host.clear_faults()
    await _until(hass, lambda: smart_host.delivered_to(RECIPIENTS[0]) == 1)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert smart_host.delivered_to(RECIPIENTS[1]) == 1

"""The outbox of an entry: stored by Home Assistant, drained on a timer, watched."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from .const import (
    CONF_MAX_AGE_HOURS,
    DEFAULT_MAX_AGE_HOURS,
    DOMAIN,
    EVENT_DELIVERY_FAILED,
    LOGGER,
)
from .directsend import (
    Attempt,
    DirectSendClient,
    Envelope,
    Failure,
    Outbox,
    Outcome,
    RetryPolicy,
)
from .failures import describe_refusals

STORAGE_VERSION = 1
# Enough history for a diagnostics download to show a pattern.
RECENT_FAILURES = 10

type JsonDict = dict[str, Any]


class OutboxStore:
    """Keep an entry's outbox in Home Assistant's storage, written atomically."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Use one storage file per config entry."""
        self._store: Store[list[JsonDict]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.outbox.{entry_id}", atomic_writes=True
        )

    async def load(self) -> list[JsonDict] | None:
        """Return the saved messages, or None when nothing was ever saved."""
        return await self._store.async_load()

    async def save(self, items: list[JsonDict]) -> None:
        """Replace the saved messages with these."""
        await self._store.async_save(items)

    async def remove(self) -> None:
        """Delete the storage file."""
        await self._store.async_remove()


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryStatus:
    """What the status entities show: the queue, the last success and failure."""

    queued: int
    last_delivered: datetime | None
    last_failure: Failure | None
    problem: bool


class DeliveryCoordinator(DataUpdateCoordinator[DeliveryStatus]):
    """Own an entry's outbox: submit, retry on a timer, tell entities and automations."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        client: DirectSendClient,
        on_attempt: Callable[[Attempt], None],
    ) -> None:
        """Create the outbox; nothing is loaded or sent until async_start."""
        super().__init__(
            hass, LOGGER, config_entry=entry, name=f"{DOMAIN} outbox {entry.title}"
        )
        self.entry_id = entry.entry_id
        self.store = OutboxStore(hass, entry.entry_id)
        hours = entry.options.get(CONF_MAX_AGE_HOURS, DEFAULT_MAX_AGE_HOURS)
        max_age = hours * 3600.0
        self._on_attempt = on_attempt
        self.outbox = Outbox(
            client,
            self.store,
            policy=RetryPolicy(max_age=max_age),
            clock=_now,
            listener=self._attempted,
        )
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._stopped = False
        self._failing = False
        self.recent_failures: deque[Failure] = deque(maxlen=RECENT_FAILURES)

    async def _async_update_data(self) -> DeliveryStatus:
        """Return the outbox's status; the outbox pushes, nothing is polled."""
        return self._status()

    async def async_start(self) -> None:
        """Load messages queued before a restart and deliver those that are due."""
        await self.outbox.load()
        if self.outbox.pending:
            LOGGER.info("%s alerts waiting in the outbox", self.outbox.pending)
        self.async_set_updated_data(self._status())
        self._schedule()

    async def async_submit(self, domain: str, envelope: Envelope) -> Attempt:
        """Store a message, attempt it at once, and return how that went."""
        try:
            return await self.outbox.submit(domain, envelope)
        finally:
            # Also when the caller is cancelled: the stored message needs its timer.
            self.async_set_updated_data(self._status())
            self._schedule()

    async def async_stop(self) -> None:
        """Stop retrying and close sessions; queued messages stay stored."""
        self._stopped = True
        self._cancel_timer()
        await self.outbox.aclose()
        if self._drain_task is not None:
            await self._drain_task

    @callback
    def _schedule(self) -> None:
        """Wake up for the next retry or expiry, replacing any earlier wake-up."""
        self._cancel_timer()
        delay = self.outbox.next_due_in()
        if delay is not None and not self._stopped:
            self._unsub_timer = async_call_later(self.hass, delay, self._wake)

    @callback
    def _cancel_timer(self) -> None:
        """Cancel the pending wake-up, if any."""
        if self._unsub_timer is not None:
            self._unsub_timer()
            self._unsub_timer = None

    @callback
    def _wake(self, _: datetime) -> None:
        """Start retrying the due messages, unless a drain is still running."""
        self._unsub_timer = None
        if self._drain_task is None:
            self._drain_task = self.hass.async_create_task(
                self._async_drain(), f"{DOMAIN} outbox {self.entry_id}"
            )

    async def _async_drain(self) -> None:
        """Retry every due message, then sleep until the next one is due."""
        try:
            await self.outbox.drain()
        finally:
            # Even an unexpected error must not end the retries.
            self._drain_task = None
            self.async_set_updated_data(self._status())
            self._schedule()

    @callback
    def _attempted(self, attempt: Attempt) -> None:
        """Log an attempt, fire the failure event, and let the entry react."""
        if (failure := attempt.failure) is not None:
            self.recent_failures.append(failure)
            # Warn when delivery starts failing, not at every retry after that.
            log = LOGGER.debug if self._failing else LOGGER.warning
            log(
                "Alert %s not delivered (%s), %s: %s",
                attempt.message_id,
                attempt.outcome.value,
                "will retry" if attempt.pending else "giving up",
                failure.error,
            )
            self._failing = True
        elif attempt.delivered and self._failing:
            LOGGER.info("Alerts are delivered again through %s", attempt.domain)
            self._failing = False
        if attempt.failed or attempt.outcome in (Outcome.FAILED, Outcome.EXPIRED):
            self.hass.bus.async_fire(
                EVENT_DELIVERY_FAILED, _event_data(self.entry_id, attempt)
            )
        self._on_attempt(attempt)

    def _status(self) -> DeliveryStatus:
        """Take a snapshot of the outbox for the entities."""
        outbox = self.outbox
        return DeliveryStatus(
            queued=outbox.pending,
            last_delivered=(
                None
                if outbox.last_delivered_at is None
                else dt_util.utc_from_timestamp(outbox.last_delivered_at)
            ),
            last_failure=outbox.last_failure,
            problem=outbox.problem,
        )


def _now() -> float:
    """Return Home Assistant's time as a Unix timestamp (tests can freeze it)."""
    return dt_util.utcnow().timestamp()


def _event_data(entry_id: str, attempt: Attempt) -> dict[str, Any]:
    """Describe a failed or expired message for automations."""
    failure = attempt.failure
    reply = None if failure is None else failure.reply
    failed = dict(attempt.failed) or dict.fromkeys(attempt.expired)
    return {
        "config_entry_id": entry_id,
        "message_id": attempt.message_id,
        "outcome": attempt.outcome.value,
        "recipients": list(failed),
        "delivered_to": list(attempt.delivered),
        "reason": None if failure is None else failure.kind.value,
        "reply_code": None if reply is None else reply.code,
        "reply_text": None if reply is None else reply.text,
        "error": None if failure is None else failure.error,
        "refusals": describe_refusals(failed),
    }

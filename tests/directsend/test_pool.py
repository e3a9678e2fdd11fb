"""The session pool: reuse, limits, idle close, and the transparent retry once."""

from __future__ import annotations

import asyncio

import pytest

from custom_components.o365_direct_send.directsend import (
    DirectSendClient,
    DisconnectedError,
    ReplyError,
    SessionPool,
    SmartHost as SmartHostRecord,
    build_alert,
)
from tests.loopback import SmartHost

from .conftest import TENANT

SENDER = "alerts@contoso.com"


def _data(body: str = "Water on the floor") -> bytes:
    """Render a small alert."""
    return build_alert(
        sender=SENDER,
        sender_name=None,
        recipients=["it@contoso.com"],
        title="Leak",
        body=body,
    ).data


async def _send(pool: SessionPool, target: SmartHostRecord, to: str) -> None:
    """Send one alert over a pooled session."""
    async with pool.session(target) as lent:
        await lent.transaction(SENDER, [to], _data())


@pytest.fixture
async def target(client: DirectSendClient) -> SmartHostRecord:
    """Return the tenant's smart host."""
    return await client.smart_host(TENANT)


async def test_idle_session_is_reused(
    client: DirectSendClient, smart_host: SmartHost, target: SmartHostRecord
) -> None:
    """Two sends in a row share one connection and one TLS handshake."""
    pool = SessionPool(client)
    async with pool.session(target) as lent:
        first = lent.session
        await lent.transaction(SENDER, ["a@contoso.com"], _data())
        assert lent.usable
    assert pool.idle_sessions == 1
    async with pool.session(target) as lent:
        assert lent.session is first
        await lent.transaction(SENDER, ["b@contoso.com"], _data())
    await pool.aclose()
    assert not first.is_open
    assert smart_host.connections == 1
    assert [m.rcpt_tos for m in smart_host.messages] == [
        ("a@contoso.com",),
        ("b@contoso.com",),
    ]


async def test_at_most_two_sessions_per_smart_host(
    client: DirectSendClient, smart_host: SmartHost, target: SmartHostRecord
) -> None:
    """Ten concurrent users of the pool never hold more than two sessions."""
    pool = SessionPool(client)
    busy = 0
    peak = 0

    async def use(n: int) -> None:
        """Hold a session for a moment while sending."""
        nonlocal busy, peak
        async with pool.session(target) as lent:
            busy += 1
            peak = max(peak, busy)
            await lent.transaction(SENDER, [f"user{n}@contoso.com"], _data())
            await asyncio.sleep(0.01)
            busy -= 1

    await asyncio.gather(*(use(n) for n in range(10)))
    await pool.aclose()
    assert peak == 2
    assert smart_host.connections == 2
    assert len(smart_host.messages) == 10


async def test_idle_sessions_close_after_the_idle_timeout(
    client: DirectSendClient, smart_host: SmartHost, target: SmartHostRecord
) -> None:
    """An idle session says QUIT after the idle timeout; the next send reconnects."""
    pool = SessionPool(client, idle_timeout=0.05)
    async with pool.session(target) as lent:
        session = lent.session
        await lent.transaction(SENDER, ["a@contoso.com"], _data())
    assert pool.idle_sessions == 1
    await asyncio.sleep(0.2)
    assert pool.idle_sessions == 0
    assert not session.is_open
    await _send(pool, target, "b@contoso.com")
    await pool.aclose()
    assert smart_host.connections == 2


async def test_session_closed_while_idle_is_skipped(
    client: DirectSendClient, smart_host: SmartHost, target: SmartHostRecord
) -> None:
    """A session whose connection dropped while idle is never lent again."""
    pool = SessionPool(client)
    async with pool.session(target) as lent:
        session = lent.session
    session.abort()
    async with pool.session(target) as lent:
        assert lent.session is not session
        await lent.transaction(SENDER, ["a@contoso.com"], _data())
    await pool.aclose()
    assert smart_host.connections == 2


@pytest.mark.parametrize(
    "fault",
    ["disconnect", "421"],
)
async def test_lost_session_is_discarded(
    client: DirectSendClient,
    smart_host: SmartHost,
    target: SmartHostRecord,
    fault: str,
) -> None:
    """A session that hit 421 or a disconnect goes away instead of back to idle."""
    if fault == "421":
        smart_host.reply_at("DATA", "421 4.3.2 Service not available")
    else:
        smart_host.disconnect_at("DATA")
    pool = SessionPool(client)
    async with pool.session(target) as lent:
        with pytest.raises((DisconnectedError, ReplyError)) as caught:
            await lent.transaction(SENDER, ["a@contoso.com"], _data())
        assert caught.value.stage == "DATA"
        assert not lent.usable
    assert pool.idle_sessions == 0
    await _send(pool, target, "a@contoso.com")
    await pool.aclose()
    assert smart_host.connections == 2
    assert smart_host.delivered_to("a@contoso.com") == 1


async def test_refusal_keeps_the_session(
    client: DirectSendClient, smart_host: SmartHost, target: SmartHostRecord
) -> None:
    """A 4xx reply that does not close the connection leaves the session usable."""
    smart_host.reply_at("MAIL", "451 4.7.0 Temporary server error")
    pool = SessionPool(client)
    async with pool.session(target) as lent:
        with pytest.raises(ReplyError):
            await lent.transaction(SENDER, ["a@contoso.com"], _data())
        assert lent.usable
        await lent.transaction(SENDER, ["a@contoso.com"], _data())
    await pool.aclose()
    assert smart_host.connections == 1
    assert smart_host.delivered_to("a@contoso.com") == 1


@pytest.mark.parametrize(
    "fault",
    ["disconnect", "421"],
)
async def test_reused_session_dead_at_mail_is_retried_once(
    client: DirectSendClient,
    smart_host: SmartHost,
    target: SmartHostRecord,
    fault: str,
) -> None:
    """A reused session that dies at MAIL is replaced; the message arrives once."""
    pool = SessionPool(client)
    await _send(pool, target, "a@contoso.com")
    if fault == "421":
        smart_host.reply_at("MAIL", "421 4.4.2 Connection dropped due to timeout")
    else:
        smart_host.disconnect_at("MAIL")
    async with pool.session(target) as lent:
        reused = lent.session
        result = await lent.transaction(SENDER, ["b@contoso.com"], _data())
        assert result.accepted == ("b@contoso.com",)
        assert lent.session is not reused
        assert lent.usable
    await _send(pool, target, "c@contoso.com")
    await pool.aclose()
    assert smart_host.connections == 2
    for address in ("a@contoso.com", "b@contoso.com", "c@contoso.com"):
        assert smart_host.delivered_to(address) == 1


async def test_fresh_session_dead_at_mail_is_not_retried(
    client: DirectSendClient, smart_host: SmartHost, target: SmartHostRecord
) -> None:
    """On a session that never carried mail, a drop at MAIL is a plain failure."""
    smart_host.disconnect_at("MAIL")
    pool = SessionPool(client)
    async with pool.session(target) as lent:
        with pytest.raises(DisconnectedError) as caught:
            await lent.transaction(SENDER, ["a@contoso.com"], _data())
        assert caught.value.stage == "MAIL"
    await pool.aclose()
    assert smart_host.connections == 1
    assert smart_host.messages == []


async def test_retry_on_a_new_session_that_cannot_open(
    client: DirectSendClient, smart_host: SmartHost, target: SmartHostRecord
) -> None:
    """When the replacement session cannot be opened, that error is raised."""
    pool = SessionPool(client)
    await _send(pool, target, "a@contoso.com")
    smart_host.disconnect_at("MAIL")
    smart_host.greeting("421 4.3.2 Service not available")
    async with pool.session(target) as lent:
        with pytest.raises(ReplyError) as caught:
            await lent.transaction(SENDER, ["b@contoso.com"], _data())
        assert caught.value.reply.code == 421
        assert not lent.usable
    assert pool.idle_sessions == 0
    await pool.aclose()
    assert smart_host.delivered_to("b@contoso.com") == 0


async def test_failing_body_drops_the_session(
    client: DirectSendClient, smart_host: SmartHost, target: SmartHostRecord
) -> None:
    """An exception inside the block leaves the session in an unknown state: drop it."""
    pool = SessionPool(client)
    sessions = []

    async def fail() -> None:
        """Break off while holding a session."""
        async with pool.session(target) as lent:
            sessions.append(lent.session)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail()
    assert not sessions[0].is_open
    assert pool.idle_sessions == 0
    await pool.aclose()


async def test_aclose_closes_idle_sessions_and_refuses_more(
    client: DirectSendClient, smart_host: SmartHost, target: SmartHostRecord
) -> None:
    """aclose() leaves no session, timer or task behind."""
    pool = SessionPool(client, idle_timeout=60.0)
    async with pool.session(target) as lent:
        idle = lent.session
    async with pool.session(target) as lent:
        assert lent.session is idle
        async with pool.session(target) as other:
            busy = other.session
        await pool.aclose()
        lent_session = lent.session
    assert not idle.is_open
    assert not busy.is_open
    assert not lent_session.is_open
    assert pool.idle_sessions == 0
    loop = asyncio.get_running_loop()
    timers = [
        handle
        for handle in loop._scheduled  # type: ignore[attr-defined]
        if not handle.cancelled()
        and "SessionPool" in getattr(handle._callback, "__qualname__", "")
    ]
    assert timers == []
    with pytest.raises(RuntimeError, match="closed"):
        async with pool.session(target):
            pass


async def test_aclose_waits_for_sessions_being_closed(
    client: DirectSendClient, smart_host: SmartHost, target: SmartHostRecord
) -> None:
    """A QUIT started by the idle timer is finished by aclose()."""
    pool = SessionPool(client, idle_timeout=0.0)
    async with pool.session(target) as lent:
        session = lent.session
    while pool.idle_sessions:  # noqa: ASYNC110 - the pool's timer has no event
        await asyncio.sleep(0)
    assert pool._closing
    await pool.aclose()
    assert not pool._closing
    assert not session.is_open


def test_a_pool_needs_a_session(client: DirectSendClient) -> None:
    """A limit of zero sessions per host could never send."""
    with pytest.raises(ValueError, match="at least one session"):
        SessionPool(client, max_sessions_per_host=0)

"""The outbox's own bookkeeping: storage, concurrency, bad input, TLS and renders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
import json
import socket
import threading
from typing import Any

import pytest

from custom_components.o365_direct_send.directsend import (
    RENDER_IN_THREAD_ABOVE,
    Attempt,
    DirectSendClient,
    ErrorKind,
    Outcome,
    QueuedMessage,
    Reply,
    build_alert,
    render,
    render_alert,
)
from tests.loopback import DelayProxy, DnsResponder, SmartHost, free_port

from .conftest import MX_HOST, TENANT, make_client
from .test_outbox import (
    LATER,
    Clock,
    MemoryStorage,
    OutboxFactory,
    alert,
    client_at,
    outbox_factory,
)

GREETING = f"220 {MX_HOST} Microsoft ESMTP MAIL Service ready\r\n"


@pytest.fixture
async def new_outbox(
    dns_server: DnsResponder, smart_host: SmartHost
) -> AsyncIterator[OutboxFactory]:
    """Make outboxes that close before the loopback servers stop."""
    async with outbox_factory() as factory:
        yield factory


def _message(**changes: Any) -> dict[str, Any]:
    """Return a saved message with some fields changed."""
    item: dict[str, Any] = {
        "id": "0123abcd",
        "message_id": "<1@contoso.com>",
        "domain": TENANT,
        "sender": "alerts@contoso.com",
        "recipients": ["a@contoso.com", "b@contoso.com", "c@contoso.com"],
        "pending": ["c@contoso.com"],
        "delivered": ["a@contoso.com"],
        "failed": {"b@contoso.com": {"code": 550, "text": "5.4.1 Access denied"}},
        "data": "Subject: x\r\n\r\nbody\r\n",
        "created_at": 1_760_000_000,
        "attempts": 2,
        "next_attempt_at": 1_760_000_060.5,
        "last_error": "c@contoso.com: 451 4.7.500 Server busy",
        "last_error_kind": "recipients_refused",
        "last_reply": {"code": 451, "text": "4.7.500 Server busy"},
    }
    item.update(changes)
    return item


def test_saved_message_round_trips_through_json() -> None:
    """A saved message survives JSON unchanged, replies and all."""
    message = QueuedMessage.from_dict(json.loads(json.dumps(_message())))
    assert message.created_at == 1_760_000_000.0
    assert message.failed == {"b@contoso.com": Reply(550, "5.4.1 Access denied")}
    assert message.last_error_kind is ErrorKind.RECIPIENTS_REFUSED
    assert message.last_reply == Reply(451, "4.7.500 Server busy")
    assert QueuedMessage.from_dict(message.to_dict()) == message
    bare = QueuedMessage.from_dict(
        _message(
            failed={"b@contoso.com": None},
            last_error=None,
            last_error_kind=None,
            last_reply=None,
        )
    )
    assert bare.failed == {"b@contoso.com": None}
    assert json.loads(json.dumps(bare.to_dict())) == bare.to_dict()


@pytest.mark.parametrize(
    "changes",
    [
        {"id": 7},
        {"recipients": "a@contoso.com"},
        {"pending": [1]},
        {"failed": []},
        {"failed": {"b@contoso.com": {"code": "550", "text": "x"}}},
        {"created_at": True},
        {"attempts": "2"},
        {"last_error": 451},
        {"last_error_kind": "melted"},
        {"last_reply": {"code": 451}},
    ],
)
def test_malformed_saved_messages_are_refused(changes: dict[str, Any]) -> None:
    """A damaged entry raises ValueError instead of breaking the queue later."""
    with pytest.raises(ValueError, match=r"outbox message|melted"):
        QueuedMessage.from_dict(_message(**changes))
    item = _message()
    del item["data"]
    with pytest.raises(ValueError, match="outbox message"):
        QueuedMessage.from_dict(item)


async def test_load_skips_damaged_entries(
    client: DirectSendClient,
    new_outbox: OutboxFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Readable entries are loaded once; damaged ones are dropped with a warning."""
    storage = MemoryStorage()
    outbox = new_outbox(client, storage)
    await outbox.load()
    assert outbox.pending == 0
    await storage.save([_message(), _message(id="other", attempts=None)])
    await outbox.load()
    await outbox.load()
    assert outbox.pending == 1
    [copy] = outbox.queued()
    assert copy.id == "0123abcd"
    copy.pending.clear()
    assert outbox.queued()[0].pending == ["c@contoso.com"]
    assert "Dropping an unreadable outbox entry" in caplog.text


async def test_loaded_partial_message_sends_only_the_pending_recipient(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """After a restart, recipients that already got the message are not sent again."""
    storage = MemoryStorage()
    await storage.save([_message()])
    clock = Clock(1_760_000_100.0)
    outbox = new_outbox(client, storage, clock=clock)
    await outbox.load()
    [attempt] = await outbox.drain()
    assert attempt.outcome is Outcome.DELIVERED
    assert attempt.attempts == 3
    assert [m.rcpt_tos for m in smart_host.messages] == [("c@contoso.com",)]
    assert (outbox.delivered, outbox.failed) == (0, 1)


async def test_storage_failure_does_not_stop_delivery(
    client: DirectSendClient,
    smart_host: SmartHost,
    new_outbox: OutboxFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the disk fails, the alert still goes out and the error is logged."""

    class BrokenStorage(MemoryStorage):
        """Fail the first write."""

        async def save(self, items: list[dict[str, Any]]) -> None:
            """Fail once, then save."""
            if not self.sizes:
                self.sizes.append(-1)
                raise OSError("No space left on device")
            await super().save(items)

    storage = BrokenStorage()
    outbox = new_outbox(client, storage)
    attempt = await outbox.submit(TENANT, alert())
    assert attempt.outcome is Outcome.DELIVERED
    assert "Could not save the outbox of 1 messages" in caplog.text
    assert storage.sizes == [-1, 0]
    assert smart_host.delivered_to("it@contoso.com") == 1


async def test_failing_listener_is_logged(
    client: DirectSendClient,
    smart_host: SmartHost,
    new_outbox: OutboxFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener that raises cannot turn a delivery into a failure."""
    outbox = new_outbox(client)

    def explode(attempt: Attempt) -> None:
        """Fail like a buggy glue would."""
        raise RuntimeError(attempt.outcome)

    outbox._listener = explode
    attempt = await outbox.submit(TENANT, alert())
    assert attempt.outcome is Outcome.DELIVERED
    assert "Outbox listener failed on delivered" in caplog.text


async def test_bad_envelopes_are_refused_before_storing(
    client: DirectSendClient, new_outbox: OutboxFactory
) -> None:
    """8-bit data or no recipient is a programming error, not a queued message."""
    storage = MemoryStorage()
    outbox = new_outbox(client, storage)
    eight_bit = alert()
    object.__setattr__(eight_bit, "data", "Subject: é\r\n\r\n".encode())
    with pytest.raises(ValueError, match="7-bit"):
        await outbox.submit(TENANT, eight_bit)
    empty = alert()
    object.__setattr__(empty, "recipients", ())
    with pytest.raises(ValueError, match="at least one recipient"):
        await outbox.submit(TENANT, empty)
    assert outbox.pending == 0
    assert storage.sizes == []


async def test_duplicate_recipients_get_one_copy(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """A recipient listed twice is sent one copy."""
    outbox = new_outbox(client)
    attempt = await outbox.submit(TENANT, alert("it@contoso.com", "it@contoso.com"))
    assert attempt.recipients == ("it@contoso.com",)
    assert smart_host.delivered_to("it@contoso.com") == 1


async def test_closed_outbox_stores_new_messages_for_the_next_start(
    client: DirectSendClient,
    dns_server: DnsResponder,
    smart_host: SmartHost,
    new_outbox: OutboxFactory,
) -> None:
    """After aclose() nothing is sent; a late alert is stored and sent after load()."""
    clock = Clock()
    storage = MemoryStorage()
    outbox = new_outbox(
        client_at(dns_server, smart_host, free_port()), storage, clock=clock
    )
    first = await outbox.submit(TENANT, alert())
    await outbox.aclose()
    clock.advance(LATER)
    assert await outbox.drain() == []
    # Home Assistant fires stop, then a "shutting down" automation sends an alert.
    late = await outbox.submit(TENANT, alert("ops@contoso.com"))
    assert late.outcome is Outcome.QUEUED
    assert late.attempts == 0
    assert late.pending == ("ops@contoso.com",)
    assert outbox.pending == 2
    assert storage.saved_ids == [first.id, late.id]
    assert smart_host.messages == []
    restarted = new_outbox(client, storage, clock=clock)
    await restarted.load()
    attempts = await restarted.drain()
    assert {attempt.id for attempt in attempts} == {first.id, late.id}
    assert {attempt.outcome for attempt in attempts} == {Outcome.DELIVERED}
    assert smart_host.delivered_to("it@contoso.com") == 1
    assert smart_host.delivered_to("ops@contoso.com") == 1
    assert storage.saved_ids == []


async def test_aclose_mid_transaction_then_reload_delivers_once(
    dns_server: DnsResponder, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """aclose() waits for the transaction on the wire; the reloaded outbox finds none.

    The host has accepted the message while its reply is still on a slow link: an
    outbox that returned from aclose() then would leave the message stored, and the
    next outbox would send it again with the same Message-ID.
    """
    clock = Clock()
    storage = MemoryStorage()
    async with DelayProxy(smart_host.host, smart_host.port, delay=0.05) as slow_link:
        outbox = new_outbox(
            make_client(dns_server, smart_host, port=slow_link.port),
            storage,
            clock=clock,
        )
        submit = asyncio.create_task(outbox.submit(TENANT, alert()))
        await smart_host.wait_for_messages(1)
        await outbox.aclose()
        saves = len(storage.sizes)
        reloaded = new_outbox(make_client(dns_server, smart_host), storage, clock=clock)
        await reloaded.load()
        drained = await reloaded.drain()
        attempt = await submit
    assert len(smart_host.messages) == 1
    assert attempt.outcome is Outcome.DELIVERED
    assert drained == []
    assert storage.saved_ids == []
    # Nothing the old outbox did after aclose() returned reached the storage.
    assert len(storage.sizes) == saves


async def test_aclose_during_a_drain_keeps_the_rest_queued(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """Closing mid-drain finishes the messages on the wire and keeps the others."""
    storage = MemoryStorage()
    clock = Clock()
    outbox = new_outbox(client, storage, clock=clock)
    smart_host.reply_at("RCPT", "451 4.7.500 Server busy", times=6)
    await asyncio.gather(
        *(outbox.submit(TENANT, alert(f"u{n}@contoso.com")) for n in range(6))
    )
    clock.advance(LATER)
    drain = asyncio.create_task(outbox.drain())
    await smart_host.wait_for_messages(1)
    await outbox.aclose()
    attempts = await drain
    assert 1 <= len(attempts) < 6
    assert {attempt.outcome for attempt in attempts} == {Outcome.DELIVERED}
    assert outbox.pending == 6 - len(attempts)
    assert len(storage.saved_ids) == outbox.pending
    delivered = [smart_host.delivered_to(f"u{n}@contoso.com") for n in range(6)]
    assert sorted(delivered) == [0] * outbox.pending + [1] * len(attempts)


async def test_aclose_starts_no_second_transaction_of_a_message(
    dns_server: DnsResponder, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """Closing amid a message sent in two transactions leaves the second for later."""
    clock = Clock()
    storage = MemoryStorage()
    # 452 4.5.3 after two recipients: the third goes in a second transaction.
    smart_host.max_recipients(2)
    recipients = ["a@contoso.com", "b@contoso.com", "c@contoso.com"]
    async with DelayProxy(smart_host.host, smart_host.port, delay=0.05) as slow_link:
        outbox = new_outbox(
            make_client(dns_server, smart_host, port=slow_link.port),
            storage,
            clock=clock,
        )
        submit = asyncio.create_task(outbox.submit(TENANT, alert(*recipients)))
        await smart_host.wait_for_messages(1)
        await outbox.aclose()
        attempt = await submit
    assert attempt.outcome is Outcome.QUEUED
    assert attempt.delivered == ("a@contoso.com", "b@contoso.com")
    assert attempt.pending == ("c@contoso.com",)
    reloaded = new_outbox(make_client(dns_server, smart_host), storage, clock=clock)
    await reloaded.load()
    clock.advance(LATER)
    [rest] = await reloaded.drain()
    assert rest.outcome is Outcome.DELIVERED
    assert [message.rcpt_tos for message in smart_host.messages] == [
        ("a@contoso.com", "b@contoso.com"),
        ("c@contoso.com",),
    ]


async def test_submit_closed_before_its_attempt_stays_stored(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """Unloading while a submit is being stored keeps the message for the next start."""
    storage = MemoryStorage()
    outbox = new_outbox(client, storage)
    submit = asyncio.create_task(outbox.submit(TENANT, alert()))
    await asyncio.sleep(0)
    await outbox.aclose()
    attempt = await submit
    assert attempt.outcome is Outcome.QUEUED
    assert attempt.attempts == 0
    assert attempt.pending == ("it@contoso.com",)
    assert storage.saved_ids == [attempt.id]
    assert smart_host.messages == []


async def test_concurrent_drains_expire_and_send_once(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """A drain busy expiring one message cannot lose the other to a second drain."""
    storage = MemoryStorage()
    stale = _message(id="stale", pending=["old@contoso.com"], created_at=0)
    await storage.save([stale, _message(id="due", next_attempt_at=1_760_000_000)])
    events: list[Attempt] = []
    outbox = new_outbox(client, storage, clock=Clock(), events=events)
    await outbox.load()
    first, second = await asyncio.gather(outbox.drain(), outbox.drain())
    assert sorted(a.outcome for a in first + second) == sorted(
        [Outcome.EXPIRED, Outcome.DELIVERED]
    )
    assert len(events) == 2
    assert smart_host.delivered_to("c@contoso.com") == 1
    assert smart_host.delivered_to("old@contoso.com") == 0


async def test_concurrent_drains_and_submit_send_each_message_once(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """A message in flight is skipped by other drains; a new one is not drained."""
    smart_host.reply_at("RCPT", "451 4.7.500 Server busy", times=3)
    clock = Clock()
    outbox = new_outbox(client, clock=clock)
    queued = await asyncio.gather(
        *(outbox.submit(TENANT, alert(f"q{n}@contoso.com")) for n in range(3))
    )
    assert {attempt.outcome for attempt in queued} == {Outcome.QUEUED}
    clock.advance(LATER)
    first, second, submitted = await asyncio.gather(
        outbox.drain(), outbox.drain(), outbox.submit(TENANT, alert("new@contoso.com"))
    )
    assert len(first) + len(second) == 3
    assert isinstance(submitted, Attempt)
    assert submitted.outcome is Outcome.DELIVERED
    assert await outbox.drain() == []
    for address in ("q0@contoso.com", "q1@contoso.com", "q2@contoso.com"):
        assert smart_host.delivered_to(address) == 1
    assert smart_host.delivered_to("new@contoso.com") == 1


async def test_drain_goes_on_when_one_session_cannot_open(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """If the second session is refused, the first one carries every message."""
    clock = Clock()
    outbox = new_outbox(client, clock=clock)
    smart_host.reply_at("RCPT", "451 4.7.500 Server busy", times=3)
    for n in range(3):
        await outbox.submit(TENANT, alert(f"u{n}@contoso.com"))
    assert smart_host.connections == 1
    smart_host.greeting("421 4.3.2 Service not available")
    clock.advance(LATER)
    attempts = await outbox.drain()
    assert [a.outcome for a in attempts] == [Outcome.DELIVERED] * 3
    assert smart_host.connections == 2
    assert all(smart_host.delivered_to(f"u{n}@contoso.com") == 1 for n in range(3))


async def test_drain_with_the_host_down_queues_everything(
    dns_server: DnsResponder, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """When no session opens, every due message records the connect error."""
    clock = Clock()
    outbox = new_outbox(client_at(dns_server, smart_host, free_port()), clock=clock)
    await asyncio.gather(
        *(outbox.submit(TENANT, alert(f"u{n}@contoso.com")) for n in range(3))
    )
    clock.advance(LATER)
    attempts = await outbox.drain()
    assert [a.outcome for a in attempts] == [Outcome.QUEUED] * 3
    assert {a.failure.kind for a in attempts if a.failure} == {ErrorKind.CANNOT_CONNECT}
    assert all(a.attempts == 2 for a in attempts)


async def test_drop_in_a_burst_only_delays_that_message(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """A session cut amid one message's DATA is replaced for the messages after it."""
    clock = Clock()
    outbox = new_outbox(client, clock=clock)
    smart_host.reply_at("RCPT", "451 4.7.500 Server busy", times=4)
    await asyncio.gather(
        *(outbox.submit(TENANT, alert(f"u{n}@contoso.com")) for n in range(4))
    )
    smart_host.disconnect_at("DATA")
    clock.advance(LATER)
    attempts = await outbox.drain()
    outcomes = sorted(attempt.outcome for attempt in attempts)
    assert outcomes == sorted([Outcome.DELIVERED] * 3 + [Outcome.QUEUED])
    clock.advance(LATER)
    [retried] = await outbox.drain()
    assert retried.outcome is Outcome.DELIVERED
    assert all(smart_host.delivered_to(f"u{n}@contoso.com") == 1 for n in range(4))


async def test_domain_outside_exchange_online_fails(
    client: DirectSendClient,
    dns_server: DnsResponder,
    smart_host: SmartHost,
    new_outbox: OutboxFactory,
) -> None:
    """A tenant whose MX moved to a gateway fails at once: Direct Send would bypass it."""
    dns_server.remove(TENANT)
    dns_server.add_mx(TENANT, [(10, "eu-smtp-inbound-1.mimecast.example")])
    outbox = new_outbox(client)
    attempt = await outbox.submit(TENANT, alert())
    assert attempt.outcome is Outcome.FAILED
    assert attempt.failure is not None
    assert attempt.failure.kind is ErrorKind.NOT_EXCHANGE_ONLINE
    assert attempt.failed == {"it@contoso.com": None}
    assert smart_host.connections == 0


async def test_unquotable_address_fails(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """An address that cannot be put on the wire safely fails instead of looping."""
    outbox = new_outbox(client)
    bad = alert()
    object.__setattr__(bad, "recipients", ("it\x01@contoso.com",))
    attempt = await outbox.submit(TENANT, bad)
    assert attempt.outcome is Outcome.FAILED
    assert attempt.failure is not None
    assert attempt.failure.kind is ErrorKind.INVALID_ADDRESS
    assert smart_host.messages == []


@pytest.mark.parametrize(
    ("options", "kind"),
    [
        ({"cert_hostname": "other.example"}, ErrorKind.TLS_FAILED),
        ({"starttls": False}, ErrorKind.STARTTLS_UNAVAILABLE),
    ],
    ids=["certificate", "no-starttls"],
)
async def test_unverified_tls_fails_at_once(
    dns_server: DnsResponder,
    smart_host: SmartHost,
    new_outbox: OutboxFactory,
    options: dict[str, Any],
    kind: ErrorKind,
) -> None:
    """Without verified TLS nothing is sent and the user is told now, not in 24 h."""
    async with SmartHost(MX_HOST, ca=smart_host.ca, **options) as bad:
        outbox = new_outbox(make_client(dns_server, bad))
        attempt = await outbox.submit(TENANT, alert())
        assert attempt.outcome is Outcome.FAILED
        assert attempt.failure is not None
        assert attempt.failure.kind is kind
        assert outbox.pending == 0
        assert bad.messages == []
        await outbox.aclose()


class _CutDuringHandshake(asyncio.Protocol):
    """Offer STARTTLS, then end the connection when the TLS handshake begins."""

    def __init__(self, cut: str) -> None:
        """Cut with a reset (RST) or a plain close (FIN)."""
        self._reset = cut == "reset"
        self._buffer = b""
        self._tls = False
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Greet like Exchange Online."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(GREETING.encode())

    def data_received(self, data: bytes) -> None:
        """Answer EHLO and STARTTLS; cut the connection at the ClientHello."""
        assert self._transport is not None
        if self._tls:
            if self._reset:
                self._transport.abort()
            else:
                self._transport.close()
            return
        self._buffer += data
        while b"\r\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\r\n", 1)
            verb = line.split(b" ")[0].upper()
            if verb == b"EHLO":
                self._transport.write(f"250-{MX_HOST}\r\n250 STARTTLS\r\n".encode())
            elif verb == b"STARTTLS":
                self._transport.write(b"220 2.0.0 SMTP server ready\r\n")
                self._tls = True


@pytest.mark.parametrize("cut", ["reset", "close"])
async def test_tls_handshake_cut_is_retried(
    dns_server: DnsResponder,
    smart_host: SmartHost,
    new_outbox: OutboxFactory,
    cut: str,
) -> None:
    """A connection cut during the TLS handshake is temporary; the retry delivers."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _CutDuringHandshake(cut),
        "127.0.0.1",
        0,
        family=socket.AF_INET,
    )
    port = server.sockets[0].getsockname()[1]
    clock = Clock()
    outbox = new_outbox(client_at(dns_server, smart_host, port), clock=clock)
    attempt = await outbox.submit(TENANT, alert())
    server.close()
    server.abort_clients()
    await server.wait_closed()
    assert attempt.outcome is Outcome.QUEUED
    assert attempt.failure is not None
    assert attempt.failure.kind is ErrorKind.DISCONNECTED
    async with SmartHost(MX_HOST, ca=smart_host.ca, port=port) as revived:
        clock.advance(LATER)
        [retried] = await outbox.drain()
        assert retried.outcome is Outcome.DELIVERED
        assert revived.delivered_to("it@contoso.com") == 1
        await outbox.aclose()


async def test_render_alert_moves_large_bodies_to_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Small alerts render inline; large ones in a worker thread, byte for byte."""
    threads: list[int] = []

    def recording_build(**kwargs: Any) -> Any:
        """Note the thread, then build."""
        threads.append(threading.get_ident())
        return build_alert(**kwargs)

    monkeypatch.setattr(render, "build_alert", recording_build)
    date = datetime(2026, 1, 1, tzinfo=UTC)
    for size in (100, RENDER_IN_THREAD_ABOVE + 1):
        options: dict[str, Any] = {
            "sender": "alerts@contoso.com",
            "sender_name": "HA",
            "recipients": ["it@contoso.com"],
            "title": "Leak",
            "body": "x" * size,
            "message_id": "<1@contoso.com>",
            "date": date,
        }
        assert await render_alert(**options) == build_alert(**options)
    assert threads[0] == threading.get_ident()
    assert threads[1] != threading.get_ident()

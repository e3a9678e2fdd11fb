"""The durable outbox against real loopback servers: each fault, and what survives it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email import message_from_bytes
from email.policy import default
import json
import random
from typing import Any

import dns.asyncresolver
import pytest

from custom_components.o365_direct_send.directsend import (
    Attempt,
    DirectSendClient,
    DisconnectedError,
    Envelope,
    ErrorKind,
    Outbox,
    Outcome,
    RetryPolicy,
    SessionPool,
    SmartHostResolver,
    TransportSettings,
    build_alert,
)
from tests.loopback import DnsResponder, SmartHost, free_port

from .conftest import MX_HOST, TENANT

SENDER = "alerts@contoso.com"
START = 1_760_000_000.0
LATER = 3600.0


class MemoryStorage:
    """Keep the outbox as JSON text, as a file written atomically would."""

    def __init__(self, smart_host: SmartHost | None = None) -> None:
        """Start with nothing saved; note the server's mail count at each save."""
        self.text: str | None = None
        self.sizes: list[int] = []
        self.delivered_at_save: list[int] = []
        self._smart_host = smart_host

    async def load(self) -> list[dict[str, Any]] | None:
        """Return what was saved last."""
        return None if self.text is None else json.loads(self.text)

    async def save(self, items: list[dict[str, Any]]) -> None:
        """Replace the saved items; a real write yields to the loop."""
        await asyncio.sleep(0)
        self.text = json.dumps(items, allow_nan=False)
        self.sizes.append(len(items))
        if self._smart_host is not None:
            self.delivered_at_save.append(len(self._smart_host.messages))

    @property
    def saved_ids(self) -> list[str]:
        """Return the ids of the saved messages."""
        return [item["id"] for item in json.loads(self.text or "[]")]


class Clock:
    """A wall clock that only moves when told to."""

    def __init__(self, now: float = START) -> None:
        """Stop the clock at a fixed time."""
        self.now = now

    def __call__(self) -> float:
        """Return the frozen time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


def alert(*recipients: str, body: str = "Water on the floor") -> Envelope:
    """Build an alert to the recipients (it@contoso.com by default)."""
    return build_alert(
        sender=SENDER,
        sender_name="Home Assistant",
        recipients=list(recipients) or ["it@contoso.com"],
        title="Leak",
        body=body,
    )


def client_at(
    dns_server: DnsResponder,
    trusted: SmartHost,
    port: int,
    *,
    timeout: float = 2.0,
    clock: Callable[[], float] | None = None,
) -> DirectSendClient:
    """Build a client that trusts a smart host's CA but dials the given port."""
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [dns_server.host]
    resolver.port = dns_server.port
    resolver.lifetime = timeout
    settings = TransportSettings(
        tls_context=trusted.client_ssl_context(),
        local_hostname="ha.contoso.com",
        port=port,
        timeout=timeout,
    )
    if clock is None:
        return DirectSendClient(SmartHostResolver(resolver), settings)
    return DirectSendClient(
        SmartHostResolver(resolver, clock=clock), settings, clock=clock
    )


type OutboxFactory = Callable[..., Outbox]


@asynccontextmanager
async def outbox_factory() -> AsyncIterator[OutboxFactory]:
    """Make outboxes on a frozen clock and close them all on the way out."""
    made: list[Outbox] = []

    def factory(
        client: DirectSendClient,
        storage: MemoryStorage | None = None,
        *,
        clock: Clock | None = None,
        events: list[Attempt] | None = None,
        policy: RetryPolicy | None = None,
        pool: SessionPool | None = None,
    ) -> Outbox:
        """Make one outbox and remember it for teardown."""
        outbox = Outbox(
            client,
            storage if storage is not None else MemoryStorage(),
            policy=policy,
            clock=clock or Clock(),
            rng=random.Random(7),  # noqa: S311 - repeatable jitter
            listener=events.append if events is not None else None,
            pool=pool,
        )
        made.append(outbox)
        return outbox

    try:
        yield factory
    finally:
        for outbox in made:
            await outbox.aclose()


@pytest.fixture
async def new_outbox(
    dns_server: DnsResponder, smart_host: SmartHost
) -> AsyncIterator[OutboxFactory]:
    """Make outboxes that close before the loopback servers stop."""
    async with outbox_factory() as factory:
        yield factory


async def test_delivered_at_once_after_it_was_stored(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """The message is saved before the first attempt, and leaves the queue after."""
    storage = MemoryStorage(smart_host)
    events: list[Attempt] = []
    clock = Clock()
    outbox = new_outbox(client, storage, clock=clock, events=events)
    envelope = alert("it@contoso.com", "ops@contoso.com")
    attempt = await outbox.submit(TENANT, envelope)
    assert attempt.outcome is Outcome.DELIVERED
    assert attempt.finished
    assert attempt.delivered == ("it@contoso.com", "ops@contoso.com")
    assert attempt.message_id == envelope.message_id
    assert attempt.failure is None
    assert events == [attempt]
    assert storage.sizes == [1, 0]
    assert storage.delivered_at_save == [0, 1]
    assert (outbox.pending, outbox.delivered, outbox.failed) == (0, 1, 0)
    assert outbox.last_delivered_at == clock.now
    assert not outbox.problem
    assert outbox.next_due() is None
    assert outbox.next_due_in() is None
    [received] = smart_host.messages
    assert received.data == envelope.data
    assert smart_host.delivered_to("it@contoso.com") == 1
    assert smart_host.delivered_to("ops@contoso.com") == 1


async def test_dns_timeout_uses_the_cached_smart_host(
    dns_server: DnsResponder, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """DNS down after the TTL: the last MX and address stand in until the grace ends."""
    monotonic = Clock(0.0)
    client = client_at(
        dns_server, smart_host, smart_host.port, timeout=0.3, clock=monotonic
    )
    pool = SessionPool(client, idle_timeout=0.0)
    clock = Clock()
    outbox = new_outbox(client, clock=clock, pool=pool)
    assert (await outbox.submit(TENANT, alert("a@contoso.com"))).outcome is (
        Outcome.DELIVERED
    )
    dns_server.drop(TENANT)
    dns_server.drop(MX_HOST)
    monotonic.advance(301.0)
    queries = len(dns_server.queries)
    attempt = await outbox.submit(TENANT, alert("b@contoso.com"))
    assert attempt.outcome is Outcome.DELIVERED
    assert (TENANT, "MX") in dns_server.queries[queries:]
    assert (MX_HOST, "A") in dns_server.queries[queries:]
    assert smart_host.connections == 2

    monotonic.advance(3600.0)
    attempt = await outbox.submit(TENANT, alert("c@contoso.com"))
    assert attempt.outcome is Outcome.QUEUED
    assert attempt.failure is not None
    assert attempt.failure.kind is ErrorKind.DNS_FAILED
    assert outbox.problem
    dns_server.remove(TENANT)
    dns_server.remove(MX_HOST)
    dns_server.tenant(TENANT, MX_HOST)
    clock.advance(LATER)
    [retried] = await outbox.drain()
    assert retried.outcome is Outcome.DELIVERED
    assert not outbox.problem
    for address in ("a@contoso.com", "b@contoso.com", "c@contoso.com"):
        assert smart_host.delivered_to(address) == 1


async def test_nxdomain_is_queued_until_the_domain_resolves(
    client: DirectSendClient,
    dns_server: DnsResponder,
    smart_host: SmartHost,
    new_outbox: OutboxFactory,
) -> None:
    """A domain that does not exist (yet) keeps the message queued, not lost."""
    dns_server.remove(TENANT)
    clock = Clock()
    outbox = new_outbox(client, clock=clock)
    attempt = await outbox.submit(TENANT, alert())
    assert attempt.outcome is Outcome.QUEUED
    assert attempt.failure is not None
    assert attempt.failure.kind is ErrorKind.NO_MX
    assert attempt.pending == ("it@contoso.com",)
    assert attempt.next_attempt_at is not None
    assert 24.0 <= attempt.next_attempt_at - clock.now <= 36.0
    assert outbox.next_due() == attempt.next_attempt_at
    assert outbox.next_due_in() == attempt.next_attempt_at - clock.now
    assert await outbox.drain() == []
    dns_server.tenant(TENANT, MX_HOST)
    clock.advance(LATER)
    [retried] = await outbox.drain()
    assert retried.outcome is Outcome.DELIVERED
    assert retried.attempts == 2
    assert smart_host.delivered_to("it@contoso.com") == 1


async def test_mx_change_is_picked_up(
    client: DirectSendClient,
    dns_server: DnsResponder,
    smart_host: SmartHost,
    new_outbox: OutboxFactory,
) -> None:
    """After 451 4.4.62 (wrong region) the retry follows the tenant's new MX."""
    new_mx = "contoso-com.o-v1.mx.microsoft"
    dns_server.remove(TENANT)
    dns_server.add_mx(TENANT, [(10, MX_HOST)], ttl=0)
    smart_host.reply_at("MAIL", "451 4.4.62 Mail sent to the wrong Office 365 region")
    clock = Clock()
    outbox = new_outbox(client, clock=clock)
    attempt = await outbox.submit(TENANT, alert())
    assert attempt.outcome is Outcome.QUEUED
    assert attempt.failure is not None
    assert attempt.failure.reply is not None
    assert attempt.failure.reply.enhanced_code == "4.4.62"
    async with SmartHost(
        new_mx, ca=smart_host.ca, host="127.0.0.2", port=smart_host.port
    ) as moved:
        dns_server.remove(TENANT)
        dns_server.add_mx(TENANT, [(10, new_mx)], ttl=0)
        dns_server.add_a(new_mx, "127.0.0.2")
        clock.advance(LATER)
        [retried] = await outbox.drain()
        assert retried.outcome is Outcome.DELIVERED
        assert moved.delivered_to("it@contoso.com") == 1
        await outbox.aclose()
    assert smart_host.delivered_to("it@contoso.com") == 0


async def test_wrong_region_re_resolves_before_the_ttl_ends(
    client: DirectSendClient,
    dns_server: DnsResponder,
    smart_host: SmartHost,
    new_outbox: OutboxFactory,
) -> None:
    """451 4.4.62 drops the cached MX: the retry asks DNS again and follows the move."""
    new_mx = "contoso-com.o-v1.mx.microsoft"
    smart_host.reply_at("MAIL", "451 4.4.62 Mail sent to the wrong Office 365 region")
    clock = Clock()
    outbox = new_outbox(client, clock=clock)
    attempt = await outbox.submit(TENANT, alert())
    assert attempt.outcome is Outcome.QUEUED
    async with SmartHost(
        new_mx, ca=smart_host.ca, host="127.0.0.2", port=smart_host.port
    ) as moved:
        dns_server.remove(TENANT, "MX")
        dns_server.add_mx(TENANT, [(10, new_mx)], ttl=300)
        dns_server.add_a(new_mx, "127.0.0.2")
        # Only the outbox's clock moves: the resolver's 300 s TTL is still running.
        clock.advance(LATER)
        [retried] = await outbox.drain()
        assert retried.outcome is Outcome.DELIVERED
        assert moved.delivered_to("it@contoso.com") == 1
        await outbox.aclose()
    assert smart_host.delivered_to("it@contoso.com") == 0
    assert dns_server.queries.count((TENANT, "MX")) == 2


async def test_connection_refused_then_the_host_comes_back(
    dns_server: DnsResponder, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """Nobody listening keeps the message queued; it goes out once the host is up."""
    port = free_port()
    clock = Clock()
    outbox = new_outbox(client_at(dns_server, smart_host, port), clock=clock)
    attempt = await outbox.submit(TENANT, alert())
    assert attempt.outcome is Outcome.QUEUED
    assert attempt.failure is not None
    assert attempt.failure.kind is ErrorKind.CANNOT_CONNECT
    async with SmartHost(MX_HOST, ca=smart_host.ca, port=port) as revived:
        clock.advance(LATER)
        [retried] = await outbox.drain()
        assert retried.outcome is Outcome.DELIVERED
        assert revived.delivered_to("it@contoso.com") == 1
        await outbox.aclose()


async def test_connect_timeout_then_success(
    dns_server: DnsResponder, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """A host that never greets looks like blocked port 25; the retry gets through."""
    smart_host.silent(times=1)
    clock = Clock()
    client = client_at(dns_server, smart_host, smart_host.port, timeout=0.5)
    outbox = new_outbox(client, clock=clock)
    attempt = await outbox.submit(TENANT, alert())
    assert attempt.outcome is Outcome.QUEUED
    assert attempt.failure is not None
    assert attempt.failure.kind is ErrorKind.PORT_BLOCKED
    clock.advance(LATER)
    [retried] = await outbox.drain()
    assert retried.outcome is Outcome.DELIVERED
    assert smart_host.connections == 2
    assert smart_host.delivered_to("it@contoso.com") == 1


async def test_reset_in_the_middle_of_data(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """A connection cut amid DATA delivers nothing; the retry delivers it once."""
    smart_host.disconnect_at("DATA")
    clock = Clock()
    outbox = new_outbox(client, clock=clock)
    envelope = alert()
    attempt = await outbox.submit(TENANT, envelope)
    assert attempt.outcome is Outcome.QUEUED
    assert attempt.failure is not None
    assert attempt.failure.kind is ErrorKind.DISCONNECTED
    assert isinstance(attempt.error, DisconnectedError)
    assert attempt.error.stage == "DATA"
    assert smart_host.messages == []
    clock.advance(LATER)
    [retried] = await outbox.drain()
    assert retried.outcome is Outcome.DELIVERED
    [received] = smart_host.messages
    assert received.data == envelope.data
    assert smart_host.delivered_to("it@contoso.com") == 1


async def test_421_at_greeting_is_retried(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """A busy host that greets with 421 gets the message on the next attempt."""
    smart_host.greeting("421 4.3.2 Service not available")
    clock = Clock()
    events: list[Attempt] = []
    outbox = new_outbox(client, clock=clock, events=events)
    attempt = await outbox.submit(TENANT, alert())
    assert attempt.outcome is Outcome.QUEUED
    assert attempt.failure is not None
    assert attempt.failure.kind is ErrorKind.SMTP_REFUSED
    assert attempt.failure.reply is not None
    assert attempt.failure.reply.code == 421
    assert outbox.last_failure == attempt.failure
    assert outbox.problem
    clock.advance(LATER)
    await outbox.drain()
    assert [event.outcome for event in events] == [Outcome.QUEUED, Outcome.DELIVERED]
    assert smart_host.delivered_to("it@contoso.com") == 1


async def test_server_busy_at_rcpt_then_success(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """451 4.7.500 at RCPT waits out the backoff, then delivers once."""
    smart_host.reply_at("RCPT", "451 4.7.500 Server busy. Please try again later")
    clock = Clock()
    outbox = new_outbox(client, clock=clock)
    attempt = await outbox.submit(TENANT, alert())
    assert attempt.outcome is Outcome.QUEUED
    assert attempt.failure is not None
    assert attempt.failure.kind is ErrorKind.RECIPIENTS_REFUSED
    assert attempt.failure.reply is not None
    assert attempt.failure.reply.enhanced_code == "4.7.500"
    assert outbox.queued()[0].last_reply == attempt.failure.reply
    clock.advance(20.0)
    assert await outbox.drain() == []
    clock.advance(LATER)
    [retried] = await outbox.drain()
    assert retried.outcome is Outcome.DELIVERED
    assert smart_host.delivered_to("it@contoso.com") == 1
    assert smart_host.connections == 1


async def test_too_many_recipients_continues_in_new_transactions(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """452 4.5.3 after two recipients: the rest go at once, on the same session."""
    smart_host.max_recipients(2)
    recipients = [f"user{n}@contoso.com" for n in range(5)]
    outbox = new_outbox(client)
    attempt = await outbox.submit(TENANT, alert(*recipients))
    assert attempt.outcome is Outcome.DELIVERED
    assert attempt.delivered == tuple(recipients)
    assert [len(m.rcpt_tos) for m in smart_host.messages] == [2, 2, 1]
    assert smart_host.connections == 1
    assert all(smart_host.delivered_to(address) == 1 for address in recipients)


async def test_too_many_recipients_at_the_first_one_waits(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """452 4.5.3 before any recipient was taken is a temporary refusal of all."""
    smart_host.reply_at("RCPT", "452 4.5.3 Too many recipients")
    clock = Clock()
    outbox = new_outbox(client, clock=clock)
    attempt = await outbox.submit(TENANT, alert("a@contoso.com", "b@contoso.com"))
    assert attempt.outcome is Outcome.QUEUED
    assert attempt.pending == ("a@contoso.com", "b@contoso.com")
    clock.advance(LATER)
    [retried] = await outbox.drain()
    assert retried.outcome is Outcome.DELIVERED
    assert smart_host.delivered_to("a@contoso.com") == 1
    assert smart_host.delivered_to("b@contoso.com") == 1


async def test_one_of_three_recipients_does_not_exist(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """550 5.4.1 for one recipient fails that one; the other two get it once."""
    smart_host.reply_at(
        "RCPT",
        "550 5.4.1 Recipient address rejected: Access denied",
        recipient="gone@contoso.com",
    )
    events: list[Attempt] = []
    clock = Clock()
    outbox = new_outbox(client, clock=clock, events=events)
    attempt = await outbox.submit(
        TENANT, alert("it@contoso.com", "gone@contoso.com", "ops@contoso.com")
    )
    assert attempt.outcome is Outcome.PARTIAL
    assert attempt.finished
    assert attempt.delivered == ("it@contoso.com", "ops@contoso.com")
    [(address, reply)] = attempt.failed.items()
    assert address == "gone@contoso.com"
    assert reply is not None
    assert (reply.code, reply.enhanced_code) == (550, "5.4.1")
    assert attempt.failure is not None
    assert attempt.failure.reply == reply
    assert "gone@contoso.com: 550 5.4.1" in attempt.failure.error
    assert (outbox.pending, outbox.delivered, outbox.failed) == (0, 0, 1)
    assert outbox.problem
    clock.advance(LATER)
    assert await outbox.drain() == []
    assert smart_host.delivered_to("it@contoso.com") == 1
    assert smart_host.delivered_to("ops@contoso.com") == 1
    assert smart_host.delivered_to("gone@contoso.com") == 0


async def test_refused_for_one_and_busy_for_another(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """A 5xx recipient fails, a 4xx one waits, and the third is never sent twice."""
    smart_host.reply_at("RCPT", "550 5.4.1 Access denied", recipient="gone@contoso.com")
    smart_host.reply_at("RCPT", "451 4.7.500 Server busy", recipient="ops@contoso.com")
    clock = Clock()
    outbox = new_outbox(client, clock=clock)
    attempt = await outbox.submit(
        TENANT, alert("it@contoso.com", "gone@contoso.com", "ops@contoso.com")
    )
    assert attempt.outcome is Outcome.PARTIAL
    assert not attempt.finished
    assert attempt.pending == ("ops@contoso.com",)
    assert outbox.pending == 1
    clock.advance(LATER)
    [retried] = await outbox.drain()
    assert retried.outcome is Outcome.DELIVERED
    assert retried.delivered == ("ops@contoso.com",)
    assert (outbox.delivered, outbox.failed) == (0, 1)
    assert smart_host.delivered_to("it@contoso.com") == 1
    assert smart_host.delivered_to("ops@contoso.com") == 1
    assert smart_host.delivered_to("gone@contoso.com") == 0


async def test_reject_direct_send_fails_without_retry(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """550 5.7.68 at MAIL is permanent: the caller hears it and nothing is retried."""
    smart_host.reply_at(
        "MAIL",
        "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this "
        "organization from unauthorized sources",
        times=None,
    )
    events: list[Attempt] = []
    clock = Clock()
    outbox = new_outbox(client, clock=clock, events=events)
    attempt = await outbox.submit(TENANT, alert("it@contoso.com", "ops@contoso.com"))
    assert attempt.outcome is Outcome.FAILED
    assert attempt.finished
    assert attempt.failure is not None
    assert attempt.failure.reply is not None
    assert attempt.failure.reply.code == 550
    assert attempt.failure.reply.enhanced_code == "5.7.68"
    assert "Direct Send not allowed" in attempt.failure.reply.text
    assert attempt.failed == dict.fromkeys(
        ("it@contoso.com", "ops@contoso.com"), attempt.failure.reply
    )
    assert (outbox.pending, outbox.failed) == (0, 1)
    assert events == [attempt]
    clock.advance(LATER)
    assert await outbox.drain() == []
    assert smart_host.messages == []
    assert smart_host.connections == 1


async def test_message_expires_after_the_maximum_age(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """A message that could not be delivered for 24 hours expires with its last error."""
    smart_host.reply_at("MAIL", "451 4.7.0 Temporary server error", times=None)
    events: list[Attempt] = []
    clock = Clock()
    outbox = new_outbox(client, clock=clock, events=events)
    submitted = await outbox.submit(TENANT, alert())
    assert submitted.outcome is Outcome.QUEUED
    retries = 0
    while (due := outbox.next_due()) is not None and due < START + 86_400:
        clock.now = due
        [retry] = await outbox.drain()
        assert retry.outcome is Outcome.QUEUED
        retries += 1
    assert due == START + 86_400
    assert 90 < retries < 120
    clock.now = due
    [expired] = await outbox.drain()
    assert expired.outcome is Outcome.EXPIRED
    assert expired.expired == ("it@contoso.com",)
    assert expired.failure is not None
    assert expired.failure.kind is ErrorKind.EXPIRED
    assert expired.failure.reply is not None
    assert expired.failure.reply.code == 451
    assert "451 4.7.0" in expired.failure.error
    assert outbox.last_failure == expired.failure
    assert (outbox.pending, outbox.expired, outbox.delivered) == (0, 1, 0)
    assert outbox.problem
    assert events[-1] == expired
    assert smart_host.messages == []


async def test_restart_with_100_queued_messages(
    client: DirectSendClient,
    dns_server: DnsResponder,
    smart_host: SmartHost,
    new_outbox: OutboxFactory,
) -> None:
    """100 messages queued while the host was down go out once each after a restart."""
    storage = MemoryStorage()
    clock = Clock()
    down = new_outbox(client_at(dns_server, smart_host, free_port()), storage)
    envelopes = [alert(f"user{n}@contoso.com", body=f"alert {n}") for n in range(100)]
    first = await asyncio.gather(*(down.submit(TENANT, e) for e in envelopes))
    assert {attempt.outcome for attempt in first} == {Outcome.QUEUED}
    assert len(storage.saved_ids) == 100
    await down.aclose()

    restarted = new_outbox(client, storage, clock=clock)
    await restarted.load()
    assert restarted.pending == 100
    clock.advance(LATER)
    attempts = await restarted.drain()
    assert [a.outcome for a in attempts] == [Outcome.DELIVERED] * 100
    assert restarted.pending == 0
    assert storage.saved_ids == []
    assert smart_host.connections <= 2
    assert len(smart_host.messages) == 100
    for n in range(100):
        assert smart_host.delivered_to(f"user{n}@contoso.com") == 1
    received_ids = {
        message_from_bytes(m.data, policy=default)["Message-ID"]
        for m in smart_host.messages
    }
    assert received_ids == {envelope.message_id for envelope in envelopes}
    assert await restarted.drain() == []


async def test_burst_of_50_shares_sessions_and_writes(
    client: DirectSendClient,
    dns_server: DnsResponder,
    smart_host: SmartHost,
    new_outbox: OutboxFactory,
) -> None:
    """50 alerts at once: one or two sessions, and one write makes all 50 durable."""
    storage = MemoryStorage(smart_host)
    outbox = new_outbox(client, storage)
    recipients = [f"user{n}@contoso.com" for n in range(50)]
    attempts = await asyncio.gather(
        *(outbox.submit(TENANT, alert(address)) for address in recipients)
    )
    assert {attempt.outcome for attempt in attempts} == {Outcome.DELIVERED}
    assert smart_host.connections in {1, 2}
    assert dns_server.queries.count((TENANT, "MX")) == 1
    assert storage.sizes[0] == 50
    assert storage.delivered_at_save[0] == 0
    assert storage.sizes[-1] == 0
    assert len(storage.sizes) < 100
    assert all(smart_host.delivered_to(address) == 1 for address in recipients)
    assert outbox.delivered == 50


async def test_250_recipients_are_split_200_and_50(
    client: DirectSendClient, smart_host: SmartHost, new_outbox: OutboxFactory
) -> None:
    """More than 200 recipients of one domain go in transactions of at most 200."""
    recipients = [f"user{n:03}@contoso.com" for n in range(250)]
    outbox = new_outbox(client)
    attempt = await outbox.submit(TENANT, alert(*recipients))
    assert attempt.outcome is Outcome.DELIVERED
    assert [len(m.rcpt_tos) for m in smart_host.messages] == [200, 50]
    assert smart_host.connections == 1
    assert all(smart_host.delivered_to(address) == 1 for address in recipients)

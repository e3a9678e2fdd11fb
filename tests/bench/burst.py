"""A burst of alerts through the outbox versus a new aiosmtplib session per mail.

Run: scripts/bench [--mails N] [--delay SECONDS]. The servers (DNS, a STARTTLS smart host
and a proxy that delays each direction) run in a child process started with --serve, so
the event-loop stalls measured here are the sender's own.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
import json
from pathlib import Path
import platform
import ssl
import statistics
import sys
import tempfile
import time
from types import TracebackType
from typing import Any, Self

import aiosmtplib

from custom_components.o365_direct_send.directsend import (
    DirectSendClient,
    Envelope,
    Outbox,
    Outcome,
    SmartHostResolver,
    TransportSettings,
    build_alert,
)
from tests.loopback import DelayProxy, DnsResponder, SmartHost, make_ca, write_ca_pem

TENANT = "contoso.com"
MX_HOST = "contoso-com.mail.protection.outlook.com"
SENDER = "alerts@contoso.com"
LOOPBACK = "127.0.0.1"
TARGET_RATIO = 0.40
TARGET_STALL = 0.010
RTT_SAMPLES = 10


def _say(text: str = "") -> None:
    """Write a line to stdout at once."""
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


async def _stdin() -> asyncio.StreamReader:
    """Return a stream reader on standard input."""
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    return reader


async def serve(delay: float) -> None:
    """Run the servers; answer "stats" and "reset" on stdin until it closes."""
    ca = make_ca()
    async with DnsResponder() as dns, SmartHost(MX_HOST, ca=ca) as host:
        dns.tenant(TENANT, MX_HOST)
        async with DelayProxy(host.host, host.port, delay=delay) as proxy:
            with tempfile.TemporaryDirectory() as tmp:
                ca_file = write_ca_pem(ca, Path(tmp) / "ca.pem")
                _say(
                    json.dumps(
                        {"dns": dns.port, "proxy": proxy.port, "ca": str(ca_file)}
                    )
                )
                reader = await _stdin()
                while line := await reader.readline():
                    if line.strip() == b"reset":
                        host.messages.clear()
                        host.connections = 0
                        _say("{}")
                        continue
                    copies = Counter(r for m in host.messages for r in m.rcpt_tos)
                    _say(
                        json.dumps(
                            {
                                "messages": len(host.messages),
                                "connections": host.connections,
                                "most_copies": max(copies.values(), default=0),
                                "all_tls": all(m.tls for m in host.messages),
                            }
                        )
                    )


class Servers:
    """The child process that runs the loopback servers."""

    def __init__(self, delay: float) -> None:
        """Prepare to start the servers with the given one-way delay."""
        self.delay = delay
        self.info: dict[str, Any] = {}
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Self:
        """Start the child and read its ports."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench.burst",
            "--serve",
            "--delay",
            str(self.delay),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self.info = await self._read()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the child's stdin and wait for it to end."""
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.close()
        await self._process.wait()

    async def ask(self, command: str) -> dict[str, Any]:
        """Send a command and return the child's answer."""
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write(f"{command}\n".encode())
        await self._process.stdin.drain()
        return await self._read()

    async def _read(self) -> dict[str, Any]:
        """Read one JSON line from the child."""
        assert self._process is not None
        assert self._process.stdout is not None
        answer: dict[str, Any] = json.loads(await self._process.stdout.readline())
        return answer


class StallMonitor:
    """Sleep 1 ms in a loop and keep the largest lateness: the loop's worst stall."""

    def __init__(self) -> None:
        """Start with no stall seen."""
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        """Start watching."""
        self._task = asyncio.create_task(self._watch())
        await asyncio.sleep(0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop watching."""
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        """Measure how late each 1 ms sleep wakes up."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, time.perf_counter() - started - 0.001)


class MemoryStorage:
    """Keep the outbox as JSON text in memory."""

    def __init__(self) -> None:
        """Start empty."""
        self.text = "[]"

    async def load(self) -> list[dict[str, Any]] | None:
        """Return the saved items."""
        items: list[dict[str, Any]] = json.loads(self.text)
        return items

    async def save(self, items: list[dict[str, Any]]) -> None:
        """Replace the saved items."""
        self.text = json.dumps(items)


@dataclass(frozen=True, slots=True)
class Run:
    """One measured burst."""

    name: str
    seconds: float
    stall: float
    stats: dict[str, Any]

    def per_mail(self, mails: int) -> float:
        """Return the seconds per mail."""
        return self.seconds / mails


def _alerts(mails: int, tag: str) -> list[Envelope]:
    """Render the burst's alerts up front: rendering is the same for both senders."""
    return [
        build_alert(
            sender=SENDER,
            sender_name="Home Assistant",
            recipients=[f"user{n:02}@contoso.com"],
            title=f"Motion in zone {n} ({tag})",
            body=f"Sensor binary_sensor.zone_{n} turned on at 03:14.\n" * 8,
        )
        for n in range(mails)
    ]


def _client(servers: Servers) -> DirectSendClient:
    """Build the directsend client, dialling the delay proxy."""
    return DirectSendClient(
        SmartHostResolver.at([LOOPBACK], servers.info["dns"], 5.0),
        TransportSettings(
            tls_context=client_ssl_context_from(servers),
            local_hostname="bench.contoso.com",
            port=servers.info["proxy"],
            timeout=30.0,
        ),
    )


def client_ssl_context_from(servers: Servers) -> ssl.SSLContext:
    """Return a verifying TLS context that trusts the child's CA."""
    context = ssl.create_default_context(cafile=servers.info["ca"])
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def naive_send(servers: Servers, envelope: Envelope) -> None:
    """Send one mail the way a simple integration does: a new session for it."""
    smtp = aiosmtplib.SMTP(
        hostname=LOOPBACK,
        port=servers.info["proxy"],
        local_hostname="bench.contoso.com",
        start_tls=False,
        timeout=30.0,
    )
    await smtp.connect()
    await smtp.starttls(
        server_hostname=MX_HOST, tls_context=client_ssl_context_from(servers)
    )
    await smtp.sendmail(envelope.sender, list(envelope.recipients), envelope.data)
    await smtp.quit()


async def _measure(
    servers: Servers, name: str, burst: Callable[[], Awaitable[None]]
) -> Run:
    """Time a burst while watching the event loop, then read the server's counts."""
    await servers.ask("reset")
    async with StallMonitor() as monitor:
        started = time.perf_counter()
        await burst()
        seconds = time.perf_counter() - started
    return Run(name, seconds, monitor.worst, await servers.ask("stats"))


async def run_ours(servers: Servers, envelopes: Sequence[Envelope]) -> Run:
    """Submit the whole burst to a fresh outbox: cold DNS, no open session."""
    outbox = Outbox(_client(servers), MemoryStorage())

    async def burst() -> None:
        """Submit every alert at once, as concurrent automations would."""
        attempts = await asyncio.gather(
            *(outbox.submit(TENANT, envelope) for envelope in envelopes)
        )
        assert {attempt.outcome for attempt in attempts} == {Outcome.DELIVERED}

    try:
        return await _measure(servers, "directsend Outbox, pooled sessions", burst)
    finally:
        await outbox.aclose()


async def run_naive(
    servers: Servers, envelopes: Sequence[Envelope], concurrency: int
) -> Run:
    """Send the burst with a new session per mail, `concurrency` at a time."""
    slots = asyncio.Semaphore(concurrency)

    async def one(envelope: Envelope) -> None:
        """Send one mail when a slot is free."""
        async with slots:
            await naive_send(servers, envelope)

    async def burst() -> None:
        """Send every alert."""
        await asyncio.gather(*(one(envelope) for envelope in envelopes))

    name = f"naive, new session per mail, {concurrency} at a time"
    return await _measure(servers, name, burst)


async def round_trip(servers: Servers) -> float:
    """Return the median NOOP round trip through the proxy."""
    smtp = aiosmtplib.SMTP(
        hostname=LOOPBACK, port=servers.info["proxy"], start_tls=False, timeout=30.0
    )
    await smtp.connect()
    samples = []
    for _ in range(RTT_SAMPLES):
        started = time.perf_counter()
        await smtp.noop()
        samples.append(time.perf_counter() - started)
    await smtp.quit()
    return statistics.median(samples)


async def main(mails: int, delay: float) -> int:
    """Run the burst both ways and print the comparison; exit 1 if a target is missed."""
    async with Servers(delay) as servers:
        await run_ours(servers, _alerts(1, "warm-up"))
        await naive_send(servers, _alerts(1, "warm-up")[0])
        rtt = await round_trip(servers)
        ours = await run_ours(servers, _alerts(mails, "outbox"))
        sequential = await run_naive(servers, _alerts(mails, "naive"), 1)
        paired = await run_naive(servers, _alerts(mails, "naive x2"), 2)
    ms = 1000.0
    _say(
        f"{mails} alerts, one-way delay {delay * ms:.0f} ms, measured RTT "
        f"{rtt * ms:.1f} ms; Python {platform.python_version()}, "
        f"aiosmtplib {aiosmtplib.__version__}"
    )
    for run in (ours, sequential, paired):
        stats = run.stats
        assert stats["messages"] == mails, stats
        assert stats["most_copies"] == 1, stats
        assert stats["all_tls"], stats
        _say(
            f"  {run.name:<45} {run.per_mail(mails) * ms:6.1f} ms/mail  "
            f"(total {run.seconds:5.2f} s, {stats['connections']:>2} connections, "
            f"largest loop stall {run.stall * ms:4.1f} ms)"
        )
    ratio = ours.seconds / sequential.seconds
    ratio_paired = ours.seconds / paired.seconds
    _say(f"ratio ours / naive one at a time: {ratio:.2f} (target <= {TARGET_RATIO})")
    _say(f"ratio ours / naive two at a time: {ratio_paired:.2f}")
    _say(
        f"largest event-loop stall during our burst: {ours.stall * ms:.1f} ms "
        f"(target <= {TARGET_STALL * ms:.0f} ms)"
    )
    # PIPELINING (RFC 2920) would send MAIL, RCPT and DATA in one flight: a
    # transaction would take 2 round trips instead of 4 on each session.
    sessions = max(1, ours.stats["connections"])
    pipelined = ours.seconds - (mails / sessions) * 2 * rtt
    _say(
        f"estimate with PIPELINING (2 round trips saved per mail per session): "
        f"{pipelined / mails * ms:.1f} ms/mail, ratio {pipelined / sequential.seconds:.2f}"
    )
    return 0 if ratio <= TARGET_RATIO and ours.stall <= TARGET_STALL else 1


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--mails", type=int, default=50, help="alerts in the burst")
    parser.add_argument(
        "--delay", type=float, default=0.010, help="one-way delay in seconds"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = _arguments(sys.argv[1:])
    if arguments.serve:
        asyncio.run(serve(arguments.delay))
        sys.exit(0)
    sys.exit(asyncio.run(main(arguments.mails, arguments.delay)))

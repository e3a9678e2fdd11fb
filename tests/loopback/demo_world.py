"""The developer demo: DNS and one smart host for the demo tenants, until interrupted.

Run: python -m tests.loopback.demo_world --state-dir DIR [--dns-port N] [--smtp-port N]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage
import io
import json
import os
from pathlib import Path
import signal
import sys
import tempfile
import time
from typing import Final

from .dns_responder import DnsResponder
from .smart_host import SmartHost
from .smtp_session import ReceivedMessage
from .tls import write_ca_pem

EXCHANGE_TENANTS: Final = (
    ("contoso.example", "contoso-example.mail.protection.outlook.com"),
    ("fabrikam.example", "fabrikam-example.o-v1.mx.microsoft"),
)
# Shows the "not Exchange Online" error: the MX resolves, but to a non-Microsoft host.
OTHER_PROVIDER: Final = ("gmail.example", "gmail-smtp-in.l.google.example")
# contoso authorises this machine (SPF passes); fabrikam forgets to, so the demo
# shows the SPF repair with a suggested record.
TENANT_SPF: Final = {
    "contoso.example": "v=spf1 ip4:127.0.0.1 include:spf.protection.outlook.com -all",
    "fabrikam.example": "v=spf1 include:spf.protection.outlook.com -all",
}
MICROSOFT_SPF: Final = (
    "spf.protection.outlook.com",
    "v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip4:52.100.0.0/15 ip4:104.47.0.0/17 -all",
)
SETTINGS_FILE: Final = "development.json"
CA_FILE: Final = "ca.pem"
MAIL_DIR: Final = "mail"
SHOWN_HEADERS: Final = ("From", "To", "Cc", "Subject", "Date", "Message-ID")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.loopback.demo_world",
        description="Serve DNS and an Exchange Online look-alike smart host on "
        "127.0.0.1 for the demo tenants contoso.example and fabrikam.example.",
    )
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--dns-port", type=int, default=0)
    parser.add_argument("--smtp-port", type=int, default=0)
    return parser.parse_args(argv)


def build_dns(dns_port: int) -> DnsResponder:
    """Return a responder holding the demo zone."""
    dns = DnsResponder(port=dns_port)
    for domain, mx_host in (*EXCHANGE_TENANTS, OTHER_PROVIDER):
        dns.tenant(domain, mx_host)
    for domain, record in TENANT_SPF.items():
        dns.add_txt(domain, [record])
    dns.add_txt(MICROSOFT_SPF[0], [MICROSOFT_SPF[1]])
    return dns


def write_atomically(path: Path, text: str) -> None:
    """Replace the file in one step, so a reader never sees half of it."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def describe(message: ReceivedMessage, number: int) -> str:
    """Render a received mail for the terminal: envelope, main headers, text body."""
    parsed = message_from_bytes(message.data, policy=policy.default)
    transport = "TLS" if message.tls else "PLAINTEXT"
    lines = [
        f"--- Mail {number} (session {message.session_id}, {transport}) ---",
        f"MAIL FROM: <{message.mail_from}>",
        "RCPT TO:   " + ", ".join(f"<{rcpt}>" for rcpt in message.rcpt_tos),
    ]
    lines += [f"{name}: {parsed[name]}" for name in SHOWN_HEADERS if name in parsed]
    lines += ["", _text_body(parsed)]
    return "\n".join(lines)


def _text_body(parsed: object) -> str:
    """Return the plain (else HTML) body as text, or a placeholder."""
    if not isinstance(parsed, EmailMessage):
        return "(not a MIME message)"
    body = parsed.get_body(preferencelist=("plain", "html"))
    if body is None:
        return "(no text body)"
    try:
        return str(body.get_content()).rstrip()
    except (LookupError, ValueError) as err:
        return f"(undecodable body: {err})"


async def run(
    state_dir: Path,
    dns_port: int = 0,
    smtp_port: int = 0,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the demo world until stop is set (or SIGINT/SIGTERM arrives)."""
    state_dir = await asyncio.to_thread(state_dir.absolute)
    mail_dir = state_dir / MAIL_DIR
    settings_path = state_dir / SETTINGS_FILE
    await asyncio.to_thread(mail_dir.mkdir, parents=True, exist_ok=True)
    # A stale file from an earlier run would announce ports nobody listens on.
    await asyncio.to_thread(settings_path.unlink, missing_ok=True)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    smart_host = SmartHost([mx for _domain, mx in EXCHANGE_TENANTS], port=smtp_port)
    try:
        async with build_dns(dns_port) as dns, smart_host:
            ca_path = await asyncio.to_thread(
                write_ca_pem, smart_host.ca, state_dir / CA_FILE
            )
            settings = {
                "nameservers": [dns.host],
                "dns_port": dns.port,
                "smtp_port": smart_host.port,
                "ca_file": str(ca_path),
            }
            await asyncio.to_thread(
                write_atomically, settings_path, json.dumps(settings) + "\n"
            )
            print(  # noqa: T201
                f"Demo world ready: DNS {dns.host}:{dns.port}, smart host "
                f"{smart_host.host}:{smart_host.port}, settings {settings_path}",
                flush=True,
            )
            await _show_mail(smart_host, mail_dir, stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await asyncio.to_thread(settings_path.unlink, missing_ok=True)


async def _show_mail(
    smart_host: SmartHost, mail_dir: Path, stop: asyncio.Event
) -> None:
    """Print and save each mail as it arrives, until stop is set."""
    stopped = asyncio.create_task(stop.wait())
    shown = 0
    try:
        while True:
            arrived = asyncio.create_task(
                smart_host.wait_for_messages(shown + 1, timeout=None)
            )
            await asyncio.wait({arrived, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not arrived.done():
                arrived.cancel()
                await asyncio.wait({arrived})
                return
            for message in arrived.result()[shown:]:
                shown += 1
                stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
                path = mail_dir / f"{stamp}-{shown}.eml"
                await asyncio.to_thread(path.write_bytes, message.data)
                print(f"{describe(message, shown)}\nSaved {path}\n", flush=True)  # noqa: T201
    finally:
        stopped.cancel()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the demo world from the command line."""
    args = parse_args(argv)
    # A terminal or pipe that cannot show every character must not stop the demo.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    asyncio.run(run(args.state_dir, args.dns_port, args.smtp_port))


if __name__ == "__main__":
    main()

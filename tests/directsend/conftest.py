"""Real loopback servers for the Home Assistant-free core tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
import ssl

import pytest

from custom_components.o365_direct_send.directsend import (
    DirectSendClient,
    SmartHostResolver,
    TransportSettings,
)
from tests.loopback import DnsResponder, SmartHost

TENANT = "contoso.com"
MX_HOST = "contoso-com.mail.protection.outlook.com"


@pytest.fixture(autouse=True)
def _loopback_sockets(loopback: None) -> None:
    """Let these tests open sockets; every server they reach is on loopback."""


@pytest.fixture
async def dns_server() -> AsyncIterator[DnsResponder]:
    """Serve the contoso.com tenant from a loopback DNS responder."""
    async with DnsResponder() as server:
        server.tenant(TENANT, MX_HOST)
        yield server


@pytest.fixture
async def smart_host() -> AsyncIterator[SmartHost]:
    """Run a STARTTLS smart host with a certificate for the tenant's MX name."""
    async with SmartHost(MX_HOST) as server:
        yield server


def make_client(
    dns_server: DnsResponder,
    smart_host: SmartHost,
    *,
    timeout: float = 2.0,
    port: int | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> DirectSendClient:
    """Build a client that resolves through the responder and trusts the host's CA.

    It dials the smart host's port unless given another one.
    """
    return DirectSendClient(
        SmartHostResolver.at([dns_server.host], dns_server.port, 2.0),
        TransportSettings(
            tls_context=tls_context or smart_host.client_ssl_context(),
            local_hostname="ha.contoso.com",
            port=smart_host.port if port is None else port,
            timeout=timeout,
        ),
    )


@pytest.fixture
def client(dns_server: DnsResponder, smart_host: SmartHost) -> DirectSendClient:
    """Return a client wired to the loopback DNS responder and smart host."""
    return make_client(dns_server, smart_host)

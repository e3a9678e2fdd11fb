"""Real loopback servers for tests, benchmarks and the demo: DNS, SMTP, latency."""

from .delay_proxy import DelayProxy
from .dns_responder import DnsResponder
from .ports import SilentPort, free_port
from .smart_host import DEFAULT_MX, SmartHost
from .smtp_script import Verb
from .smtp_session import ReceivedMessage
from .tls import (
    client_ssl_context,
    issue_server_cert,
    make_ca,
    server_ssl_context,
    write_ca_pem,
)

__all__ = [
    "DEFAULT_MX",
    "DelayProxy",
    "DnsResponder",
    "ReceivedMessage",
    "SilentPort",
    "SmartHost",
    "Verb",
    "client_ssl_context",
    "free_port",
    "issue_server_cert",
    "make_ca",
    "server_ssl_context",
    "write_ca_pem",
]

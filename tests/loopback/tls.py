"""Certificates and TLS contexts for the loopback servers, from a trustme CA."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
import ssl
import warnings

import trustme


def make_ca() -> trustme.CA:
    """Make a fresh certificate authority that only the tests trust."""
    return trustme.CA()


def issue_server_cert(
    ca: trustme.CA, *hostnames: str, expired: bool = False
) -> trustme.LeafCert:
    """Issue a server certificate for the host names; expired: it ended yesterday."""
    if not hostnames:
        msg = "A server certificate needs at least one host name"
        raise ValueError(msg)
    if not expired:
        return ca.issue_cert(*hostnames)
    now = dt.datetime.now(dt.UTC)
    return ca.issue_cert(
        *hostnames,
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )


def server_ssl_context(
    cert: trustme.LeafCert, *, legacy_tls: bool = False
) -> ssl.SSLContext:
    """Return a server context presenting the certificate, TLS 1.2 or later.

    With legacy_tls it speaks TLS 1.0 and 1.1 only, as a retired server would.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if legacy_tls:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
    cert.configure_cert(context)
    return context


def client_ssl_context(ca: trustme.CA) -> ssl.SSLContext:
    """Return a verifying client context that trusts only the CA."""
    return ssl.create_default_context(cadata=ca.cert_pem.bytes().decode("ascii"))


def write_ca_pem(ca: trustme.CA, path: str | Path) -> Path:
    """Write the CA certificate as PEM to the path and return it absolute."""
    target = Path(path).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(target))
    return target

"""The connection test: smart host, SMTP session, TLS and SPF in one report; no mail."""

from __future__ import annotations

from collections.abc import Iterable
import contextlib
from dataclasses import dataclass, field
import datetime as dt
from enum import StrEnum
import ssl
import time

import aiosmtplib
from cryptography import x509

from .addresses import normalize_domain
from .client import DirectSendClient, ProbeResult
from .errors import (
    ConnectFailedError,
    ConnectTimeoutError,
    DirectSendError,
    DisconnectedError,
    DiscoveryError,
    NoMxError,
    NotExchangeOnlineError,
    ReplyError,
    StartTlsUnavailableError,
    TlsError,
    TransportError,
)
from .replies import Classification, Repair, Reply, classify, parse_client_ip
from .smarthost import SmartHost
from .spf import (
    DEFAULT_TIMEOUT as SPF_TIMEOUT,
    DNS_PORT,
    MICROSOFT_SPF_DOMAINS,
    SpfReport,
    SpfResult,
    analyze_spf,
    microsoft_spf_domain,
)

# OpenSSL's X509_V_ERR_* codes, as ssl.SSLCertVerificationError.verify_code.
_NOT_YET_VALID = 9
_EXPIRED = 10
_UNTRUSTED = frozenset({18, 19, 20, 21})
_NAME_MISMATCH = 62
_SHORT_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "stateOrProvinceName": "ST",
}
# SPF results that mean the domain's record does not let this IP send.
_SPF_NOT_AUTHORIZED = frozenset(
    {
        SpfResult.FAIL,
        SpfResult.SOFTFAIL,
        SpfResult.NEUTRAL,
        SpfResult.NONE,
        SpfResult.PERMERROR,
    }
)


class FailureKind(StrEnum):
    """Why the connection test could not open a secure session with the smart host."""

    NO_MX = "no_mx"
    NOT_EXCHANGE_ONLINE = "not_exchange_online"
    DNS_FAILED = "dns_failed"
    PORT_BLOCKED = "port_blocked"
    CANNOT_CONNECT = "cannot_connect"
    STARTTLS_UNAVAILABLE = "starttls_unavailable"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_NOT_YET_VALID = "certificate_not_yet_valid"
    CERTIFICATE_NAME_MISMATCH = "certificate_name_mismatch"
    CERTIFICATE_UNTRUSTED = "certificate_untrusted"
    TLS_FAILED = "tls_failed"
    SMTP_REFUSED = "smtp_refused"
    DISCONNECTED = "disconnected"
    TRANSPORT_FAILED = "transport_failed"


_TLS_KINDS = frozenset(
    {
        FailureKind.STARTTLS_UNAVAILABLE,
        FailureKind.CERTIFICATE_EXPIRED,
        FailureKind.CERTIFICATE_NOT_YET_VALID,
        FailureKind.CERTIFICATE_NAME_MISMATCH,
        FailureKind.CERTIFICATE_UNTRUSTED,
        FailureKind.TLS_FAILED,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateInfo:
    """The facts of a server certificate that a person can check."""

    subject: str
    issuer: str
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    dns_names: tuple[str, ...] = ()

    @classmethod
    def from_peercert(cls, certificate: dict[str, object]) -> CertificateInfo | None:
        """Read the dict of SSLSocket.getpeercert(); None when it is empty."""
        if not certificate:
            return None
        alt_names = certificate.get("subjectAltName", ())
        return cls(
            subject=_peercert_name(certificate.get("subject")),
            issuer=_peercert_name(certificate.get("issuer")),
            not_before=_peercert_time(certificate.get("notBefore")),
            not_after=_peercert_time(certificate.get("notAfter")),
            dns_names=tuple(
                str(entry[1])
                for entry in (alt_names if isinstance(alt_names, tuple) else ())
                if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == "DNS"  # noqa: PLR2004
            ),
        )

    @classmethod
    def from_der(cls, der: bytes) -> CertificateInfo:
        """Decode a DER certificate that was not (or could not be) verified."""
        certificate = x509.load_der_x509_certificate(der)
        try:
            alt_names = certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            alt_names = []
        return cls(
            subject=_x509_name(certificate.subject),
            issuer=_x509_name(certificate.issuer),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            dns_names=tuple(alt_names),
        )

    def is_expired(self, when: dt.datetime) -> bool:
        """Return whether the certificate had ended at the given time."""
        return self.not_after is not None and self.not_after < when

    def as_dict(self, when: dt.datetime) -> dict[str, object]:
        """Return the certificate as JSON-serialisable data, judged at a time."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "dns_names": list(self.dns_names),
            "expired": self.is_expired(when),
            "expires_in_days": (
                None
                if self.not_after is None
                else int((self.not_after - when) / dt.timedelta(days=1))
            ),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionReport:
    """What the smart host showed: banner, EHLO, extensions, TLS and certificate."""

    host: str
    address: str
    connect_seconds: float | None
    banner: Reply | None
    ehlo: Reply | None
    extensions: dict[str, str] = field(default_factory=dict)
    tls_version: str | None = None
    tls_cipher: str | None = None
    certificate: CertificateInfo | None = None
    # False: an inspection after a failed probe saw this, the certificate unverified.
    verified: bool = True

    @classmethod
    def from_probe(cls, probe: ProbeResult) -> SessionReport:
        """Take what a successful probe saw."""
        session = probe.session
        return cls(
            host=probe.host,
            address=probe.address,
            connect_seconds=probe.connect_seconds,
            banner=session.banner,
            ehlo=session.ehlo,
            extensions=dict(session.extensions),
            tls_version=session.tls.version,
            tls_cipher=session.tls.cipher,
            certificate=CertificateInfo.from_peercert(session.tls.certificate),
        )

    @property
    def greeting(self) -> str | None:
        """Return the first line of the EHLO reply: `<host> Hello [<client IP>]`."""
        return None if self.ehlo is None else self.ehlo.text.partition("\n")[0]

    def as_dict(self, when: dt.datetime) -> dict[str, object]:
        """Return the session as JSON-serialisable data."""
        return {
            "host": self.host,
            "address": self.address,
            "connect_seconds": (
                None if self.connect_seconds is None else round(self.connect_seconds, 3)
            ),
            "banner": None if self.banner is None else str(self.banner),
            "greeting": self.greeting,
            "extensions": [
                f"{name.upper()} {value}".strip()
                for name, value in self.extensions.items()
            ],
            "tls": {
                "version": self.tls_version,
                "cipher": self.tls_cipher,
                "verified": self.verified,
            },
            "certificate": (
                None if self.certificate is None else self.certificate.as_dict(when)
            ),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeFailure:
    """Why the test failed, reported as data so the response can show it."""

    kind: FailureKind
    host: str | None
    message: str
    reply: Classification | None = None

    @property
    def repair(self) -> Repair | None:
        """Return the repair issue this failure calls for, if any."""
        if self.reply is not None:
            return self.reply.repair
        if self.kind in _TLS_KINDS:
            return Repair.TLS_INVALID
        if self.kind is FailureKind.PORT_BLOCKED:
            return Repair.PORT_BLOCKED
        if self.kind is FailureKind.NOT_EXCHANGE_ONLINE:
            return Repair.NOT_EXCHANGE_ONLINE
        return None

    def as_dict(self) -> dict[str, object]:
        """Return the failure as JSON-serialisable data."""
        reply = self.reply
        return {
            "kind": self.kind.value,
            "host": self.host,
            "message": self.message,
            "repair": None if self.repair is None else self.repair.value,
            "reply": (
                None
                if reply is None
                else {
                    "code": reply.reply.code,
                    "enhanced_code": reply.reply.enhanced_code,
                    "text": reply.reply.text,
                    "key": reply.key.value,
                    "kind": reply.kind.value,
                    "retry": reply.retry,
                }
            ),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionReport:
    """Everything the connection test learned; no mail was sent."""

    domain: str
    checked_at: dt.datetime
    smart_host: SmartHost | None
    session: SessionReport | None
    failure: ProbeFailure | None
    client_ip: str | None
    spf: SpfReport

    @property
    def ok(self) -> bool:
        """Return whether a verified TLS session with the smart host was opened."""
        return self.failure is None

    @property
    def host(self) -> str | None:
        """Return the smart host that was tested: the one that answered or failed."""
        if self.session is not None:
            return self.session.host
        if self.failure is not None and self.failure.host is not None:
            return self.failure.host
        return None if self.smart_host is None else self.smart_host.host

    @property
    def repairs(self) -> tuple[Repair, ...]:
        """Return the repair issues this report calls for; others may be cleared."""
        found: list[Repair] = []
        if self.failure is not None and self.failure.repair is not None:
            found.append(self.failure.repair)
        if self.spf.client_ip is not None and self.spf.result in _SPF_NOT_AUTHORIZED:
            found.append(Repair.SPF_NOT_AUTHORIZED)
        return tuple(found)

    def as_dict(self) -> dict[str, object]:
        """Return the report as action response data: JSON-serialisable only."""
        smart_host = self.smart_host
        return {
            "domain": self.domain,
            "checked_at": self.checked_at.isoformat(),
            "ok": self.ok,
            "smart_host": (
                None
                if smart_host is None
                else {
                    "host": self.host,
                    "ttl": smart_host.ttl,
                    "records": [
                        {"preference": record.preference, "host": record.host}
                        for record in smart_host.records
                    ],
                }
            ),
            "session": (
                None if self.session is None else self.session.as_dict(self.checked_at)
            ),
            "failure": None if self.failure is None else self.failure.as_dict(),
            "client_ip": self.client_ip,
            "spf": self.spf.as_dict(),
            "repairs": [repair.value for repair in self.repairs],
        }


async def run_connection_test(
    client: DirectSendClient,
    domain: str,
    *,
    sender_domain: str | None = None,
    spf_nameservers: list[str] | None = None,
    spf_port: int = DNS_PORT,
    spf_timeout: float = SPF_TIMEOUT,
) -> ConnectionReport:
    """Resolve, probe and check SPF for the tenant; report failures, raise none."""
    domain = normalize_domain(domain)
    checked_at = dt.datetime.now(dt.UTC)
    smart_host: SmartHost | None = None
    session: SessionReport | None = None
    failure: ProbeFailure | None = None
    try:
        smart_host = await client.smart_host(domain)
        session = SessionReport.from_probe(await client.probe(smart_host))
    except DiscoveryError as err:
        failure = _discovery_failure(err, found=smart_host is not None)
    except TransportError as err:
        session = await _inspect(client, err)
        failure = _transport_failure(err, session, checked_at)
    client_ip = None
    if session is not None and session.ehlo is not None:
        client_ip = parse_client_ip(session.ehlo.text)
    spf = await analyze_spf(
        sender_domain or domain,
        client_ip,
        nameservers=spf_nameservers,
        port=spf_port,
        timeout=spf_timeout,
        helo=client.settings.local_hostname,
        expected_include=(
            MICROSOFT_SPF_DOMAINS[0]
            if smart_host is None
            else microsoft_spf_domain(smart_host.host)
        ),
    )
    return ConnectionReport(
        domain=domain,
        checked_at=checked_at,
        smart_host=smart_host,
        session=session,
        failure=failure,
        client_ip=client_ip,
        spf=spf,
    )


def _discovery_failure(err: DiscoveryError, *, found: bool) -> ProbeFailure:
    """Describe why the smart host, or its address once found, was not resolved."""
    if isinstance(err, NotExchangeOnlineError):
        return ProbeFailure(
            kind=FailureKind.NOT_EXCHANGE_ONLINE, host=err.host, message=str(err)
        )
    if isinstance(err, NoMxError):
        return ProbeFailure(kind=FailureKind.NO_MX, host=None, message=str(err))
    # Once the MX is known, a failed lookup is of the host's own address.
    return ProbeFailure(
        kind=FailureKind.DNS_FAILED,
        host=err.domain if found else None,
        message=str(err),
    )


def _transport_failure(
    err: TransportError, session: SessionReport | None, when: dt.datetime
) -> ProbeFailure:
    """Describe why the probe could not open a verified TLS session."""
    match err:
        case ConnectTimeoutError():
            kind = FailureKind.PORT_BLOCKED
        case ConnectFailedError():
            kind = FailureKind.CANNOT_CONNECT
        case StartTlsUnavailableError():
            kind = FailureKind.STARTTLS_UNAVAILABLE
        case TlsError():
            certificate = None if session is None else session.certificate
            kind = _tls_failure_kind(err, certificate, when)
        case ReplyError():
            return ProbeFailure(
                kind=FailureKind.SMTP_REFUSED,
                host=err.host,
                message=str(err),
                reply=classify(err.reply, err.host),
            )
        case DisconnectedError():
            kind = FailureKind.DISCONNECTED
        case _:
            kind = FailureKind.TRANSPORT_FAILED
    return ProbeFailure(kind=kind, host=err.host, message=str(err))


def _tls_failure_kind(
    err: BaseException, certificate: CertificateInfo | None, when: dt.datetime
) -> FailureKind:
    """Name the certificate problem from OpenSSL's verify code, else from the cert."""
    for cause in _causes(err):
        if isinstance(cause, ssl.SSLCertVerificationError):
            code = cause.verify_code
            if code == _EXPIRED:
                return FailureKind.CERTIFICATE_EXPIRED
            if code == _NOT_YET_VALID:
                return FailureKind.CERTIFICATE_NOT_YET_VALID
            if code == _NAME_MISMATCH:
                return FailureKind.CERTIFICATE_NAME_MISMATCH
            if code in _UNTRUSTED:
                return FailureKind.CERTIFICATE_UNTRUSTED
    if certificate is not None and certificate.is_expired(when):
        return FailureKind.CERTIFICATE_EXPIRED
    return FailureKind.TLS_FAILED


def _causes(err: BaseException) -> Iterable[BaseException]:
    """Yield the error and the errors it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _inspection_context() -> ssl.SSLContext:
    """Return a TLS context that accepts any certificate, to read it for the report."""
    # Only _inspect uses it, and it never sends a MAIL command: mail goes solely
    # through the transport's verifying session.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _inspect(
    client: DirectSendClient, err: TransportError
) -> SessionReport | None:
    """Look again at a host that failed STARTTLS or its certificate; send no mail."""
    # A failed verifying handshake shows no certificate: a second session says
    # EHLO (which reveals the client IP), reads the certificate unverified and
    # quits. Hosts that are unreachable or refuse get no second look.
    if not isinstance(err, StartTlsUnavailableError | TlsError):
        return None
    settings = client.settings
    try:
        address = (await client.resolver.addresses(err.host))[0]
    except DirectSendError:
        return None
    smtp = aiosmtplib.SMTP(
        hostname=address,
        port=settings.port,
        local_hostname=settings.local_hostname,
        timeout=settings.timeout,
        start_tls=False,
    )
    started = time.monotonic()
    connect_seconds: float | None = None
    banner = ehlo = None
    extensions: dict[str, str] = {}
    version = cipher = None
    certificate = None
    try:
        greeting = await smtp.connect()
        banner = Reply(greeting.code, greeting.message)
        response = await smtp.ehlo()
        ehlo = Reply(response.code, response.message)
        extensions = dict(smtp.esmtp_extensions)
        connect_seconds = time.monotonic() - started
        if smtp.supports_extension("starttls"):
            await smtp.starttls(
                server_hostname=err.host, tls_context=_inspection_context()
            )
            version, cipher, certificate = _read_tls(
                smtp.get_transport_info("ssl_object")
            )
    except (aiosmtplib.SMTPException, OSError, ValueError):
        pass
    finally:
        if smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()
        smtp.close()
    if banner is None:
        return None
    return SessionReport(
        host=err.host,
        address=address,
        connect_seconds=connect_seconds,
        banner=banner,
        ehlo=ehlo,
        extensions=extensions,
        tls_version=version,
        tls_cipher=cipher,
        certificate=certificate,
        verified=False,
    )


def _read_tls(
    ssl_object: object,
) -> tuple[str | None, str | None, CertificateInfo | None]:
    """Return the protocol, cipher and unverified certificate of a TLS connection."""
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None, None, None
    cipher = ssl_object.cipher()
    der = ssl_object.getpeercert(binary_form=True)
    return (
        ssl_object.version(),
        cipher[0] if cipher else None,
        None if der is None else CertificateInfo.from_der(der),
    )


def _peercert_name(value: object) -> str:
    """Render a getpeercert() subject or issuer as `O=..., CN=...`."""
    parts: list[str] = []
    for rdn in value if isinstance(value, tuple) else ():
        for attribute in rdn if isinstance(rdn, tuple) else ():
            if isinstance(attribute, tuple) and len(attribute) == 2:  # noqa: PLR2004
                name, text = attribute
                parts.append(f"{_SHORT_NAMES.get(str(name), str(name))}={text}")
    return ", ".join(parts)


def _x509_name(name: x509.Name) -> str:
    """Render an x509 name in certificate order, like _peercert_name."""
    return ", ".join(
        f"{attribute.rfc4514_attribute_name}={attribute.value!s}"
        for rdn in name.rdns
        for attribute in rdn
    )


def _peercert_time(value: object) -> dt.datetime | None:
    """Parse a getpeercert() time such as `Dec  4 17:00:00 2027 GMT`."""
    if not isinstance(value, str):
        return None
    return dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(value), dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    """Return the time as an ISO 8601 string."""
    return None if value is None else value.isoformat()

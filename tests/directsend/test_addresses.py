"""Addresses and domains as users type them."""

from __future__ import annotations

import pytest

from custom_components.o365_direct_send.directsend import (
    InvalidAddressError,
    domain_of,
    is_ip_literal,
    normalize_address,
    normalize_domain,
)


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("contoso.com", "contoso.com"),
        ("  Contoso.COM. ", "contoso.com"),
        ("sub.contoso.co.uk", "sub.contoso.co.uk"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_domains_are_normalized(typed: str, normalized: str) -> None:
    """A domain is trimmed, lower-cased and IDNA-encoded."""
    assert normalize_domain(typed) == normalized


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "contoso",
        "alerts@contoso.com",
        "contoso..com",
        "-contoso.com",
        "contoso.com-",
        "conto so.com",
        "1.2.3.4",
        "a" * 64 + ".com",
        "x." * 127 + "com",
    ],
)
def test_bad_domains_are_refused(typed: str) -> None:
    """Anything that is not a host name is refused."""
    with pytest.raises(InvalidAddressError):
        normalize_domain(typed)


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("alerts@contoso.com", "alerts@contoso.com"),
        (" Alerts@Contoso.COM ", "Alerts@contoso.com"),
        ("first.last+ha@contoso.com", "first.last+ha@contoso.com"),
    ],
)
def test_addresses_are_normalized(typed: str, normalized: str) -> None:
    """The local part keeps its case; the domain is normalized."""
    assert normalize_address(typed) == normalized
    assert domain_of(normalized) == normalized.rpartition("@")[2]


@pytest.mark.parametrize(
    "typed",
    [
        "contoso.com",
        "@contoso.com",
        "alerts@",
        "a b@contoso.com",
        ".a@contoso.com",
        "a.@contoso.com",
        "a..b@contoso.com",
        "alerts@contoso",
        "alerts@[1.2.3.4]",
        "Name <alerts@contoso.com>",
        "alerts@contoso.com\r\nBcc: x@y.com",
    ],
)
def test_bad_addresses_are_refused(typed: str) -> None:
    """Display names, IP literals and header injection are not addresses."""
    with pytest.raises(InvalidAddressError):
        normalize_address(typed)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.2.3.4", True),
        ("[::1]", True),
        ("2001:db8::1", True),
        ("contoso-com.mail.protection.outlook.com", False),
    ],
)
def test_ip_literals_are_recognised(value: str, *, expected: bool) -> None:
    """IP literals are told apart from host names."""
    assert is_ip_literal(value) is expected

"""Validation of the domains and mailbox addresses a user types."""

from __future__ import annotations

import ipaddress
import re

from .errors import InvalidAddressError

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_MAX_DOMAIN_LENGTH = 253


def normalize_domain(value: str) -> str:
    """Return the domain in lower-case ASCII (IDNA), or raise InvalidAddressError."""
    domain = value.strip().rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as err:
        raise InvalidAddressError(value) from err
    labels = domain.split(".")
    if (
        len(domain) > _MAX_DOMAIN_LENGTH
        or len(labels) < 2  # noqa: PLR2004
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise InvalidAddressError(value)
    return domain


def is_ip_literal(value: str) -> bool:
    """Return whether the value is an IP address rather than a host name."""
    try:
        ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return False
    return True


def normalize_address(value: str) -> str:
    """Return a bare mailbox address with its domain normalized, or raise."""
    address = value.strip()
    local, at, domain = address.rpartition("@")
    if (
        not at
        or not _LOCAL_PART.match(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        raise InvalidAddressError(value)
    try:
        return f"{local}@{normalize_domain(domain)}"
    except InvalidAddressError as err:
        raise InvalidAddressError(value) from err


def domain_of(address: str) -> str:
    """Return the domain part of a normalized address."""
    return address.rpartition("@")[2]

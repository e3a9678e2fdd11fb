"""Fixtures for the loopback server tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def allow_loopback_sockets(socket_enabled: None) -> None:
    """Let these tests open sockets; Home Assistant's plugin still limits them to 127.0.0.1."""

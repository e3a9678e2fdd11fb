"""Tests for the Home Assistant-free Direct Send core."""

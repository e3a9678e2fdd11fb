"""Tests for the Office 365 Direct Send integration."""

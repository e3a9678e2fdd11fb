"""Benchmarks of the Direct Send core; run by scripts/bench, never by pytest."""

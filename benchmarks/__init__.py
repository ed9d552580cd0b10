"""Benchmarks: each prints machine-readable results next to a baseline measured in the same run."""

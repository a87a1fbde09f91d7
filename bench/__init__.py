"""Benchmarks: each script prints one JSON line per measurement and the command that reproduces it."""

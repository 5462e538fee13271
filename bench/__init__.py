"""Benchmarks: `make bench` (delivery against nginx) and `make bench-upload` (memory of a 2 GiB upload)."""

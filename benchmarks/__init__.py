"""Benchmarks: generated ground-truth data, the benchmark runner and its recorded results."""

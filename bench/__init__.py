"""Benchmarks of the gateway's overhead: see docs/benchmarks.md and ``python -m bench.run``."""

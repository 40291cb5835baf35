"""Benchmarks of the console against the Docker daemon's own pull: ``make bench`` / ``python -m bench.run``."""

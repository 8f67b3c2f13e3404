"""Benchmarks: speed and quality figures, printed; never asserted in tests."""

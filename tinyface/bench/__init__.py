"""Benchmarks: timing helpers and the ``bench kernels`` report. Speed lives here, never in tests."""

"""Replay-safe orchestrators: no I/O, clocks or randomness."""

from orchestrations.generate_batch import bp

__all__ = ["bp"]

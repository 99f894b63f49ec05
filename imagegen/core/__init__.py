"""The shared vocabulary, with no I/O: types, field errors, limits, settings, telemetry, blob names, documents.

The lowest layer: every other part of `imagegen` may import it; it imports none of them.
"""

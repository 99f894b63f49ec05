"""Prompts longer than a text encoder reads: counted with that encoder's own tokenizer.

A pipeline cuts every prompt to what each of its text encoders reads (CLIP 77 tokens, T5
256 or 512) and goes on; the only trace is a log line nobody sees. So each text that an
encoder cuts gets a warning, which reaches the job's manifest (`warnings`), naming the text,
its length, the encoder and what it drops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imagegen.generation.families import TextEncoder


def distinct_limits(encoders: Sequence[TextEncoder]) -> list[TextEncoder]:
    """One encoder per (kind, token limit): SDXL's two CLIP encoders cut a prompt at the
    same place, so one warning says it."""
    seen: dict[tuple[str, int], TextEncoder] = {}
    for encoder in encoders:
        seen.setdefault((encoder.kind, encoder.max_tokens), encoder)
    return list(seen.values())


def prompt_warnings(texts: Sequence[str], names: Sequence[str],
                    encoders: Sequence[tuple[TextEncoder, Any]]) -> list[str]:
    """A warning for each (text, encoder) where the encoder cuts the text; `encoders` pairs
    each encoder with its tokenizer. One kind of encoder (SD 1.x, 2.x, XL) keeps the short
    wording, "the model reads only the first 77"."""
    several_kinds = len({encoder.kind for encoder, _ in encoders}) > 1
    warnings = []
    for name, text in zip(names, texts):
        for encoder, tokenizer in encoders:
            ids = tokenizer(text, truncation=False, verbose=False).input_ids  # with its start/end tokens
            limit = encoder.max_tokens
            if len(ids) <= limit:
                continue
            # The end token takes the last slot, so text tokens from limit-1 on are lost.
            dropped = tokenizer.decode(ids[limit - 1: -1])
            if several_kinds:
                warnings.append(f"{name} is {len(ids)} {encoder.kind} tokens; the {encoder.kind} text encoder reads "
                                f"only the first {limit}: '...{dropped}' is ignored by it")
            else:
                warnings.append(f"{name} is {len(ids)} tokens; the model reads only the first {limit}: "
                                f"'...{dropped}' is ignored")
    return warnings

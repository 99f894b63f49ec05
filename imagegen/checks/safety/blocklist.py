"""Blocklists for the local provider: terms that block a text outright.

A blocklist file holds one term per line; blank lines and lines starting with `#` are
skipped. A term matches as a whole word (or whole phrase), in any case, with any run of
whitespace between its words: "Child  Porn" matches the term "child porn", "csams" does
not match "csam".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

DEFAULT_NAME = "default"


def _normalize(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class Blocklist:
    name: str
    terms: tuple[str, ...]
    _pattern: re.Pattern | None = field(default=None, init=False, repr=False, compare=False)
    _by_normal: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_normal = {_normalize(term): term for term in self.terms if term.strip()}
        # Longest first so "child pornography" wins over "child porn" at the same place.
        alternatives = sorted(by_normal, key=len, reverse=True)
        pattern = None
        if alternatives:
            body = "|".join(r"\s+".join(map(re.escape, term.split())) for term in alternatives)
            # (?<!\w) / (?!\w) rather than \b: a term may start or end with a non-word
            # character ("c++"), where \b would demand a word character next to it.
            pattern = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_by_normal", by_normal)

    def matches(self, text: str) -> list[str]:
        """The terms of this list found in `text`, as written in the list, first hit first."""
        if self._pattern is None:
            return []
        found = (self._by_normal.get(_normalize(m.group(0))) for m in self._pattern.finditer(text))
        return list(dict.fromkeys(term for term in found if term))

    def hits(self, text: str) -> list[str]:
        """The matches as verdict blocklist hits: "name:term"."""
        return [f"{self.name}:{term}" for term in self.matches(text)]


def parse_terms(text: str) -> tuple[str, ...]:
    """The terms of a blocklist file's text."""
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def load_blocklist(path: str | Path, name: str | None = None) -> Blocklist:
    """The blocklist in file `path`, named after the file unless `name` is given.

    Raises `ValueError` naming the setting and the file when it cannot be read: a
    blocklist the operator configured and we silently skipped would let its terms through.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(
            f"setting `SAFETY_BLOCKLIST_FILE` must name a readable UTF-8 text file, "
            f"got {str(path)!r} ({error.__class__.__name__}: {error})"
        ) from None
    return Blocklist(name=name or path.stem, terms=parse_terms(text))


def default_blocklist() -> Blocklist:
    """The short list shipped with the package (imagegen/checks/safety/data/default_blocklist.txt)."""
    text = resources.files("imagegen.checks.safety").joinpath("data/default_blocklist.txt").read_text("utf-8")
    return Blocklist(name=DEFAULT_NAME, terms=parse_terms(text))

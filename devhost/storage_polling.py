"""What devhost's storage-polling triggers (blob and queue) share: the storage account a
binding names, how hard each storage call tries, and how the poll loop backs off."""

from __future__ import annotations

import re
from typing import Any, Callable

from devhost.azurite import resolve_connection_string

HOST_STORAGE_SETTING = "AzureWebJobsStorage"
MAX_DEQUEUE_COUNT = 5  # tries of one blob or message before it is poison (Azure's default)
MAX_BACKOFF_SECONDS = 30.0
# The storage SDK's default retry waits 15 s and more between tries; the poll loop is our retry,
# so each call tries briefly and a storage outage shows in the log within a second.
SDK_RETRY: dict[str, Any] = {"retry_total": 2, "backoff": 0.25, "random_jitter_range": 0}
# Azure's rule for container and queue names: 3-63 lowercase letters, digits and single hyphens.
STORAGE_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")


def binding_connection(binding: dict, get_connection: Callable[[str], str]) -> tuple[str, str]:
    """The app setting a binding's `connection` names (default AzureWebJobsStorage) and its
    resolved connection string; ValueError with the reason when it has none."""
    setting = binding.get("connection") or HOST_STORAGE_SETTING
    try:
        return setting, resolve_connection_string(get_connection(setting))
    except (KeyError, ValueError) as error:
        raise ValueError(f"`connection` {setting!r}: {error.args[0] if error.args else error}") from None


def backoff_delay(poll_interval: float, failures: int) -> float:
    """Seconds to wait before the next poll: the interval, doubled for each failed poll in a row."""
    return min(poll_interval * 2 ** failures, max(MAX_BACKOFF_SECONDS, poll_interval))

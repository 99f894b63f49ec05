"""Every setting checked once as the app starts (`imagegen.service.process.start` calls `check_settings`).

A module of its own because it checks settings against `Limits`, which are read from the
settings: here, `imagegen.core.settings` and `imagegen.core.limits` need not import each other.
"""

from __future__ import annotations

from croniter import croniter

from imagegen.core.limits import SIZE_PATTERN, Limits
from imagegen.core.settings import Settings, _get


def check_settings(settings: Settings) -> Settings:
    """Check every setting once, as the app starts (`imagegen.service.process.start`): a bad
    one stops the start with a message naming it, instead of a 500 (or a silent default) at
    the first request that reads it. Returns the settings."""
    limits = Limits.from_settings(settings)
    size = SIZE_PATTERN.fullmatch(settings.default_size)
    if not size:
        raise ValueError(f"setting `IMAGEGEN_DEFAULT_SIZE` must be WIDTHxHEIGHT in pixels, e.g. '512x512', "
                         f"got {settings.default_size!r}")
    sides = (int(size[1]), int(size[2]))
    if not all(limits.min_side <= side <= limits.max_side for side in sides):
        raise ValueError(f"setting `IMAGEGEN_DEFAULT_SIZE` must be from {limits.min_side} to "
                         f"{limits.max_side} px per side (`IMAGEGEN_MAX_SIDE`), got {settings.default_size!r}")
    if settings.default_steps > limits.max_steps:
        raise ValueError(f"setting `IMAGEGEN_DEFAULT_STEPS` must be at most {limits.max_steps} "
                         f"(`IMAGEGEN_MAX_STEPS`), got {str(settings.default_steps)!r}")
    for name in ("IMAGEGEN_SCHEDULE_TICK", "IMAGEGEN_RETENTION_TICK"):
        tick = _get(name) or ""
        if len(tick.split()) != 6 or not croniter.is_valid(tick, second_at_beginning=True):
            raise ValueError(f"setting `{name}` must be a six-field NCRONTAB expression "
                             f"`second minute hour day month day-of-week`, e.g. '0 * * * * *', got {tick!r}")
    return settings

"""Every setting is read and checked once, as the app starts, with a message naming it."""

from __future__ import annotations

import pytest

from imagegen.core.settings import Settings
from imagegen.core.startup import check_settings


@pytest.mark.parametrize("name, value, words", [
    ("IMAGEGEN_MAX_BATCH", "0", "`auto` or a whole number from 1 to 64"),
    ("IMAGEGEN_MAX_BATCH", "lots", "`auto` or a whole number from 1 to 64"),
    ("IMAGEGEN_MAX_BATCH", "65", "`auto` or a whole number from 1 to 64"),
    ("IMAGEGEN_DEVICE", "gpu", "auto, cuda, mps or cpu"),
    ("IMAGEGEN_APP_ROLE", "gpu", "`all`, `control` or `render`"),
    ("IMAGEGEN_RENDER_QUEUE", "Render_Orders", "3-54 lowercase letters, digits and single hyphens"),
    ("IMAGEGEN_RENDER_QUEUE", "r" * 55, "3-54 lowercase letters, digits and single hyphens"),
    ("IMAGEGEN_MAX_VARIANTS", "0", "at least 1"),
    ("IMAGEGEN_MAX_STEPS", "many", "whole number"),
    ("IMAGEGEN_MAX_SIDE", "100000", "at most 16384"),
    ("IMAGEGEN_DEFAULT_SIZE", "big", "WIDTHxHEIGHT"),
    ("IMAGEGEN_DEFAULT_SIZE", "4096x4096", "IMAGEGEN_MAX_SIDE"),
    ("IMAGEGEN_DEFAULT_STEPS", "0", "at least 1"),
    ("IMAGEGEN_SCHEDULE_TICK", "every minute", "NCRONTAB"),
    ("IMAGEGEN_RETENTION_TICK", "daily", "NCRONTAB"),
    ("IMAGEGEN_RETENTION_DAYS", "-1", "at least 0"),
    ("IMAGEGEN_RETENTION_DAYS", "a month", "whole number"),
    ("IMAGEGEN_CHECK_PROCESSES", "-1", "`auto` or a whole number from 0 to 64"),
    ("IMAGEGEN_CHECK_PROCESSES", "many", "`auto` or a whole number from 0 to 64"),
])
def test_a_bad_setting_stops_the_start_with_its_name_and_value(monkeypatch, name, value, words):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as raised:
        check_settings(Settings.from_env())
    message = str(raised.value)
    assert f"`{name}`" in message and repr(value) in message and words in message


def test_a_short_api_key_is_refused_without_showing_it(monkeypatch):
    monkeypatch.setenv("IMAGEGEN_API_KEY", "short-secret")
    with pytest.raises(ValueError) as raised:
        check_settings(Settings.from_env())
    assert "`IMAGEGEN_API_KEY`" in str(raised.value) and "at least 16 characters" in str(raised.value)
    assert "short-secret" not in str(raised.value)


def test_good_settings_are_read_once_into_values():
    settings = Settings(max_batch="8")
    assert settings.max_batch_images == 8 and Settings().max_batch_images is None
    with pytest.raises(ValueError, match="IMAGEGEN_MAX_BATCH"):
        Settings(max_batch="lots")
    with pytest.raises(ValueError, match="IMAGEGEN_DEVICE"):
        Settings(device="gpu")


def test_the_defaults_pass(monkeypatch):
    for name in ("IMAGEGEN_MAX_BATCH", "IMAGEGEN_DEVICE", "IMAGEGEN_DEFAULT_SIZE", "IMAGEGEN_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert check_settings(Settings.from_env()).max_batch == "auto"


def test_auto_check_processes_are_one_per_four_cores_from_one_to_four(monkeypatch):
    from imagegen.core.settings import check_processes

    for cores, processes in ((1, 1), (2, 1), (8, 2), (16, 4), (96, 4)):
        monkeypatch.setattr("os.cpu_count", lambda: cores)
        assert check_processes("auto") == processes
    assert check_processes("0") == 0 and check_processes(" 3 ") == 3


@pytest.mark.parametrize(("value", "price"), [("", None), ("3.40", 3.4), ("0", 0.0), (" 12 ", 12.0)])
def test_a_gpu_price_is_a_decimal_number_or_unset(monkeypatch, value, price):
    monkeypatch.setenv("IMAGEGEN_GPU_PRICE_PER_HOUR", value)
    assert Settings.from_env().gpu_price_per_hour == price


@pytest.mark.parametrize("value", ["$3.40", "3,40", "-1", "cheap"])
def test_a_gpu_price_that_is_not_a_number_stops_the_start_naming_the_setting(monkeypatch, value):
    monkeypatch.setenv("IMAGEGEN_GPU_PRICE_PER_HOUR", value)
    with pytest.raises(ValueError, match="setting `IMAGEGEN_GPU_PRICE_PER_HOUR` must be a price such as 3.40"):
        Settings.from_env()

"""`SAFETY_PROVIDER=local` needs the `local-safety` extra, which the Azure image leaves out:
without it the app stops at start with one line naming the setting and the extra."""

from __future__ import annotations

import importlib.util

import pytest

from imagegen.checks import safety
from imagegen.core.settings import Settings
from imagegen.service import process


@pytest.fixture
def without_onnxruntime(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))


def test_the_local_provider_without_its_extra_stops_the_start_in_one_line(without_onnxruntime, monkeypatch):
    monkeypatch.setattr(process, "_services", None)

    with pytest.raises(ValueError) as stopped:
        process.start(Settings(safety_provider="local"))

    message = str(stopped.value)
    assert "\n" not in message
    assert message.startswith("setting `SAFETY_PROVIDER` is `local`, but the `local-safety` extra is not installed "
                              "(missing onnxruntime)")
    assert "requirements-local.txt" in message and "SAFETY_PROVIDER=azure" in message
    assert process._services is None


def test_the_azure_provider_needs_no_local_package(without_onnxruntime):
    safety.require_provider_packages(Settings(safety_provider="azure", content_safety_endpoint="https://cs.example"))


def test_with_the_extra_installed_the_local_provider_starts():
    safety.require_provider_packages(Settings(safety_provider="local"))  # the dev environment has it

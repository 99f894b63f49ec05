"""A bad setting stops the app as it starts, with a message naming it: not a 500 later."""

from __future__ import annotations

import pytest

from tests.app.conftest import launch_app


@pytest.mark.parametrize("name, value", [
    ("IMAGEGEN_MAX_BATCH", "0"), ("IMAGEGEN_MAX_BATCH", "lots"), ("IMAGEGEN_DEVICE", "gpu"),
    ("IMAGEGEN_SIGN_IN", "aad"), ("IMAGEGEN_MODELS", "/no/such/models.yaml"), ("IMAGEGEN_MAX_LOADED_MODELS", "0"),
])
def test_the_host_refuses_to_start_naming_the_setting(tmp_path_factory, storage_connection_string, name, value):
    host = launch_app(tmp_path_factory, storage_connection_string, wait=False, **{name: value})
    try:
        code = host.process.wait(timeout=120)
    finally:
        host.stop()
    assert code != 0
    assert f"setting `{name}`" in host.log() and repr(value) in host.log()

"""Shared fixtures: one private Azurite for the whole test session, on free ports."""

from __future__ import annotations

import pytest

from devhost.azurite import free_port, start_azurite


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """A real Azurite started for this test session and stopped after it."""
    instance = start_azurite(
        tmp_path_factory.mktemp("azurite"),
        blob_port=free_port(), queue_port=free_port(), table_port=free_port(),
    )
    yield instance
    instance.stop(timeout=1)  # its data is thrown away: no need to wait for a flush


@pytest.fixture(scope="session")
def storage_connection_string(azurite) -> str:
    return azurite.connection_string

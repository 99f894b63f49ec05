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


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run torch on one thread for a module's tests.

    On a loaded 2-core machine a second intra-op thread makes each tiny call 10-20x slower
    (the threads wait for each other at every op; see docs/performance.md).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

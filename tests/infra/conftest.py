"""Fixtures for the infrastructure checks: the repo's deployment files, parsed once."""

from __future__ import annotations

import json

import pytest
import yaml
from tests.infra.deployfiles import INFRA, ROOT, parse_bicep


@pytest.fixture(scope="session")
def bicep() -> dict[str, dict]:
    """Every Bicep file under infra/, parsed, keyed by its path relative to infra/."""
    return {str(path.relative_to(INFRA)): parse_bicep(path) for path in sorted(INFRA.rglob("*.bicep"))}


@pytest.fixture(scope="session")
def app_bicep(bicep) -> dict:
    return bicep["modules/app.bicep"]


@pytest.fixture(scope="session")
def app_settings(app_bicep) -> dict[str, object]:
    """name -> value (a literal, or the parser's expression tree) of every env var on the app;
    {"secretRef": name} for one that reads a Container Apps secret."""
    return {
        item["name"]: item["value"] if "value" in item else {"secretRef": item["secretRef"]}
        for item in app_bicep["variables"]["settings"]["value"]
    }


@pytest.fixture(scope="session")
def host_json() -> dict:
    return json.loads((ROOT / "host.json").read_text())


@pytest.fixture(scope="session")
def azure_yaml() -> dict:
    return yaml.safe_load((ROOT / "azure.yaml").read_text())


@pytest.fixture(scope="session")
def parameters_json() -> dict:
    return json.loads((INFRA / "main.parameters.json").read_text())


@pytest.fixture(scope="session")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()

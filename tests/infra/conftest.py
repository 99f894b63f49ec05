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
    {"secretRef": name} for one that reads a Container Apps secret. The container's env is
    `concat(...)` of variables, some of them `cond ? [] : [...]`: every item of every branch."""
    (container,) = app_bicep["resources"]["app"]["config"]["properties"]["template"]["containers"]
    names = container["env"]["function"]["parameters"].values()
    items = [item for name in names for item in env_items(app_bicep["variables"][name]["value"])]
    return {item["name"]: item["value"] if "value" in item else {"secretRef": item["secretRef"]} for item in items}


def env_items(value: object) -> list[dict]:
    if isinstance(value, list):
        return value
    operands = value["operator"]["operands"]
    return env_items(operands["true_value"]) + env_items(operands["false_value"])


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

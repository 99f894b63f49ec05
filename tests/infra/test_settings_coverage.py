"""Every setting the app reads is set in Azure by the Bicep, or has a default that is right
there; and every setting the Bicep sets is read by the app or by a named reader outside it.

The names come from `imagegen.core.settings.SETTINGS` (the one place that reads the
environment) plus any stray `os.environ` / `os.getenv` read elsewhere in the app code,
found by walking its syntax trees. The Bicep's settings are the container's `env` in
infra/modules/app.bicep, read by the `app_settings` fixture (tests/infra/conftest.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from imagegen.core.settings import SETTINGS, Settings
from imagegen.core.startup import check_settings
from tests.infra.deployfiles import ROOT

# Settings deliberately left unset in Azure, each with the reason. A new setting with no
# default must be set in infra/modules/app.bicep or be listed here with its reason.
UNSET_IN_AZURE = {
    "AzureWebJobsStorage": "replaced by the identity-based AzureWebJobsStorage__* settings; a connection string would carry a key",
    "CONTENT_SAFETY_KEY": "Content Safety has local auth disabled; the app calls it with its managed identity",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "an optional extra collector; in Azure, telemetry goes to Application Insights",
    "SAFETY_BLOCKLIST_FILE": "an optional local word list; in Azure, blocklists live in Content Safety (CONTENT_SAFETY_BLOCKLISTS)",
}

# Settings the Bicep leaves to the app's default, each with why that default is right in
# Azure. A new setting is set in app.bicep, or listed here (or in UNSET_IN_AZURE) with a reason.
DEFAULT_IS_RIGHT_IN_AZURE = {
    "IMAGEGEN_RENDER_QUEUE": "render-orders is the queue storage.bicep makes, in a storage account the deployment has to itself",
    "IMAGEGEN_MAX_BATCH": "auto sizes each GPU call from the GPU's free memory, which differs between T4 and A100",
    "IMAGEGEN_TORCH_THREADS": "auto only matters on a CPU device; Azure runs on the GPU (IMAGEGEN_DEVICE=cuda)",
    "IMAGEGEN_CHECK_PROCESSES": "auto is one checker process per 4 cores: 2 on the T4 profile's 8 vCPU, 4 on the A100's 24",
    "IMAGEGEN_COMPILE": "off: compiling costs minutes per batch and image size on a cold replica",
    "IMAGEGEN_ADAPTERS_DIR": "empty: in Azure adapters live in the `adapters` container (uploaded with `imagegen adapters put`)",
    "IMAGEGEN_MAX_ADAPTER_BYTES": "512 MiB holds any SD, SDXL or FLUX LoRA of usual rank; an operator raises it with an app setting",
    "IMAGEGEN_GPU_PRICE_PER_HOUR": "unset: no price is assumed (it depends on the region, the GPU profile and the "
                                   "agreement); an operator sets it to show each job's estimated cost",
    "IMAGEGEN_RETENTION_DAYS": "30 days of job history; manifests and images are kept regardless, so an operator "
                               "shortens or lengthens it with an app setting",
    "IMAGEGEN_MAX_VARIANTS": "the documented job limit; an operator raises it with an app setting",
    "IMAGEGEN_MAX_STEPS": "the documented job limit",
    "IMAGEGEN_MAX_SIDE": "the documented job limit",
    "IMAGEGEN_MAX_SOURCE_BYTES": "the documented job limit",
    "IMAGEGEN_MAX_SOURCE_SIDE": "the documented job limit",
    "IMAGEGEN_DEFAULT_SIZE": "prompt-only drops make SD-Turbo's native 512x512",
    "IMAGEGEN_DEFAULT_STEPS": "prompt-only drops, the same everywhere",
    "C2PA_INCLUDE_PROMPT": "false: prompts can be private, and a signed manifest travels with every image",
    "IMAGEGEN_TELEMETRY_FILE": "used only without Application Insights, which the Bicep always configures",
    "IMAGEGEN_FAULTS": "test-only fault injection: must stay empty in production",
}

# Settings the Bicep sets that no code of ours reads: who reads each, and what for.
READ_OUTSIDE_THE_APP = {
    "FUNCTIONS_WORKER_RUNTIME": "the Functions host: which language worker to start",
    "AzureWebJobsStorage__accountName": "the Functions host and its extensions: the identity-based AzureWebJobsStorage",
    "AzureWebJobsStorage__tableServiceUri": "the Functions host: Durable (storage backend) tables",
    "AzureWebJobsStorage__credential": "the Functions host: managedidentity",
    "AzureWebJobsStorage__clientId": "the Functions host: which user-assigned identity",
    "AzureFunctionsJobHost__extensions__durableTask__storageProvider__type": "the Functions host: overrides host.json's Durable backend",
    "AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName": "the Functions host: the setting with the backend's connection",
    "DURABLE_TASK_SCHEDULER_CONNECTION_STRING": "the Durable extension, named by host.json: the scheduler's endpoint and identity",
    "HF_HOME": "huggingface_hub (diffusers' downloads): where the weights are",
    "HF_HUB_OFFLINE": "huggingface_hub: no hub calls from a baked image",
}
# Our own names: a setting with one of these prefixes must be one the app reads.
OWN_PREFIXES = ("IMAGEGEN_", "C2PA_", "SAFETY_", "CONTENT_SAFETY_")

APP_CODE = ["function_app.py", "imagegen", "triggers", "orchestrations", "activities"]
NOT_APP_CODE = {
    ROOT / "imagegen" / "core" / "settings.py": "the one module allowed to read the environment; its names are SETTINGS",
    ROOT / "imagegen" / "cli": "the imagegen CLI runs on the user's machine (IMAGEGEN_URL, IMAGEGEN_KEY), not in the app",
}


def environment_reads(source: str, filename: str = "<source>") -> list[tuple[int, str | None]]:
    """(line, name) of every environment read in `source`; name None when not a literal."""
    reads = []
    for node in ast.walk(ast.parse(source, filename)):
        target = None
        if isinstance(node, ast.Call):
            func = node.func
            # os.getenv(NAME) / getenv(NAME) / os.environ.get(NAME) / environ.get(NAME)
            if _is_getenv(func) or (isinstance(func, ast.Attribute) and func.attr in ("get", "pop", "setdefault") and _is_environ(func.value)):
                target = node.args[0] if node.args else None
            else:
                continue
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):  # os.environ[NAME]
            target = node.slice
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):  # NAME in os.environ
            target = node.left
        else:
            continue
        name = target.value if isinstance(target, ast.Constant) and isinstance(target.value, str) else None
        reads.append((node.lineno, name))
    return reads


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (isinstance(node, ast.Name) and node.id == "environ")


def _is_getenv(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "getenv") or (isinstance(node, ast.Name) and node.id == "getenv")


def app_sources() -> list[Path]:
    files = []
    for entry in APP_CODE:
        path = ROOT / entry
        files += [path] if path.is_file() else sorted(path.rglob("*.py")) if path.is_dir() else []
    return [path for path in files if not any(path == apart or apart in path.parents for apart in NOT_APP_CODE)]


def test_every_setting_is_set_in_azure_or_has_a_default(app_settings):
    missing = [
        f"`{name}` ({description}) has no default, is not set in infra/modules/app.bicep, "
        f"and is not in UNSET_IN_AZURE"
        for name, (default, description) in SETTINGS.items()
        if default is None and name not in app_settings and name not in UNSET_IN_AZURE
    ]
    assert not missing, "\n".join(missing)


def test_every_setting_azure_leaves_unset_is_left_on_purpose(app_settings):
    left = [f"`{name}` (default {default!r}: {description}) is not set in infra/modules/app.bicep; set it there, "
            f"or say in DEFAULT_IS_RIGHT_IN_AZURE why its default is right in Azure"
            for name, (default, description) in SETTINGS.items()
            if name not in app_settings and name not in UNSET_IN_AZURE and name not in DEFAULT_IS_RIGHT_IN_AZURE]
    assert not left, "\n".join(left)


def test_every_setting_azure_sets_is_read_by_the_app_or_a_named_reader(app_settings):
    unknown = [f"app.bicep sets `{name}`, which the app does not read (imagegen.core.settings.SETTINGS) and "
               f"READ_OUTSIDE_THE_APP does not name"
               for name in app_settings if name not in SETTINGS and name not in READ_OUTSIDE_THE_APP]
    assert not unknown, "\n".join(unknown)
    ours = [name for name in app_settings if name.startswith(OWN_PREFIXES) and name not in SETTINGS]
    assert not ours, f"app.bicep sets {ours}: our own prefix, but no setting of the app (a typo?)"


def test_exemptions_are_still_real(app_settings):
    for name in UNSET_IN_AZURE:
        assert name in SETTINGS, f"UNSET_IN_AZURE lists `{name}`, which imagegen/core/settings.py no longer has"
        assert name not in app_settings, f"UNSET_IN_AZURE lists `{name}`, but app.bicep sets it"
    for name in DEFAULT_IS_RIGHT_IN_AZURE:
        assert name in SETTINGS and SETTINGS[name][0] is not None, f"DEFAULT_IS_RIGHT_IN_AZURE lists `{name}`, which has no default"
        assert name not in app_settings, f"DEFAULT_IS_RIGHT_IN_AZURE lists `{name}`, but app.bicep sets it"
    for name in READ_OUTSIDE_THE_APP:
        assert name not in SETTINGS, f"READ_OUTSIDE_THE_APP lists `{name}`, which the app reads itself"
        assert name in app_settings, f"READ_OUTSIDE_THE_APP lists `{name}`, which app.bicep no longer sets"


def test_no_stray_environment_reads(app_settings):
    known = set(SETTINGS) | set(app_settings)
    problems = []
    for path in app_sources():
        for line, name in environment_reads(path.read_text(), str(path)):
            where = f"{path.relative_to(ROOT)}:{line}"
            if name is None:
                problems.append(f"{where} reads an environment variable whose name is not a literal")
            elif name not in known:
                problems.append(f"{where} reads `{name}`, which is neither in imagegen.core.settings.SETTINGS nor set by app.bicep")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import os\nos.environ['A']", [(2, "A")]),
        ("import os\nos.getenv('B', 'x')", [(2, "B")]),
        ("from os import environ\nenviron.get('C')", [(2, "C")]),
        ("import os\n'D' in os.environ", [(2, "D")]),
        ("import os\nname = 'E'\nos.environ.get(name)", [(3, None)]),
        ("import os\nos.path.join('a', 'b')", []),
    ],
)
def test_environment_reads_finds_every_form(source, expected):
    assert environment_reads(source) == expected


def resolve(value: object, app_bicep: dict, main_bicep: dict) -> str | None:
    """A setting's value as deployed with default parameters; None when only Azure knows it.

    The parser gives a parameter reference as a bare string (its name): it resolves to the
    module's default, or else to the main template's parameter of the same name.
    """
    if not isinstance(value, str) or "${" in value:
        return None
    references = [template["parameters"][value] for template in (app_bicep, main_bicep) if value in template["parameters"]]
    if not references:
        return value  # a literal
    defaults = [parameter["default"] for parameter in references if parameter.get("default") is not None]
    return defaults[0] if defaults else None


def condition_of(value: object) -> object:
    return value["operator"]["operands"]["condition"]  # type: ignore[index]


def conditional_branches(value: object) -> tuple[str, str] | None:
    """(true, false) of a setting set `cond ? 'a' : 'b'` with literal branches, else None."""
    operator = value.get("operator", {}) if isinstance(value, dict) else {}
    if operator.get("type") != "conditional":
        return None
    branches = (operator["operands"]["true_value"], operator["operands"]["false_value"])
    return branches if all(isinstance(b, str) and "${" not in b for b in branches) else None


@pytest.mark.parametrize("role", ["control", "render"])
def test_the_azure_settings_are_accepted_by_the_app(role, app_settings, app_bicep, bicep, monkeypatch):
    """Each of the two apps app.bicep makes (infra/main.bicep calls it with each role)."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in app_settings.items():
        branches = conditional_branches(value)
        if value == "role":
            resolved = role
        elif branches:  # `isControl ? a : b` by the role; any other condition: as deployed by default
            resolved = branches[0] if condition_of(value) == "isControl" and role == "control" else branches[1]
        else:
            resolved = resolve(value, app_bicep, bicep["main.bicep"])
        if resolved is None:  # a resource property: a plausible stand-in of the same kind
            # (long enough for a secret such as IMAGEGEN_API_KEY, which has a minimum length)
            resolved = "https://example.invalid/" if name.endswith(("Uri", "ENDPOINT", "URL")) else "stand-in-of-the-same-kind"
        monkeypatch.setenv(name, resolved)
    settings = check_settings(Settings.from_env())  # as the app does at start
    assert settings.app_role == role
    assert settings.device == ("cpu" if role == "control" else "cuda"), "only the GPU pool generates, on cuda"
    assert settings.safety_provider == "azure"
    assert settings.content_safety_key is None, "the app must not get a Content Safety key in Azure"
    assert settings.storage_connection_string is None, "the app must not get a storage connection string in Azure"
    assert settings.storage_blob_service_uri == "https://example.invalid/"
    assert settings.storage_queue_service_uri == "https://example.invalid/", "render orders travel by queue"
    assert settings.model == bicep["main.bicep"]["parameters"]["imagegenModel"]["default"]
    assert settings.c2pa_signer == "keyvault", "Azure signs with the Key Vault certificate by default"
    assert settings.c2pa_cert_name == bicep["main.bicep"]["parameters"]["c2paCertName"]["default"]
    # A setting the Bicep sets one way or another (IMAGEGEN_SIGN_IN): the app takes either.
    for name, value in app_settings.items():
        if name in SETTINGS and (branches := conditional_branches(value)):
            for branch in branches:
                monkeypatch.setenv(name, branch)
                check_settings(Settings.from_env())


def test_every_binding_expression_setting_is_set_in_azure(app_settings):
    """`%NAME%` in a trigger (a timer schedule, say) is resolved by the Functions runtime,
    not by our code: a default in SETTINGS never reaches it, so the Bicep must set it."""
    import re

    expressions = set()
    for path in app_sources():
        expressions |= set(re.findall(r"[\"']%([A-Za-z_][A-Za-z0-9_]*)%[\"']", path.read_text(encoding="utf-8")))
    assert expressions, "expected the schedules timer's %IMAGEGEN_SCHEDULE_TICK%"
    missing = sorted(expressions - set(app_settings))
    assert not missing, f"app.bicep must set {missing}: the runtime resolves them in trigger bindings"


def test_notification_links_are_full_urls_at_the_apps_own_address(app_settings, app_bicep, bicep):
    """IMAGEGEN_PUBLIC_URL is what the control app's `uri` output will be (external ingress:
    its name under the environment's default domain), built without the app reading itself;
    the GPU pool is told the control app's name."""
    assert app_settings["IMAGEGEN_PUBLIC_URL"] == "https://${controlAppName}.${environment.properties.defaultDomain}"
    assert app_bicep["parameters"]["controlAppName"]["default"] == "name"
    assert app_bicep["resources"]["app"]["config"]["name"] == "name"
    ingress = app_bicep["resources"]["app"]["config"]["properties"]["configuration"]["ingress"]
    assert condition_of(ingress) == "isControl" and ingress["operator"]["operands"]["true_value"]["external"] is True
    modules = bicep["main.bicep"]["modules"]
    assert "controlAppName" not in modules["app"]["config"]["params"]
    handed = str(modules["render"]["config"]["params"]["controlAppName"])
    assert all(f"'{part}'" in handed for part in ("app", "outputs", "name")), handed  # app.outputs.name
    assert "environment" in app_bicep["resources"] and "${app." not in app_settings["IMAGEGEN_PUBLIC_URL"]


@pytest.mark.parametrize("name", ["IMAGEGEN_MODLE", "HF_HUB_OFLINE"])
def test_the_check_catches_a_setting_nobody_reads(app_settings, name):
    with pytest.raises(AssertionError, match=name):
        test_every_setting_azure_sets_is_read_by_the_app_or_a_named_reader({**app_settings, name: "x"})

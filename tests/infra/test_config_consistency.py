"""azure.yaml, host.json, the Bicep and its parameters file, and the Dockerfile: each valid,
and all of them agreeing where they name the same thing (service, port, health route,
task hub, containers, model, torch version). And no secret in any of them.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from imagegen.core.blob_names import CONTAINERS, render_queues
from imagegen.core.settings import SETTINGS
from tests.infra.deployfiles import INFRA, ROOT, dockerfile_instructions

SECRET_WORDS = re.compile(r"key|password|secret|connectionstring|token|sas", re.IGNORECASE)


def leaves(tree: object):
    """Every string, number and dict key in a parsed Bicep expression tree."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield key
            yield from leaves(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from leaves(item)
    else:
        yield tree


def instruction(dockerfile: str, keyword: str) -> list[str]:
    return [rest for key, rest in dockerfile_instructions(dockerfile) if key == keyword]


def docker_env(dockerfile: str) -> dict[str, str]:
    env = {}
    for rest in instruction(dockerfile, "ENV"):
        env.update(re.findall(r"(\w+)=(\S+)", rest))
    return env


def docker_args(dockerfile: str) -> dict[str, str]:
    return dict(rest.partition("=")[::2] for rest in instruction(dockerfile, "ARG"))


# --- azure.yaml ---------------------------------------------------------------------


def test_azure_yaml_describes_one_container_app_service(azure_yaml):
    assert azure_yaml.get("name"), "azure.yaml needs `name`"
    assert (ROOT / azure_yaml["infra"]["path"] / f"{azure_yaml['infra']['module']}.bicep").is_file()
    service = azure_yaml["services"]["app"]
    assert service["project"] == "."
    assert service["language"] == "python"
    assert service["host"] == "containerapp"
    assert (ROOT / service["docker"]["path"]).is_file(), f"no Dockerfile at {service['docker']['path']}"


def test_service_names_match_the_azd_service_name_tags(azure_yaml, bicep):
    tagged = set()
    for template in bicep.values():
        for tree in (template.get("modules", {}), template.get("resources", {})):
            found = list(leaves(tree))
            tagged |= {found[i + 1] for i, leaf in enumerate(found[:-1]) if str(leaf).strip("'") == "azd-service-name"}
    assert tagged == set(azure_yaml["services"]), (
        f"azure.yaml services {sorted(azure_yaml['services'])} must match the Bicep's azd-service-name tags {sorted(tagged)}"
    )


def test_build_args_are_dockerfile_args_and_share_the_parameters_variables(azure_yaml, dockerfile, parameters_json):
    args = docker_args(dockerfile)
    build_args = dict(item.split("=", 1) for item in azure_yaml["services"]["app"]["docker"]["buildArgs"])
    for name, value in build_args.items():
        assert name in args, f"azure.yaml passes build argument `{name}`, which the Dockerfile has no ARG for"
        assert value == "${" + name + "}", f"build argument `{name}` must come from the azd variable of the same name"
    # The image and the Bicep must read the same switches, or they drift apart.
    parameter_text = str(parameters_json)
    for name in ("IMAGEGEN_MODEL", "IMAGEGEN_MODEL_REVISION", "IMAGEGEN_TINY_VAE", "MODEL_CACHE_SHARE"):
        assert name in build_args, f"azure.yaml must pass `{name}` to the image build"
        assert "${" + name in parameter_text, f"main.parameters.json must read `{name}` too"


def test_ci_gets_every_azd_variable_the_deployment_reads(azure_yaml, parameters_json, bicep):
    read = set(re.findall(r"\$\{([A-Z0-9_]+)", str(parameters_json)))
    build_args = {item.split("=", 1)[0] for item in azure_yaml["services"]["app"]["docker"]["buildArgs"]}
    ours = {name for name in read | build_args if not name.startswith(("AZURE_", "SERVICE_"))}
    pipeline = azure_yaml["pipeline"]
    listed = set(pipeline["variables"]) | set(pipeline["secrets"])
    assert ours <= listed, f"azure.yaml pipeline must list {sorted(ours - listed)} for `azd pipeline config`"
    assert not set(pipeline["variables"]) & set(pipeline["secrets"])
    # Every @secure() parameter's variable is a pipeline secret, never a plain variable.
    main = bicep["main.bicep"]["parameters"]
    for name, parameter in parameters_json["parameters"].items():
        if any(d["type"] == "secure" for d in main[name].get("decorators", [])):
            variable = re.match(r"\$\{([A-Z0-9_]+)", parameter["value"]).group(1)
            assert variable in pipeline["secrets"], f"`{variable}` feeds the secure parameter `{name}`: a pipeline secret"


# Bicep's scope functions; a symbol of the same name hides them (BCP265), and only `az.` reaches them then.
SCOPE_FUNCTIONS = ("environment", "subscription", "tenant", "resourceGroup", "deployment", "managementGroup")


def test_no_symbol_hides_a_scope_function_that_the_file_calls(bicep):
    # No bicep CLI here to compile the templates: this catches `environment()` called in a
    # file that declares `resource environment ...`, which the compiler would refuse.
    problems = []
    for path, template in bicep.items():
        symbols = {name for kind in ("parameters", "variables", "resources", "modules") for name in template.get(kind, {})}
        text = (INFRA / path).read_text()
        for name in SCOPE_FUNCTIONS:
            if name in symbols and re.search(rf"(?<![\w.]){name}\(", text):
                problems.append(f"{path} declares `{name}` and calls `{name}()`: write `az.{name}()`")
    assert not problems, "\n".join(problems)


# --- host.json ----------------------------------------------------------------------


def parse_timespan(text: str) -> timedelta:
    hours, minutes, seconds = (int(part) for part in text.split(":"))
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def test_host_json_is_a_v2_host_with_the_v4_bundle(host_json):
    assert host_json["version"] == "2.0"
    assert host_json["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    assert host_json["extensions"]["http"]["routePrefix"] == "api"
    timeout = parse_timespan(host_json["functionTimeout"])
    assert timedelta(minutes=30) <= timeout <= timedelta(hours=4), f"functionTimeout {timeout} should fit a GPU batch"


def test_host_json_sizes_durable_for_one_gpu_and_keeps_failures_in_telemetry(host_json):
    durable = host_json["extensions"]["durableTask"]
    assert durable["hubName"].isalnum(), "task hub names are letters and digits only"
    assert 1 <= durable["maxConcurrentActivityFunctions"] <= 4, "one GPU runs a batch or two at a time"
    assert durable["maxConcurrentOrchestratorFunctions"] >= 1
    excluded = host_json["logging"]["applicationInsights"]["samplingSettings"]["excludedTypes"].split(";")
    assert {"Request", "Exception"} <= set(excluded), "sampling must never drop requests or exceptions"


def test_task_hub_is_the_same_in_host_json_and_bicep(host_json, bicep):
    bicep_hub = bicep["main.bicep"]["variables"]["taskHubName"]["value"]
    assert host_json["extensions"]["durableTask"]["hubName"] == bicep_hub


# --- ports and health ---------------------------------------------------------------


def test_one_port_everywhere(dockerfile, app_bicep, host_json):
    port = app_bicep["variables"]["appPort"]["value"]
    exposed = [int(value) for rest in instruction(dockerfile, "EXPOSE") for value in rest.split()]
    assert exposed == [port], f"Dockerfile EXPOSE {exposed} must be the ingress port {port}"
    urls = docker_env(dockerfile)["ASPNETCORE_URLS"]
    assert urls.endswith(f":{port}"), f"the host listens on {urls}, the ingress targets {port}"
    healthcheck = " ".join(instruction(dockerfile, "HEALTHCHECK"))
    route = f"/{host_json['extensions']['http']['routePrefix']}/health"
    assert f"localhost:{port}{route}" in healthcheck, f"HEALTHCHECK must probe {route} on port {port}"
    ingress = app_bicep["resources"]["app"]["config"]["properties"]["configuration"]["ingress"]
    ingress = ingress["operator"]["operands"]["true_value"]  # the control app's; the render pool has none
    assert ingress["targetPort"] == "appPort", f"the ingress must target appPort, got {ingress['targetPort']!r}"
    probes = app_bicep["variables"]["probes"]["value"]
    probe_list = next(option for option in leaves_lists(probes) if option)
    assert {(probe["httpGet"]["path"], probe["httpGet"]["port"]) for probe in probe_list} == {("probePath", "appPort")}
    # The platform probes whether the worker answers, not whether it can sign (/api/health's 503).
    assert app_bicep["variables"]["probePath"]["value"] == f"{route}/live"
    assert {probe["type"] for probe in probe_list} == {"Startup", "Readiness", "Liveness"}


def leaves_lists(tree: object):
    """Every list inside a parsed expression (e.g. both branches of `a ? [] : [...]`)."""
    if isinstance(tree, list):
        yield tree
    elif isinstance(tree, dict):
        for value in tree.values():
            yield from leaves_lists(value)


# --- storage ------------------------------------------------------------------------


def test_bicep_creates_exactly_the_containers_the_code_uses(bicep):
    names = bicep["modules/storage.bicep"]["variables"]["containerNames"]["value"]
    assert sorted(names) == sorted(CONTAINERS), f"Bicep creates {sorted(names)}, imagegen.storage.blobs uses {sorted(CONTAINERS)}"


def test_bicep_creates_the_render_queues_the_code_uses_by_default(bicep):
    names = bicep["modules/storage.bicep"]["variables"]["queueNames"]["value"]
    assert sorted(names) == sorted(render_queues(SETTINGS["IMAGEGEN_RENDER_QUEUE"][0]))


def test_storage_is_private_and_keyless(bicep):
    account = bicep["modules/storage.bicep"]["resources"]["account"]["config"]["properties"]
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    containers = bicep["modules/storage.bicep"]["resources"]["containers"]["config"]
    assert "None" in list(leaves(containers)), "blob containers must have publicAccess None"


def by_role(value: dict) -> tuple[object, object]:
    """(control, render) of an app.bicep value set `isControl ? control : render`."""
    operands = value["operator"]["operands"]
    assert operands["condition"] == "isControl", value
    return operands["true_value"], operands["false_value"]


def test_the_control_app_is_one_cpu_replica_and_the_gpu_pool_scales_from_zero(app_bicep, bicep):
    app = app_bicep["resources"]["app"]["config"]
    assert app["kind"] == "functionapp"
    assert by_role(app["properties"]["workloadProfileName"]) == ("Consumption", "gpuProfileName")
    scale = app["properties"]["template"]["scale"]
    # The control app: the blob drop and timers poll, and Durable on Azure Storage cannot
    # scale from zero. The GPU pool: nothing runs, or is billed, while no batch waits.
    assert by_role(scale["minReplicas"]) == (1, 0)
    assert by_role(scale["maxReplicas"]) == (1, "maxReplicas")
    probes = app["properties"]["template"]["containers"][0]["probes"]
    assert by_role(probes) == ("probes", []), "HTTP probes need the ingress only the control app has"
    calls = {symbol: module["config"].get("config", module["config"])["params"]
             for symbol, module in bicep["main.bicep"]["modules"].items()
             if module["detail"]["path"] == "modules/app.bicep"}
    assert {symbol: params["role"] for symbol, params in calls.items()} == {"app": "control", "render": "render"}
    assert str(calls["app"]["tags"]).count("'app'") == 1 and str(calls["render"]["tags"]).count("'render'") == 1


# --- parameters, model and torch ----------------------------------------------------


def test_parameters_file_matches_main_bicep(parameters_json, bicep):
    declared = bicep["main.bicep"]["parameters"]
    given = parameters_json["parameters"]
    assert parameters_json["$schema"].endswith("deploymentParameters.json#")
    assert set(given) <= set(declared), f"main.parameters.json sets unknown parameters {sorted(set(given) - set(declared))}"
    required = {name for name, parameter in declared.items() if parameter.get("default") is None}
    assert required <= set(given), f"main.parameters.json must set {sorted(required - set(given))}"
    # `${VAR=default}` must default to what main.bicep defaults to.
    for name, entry in given.items():
        match = re.fullmatch(r"\$\{(\w+)=(.*)\}", str(entry["value"]))
        default = declared[name].get("default")
        if match and default is not None:
            assert match.group(2) == str(default).lower() if isinstance(default, bool) else match.group(2) == str(default), (
                f"`{name}` defaults to {match.group(2)!r} in main.parameters.json but {default!r} in main.bicep"
            )


def test_the_image_bakes_the_model_the_app_is_configured_with(dockerfile, bicep, app_settings):
    args = docker_args(dockerfile)
    assert args["IMAGEGEN_MODEL"] == bicep["main.bicep"]["parameters"]["imagegenModel"]["default"]
    assert args["IMAGEGEN_TINY_VAE"] == bicep["main.bicep"]["parameters"]["imagegenTinyVae"]["default"]
    assert "${IMAGEGEN_TINY_VAE:-" + args["IMAGEGEN_TINY_VAE"] + "}" in dockerfile, "the empty-build-arg fallback must be the same tiny VAE"
    assert args["MODEL_CACHE_SHARE"] == "false" and bicep["main.bicep"]["parameters"]["modelCacheShare"]["default"] is False
    # A baked image keeps its weights in HF_HOME; the Bicep points there when there is no share.
    assert docker_env(dockerfile)["HF_HOME"] in list(leaves(app_settings["HF_HOME"]))


def test_the_image_installs_the_torch_version_requirements_txt_pins(dockerfile):
    pinned = re.search(r"^torch==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE).group(1)
    assert docker_args(dockerfile)["TORCH_VERSION"] == pinned
    assert f"${{TORCH_VERSION:-{pinned}}}" in dockerfile, "the empty-build-arg fallback must be the same version"


# --- Dockerfile ---------------------------------------------------------------------


def test_dockerfile_uses_the_functions_python_311_image_as_a_non_root_user(dockerfile):
    (base,) = instruction(dockerfile, "FROM")
    assert re.fullmatch(r"mcr\.microsoft\.com/azure-functions/python:4-python3\.11(-slim)?", base), base
    users = instruction(dockerfile, "USER")
    assert users and users[-1] not in ("root", "0"), f"the last USER must not be root, got {users}"
    assert instruction(dockerfile, "HEALTHCHECK"), "the Dockerfile needs a HEALTHCHECK"
    env = docker_env(dockerfile)
    assert env["AzureWebJobsScriptRoot"] == "/home/site/wwwroot"
    assert env["AzureFunctionsJobHost__Logging__Console__IsEnabled"] == "true"


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for path in (".venv", "node_modules", "out", ".devhost", "tests", ".git"):
        assert path in ignored, f".dockerignore must exclude {path}"


# --- secrets ------------------------------------------------------------------------


def test_no_output_carries_a_secret(bicep):
    for path, template in bicep.items():
        for name, output in template["outputs"].items():
            # A vault's name and URL are addresses: "KEY_VAULT" alone does not make an output secret.
            assert not SECRET_WORDS.search(name.replace("KEY_VAULT", "")), (
                f"{path} outputs `{name}`: outputs are names, endpoints and URLs only"
            )
            assert not any("listKeys" in str(leaf) for leaf in leaves(output["value"])), (
                f"{path} output `{name}` reads keys"
            )
            assert not any(d.get("type") == "secure" for d in output.get("decorators", [])), f"{path} output `{name}` is secure"


def test_keys_are_read_only_to_mount_the_model_cache():
    readers = sorted(str(path.relative_to(INFRA)) for path in INFRA.rglob("*.bicep") if "listKeys" in path.read_text())
    assert readers == ["modules/model-cache.bicep"], f"only the model-cache share may read a key; found in {readers}"


@pytest.mark.parametrize("path", ["Dockerfile", "host.json", "azure.yaml", "infra/main.parameters.json"])
def test_no_secret_literal_in_deployment_files(path):
    text = (ROOT / path).read_text()
    for pattern in (r"AccountKey=", r"SharedAccessSignature=", r"InstrumentationKey=", r"[?&]sig=", r"[A-Za-z0-9+/]{60,}={0,2}"):
        assert not re.search(pattern, text), f"{path} contains what looks like a secret ({pattern})"
    if path == "Dockerfile":
        for name in list(docker_env(text)) + list(docker_args(text)):
            assert not SECRET_WORDS.search(name), f"the Dockerfile sets `{name}`: secrets never go into an image"


def test_the_app_mounts_the_storage_the_model_cache_module_registers(bicep):
    registered = bicep["modules/model-cache.bicep"]["variables"]["storageName"]["value"]
    passed = bicep["main.bicep"]["modules"]["app"]["config"]["params"]["modelCacheStorageName"]
    assert registered in list(leaves(passed)), f"main.bicep passes {passed!r}, the module registers {registered!r}"


def test_render_orders_expire_and_nothing_else_does(bicep):
    """Orders and answers between the apps are working files; images and manifests are kept."""
    policy = bicep["modules/storage.bicep"]["resources"]["renderOrdersExpire"]["config"]["properties"]["policy"]
    (rule,) = policy["rules"]
    assert rule["definition"]["filters"]["prefixMatch"] == ["renders/"]
    assert rule["definition"]["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] >= 7

"""The Durable backend in Azure: the Durable Task Scheduler by default (identity-based
connection, its data role on the task hub), with Azure Storage kept as a parameter choice.
host.json and the Bicep must name the same task hub, provider and connection setting.
Scaling is the platform's: Container Apps derives the KEDA rules of a `kind: functionapp`
app from its triggers and blocks rules a template supplies.
"""

from __future__ import annotations

from tests.infra.test_role_assignments import role_assignments

DURABLE_TASK_DATA_CONTRIBUTOR = "0ad04412-c4d5-4796-b79c-f76d14c8d402"  # built-in role ids
DURABLE_TASK_DATA_READER = "d6a5505f-6ebb-45a4-896e-ac8274cfc0ac"
PROVIDER_TYPE = "AzureFunctionsJobHost__extensions__durableTask__storageProvider__type"
PROVIDER_CONNECTION = "AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName"


def by_backend(value: dict) -> dict[str, object]:
    """{'scheduler': ..., 'storage': ...} from a `useScheduler ? a : b` expression."""
    operands = value["operator"]["operands"]
    assert value["operator"]["type"] == "conditional" and operands["condition"] == "useScheduler", value
    return {"scheduler": operands["true_value"], "storage": operands["false_value"]}


def role_definition(properties: dict, template: dict) -> str:
    name = properties["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
    return template["variables"][name]["value"]


def test_the_scheduler_is_the_default_and_storage_stays_a_choice(bicep, parameters_json):
    parameter = bicep["main.bicep"]["parameters"]["durableBackend"]
    allowed = next(d["argument"] for d in parameter["decorators"] if d["type"] == "allowed")
    assert set(allowed) == {"scheduler", "storage"}
    assert parameter["default"] == "scheduler"
    assert parameters_json["parameters"]["durableBackend"]["value"] == "${DURABLE_BACKEND=scheduler}"
    module = bicep["main.bicep"]["modules"]["durableTaskScheduler"]
    assert "durableBackend" in str(module["config"]["condition"]), "no scheduler is created for the storage backend"


def test_host_json_names_the_scheduler_and_the_setting_with_its_connection(host_json, app_settings):
    provider = host_json["extensions"]["durableTask"]["storageProvider"]
    assert provider["type"] == "azureManaged"
    setting = provider["connectionStringName"]
    connection = by_backend(app_settings[setting])["scheduler"]
    # Identity-based: the endpoint and which identity, never a key.
    assert connection.startswith("Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;ClientID=")
    assert "${identity.properties.clientId}" in connection
    # The app settings pick the same provider and connection, or switch both to Azure Storage.
    assert by_backend(app_settings[PROVIDER_TYPE]) == {"scheduler": "azureManaged", "storage": "AzureStorage"}
    assert by_backend(app_settings[PROVIDER_CONNECTION]) == {"scheduler": setting, "storage": "AzureWebJobsStorage"}


def test_the_scheduler_has_the_host_json_task_hub_and_the_app_its_data_role_there(bicep, host_json):
    module = bicep["modules/durable-task-scheduler.bicep"]
    resources = module["resources"]
    assert resources["scheduler"]["type"] == "Microsoft.DurableTask/schedulers"
    assert resources["taskHub"]["type"] == "Microsoft.DurableTask/schedulers/taskHubs"
    assert resources["taskHub"]["config"]["name"] == "taskHubName"
    assert bicep["main.bicep"]["modules"]["durableTaskScheduler"]["config"]["config"]["params"]["taskHubName"] == "taskHubName"
    assert bicep["main.bicep"]["variables"]["taskHubName"]["value"] == host_json["extensions"]["durableTask"]["hubName"]
    assert resources["scheduler"]["config"]["properties"]["ipAllowlist"], "an empty allow list denies every call"

    assignments = role_assignments(module)
    app = assignments["appContributor"]
    assert role_definition(app, module) == DURABLE_TASK_DATA_CONTRIBUTOR
    assert app["principalId"] == "principalId"
    assert resources["appContributor"]["config"]["scope"] == "taskHub", "the app's role covers its own task hub only"
    reader = assignments["userReader"]
    assert role_definition(reader, module) == DURABLE_TASK_DATA_READER
    assert reader["principalType"] == "userPrincipalType"
    params = bicep["main.bicep"]["modules"]["durableTaskScheduler"]["config"]["config"]["params"]
    assert "identity" in str(params["principalId"])


def test_the_function_app_leaves_its_scale_rules_to_the_platform(app_bicep):
    """Microsoft's "Override auto-generated KEDA scale rules for Azure Functions on Container
    Apps": without `allowScalingRuleOverride` (API 2026-03-02-preview and later), Azure makes
    the rules from the discovered triggers and "user-supplied rules are blocked"; switching
    to platform mode with rules present is refused (`FunctionAppCannotSetScaleRules`)."""
    app = app_bicep["resources"]["app"]["config"]
    assert app["kind"] == "functionapp"
    scale = app["properties"]["template"]["scale"]
    assert "rules" not in scale and "allowScalingRuleOverride" not in scale, scale
    operands = scale["minReplicas"]["operator"]["operands"]  # isControl ? 1 : 0
    assert operands["condition"] == "isControl" and operands["true_value"] >= 1, \
        "the control app's timer, blob trigger and durable timers need a running host"

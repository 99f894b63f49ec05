"""Role assignments: each one names the kind of principal it is for, and the deployer's
kind comes from azd, so `azd up` run by a CI service principal does not fail with
UnmatchedPrincipalType.
"""

from __future__ import annotations

import re

from tests.infra.deployfiles import parse_bicep

PRINCIPAL_TYPES = {"User", "ServicePrincipal", "Group"}


def role_assignments(template: dict) -> dict[str, dict]:
    """name -> properties of every role assignment a template declares (conditional ones too)."""
    found = {}
    for name, resource in template.get("resources", {}).items():
        if resource["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        config = resource["config"]
        config = config["config"] if "condition" in config else config  # `= if (...) {...}`
        found[name] = config["properties"]
    return found


def all_role_assignments(bicep: dict) -> list[tuple[str, str, dict, dict]]:
    return [
        (path, name, properties, template)
        for path, template in bicep.items()
        for name, properties in role_assignments(template).items()
    ]


def principal_type_problems(assignments: list[tuple[str, str, dict, dict]]) -> list[str]:
    problems = []
    for path, name, properties, template in assignments:
        kind = properties.get("principalType")
        if kind is None:
            problems.append(f"{path}: role assignment `{name}` must set principalType")
        elif kind in template.get("parameters", {}):
            continue  # a parameter: the deployer's, checked below
        elif kind != "ServicePrincipal" or properties["principalId"] != "principalId":
            problems.append(
                f"{path}: `{name}` hard-codes principalType {kind!r} for {properties['principalId']!r}; "
                "only the app identity's (a ServicePrincipal) may be a literal"
            )
    return problems


def test_every_role_assignment_states_its_principal_type(bicep):
    assignments = all_role_assignments(bicep)
    assert len(assignments) >= 5, f"expected the app's and the deployer's roles, found {len(assignments)}"
    problems = principal_type_problems(assignments)
    assert not problems, "\n".join(problems)


def test_the_deployers_role_takes_its_principal_type_from_azd(bicep, parameters_json):
    storage = bicep["modules/storage.bicep"]
    properties = role_assignments(storage)["userBlobContributor"]
    parameter = storage["parameters"].get(properties["principalType"])
    assert parameter is not None, f"the deployer's principalType must be a parameter, got {properties['principalType']!r}"
    allowed = next(d["argument"] for d in parameter["decorators"] if d["type"] == "allowed")
    assert set(allowed) == PRINCIPAL_TYPES
    assert parameter["default"] == "User"

    main = bicep["main.bicep"]
    passed = main["modules"]["storage"]["config"]["params"][properties["principalType"]]
    assert passed in main["parameters"], f"main.bicep must pass a parameter to the storage module, got {passed!r}"
    assert set(next(d["argument"] for d in main["parameters"][passed]["decorators"] if d["type"] == "allowed")) == PRINCIPAL_TYPES
    value = parameters_json["parameters"][passed]["value"]
    assert re.fullmatch(r"\$\{AZURE_PRINCIPAL_TYPE(=User)?\}", value), f"`{passed}` must read azd's AZURE_PRINCIPAL_TYPE, got {value!r}"


def test_the_check_catches_a_hard_coded_user_type(tmp_path):
    # The bug this file guards against, in a module of its own: the deployer typed as 'User'.
    bad = tmp_path / "bad.bicep"
    bad.write_text(
        "param userPrincipalId string\n"
        "resource r 'Microsoft.Authorization/roleAssignments@2022-04-01' = {\n"
        "  name: guid(userPrincipalId)\n"
        "  properties: {\n"
        "    roleDefinitionId: 'x'\n"
        "    principalId: userPrincipalId\n"
        "    principalType: 'User'\n"
        "  }\n"
        "}\n"
    )
    problems = principal_type_problems(all_role_assignments({"bad.bicep": parse_bicep(bad)}))
    assert problems == ["bad.bicep: `r` hard-codes principalType 'User' for 'userPrincipalId'; only the app identity's (a ServicePrincipal) may be a literal"]


# --- telemetry with the managed identity ----------------------------------------------

MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"  # built-in role id


def role_id(properties: dict, template: dict) -> str:
    name = properties["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
    return template["variables"][name]["value"] if name in template.get("variables", {}) else name


def test_the_app_identity_publishes_telemetry_to_application_insights(bicep):
    monitoring = bicep["modules/monitoring.bicep"]
    publishers = [
        properties for properties in role_assignments(monitoring).values()
        if role_id(properties, monitoring) == MONITORING_METRICS_PUBLISHER
    ]
    assert publishers, "the app identity needs Monitoring Metrics Publisher on Application Insights"
    resources = monitoring["resources"]
    (publisher,) = publishers
    scope = next(r["config"]["scope"] for r in resources.values() if r["config"].get("properties") is publisher)
    assert resources[scope]["type"] == "Microsoft.Insights/components", f"the role must be scoped to Application Insights, not {scope!r}"
    assert resources[scope]["config"]["properties"]["DisableLocalAuth"] is True, "only Entra-authenticated telemetry may be ingested"
    # The role goes to the same identity the app runs as.
    main = bicep["main.bicep"]["modules"]
    assert "identity" in str(main["monitoring"]["config"]["params"]["principalId"])
    assert "identity" in str(main["app"]["config"]["params"]["identityName"])


def test_the_app_authenticates_its_telemetry_with_its_user_assigned_identity(app_settings):
    # The documented form for a user-assigned identity: `Authorization=AAD;ClientId=<client id>`.
    value = app_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert value == "Authorization=AAD;ClientId=${identity.properties.clientId}", value
    assert app_settings["AZURE_CLIENT_ID"] == app_settings["AzureWebJobsStorage__clientId"]
    assert "ConnectionString" in str(app_settings["APPLICATIONINSIGHTS_CONNECTION_STRING"])

"""Sign-in for the gallery and review: Container Apps built-in authentication with Entra ID,
on when a client id is given, never with a secret value in the template, and never in front
of the routes that authenticate with their own keys.
"""

from __future__ import annotations


def test_sign_in_is_off_without_a_client_id_and_entra_with_one(bicep, app_bicep, app_settings, parameters_json):
    main = bicep["main.bicep"]["parameters"]
    assert main["authClientId"]["default"] == ""
    assert parameters_json["parameters"]["authClientId"]["value"] == "${AUTH_CLIENT_ID=}"
    auth = app_bicep["resources"]["auth"]
    assert auth["type"] == "Microsoft.App/containerApps/authConfigs"
    assert auth["config"]["condition"] == "signIn"
    assert "authClientId" in str(app_bicep["variables"]["signIn"]["value"])
    sign_in = app_settings["IMAGEGEN_SIGN_IN"]["operator"]["operands"]
    assert (sign_in["condition"], sign_in["true_value"], sign_in["false_value"]) == ("signIn", "entra", "off")


def test_entra_signs_people_in_and_the_secret_is_only_named(app_bicep, bicep, parameters_json):
    properties = app_bicep["resources"]["auth"]["config"]["config"]["properties"]
    assert properties["platform"]["enabled"] is True
    assert properties["globalValidation"]["unauthenticatedClientAction"] == "RedirectToLoginPage"
    assert properties["httpSettings"]["requireHttps"] is True
    entra = properties["identityProviders"]["azureActiveDirectory"]
    assert entra["enabled"] is True
    registration = entra["registration"]
    assert registration["clientId"] == "authClientId"
    # A setting name (the Container Apps secret), never the value.
    assert "authSecretName" in str(registration["clientSecretSettingName"])
    assert "/v2.0" in str(registration["openIdIssuer"])
    # The secret value reaches the app only as a Container Apps secret, from a @secure parameter.
    for template in (app_bicep, bicep["main.bicep"]):
        decorators = {d["type"] for d in template["parameters"]["authClientSecret"]["decorators"]}
        assert "secure" in decorators
    assert "authSecrets" in str(app_bicep["resources"]["app"]["config"]["properties"]["configuration"]["secrets"])
    assert parameters_json["parameters"]["authClientSecret"]["value"] == "${AUTH_CLIENT_SECRET=}"


def test_routes_with_their_own_keys_are_not_behind_sign_in(app_bicep):
    excluded = app_bicep["variables"]["signInExcludedPaths"]["value"]
    # The probe, Foundry/OpenAI clients (their bearer is our API key, not an Entra token) and
    # the Durable status URLs (system keys) must keep working.
    assert set(excluded) == {"/api/health", "/api/health/live", "/api/images/generations", "/runtime/webhooks/durabletask"}
    assert not any(path.startswith(("/api/gallery", "/api/jobs")) for path in excluded), "the gallery and review need a signed-in user"
    properties = app_bicep["resources"]["auth"]["config"]["config"]["properties"]
    assert properties["globalValidation"]["excludedPaths"] == "signInExcludedPaths"

"""Key Vault for C2PA signing: RBAC-only, recoverable, and the app may do exactly what the
`keyvault` signer does (read the certificate and its chain, sign, and create the first
certificate self-signed unless that is off) and nothing more.
"""

from __future__ import annotations

import json

from tests.infra.deployfiles import INFRA
from tests.infra.test_role_assignments import role_assignments

# What imagegen/checks/keyvault_signer.py calls: get_certificate, get_secret (the chain),
# CryptographyClient (reads the public key, then signs).
SIGNER_DATA_ACTIONS = {
    "Microsoft.KeyVault/vaults/certificates/read",
    "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "Microsoft.KeyVault/vaults/keys/read",
    "Microsoft.KeyVault/vaults/keys/sign/action",
}
# What imagegen/checks/keyvault_certificate.py calls when the certificate does not exist:
# begin_create_certificate (then get_certificate_operation and get_certificate: read).
CREATE_DATA_ACTION = "Microsoft.KeyVault/vaults/certificates/create/action"
KEY_VAULT_CERTIFICATES_OFFICER = "a4417e6f-fecd-4de8-b567-7b0420556985"  # built-in role id


def test_the_vault_uses_rbac_soft_delete_and_purge_protection(bicep):
    vault = bicep["modules/key-vault.bicep"]["resources"]["vault"]["config"]["properties"]
    assert vault["enableRbacAuthorization"] is True, "access policies would bypass the roles below"
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    assert 7 <= vault["softDeleteRetentionInDays"] <= 90
    assert "accessPolicies" not in vault
    assert vault["enabledForTemplateDeployment"] is False, "no deployment may read the vault's secrets"


def test_the_signer_role_allows_only_signing_reading_and_creating_the_certificate(bicep):
    module = bicep["modules/c2pa-signer-role.bicep"]
    role = module["resources"]["signer"]["config"]["properties"]
    (permissions,) = role["permissions"]
    concat = permissions["dataActions"]["function"]
    assert concat["type"] == "concat"
    sign, create = (module["variables"][name]["value"] for name in concat["parameters"].values())
    assert set(sign) == SIGNER_DATA_ACTIONS
    # create only while the app may create the self-signed certificate, and nothing else with it
    branches = create["operator"]["operands"]
    assert branches["condition"] == "allowCreateCertificate"
    assert (branches["true_value"], branches["false_value"]) == ([CREATE_DATA_ACTION], [])
    allow = bicep["main.bicep"]["modules"]["c2paSignerRole"]["config"]["params"]["allowCreateCertificate"]
    assert allow["operator"]["operands"] == {"operand_1": "c2paCreateCertificate", "operand_2": "self-signed"}
    assert permissions["actions"] == [], "the app needs no control-plane action on the vault"
    assert role["assignableScopes"] == ["assignableScope"]
    assert "resourceGroups" in bicep["modules/c2pa-signer-role.bicep"]["variables"]["assignableScope"]["value"]


def test_the_app_identity_holds_the_signer_role_on_the_vault_and_the_deployer_manages_certificates(bicep):
    module = bicep["modules/key-vault.bicep"]
    assignments = role_assignments(module)
    assert set(assignments) == {"signer", "userCertificatesOfficer"}, sorted(assignments)
    assert assignments["signer"]["principalId"] == "principalId"
    assert assignments["signer"]["roleDefinitionId"] == "signerRoleDefinitionId"
    officer = assignments["userCertificatesOfficer"]["roleDefinitionId"]
    assert module["variables"][officer["function"]["parameters"]["resource_name_1"]]["value"] == KEY_VAULT_CERTIFICATES_OFFICER
    assert assignments["userCertificatesOfficer"]["principalType"] == "userPrincipalType"
    for name in ("signer", "userCertificatesOfficer"):
        config = module["resources"][name]["config"]
        config = config.get("config", config)
        assert config["scope"] == "vault", f"`{name}` must be scoped to the vault, not wider"
    # main.bicep wires the app identity and the custom role into the module.
    params = bicep["main.bicep"]["modules"]["keyVault"]["config"]["params"]
    assert "identity" in str(params["principalId"])
    assert "c2paSignerRole" in str(params["signerRoleDefinitionId"])


def test_the_app_signs_with_the_vault_by_default(app_settings, bicep):
    assert app_settings["C2PA_SIGNER"] == "c2paSigner"
    assert bicep["main.bicep"]["parameters"]["c2paSigner"]["default"] == "keyvault"
    # ...from the first deploy on: the app creates a self-signed certificate when none exists.
    assert app_settings["C2PA_CREATE_CERTIFICATE"] == "c2paCreateCertificate"
    assert bicep["main.bicep"]["parameters"]["c2paCreateCertificate"]["default"] == "self-signed"
    assert app_settings["C2PA_CERT_NAME"] == "c2paCertName"
    assert app_settings["C2PA_KEYVAULT_URL"] == "c2paKeyVaultUrl"
    url = str(bicep["main.bicep"]["modules"]["app"]["config"]["params"]["c2paKeyVaultUrl"])
    assert all(part in url for part in ("'keyVault'", "'outputs'", "'uri'")), f"the vault URL must come from the module, got {url}"


def test_the_certificate_policy_makes_a_non_exportable_p256_key_for_a_ca_to_sign():
    policy = json.loads((INFRA / "c2pa-certificate-policy.json").read_text())
    key = policy["keyProperties"]
    assert (key["keyType"], key["curve"], key["exportable"]) == ("EC", "P-256", False)
    assert policy["issuerParameters"]["name"] == "Unknown", "a CA signs the CSR (the self-signed one is the app's)"
    assert policy["secretProperties"]["contentType"] == "application/x-pem-file"
    assert "1.3.6.1.5.5.7.3.4" in policy["x509CertificateProperties"]["ekus"], "C2PA needs emailProtection (or another C2PA EKU)"


# --- the Foundry-compatible route's key -----------------------------------------------


def test_the_api_key_reaches_the_app_only_as_a_container_apps_secret(app_settings, app_bicep, bicep, parameters_json):
    assert app_settings["IMAGEGEN_API_KEY"] == {"secretRef": "imagegen-api-key"}
    secrets = app_bicep["resources"]["app"]["config"]["properties"]["configuration"]["secrets"]
    assert "apiKeySecrets" in str(secrets), f"the app's secrets must include apiKeySecrets, got {secrets}"
    control_secrets = app_bicep["variables"]["apiKeySecrets"]["value"]["operator"]["operands"]  # isControl ? [...] : []
    (secret,) = [item for item in control_secrets["true_value"] if item["name"] == "imagegen-api-key"]
    assert secret["value"] == "imagegenApiKey" and control_secrets["false_value"] == []
    for template, name in ((app_bicep, "imagegenApiKey"), (bicep["main.bicep"], "imagegenApiKey")):
        decorators = {d["type"] for d in template["parameters"][name]["decorators"]}
        assert "secure" in decorators, f"`{name}` must be @secure() so ARM never logs or returns it"
    # The module's '' is for the GPU pool, which takes no key; the deployment's has no default.
    assert bicep["main.bicep"]["parameters"]["imagegenApiKey"].get("default") is None
    assert bicep["main.bicep"]["modules"]["app"]["config"]["params"]["imagegenApiKey"] == "imagegenApiKey"
    # azd generates it when IMAGEGEN_API_KEY is not set, and keeps it for later provisions.
    metadata = next(d for d in bicep["main.bicep"]["parameters"]["imagegenApiKey"]["decorators"] if d["type"] == "metadata")
    assert metadata["argument"]["azd"]["type"] == "generate"
    assert metadata["argument"]["azd"]["config"]["length"] >= 32
    assert parameters_json["parameters"]["imagegenApiKey"]["value"] == "${IMAGEGEN_API_KEY}"
    for path, template in bicep.items():
        for output in template["outputs"].values():
            assert "imagegenApiKey" not in str(output["value"]), f"{path} outputs the API key"


def test_the_webhook_url_is_a_secret_when_there_is_one(app_settings, app_bicep, bicep, azure_yaml):
    # Teams and Slack webhook URLs carry their token in the path.
    assert app_settings["IMAGEGEN_NOTIFY_URL"] == {"secretRef": "imagegen-notify-url"}
    secret = app_bicep["variables"]["notifySecrets"]["value"]["operator"]["operands"]
    assert secret["condition"] == "notifies"  # the control app, with a URL
    assert secret["false_value"] == [], "a Container Apps secret cannot be empty: none without a URL"
    assert secret["true_value"] == [{"name": "imagegen-notify-url", "value": "imagegenNotifyUrl"}]
    assert "notifySecrets" in str(app_bicep["resources"]["app"]["config"]["properties"]["configuration"]["secrets"])
    for template in (app_bicep, bicep["main.bicep"]):
        assert "secure" in {d["type"] for d in template["parameters"]["imagegenNotifyUrl"]["decorators"]}
    assert "IMAGEGEN_NOTIFY_URL" in azure_yaml["pipeline"]["secrets"]


def test_an_empty_api_key_fails_validation_rather_than_the_container_app(bicep):
    decorators = {d["type"]: d.get("argument") for d in bicep["main.bicep"]["parameters"]["imagegenApiKey"]["decorators"]}
    assert decorators["min_length"] >= 32

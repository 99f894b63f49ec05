"""The azd hooks that make sign-in part of `azd up` (infra/hooks/sign-in-*.sh), run for real
with `sh`, against stand-ins for `az`, `azd` and `sleep` first on PATH (tests/infra/fake_cli.py):
a first `azd up` creates one app registration, stores its client id and a secret with `azd env
set` before the Bicep runs, assigns the person deploying and sets the redirect URI on APP_URL; a
second reuses all of it and mints no new secret; SIGN_IN=off does nothing; a registration of the
user's own gets its redirect URI and nothing else; no secret is ever printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra import fake_cli
from tests.infra.deployfiles import INFRA, ROOT

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="the hooks are POSIX sh scripts and there is no sh")

HOOKS = INFRA / "hooks"
APP_URL = "https://ca-abc123.kindocean-1234.swedencentral.azurecontainerapps.io"
CALLBACK = f"{APP_URL}/.auth/login/aad/callback"
ZERO_ROLE = fake_cli.DEFAULT_ACCESS_ROLE


class Deployment:
    """An azd environment on a machine whose `az` and `azd` are the stand-ins: runs the hooks
    as azd does (from the project folder, the environment's values as environment variables)
    and stands in for the provision between them (the Bicep outputs azd adds to the env)."""

    def __init__(self, folder: Path, directory: dict | None = None, **environment: str):
        self.state = folder / "state"
        self.state.mkdir()
        self.bin = folder / "bin"
        self.bin.mkdir()
        for program in ("az", "azd", "sleep"):
            stand_in = self.bin / program
            stand_in.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{fake_cli.__file__}" {program} "$@"\n')
            stand_in.chmod(0o755)
        (self.state / "calls.jsonl").write_text("")
        self.directory = directory or fake_cli.new_directory()
        self.environment = {"AZURE_ENV_NAME": "dd-test", "AZURE_LOCATION": "swedencentral",
                            "AZURE_SUBSCRIPTION_ID": "sub-1", **environment}
        self.outputs: list[str] = []

    @property
    def directory(self) -> dict:
        return json.loads((self.state / "directory.json").read_text())

    @directory.setter
    def directory(self, value: dict) -> None:
        (self.state / "directory.json").write_text(json.dumps(value))

    @property
    def environment(self) -> dict[str, str]:
        return json.loads((self.state / "environment.json").read_text())

    @environment.setter
    def environment(self, value: dict[str, str]) -> None:
        (self.state / "environment.json").write_text(json.dumps(value))

    def calls(self, program: str = "az", *words: str) -> list[list[str]]:
        """argv of every call of `program` whose leading words are `words`, oldest first."""
        lines = (self.state / "calls.jsonl").read_text().splitlines()
        calls = [json.loads(line) for line in lines]
        return [call[1:] for call in calls if call[0] == program and call[1:1 + len(words)] == list(words)]

    def hook(self, name: str) -> subprocess.CompletedProcess:
        env = {"PATH": f"{self.bin}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(self.state),
               "FAKE_CLI_STATE": str(self.state), **self.environment}
        # azd runs a hook's file itself (it must be executable), in the project folder.
        done = subprocess.run([str(HOOKS / f"sign-in-{name}.sh")], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        self.outputs += [done.stdout, done.stderr]
        return done

    def provision(self) -> None:
        """The outputs the Bicep gives azd: the app's address, and the client id sign-in got."""
        environment = self.environment
        sign_in = environment.get("SIGN_IN", "entra") == "entra"
        self.environment = {**environment, "APP_URL": APP_URL,
                            "SIGN_IN_CLIENT_ID": environment.get("AUTH_CLIENT_ID", "") if sign_in else ""}

    def up(self) -> None:
        before = self.hook("preprovision")
        assert before.returncode == 0, before.stdout + before.stderr
        self.provision()
        after = self.hook("postprovision")
        assert after.returncode == 0, after.stdout + after.stderr

    def printed(self) -> str:
        return "".join(self.outputs)


def option(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


@pytest.fixture
def deployment(tmp_path) -> Deployment:
    return Deployment(tmp_path)


def test_a_first_azd_up_creates_the_registration_stores_it_and_sets_the_redirect_uri(deployment):
    deployment.up()

    (create,) = deployment.calls("az", "ad", "app", "create")
    assert option(create, "--sign-in-audience") == "AzureADMyOrg"
    assert option(create, "--enable-id-token-issuance") == "true"
    assert option(create, "--display-name") == "Durable Diffusion (dd-test)"
    (app,) = deployment.directory["applications"]
    client_id = app["appId"]
    assert app["identifierUris"] == [f"api://{client_id}"]
    assert app["web"]["redirectUris"] == [CALLBACK]
    # Before the Bicep ran: the client id and the secret, through `azd env set`.
    environment = deployment.environment
    assert environment["AUTH_CLIENT_ID"] == client_id
    assert environment["AUTH_CLIENT_SECRET"] == fake_cli.SECRET
    (store_secret,) = [call for call in deployment.calls("azd", "env", "set") if "AUTH_CLIENT_SECRET" in call]
    assert store_secret == ["env", "set", "AUTH_CLIENT_SECRET", "--", fake_cli.SECRET], "a secret may begin with '-'"
    (reset,) = deployment.calls("az", "ad", "app", "credential", "reset")
    assert "--append" in reset, "a reset without --append deletes the registration's other secrets"
    # The enterprise application admits assigned people only, and the deploying user is one.
    (sp,) = deployment.directory["servicePrincipals"]
    assert sp["appId"] == client_id and sp["appRoleAssignmentRequired"] is True
    assert deployment.directory["assignments"] == [{"principalId": "user-1", "resourceId": sp["id"], "appRoleId": ZERO_ROLE}]


def test_no_secret_is_ever_printed(deployment):
    deployment.up()
    deployment.up()
    assert deployment.environment["AUTH_CLIENT_SECRET"] == fake_cli.SECRET
    assert fake_cli.SECRET not in deployment.printed()


def test_a_second_azd_up_reuses_the_registration_and_mints_no_new_secret(deployment):
    deployment.up()
    first = deployment.environment
    deployment.up()

    assert len(deployment.calls("az", "ad", "app", "create")) == 1
    assert len(deployment.calls("az", "ad", "app", "credential", "reset")) == 1
    assert len(deployment.calls("az", "ad", "sp", "create")) == 1
    assert len([c for c in deployment.calls("az", "rest") if option(c, "--method") == "POST"]) == 1
    assert deployment.environment["AUTH_CLIENT_ID"] == first["AUTH_CLIENT_ID"]
    assert deployment.environment["AUTH_CLIENT_SECRET"] == first["AUTH_CLIENT_SECRET"]
    (app,) = deployment.directory["applications"]
    assert app["web"]["redirectUris"] == [CALLBACK]
    assert len(app["passwordCredentials"]) == 1
    # Nothing left to change, so the second run wrote nothing.
    assert len(deployment.calls("az", "ad", "app", "update")) == 2  # the first run's identifier URI and redirect URI
    assert len(deployment.calls("az", "ad", "sp", "update")) == 1


def test_an_emptied_secret_is_replaced_by_a_new_one_beside_the_old(deployment):
    deployment.up()
    deployment.environment = {**deployment.environment, "AUTH_CLIENT_SECRET": ""}
    deployment.up()
    assert len(deployment.calls("az", "ad", "app", "credential", "reset")) == 2
    (app,) = deployment.directory["applications"]
    assert len(app["passwordCredentials"]) == 2, "the old secret stays until it expires or is deleted"
    assert deployment.environment["AUTH_CLIENT_SECRET"] == fake_cli.SECRET


def test_a_run_that_stopped_half_way_is_finished_by_the_next_without_a_second_registration(deployment):
    deployment.directory = {**deployment.directory, "failures": {"ad app update": 5}}
    failed = deployment.hook("preprovision")
    assert failed.returncode != 0
    assert "AUTH_CLIENT_ID" in deployment.environment, "the client id is kept as soon as the registration exists"

    deployment.up()
    assert len(deployment.calls("az", "ad", "app", "create")) == 1
    (app,) = deployment.directory["applications"]
    assert app["identifierUris"] == [f"api://{app['appId']}"]
    assert deployment.directory["servicePrincipals"][0]["appRoleAssignmentRequired"] is True
    assert deployment.environment["AUTH_CLIENT_SECRET"] == fake_cli.SECRET


def test_sign_in_off_does_nothing(tmp_path):
    deployment = Deployment(tmp_path, SIGN_IN="off")
    deployment.up()
    assert deployment.calls("az") == [] and deployment.calls("azd") == []
    assert "AUTH_CLIENT_ID" not in deployment.environment
    assert deployment.environment["SIGN_IN_CLIENT_ID"] == "", "the Bicep configures no sign-in"


def test_sign_in_off_does_nothing_even_with_a_registration_from_an_earlier_up(deployment):
    deployment.up()
    before = len(deployment.calls("az")), len(deployment.calls("azd"))
    deployment.environment = {**deployment.environment, "SIGN_IN": "off"}
    deployment.up()
    assert (len(deployment.calls("az")), len(deployment.calls("azd"))) == before


def test_a_wrong_sign_in_value_stops_naming_the_variable_the_rule_and_the_value(tmp_path):
    deployment = Deployment(tmp_path, SIGN_IN="Entra ID")
    done = deployment.hook("preprovision")
    assert done.returncode != 0
    assert "SIGN_IN must be entra or off, got 'Entra ID'" in done.stderr
    assert deployment.calls("az") == []


def test_a_registration_of_your_own_only_gets_the_redirect_uri(tmp_path):
    directory = fake_cli.new_directory()
    directory["applications"].append({"appId": "own-app", "id": "own-object", "identifierUris": [],
                                      "web": {"redirectUris": ["https://elsewhere.example/callback"]},
                                      "passwordCredentials": []})
    deployment = Deployment(tmp_path, directory, AUTH_CLIENT_ID="own-app")
    deployment.up()

    assert deployment.calls("az", "ad", "app", "create") == []
    assert deployment.calls("az", "ad", "app", "credential", "reset") == []
    assert deployment.calls("az", "ad", "sp") == [] and deployment.calls("az", "rest") == []
    assert deployment.calls("azd") == []
    (app,) = deployment.directory["applications"]
    assert app["web"]["redirectUris"] == ["https://elsewhere.example/callback", CALLBACK], "the other redirect URIs stay"
    assert app["identifierUris"] == []


def test_a_registration_of_your_own_that_az_may_not_read_warns_and_does_not_stop_the_deployment(tmp_path):
    # As in CI, where azd runs as a service principal without directory rights.
    deployment = Deployment(tmp_path, fake_cli.new_directory(user_type="servicePrincipal"), AUTH_CLIENT_ID="not-readable")
    deployment.up()
    assert CALLBACK in deployment.printed() and "WARNING" in deployment.printed()


def test_a_service_principal_running_azd_is_not_assigned(tmp_path):
    deployment = Deployment(tmp_path, fake_cli.new_directory(user_type="servicePrincipal"))
    deployment.up()
    assert deployment.directory["assignments"] == []
    assert deployment.calls("az", "ad", "signed-in-user") == []
    assert "assign people or a group" in deployment.printed()


def test_azure_principal_id_names_the_person_to_assign_when_azd_has_it(tmp_path):
    deployment = Deployment(tmp_path, AZURE_PRINCIPAL_ID="user-from-azd", AZURE_PRINCIPAL_TYPE="User")
    deployment.up()
    assert [a["principalId"] for a in deployment.directory["assignments"]] == ["user-from-azd"]


def test_az_signed_in_to_another_tenant_stops_before_creating_anything(tmp_path):
    directory = fake_cli.new_directory()
    directory["subscriptions"]["sub-1"] = "tenant-2"
    deployment = Deployment(tmp_path, directory)
    done = deployment.hook("preprovision")
    assert done.returncode != 0
    assert "tenant-1" in done.stderr and "tenant-2" in done.stderr and "az account set --subscription sub-1" in done.stderr
    assert deployment.calls("az", "ad") == []


def test_a_provision_that_did_not_read_the_client_id_is_pointed_out(deployment):
    # An azd that filled in the parameters before the preprovision hook set AUTH_CLIENT_ID.
    assert deployment.hook("preprovision").returncode == 0
    deployment.provision()
    deployment.environment = {**deployment.environment, "SIGN_IN_CLIENT_ID": ""}
    done = deployment.hook("postprovision")
    assert done.returncode == 0
    assert "run azd provision once more" in done.stderr


# --- how azd and the Bicep are wired to the hooks -------------------------------------


def test_azure_yaml_runs_the_hooks_around_provisioning_and_they_are_executable(azure_yaml):
    for event, script in (("preprovision", "sign-in-preprovision.sh"), ("postprovision", "sign-in-postprovision.sh")):
        hook = azure_yaml["hooks"][event]
        assert hook["shell"] == "sh" and hook["run"] == f"./infra/hooks/{script}"
        assert os.access(HOOKS / script, os.X_OK), f"azd runs {script} itself: it must be executable"
        assert (HOOKS / script).read_text().startswith("#!/bin/sh\n")


def test_sign_in_is_a_pipeline_variable_and_a_parameter_that_gates_the_registration(azure_yaml, parameters_json, bicep):
    assert "SIGN_IN" in azure_yaml["pipeline"]["variables"]
    assert parameters_json["parameters"]["signIn"]["value"] == "${SIGN_IN=entra}"
    main = bicep["main.bicep"]
    decorators = {d["type"]: d.get("argument") for d in main["parameters"]["signIn"]["decorators"]}
    assert decorators["allowed"] == ["entra", "off"]
    params = main["modules"]["app"]["config"]["params"]
    for name in ("authClientId", "authClientSecret"):
        assert "signIn" in str(params[name]) and "entra" in str(params[name]), f"SIGN_IN=off must keep {name} from the app"
    assert "signIn" in str(main["outputs"]["SIGN_IN_CLIENT_ID"]["value"])

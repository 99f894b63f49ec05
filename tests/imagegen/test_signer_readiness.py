"""A signer that cannot sign shows: one log line at start, and `GET /api/health` answers 503
with the problem in words safe to show anyone. The Key Vault signer runs against the local
Key Vault (key_vault_server.py), with the real SDK clients."""

from __future__ import annotations

import json
import logging
import threading

import azure.functions as func
import pytest

from imagegen.checks import keyvault_signer
from imagegen.core.settings import Settings
from imagegen.service import signer_readiness
from imagegen.service.operations import health
from imagegen.service.services import Services
from tests.imagegen.key_vault_server import KeyVaultServer
from tests.waiting import wait_until

NAME = "c2pa-signer"
LOGGER = "imagegen.service.signer_readiness"


class ServicesWith(Services):
    """Services whose signer is the one given (a Key Vault signer on the local vault)."""

    def __init__(self, settings: Settings, signer: object) -> None:
        super().__init__(settings)
        self._given_signer = signer

    @property
    def signer(self):  # type: ignore[override]
        return self._given_signer


def keyvault_services(vault: KeyVaultServer, *, create: bool = True) -> ServicesWith:
    settings = Settings(c2pa_signer="keyvault", c2pa_keyvault_url=vault.url, c2pa_cert_name=NAME,
                        c2pa_create_certificate="self-signed" if create else "off")
    signer = keyvault_signer.KeyVaultSigner(vault.url, NAME, vault.credential(), create_self_signed=create,
                                            **vault.client_options())
    return ServicesWith(settings, signer)


def records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


def test_a_first_start_creates_the_certificate_signs_a_probe_and_says_so_once(caplog):
    caplog.set_level(logging.INFO, LOGGER)
    with KeyVaultServer() as vault:
        services = keyvault_services(vault)
        services.signer_readiness.start()

        state = services.signer_readiness.state()
        again = services.signer_readiness.state()

        signs = vault.operations("sign")
    assert state == again and state.ready and state.certificate == "self-signed" and state.problem is None
    assert len(signs) == 1, "the probe is one Key Vault signature, made once"
    (line,) = records(caplog)
    assert line.levelno == logging.WARNING
    assert "self-signed certificate it had Key Vault create" in line.getMessage()
    assert "untrusted chain" in line.getMessage()


def test_a_signer_the_vault_refuses_is_unhealthy_with_a_public_problem_and_one_log_line(caplog):
    with KeyVaultServer() as vault:
        vault.fail(403, operation="certificates")
        services = keyvault_services(vault)
        services.signer_readiness.start()

        state = services.signer_readiness.state()
        url = vault.url

    assert not state.ready and state.certificate is None
    assert state.problem == ("Key Vault refused the app's identity (HTTP 403) when it tried to read the signing "
                             "certificate; the identity needs the C2PA signer role on the vault")
    assert url not in state.problem and "scripted" not in state.problem  # nothing internal
    (line,) = records(caplog)
    assert line.levelno == logging.ERROR
    message = line.getMessage()
    assert message.startswith("C2PA signer `keyvault` cannot sign: Key Vault certificate 'c2pa-signer' in https://")
    assert "HTTP 403" in message and "scripted 403" in message and "GET /api/health answers 503" in message
    assert "\n" not in message


def test_a_failed_check_is_made_again_at_most_once_a_minute_and_heals(caplog, monkeypatch):
    now = [1000.0]
    with KeyVaultServer() as vault:
        vault.fail(403, times=1, operation="certificates")  # a role that has not reached the vault yet
        services = keyvault_services(vault)
        readiness = signer_readiness.SignerReadiness(services, clock=lambda: now[0])
        assert not readiness.state().ready

        now[0] += signer_readiness.RECHECK_SECONDS - 1
        assert not readiness.state().ready  # too soon: not asked again
        assert len(vault.operations("certificates")) == 1
        now[0] += 1
        # The first answer after that starts the new check (and may still be the old state).
        healed = wait_until(readiness.state, lambda state: state.ready, timeout=30, what="the signer to heal")

    assert healed.ready and healed.certificate == "self-signed"
    assert [r.levelno for r in records(caplog)] == [logging.ERROR, logging.WARNING]


def test_missing_certificate_with_creation_off_is_unhealthy_and_says_why():
    with KeyVaultServer() as vault:
        state = keyvault_services(vault, create=False).signer_readiness.state()

    assert not state.ready and "C2PA_CREATE_CERTIFICATE" in state.problem


def test_health_waits_for_a_check_in_progress_only_so_long(monkeypatch):
    release = threading.Event()
    services = Services(Settings(c2pa_signer="off"))
    readiness = signer_readiness.SignerReadiness(services)
    monkeypatch.setattr(readiness, "_check", lambda: (release.wait(5), signer_readiness.SignerState("off", True))[1])
    readiness.start()

    assert readiness.state(wait=0.05).problem == signer_readiness.STILL_CHECKING
    release.set()
    assert readiness.state().ready


@pytest.mark.parametrize("signer, certificate", [("off", None), ("local", "development")])
def test_the_other_signers_are_ready(signer, certificate, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the development CA is made under .devhost/ here
    state = Services(Settings(c2pa_signer=signer)).signer_readiness.state()
    assert state.ready and state.certificate == certificate


def test_health_says_unhealthy_with_the_problem_and_the_route_answers_503(monkeypatch):
    with KeyVaultServer() as vault:
        vault.fail(403, operation="certificates")
        services = keyvault_services(vault)

        shown = health(services)

        import triggers.health as route

        monkeypatch.setattr(route, "current", lambda: services)
        answer = route.get_health(func.HttpRequest("GET", "/api/health", body=b""))

    assert shown["status"] == "unhealthy" and shown["c2pa_certificate"] is None
    assert shown["problems"] == [services.signer_readiness.state().problem]
    assert answer.status_code == 503
    body = json.loads(answer.get_body())
    assert body["status"] == "unhealthy" and body["problems"] == shown["problems"] and body["model"] == "tiny"


def test_health_is_ok_with_a_working_signer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shown = health(Services(Settings(c2pa_signer="local")))
    assert shown["status"] == "ok" and shown["problems"] == [] and shown["c2pa_certificate"] == "development"


def test_a_key_the_identity_may_not_sign_with_is_a_public_problem_too(caplog):
    with KeyVaultServer() as vault:
        vault.fail(403, operation="sign")
        state = keyvault_services(vault).signer_readiness.state()

    assert not state.ready and "Key Vault sign failed: HTTP 403" in state.reason
    assert state.problem == ("Key Vault refused the app's identity (HTTP 403) when it tried to sign with the "
                             "signing key; the identity needs the C2PA signer role on the vault")

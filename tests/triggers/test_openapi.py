"""Who may call what, as `GET /api/openapi.json` says it, follows the app's settings."""

from __future__ import annotations

from imagegen.core.settings import Settings
from triggers.openapi import openapi_document

KEY = "a-deployment-key-of-32-characters"


def test_with_function_keys_every_keyed_route_asks_for_one():
    document = openapi_document(Settings(sign_in="off"))
    assert document["security"] == [{"functionKey": []}, {"functionKeyQuery": []}]
    assert "entraSignIn" not in document["components"]["securitySchemes"]
    assert document["paths"]["/api/jobs"]["post"]["responses"]["401"]["content"]
    assert document["paths"]["/api/health"]["get"]["security"] == []
    assert document["paths"]["/api/health/live"]["get"]["security"] == []
    # Health answers 503 with the same body while the worker cannot do its work.
    assert set(document["paths"]["/api/health"]["get"]["responses"]) >= {"200", "503"}


def test_with_entra_sign_in_the_routes_behind_it_take_a_token_and_the_foundry_route_keeps_its_key():
    document = openapi_document(Settings(sign_in="entra", api_key=KEY))
    assert document["security"] == [{"entraSignIn": []}]
    assert document["components"]["securitySchemes"]["entraSignIn"]["scheme"] == "bearer"
    # The platform answers a caller who is not signed in, not the app: no problem body.
    assert "content" not in document["paths"]["/api/jobs/{id}"]["get"]["responses"]["401"]
    foundry = document["paths"]["/api/images/generations"]["post"]
    assert foundry["security"] == [{"deploymentKey": []}, {"deploymentApiKey": []}]
    edits = document["paths"]["/api/images/edits"]["post"]
    assert edits["security"] == foundry["security"]
    form = edits["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = document["components"]["schemas"][form]["properties"]
    assert fields["image"]["format"] == "binary" and {"mask", "prompt", "n", "size"} <= set(fields)


def test_without_a_deployment_key_the_foundry_route_takes_function_keys_even_with_sign_in():
    document = openapi_document(Settings(sign_in="entra"))
    assert document["paths"]["/api/images/generations"]["post"]["security"] == [
        {"functionKey": []}, {"functionKeyQuery": []}]
    assert "deploymentKey" not in document["components"]["securitySchemes"]

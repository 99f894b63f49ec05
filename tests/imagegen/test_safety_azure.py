"""The `azure` provider through the real azure-ai-contentsafety SDK, against a local server
that speaks the Content Safety REST contract (content_safety_server.py)."""

from __future__ import annotations

import base64
import io
import logging

import numpy as np
import pytest
from azure.ai.contentsafety import ContentSafetyClient
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.policies import RetryPolicy
from PIL import Image

from imagegen.checks.safety import build_provider, resolve_thresholds
from imagegen.checks.safety.azure_provider import AzureProvider, Retry, retry_after_seconds, split_text
from imagegen.core.settings import Settings
from tests.imagegen.content_safety_server import ContentSafetyServer

FAST_RETRY = Retry(attempts=3, backoff_seconds=0.01, max_wait_seconds=0.05, total_seconds=5, request_timeout_seconds=5)


@pytest.fixture
def server():
    with ContentSafetyServer() as running:
        yield running


@pytest.fixture
def waits() -> list[float]:
    return []


def make_provider(server, waits=None, **options) -> AzureProvider:
    sleep = (lambda seconds: waits.append(seconds)) if waits is not None else (lambda seconds: None)
    return AzureProvider.connect(server.endpoint, server.key, retry=FAST_RETRY, sleep=sleep, **options)


def png(width: int, height: int, noise: bool = False) -> bytes:
    if noise:
        pixels = np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
    else:
        image = Image.new("RGB", (width, height), (90, 140, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_text_severities_become_verdicts_and_requests_follow_the_contract(server):
    server.text_severity("sword", "Violence", 4)
    server.text_severity("lonely", "SelfHarm", 2)

    verdicts = make_provider(server).check_texts(["A knight with a SWORD", "a lonely clown", "a fox in snow"])

    assert [v.status for v in verdicts] == ["blocked", "safe", "safe"]
    assert verdicts[0].provider == "azure"
    assert verdicts[0].severities == {"Hate": 0, "SelfHarm": 0, "Sexual": 0, "Violence": 4}
    assert verdicts[0].reasons == ["Violence severity 4 ≥ threshold 4"]
    assert verdicts[1].severities["SelfHarm"] == 2 and verdicts[1].reasons == []
    bodies = server.bodies("text")
    assert sorted(body["text"] for body in bodies) == ["A knight with a SWORD", "a fox in snow", "a lonely clown"]
    for body in bodies:
        assert body["categories"] == ["Hate", "SelfHarm", "Sexual", "Violence"]
        assert body["outputType"] == "FourSeverityLevels"
        assert "blocklistNames" not in body
    assert all(r.query == "api-version=2023-10-01" for r in server.requests)
    assert all(r.headers["Ocp-Apim-Subscription-Key"] == server.key for r in server.requests)


def test_custom_thresholds_block_lower_severities(server):
    server.text_severity("lonely", "SelfHarm", 2)
    provider = make_provider(server, thresholds=resolve_thresholds({"selfharm": 2, "Violence": 6}))

    (verdict,) = provider.check_texts(["a lonely clown"])

    assert verdict.status == "blocked"
    assert verdict.reasons == ["SelfHarm severity 2 ≥ threshold 2"]


def test_blocklist_hits_block_and_are_named(server):
    server.blocklist_item("brand-names", "acme")
    provider = make_provider(server, blocklists=["brand-names"])

    blocked, clean = provider.check_texts(["an ACME rocket", "a plain rocket"])

    assert blocked.status == "blocked"
    assert blocked.blocklist_hits == ["brand-names:acme"]
    assert blocked.reasons == ["blocklist 'brand-names' matched 'acme'"]
    assert clean.status == "safe"
    for body in server.bodies("text"):
        assert body["blocklistNames"] == ["brand-names"] and body["haltOnBlocklistHit"] is True


def test_repeated_texts_are_sent_once_and_answered_in_order(server):
    server.text_severity("sword", "Violence", 6)

    verdicts = make_provider(server).check_texts(["a sword", "a fox", "a sword", "a fox", "a sword"])

    assert [v.status for v in verdicts] == ["blocked", "safe", "blocked", "safe", "blocked"]
    assert len(server.bodies("text")) == 2


def test_text_over_10000_characters_is_split_and_the_verdict_combines_the_parts(server):
    server.text_severity("sword", "Violence", 4)
    server.text_severity("gloomy", "SelfHarm", 2)
    text = "gloomy " + "calm " * 2100 + "sword"  # 10,512 characters

    (verdict,) = make_provider(server).check_texts([text])

    parts = [body["text"] for body in server.bodies("text")]
    assert len(parts) == 2 and all(len(part) <= 10_000 for part in parts)
    assert "".join(parts) == text
    assert parts[0].endswith(" ")  # cut at whitespace, not inside a word
    assert verdict.status == "blocked"
    assert verdict.severities["Violence"] == 4 and verdict.severities["SelfHarm"] == 2


def test_image_is_sent_as_base64_and_its_severities_judged(server):
    server.image_severity("Sexual", 4)
    data = png(64, 64)

    verdict = make_provider(server).check_image(data)

    assert verdict.status == "blocked"
    assert verdict.reasons == ["Sexual severity 4 ≥ threshold 4"]
    (body,) = server.bodies("image")
    assert base64.b64decode(body["image"]["content"]) == data  # small enough: sent unchanged
    assert body["categories"] == ["Hate", "SelfHarm", "Sexual", "Violence"]


def test_a_batch_of_images_is_one_request_each_and_answered_in_order(server):
    server.image_severity("Sexual", 4)
    images = [png(64, 64), b"GIF89a but not really", png(80, 64)]

    verdicts = make_provider(server).check_images(images)

    assert [v.status for v in verdicts] == ["blocked", "unchecked", "blocked"]
    sent = sorted(base64.b64decode(body["image"]["content"]) for body in server.bodies("image"))
    assert sent == sorted([images[0], images[2]])  # the undecodable one never leaves


def test_image_over_4_mb_is_reencoded_to_pass_the_service(server):
    data = png(1400, 1400, noise=True)
    assert len(data) > 4 * 1024 * 1024

    verdict = make_provider(server).check_image(data)

    assert verdict.status == "safe", verdict.reasons  # the server refuses > 4 MiB or undecodable
    sent = base64.b64decode(server.bodies("image")[0]["image"]["content"])
    assert len(sent) <= 4_000_000
    assert Image.open(io.BytesIO(sent)).size == (1400, 1400)


@pytest.mark.parametrize(("size", "sent_size"), [((3000, 1000), (2048, 683)), ((30, 40), (50, 67))])
def test_image_outside_the_service_sizes_is_scaled_into_them(server, size, sent_size):
    verdict = make_provider(server).check_image(png(*size))

    assert verdict.status == "safe", verdict.reasons
    sent = base64.b64decode(server.bodies("image")[0]["image"]["content"])
    assert Image.open(io.BytesIO(sent)).size == sent_size


def test_undecodable_image_is_unchecked_without_calling_the_service(server):
    verdict = make_provider(server).check_image(b"GIF89a but not really")

    assert verdict.status == "unchecked"
    assert "could not be decoded" in verdict.reasons[0]
    assert server.requests == []


def test_rejected_key_is_unchecked_with_a_reason_naming_the_credential(server, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "wrong-key-0123456789"
    provider = AzureProvider.connect(server.endpoint, secret, retry=FAST_RETRY)

    (verdict,) = provider.check_texts(["a fox"])
    image_verdict = provider.check_image(png(64, 64))

    assert verdict.status == image_verdict.status == "unchecked"
    assert verdict.reasons == [
        "Content Safety rejected our credentials (401): check CONTENT_SAFETY_KEY or the "
        "managed identity's role (Cognitive Services User)"
    ]
    assert len(server.requests) == 2  # a credential error is not retried
    assert secret not in caplog.text and secret not in str(verdict) + str(image_verdict)


class NoManagedIdentity:
    """A token credential as DefaultAzureCredential fails off Azure (Entra ID cannot run here)."""

    def get_token(self, *scopes, **kwargs):
        raise ClientAuthenticationError("ManagedIdentityCredential: no managed identity endpoint found")


def test_missing_managed_identity_is_unchecked_with_what_to_set():
    # https, so the SDK asks the credential for a token before it would connect anywhere.
    client = ContentSafetyClient("https://127.0.0.1:9", NoManagedIdentity(), retry_policy=RetryPolicy.no_retries())
    provider = AzureProvider(client=client, thresholds=resolve_thresholds(), retry=FAST_RETRY)

    (verdict,) = provider.check_texts(["a fox"])

    assert verdict.status == "unchecked"
    assert verdict.reasons[0].startswith("could not get an Entra ID token for Content Safety")
    assert "CONTENT_SAFETY_KEY" in verdict.reasons[0] and "AZURE_CLIENT_ID" in verdict.reasons[0]


def test_429_is_retried_after_the_wait_the_service_asks_for(server, waits):
    server.fail(429, times=1, retry_after_ms=20)

    (verdict,) = make_provider(server, waits).check_texts(["a fox"])

    assert verdict.status == "safe"
    assert len(server.requests) == 2
    assert waits == [0.02]


def test_retry_after_longer_than_the_budget_gives_up_at_once(server, waits):
    server.fail(429, retry_after_ms=60_000)

    verdict = make_provider(server, waits).check_image(png(64, 64))

    assert verdict.status == "unchecked"
    assert "past the 5 s allowed" in verdict.reasons[0]
    assert len(server.requests) == 1 and waits == []


def test_500_until_retries_run_out_is_unchecked_never_safe(server, waits):
    server.fail(500)

    verdicts = make_provider(server, waits).check_texts(["a fox", "a hen"])

    assert [v.status for v in verdicts] == ["unchecked", "unchecked"]
    assert "kept failing after 3 tries" in verdicts[0].reasons[0]
    assert "500 InternalError" in verdicts[0].reasons[0]
    assert len(server.requests) == 6  # 3 tries for each text
    assert sorted(waits) == [0.01, 0.01, 0.02, 0.02]  # exponential backoff


def test_bad_request_is_not_retried(server):
    server.fail(400, times=1)

    (verdict,) = make_provider(server).check_texts(["a fox"])

    assert verdict.status == "unchecked"
    assert verdict.reasons == ["Content Safety refused the request (400 InvalidRequestBody: scripted 400)"]
    assert len(server.requests) == 1


def test_unreachable_service_is_unchecked():
    with ContentSafetyServer() as stopped:
        endpoint = stopped.endpoint  # a port that nothing listens on once stopped
    provider = AzureProvider.connect(endpoint, "key", retry=FAST_RETRY, sleep=lambda seconds: None)

    (verdict,) = provider.check_texts(["a fox"])

    assert verdict.status == "unchecked"
    assert "could not reach the service" in verdict.reasons[0]


def test_build_provider_builds_the_azure_provider_from_settings(server):
    server.blocklist_item("brand-names", "acme")
    settings = Settings(
        safety_provider="azure",
        content_safety_endpoint=server.endpoint,
        content_safety_key=server.key,
        content_safety_blocklists=["brand-names"],
        safety_thresholds={"Violence": 2},
    )

    provider = build_provider(settings)

    assert provider.name == "azure"
    server.text_severity("sword", "Violence", 2)
    sword, brand = provider.check_texts(["a sword", "acme"])
    assert sword.reasons == ["Violence severity 2 ≥ threshold 2"]
    assert brand.blocklist_hits == ["brand-names:acme"]


def test_programming_errors_raise():
    provider = AzureProvider.connect("http://127.0.0.1:9", "key", retry=FAST_RETRY)
    with pytest.raises(ValueError, match="`texts` must be a list of strings, got str"):
        provider.check_texts("a fox")
    with pytest.raises(ValueError, match=r"`texts\[1\]` must be a string, got int"):
        provider.check_texts(["a fox", 3])
    with pytest.raises(ValueError, match="`data` must be the image's encoded bytes, got str"):
        provider.check_image("fox.png")
    with pytest.raises(ValueError, match="`CONTENT_SAFETY_ENDPOINT` is required"):
        build_provider(Settings(safety_provider="azure"))


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after-ms": "250", "Retry-After": "1"}, 0.25),  # the finer header wins
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}, 0.0),  # a date in the past: now
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_headers_are_read(headers, seconds):
    assert retry_after_seconds(headers) == seconds


def test_text_without_whitespace_is_cut_at_the_limit():
    text = "x" * 25_000

    pieces = split_text(text)

    assert [len(piece) for piece in pieces] == [10_000, 10_000, 5_000]
    assert split_text("") == [""]

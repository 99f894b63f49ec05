"""The `local` provider on real texts and images: the shipped blocklist, a user's file,
the alt-profanity-check model and the Open-NSFW ONNX classifier, all run for real."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imagegen.checks.safety import build_provider, resolve_thresholds
from imagegen.checks.safety.blocklist import default_blocklist
from imagegen.checks.safety.local_provider import LocalProvider
from imagegen.core.settings import Settings
from imagegen.service.services import Services


@pytest.fixture(scope="module")
def provider() -> LocalProvider:
    return LocalProvider.from_settings(Settings())


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def gradient(size: int = 256) -> Image.Image:
    ramp = np.linspace(0, 255, size).astype(np.uint8)
    return Image.fromarray(np.stack([np.tile(ramp, (size, 1))] * 3, axis=-1))


def test_clean_text_is_safe(provider):
    (verdict,) = provider.check_texts(["a watercolor fox in the snow, soft light"])

    assert verdict.status == "safe"
    assert verdict.provider == "local"
    assert verdict.severities == {"Hate": 0}
    assert verdict.blocklist_hits == [] and verdict.reasons == []


def test_default_blocklist_term_blocks_with_the_hit_named(provider):
    clean, blocked = provider.check_texts(["a poster about online safety", "a poster, CSAM, vintage"])

    assert clean.status == "safe"
    assert blocked.status == "blocked"
    assert blocked.blocklist_hits == ["default:csam"]
    assert blocked.reasons == ["blocklist 'default' matched 'csam'"]


def test_default_blocklist_is_shipped_short_and_whole_word():
    blocklist = default_blocklist()

    assert 0 < len(blocklist.terms) <= 20
    assert blocklist.matches("Child   PORNOGRAPHY") == ["child pornography"]
    assert blocklist.matches("csams and snuff films") == []  # whole words only


def test_user_blocklist_file_adds_terms(tmp_path):
    path = tmp_path / "brand_terms.txt"
    path.write_text("# our competitors\nacme rocket\n\nglobex\n", encoding="utf-8")
    provider = build_provider(Settings(safety_blocklist_file=str(path)))

    phrase, word, partial, default = provider.check_texts(
        ["An  ACME Rocket at dawn", "globex tower", "acme rockets", "csam"]
    )

    assert phrase.blocklist_hits == ["brand_terms:acme rocket"]
    assert phrase.reasons == ["blocklist 'brand_terms' matched 'acme rocket'"]
    assert word.status == "blocked" and word.blocklist_hits == ["brand_terms:globex"]
    assert partial.status == "safe"  # "rockets" is another word
    assert default.blocklist_hits == ["default:csam"]  # the shipped list still applies


def test_unreadable_blocklist_file_is_a_configuration_error(tmp_path):
    missing = tmp_path / "nope.txt"

    with pytest.raises(ValueError, match="setting `SAFETY_BLOCKLIST_FILE` must name a readable UTF-8 text file"):
        build_provider(Settings(safety_blocklist_file=str(missing)))


def test_profanity_scores_as_hate_and_respects_thresholds(provider):
    rude, mild = provider.check_texts(["you stupid fucking idiot", "a knight slaying a dragon"])

    assert rude.status == "blocked"
    assert rude.severities["Hate"] == 6
    assert rude.reasons == ["Hate severity 6 ≥ threshold 4"]
    assert mild.severities["Hate"] == 0

    lenient = LocalProvider(blocklists=[default_blocklist()], thresholds=resolve_thresholds({"Hate": 7}))
    (verdict,) = lenient.check_texts(["you stupid fucking idiot"])
    assert verdict.status == "safe" and verdict.severities["Hate"] == 6  # still recorded


def test_plain_image_is_safe(provider):
    verdict = provider.check_image(encoded(gradient()))

    assert verdict.status == "safe"
    assert verdict.severities == {"Sexual": 0}


def test_image_thresholds_are_respected(provider):
    # A flat skin tone lands in Open-NSFW's unsure band (score about 0.29): severity 2.
    data = encoded(Image.new("RGB", (256, 256), (200, 140, 110)), "JPEG")

    default = provider.check_image(data)
    strict = LocalProvider(blocklists=[], thresholds=resolve_thresholds({"Sexual": 2})).check_image(data)

    assert default.status == "safe" and default.severities == {"Sexual": 2}
    assert strict.status == "blocked"
    assert strict.reasons == ["Sexual severity 2 ≥ threshold 2"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not an image at all", "image could not be decoded: 19 bytes in no format Pillow reads"),
        (encoded(Image.new("RGB", (64, 64)))[:60], "image could not be decoded (OSError"),
    ],
    ids=["not-an-image", "truncated-png"],
)
def test_undecodable_image_is_unchecked(provider, data, reason):
    verdict = provider.check_image(data)

    assert verdict.status == "unchecked"
    assert verdict.reasons[0].startswith(reason)


def test_the_provider_defaults_to_local_and_a_process_keeps_one():
    services = Services(Settings())

    assert services.safety.name == "local"
    assert services.safety is services.safety


def test_bad_thresholds_are_configuration_errors():
    with pytest.raises(ValueError, match="unknown category 'Gore'; use one of Hate, SelfHarm, Sexual, Violence"):
        build_provider(Settings(safety_thresholds={"Gore": 2}))
    with pytest.raises(ValueError, match="must give Sexual a severity between 0 and 7, got 9"):
        resolve_thresholds({"sexual": 9})


def test_programming_errors_raise(provider):
    with pytest.raises(ValueError, match="`texts` must be a list of strings, got tuple"):
        provider.check_texts(("a fox",))
    with pytest.raises(ValueError, match="`data` must be the image's encoded bytes, got NoneType"):
        provider.check_image(None)
    assert provider.check_texts([]) == []


def test_a_batch_of_images_gets_the_verdicts_each_would_get_alone(provider):
    skin = encoded(Image.new("RGB", (256, 256), (200, 140, 110)), "JPEG")
    images = [encoded(gradient()), b"not an image at all", skin]

    verdicts = provider.check_images(images)

    assert [v.status for v in verdicts] == ["safe", "unchecked", "safe"]
    assert verdicts[1].reasons[0].startswith("image could not be decoded")
    assert [v.severities for v in verdicts] == [provider.check_image(data).severities for data in images]
    strict = LocalProvider(blocklists=[], thresholds=resolve_thresholds({"Sexual": 2}))
    assert [v.status for v in strict.check_images(images)] == ["safe", "unchecked", "blocked"]
    assert provider.check_images([]) == []


def test_a_batch_whose_model_call_fails_is_unchecked_not_passed(provider, monkeypatch):
    def broken(images):
        raise RuntimeError("onnx session lost")

    monkeypatch.setattr(provider, "nsfw_scores", broken)
    verdicts = provider.check_images([encoded(gradient()), b"junk"])
    assert [v.status for v in verdicts] == ["unchecked", "unchecked"]
    assert verdicts[0].reasons == ["local NSFW check failed (RuntimeError: onnx session lost)"]
    assert verdicts[1].reasons[0].startswith("image could not be decoded")

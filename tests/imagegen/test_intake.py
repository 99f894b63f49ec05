"""Turning files and bodies into checked jobs, before anything runs."""

from __future__ import annotations

import base64
import io
from datetime import datetime

import pytest
from PIL import Image

from imagegen.core.settings import Settings
from imagegen.core.types import JobValidationError
from imagegen.jobs import intake
from imagegen.records import messages
from imagegen.storage import source_images


def png(size=(80, 80)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_txt_file_is_one_prompt_per_line_with_the_deployment_defaults():
    settings = Settings(default_size="128x64", default_steps=3)
    job = intake.read_job_file(b"# comment\n\na castle\n  a moat  \n", "My Castles.txt", settings=settings)
    assert job.name == "my-castles"
    assert [p.text for p in job.prompts] == ["a castle", "a moat"]
    assert job.variants.sizes == ["128x64"] and job.variants.steps == 3


def test_an_empty_txt_file_and_an_unknown_file_type_are_rejected_with_the_file_named():
    with pytest.raises(JobValidationError, match="no prompts"):
        intake.read_job_file(b"# only a comment\n", "empty.txt")
    with pytest.raises(JobValidationError, match="`notes.docx` is not a job file"):
        intake.read_job_file(b"x", "notes.docx")


def test_inline_images_are_stored_under_inputs_and_bare_names_resolved(store):
    data = png()
    body = ('{"name": "inline", "prompts": [{"text": "a", "image": "data:image/png;base64,'
            + base64.b64encode(data).decode() + '", "strength": 0.5}]}').encode()
    job = source_images.read_job_body(body, "job.json", store)
    ref = job.prompts[0].image
    assert ref.startswith("inputs/") and store.get(ref) == data
    assert source_images.attach_images(job, store).prompts[0].image == ref  # full names stay as they are

    store.put("prompts/beside.png", data)
    dropped = intake.read_job_file(b"name: d\nprompts: [{text: a, image: beside.png, strength: 0.5}]\n", "d.yaml")
    assert source_images.attach_images(dropped, store, default_container="prompts").prompts[0].image == "prompts/beside.png"


def test_an_inline_mask_is_stored_like_its_image_and_a_mask_that_is_not_an_image_is_refused(store):
    def url(data: bytes) -> str:
        return "data:image/png;base64," + base64.b64encode(data).decode()

    mask = png((40, 40))
    body = ('{"name": "masked", "prompts": [{"text": "a", "image": "' + url(png()) + '", "mask": "'
            + url(mask) + '"}]}').encode()
    job = source_images.read_job_body(body, "job.json", store)
    assert job.prompts[0].mask.startswith("inputs/") and store.get(job.prompts[0].mask) == mask
    assert source_images.attach_images(job, store).prompts[0].mask == job.prompts[0].mask

    bad = ('{"name": "m", "prompts": [{"text": "a", "image": "' + url(png()) + '", "mask": "data:image/png;base64,'
           + base64.b64encode(b"not a png at all").decode() + '"}]}').encode()
    with pytest.raises(JobValidationError) as raised:
        source_images.read_job_body(bad, "job.json", store)
    assert [(e.path, e.rule) for e in raised.value.errors] == [("prompts[0].mask", "not_an_image")]

    store.put("inputs/notes.png", b"plain text")
    named = intake.read_job_file(b"name: n\nprompts: [{text: a, image: notes.png, mask: gone.png}]\n", "n.yaml")
    with pytest.raises(JobValidationError) as raised:
        source_images.attach_images(named, store)
    assert {(e.path, e.rule) for e in raised.value.errors} == {("prompts[0].image", "not_an_image"),
                                                                ("prompts[0].mask", "exists")}


def test_source_images_are_checked_and_never_taken_from_quarantine(store):
    store.put("quarantine/held/v000.png", png())
    store.put("inputs/huge.png", png((4100, 64)))
    job = intake.read_job_file(
        b"name: q\nprompts:\n - {text: a, image: quarantine/held/v000.png, strength: 0.5}\n"
        b" - {text: b, image: missing.png, strength: 0.5}\n - {text: c, image: huge.png, strength: 0.5}\n", "q.yaml")
    with pytest.raises(JobValidationError) as raised:
        source_images.attach_images(job, store)
    errors = {error.path: error for error in raised.value.errors}
    assert errors["prompts[0].image"].rule == "source_container"
    assert errors["prompts[1].image"].rule == "exists" and "inputs/missing.png" in errors["prompts[1].image"].message
    assert "4096" in errors["prompts[2].image"].message


def test_ids_are_stable_for_the_same_file_and_slot_and_new_for_a_changed_one():
    assert intake.drop_job_id("a/Spring Jobs.yaml", b"1") == intake.drop_job_id("a/Spring Jobs.yaml", b"1")
    assert intake.drop_job_id("a/Spring Jobs.yaml", b"1") != intake.drop_job_id("a/Spring Jobs.yaml", b"2")
    assert intake.drop_job_id("a/Spring Jobs.yaml", b"1").startswith("drop-spring-jobs-")
    slot = datetime(2026, 3, 1, 9, 0, 0)
    assert intake.schedule_job_id("Weekly Banners", slot) == "schedule-weekly-banners-20260301T090000Z"
    assert intake.new_job_id("Spring!") != intake.new_job_id("Spring!")


def test_lone_surrogates_are_refused_everywhere_and_pairs_joined():
    from imagegen.core.types import JobValidationError
    from imagegen.jobs.foundry_body import job_from_foundry
    from imagegen.jobs.spec import parse_job

    # YAML spells an emoji as a UTF-16 pair of escapes: one character, accepted.
    job = parse_job('name: pair\nprompts: [{text: "a cat \\ud83d\\ude00"}]\n', filename="j.yaml")
    assert job.prompts[0].text == "a cat \U0001F600"
    cases = [
        (lambda: parse_job({"name": "x", "prompts": [{"text": "ok", "negative": "\udc00"}]}), "prompts[0].negative"),
        (lambda: parse_job({"name": "x", "\ud800": 1}), "'\\ud800'"),
        (lambda: job_from_foundry({"prompt": "a \ud83d cat"}), "prompt"),
    ]
    for call, path in cases:
        with pytest.raises(JobValidationError) as raised:
            call()
        assert [(e.path, e.rule) for e in raised.value.errors] == [(path, "lone_surrogate")]


def test_review_comes_from_the_job_else_the_deployment_default():
    plain = intake.read_job_file(b"a lighthouse\n", "banners.txt", settings=Settings(default_size="64x64"))
    assert messages.job_request(plain, "blob", settings=Settings()).review is None
    on = messages.job_request(plain, "blob", settings=Settings(review=True)).review
    assert on.model_dump() == {"required": True, "timeout": "72h", "on_timeout": "reject"}
    opted_out = intake.read_job_file(b"name: a\nprompts: [{text: a}]\nreview: {required: false}\n", "a.yaml")
    assert messages.job_request(opted_out, "http", settings=Settings(review=True)).review is None
    short = intake.read_job_file(b"name: a\nprompts: [{text: a}]\nreview: {timeout: 5s}\n", "a.yaml")
    assert messages.job_request(short, "http", settings=Settings()).review.timeout == "5s"


def test_a_job_naming_a_webhook_host_the_deployment_does_not_allow_is_refused_at_submit():
    job = b"name: a\nprompts: [{text: a}]\nnotify: {url: 'https://localhost/hook'}\n"
    with pytest.raises(JobValidationError) as error:
        intake.read_job_file(job, "a.yaml", settings=Settings(notify_hosts=("hooks.example.com",)))
    assert [(e.path, e.rule) for e in error.value.errors] == [("notify.url", "notify_hosts")]
    # Listed, but a loopback address: still refused.
    with pytest.raises(JobValidationError) as error:
        intake.read_job_file(job, "a.yaml", settings=Settings(notify_hosts=("localhost",)))
    assert [(e.path, e.rule) for e in error.value.errors] == [("notify.url", "notify_address")]

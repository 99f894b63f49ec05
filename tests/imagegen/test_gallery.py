"""imagegen.gallery_pages: what each page shows, what it never shows, and that user text is escaped."""

from __future__ import annotations

from imagegen import gallery_pages as gallery
from imagegen.records.manifest import ManifestVariant
from tests.imagegen.test_manifest import entry, manifest, variant

HOSTILE = '<img src=x onerror=alert(1)><script>alert(2)</script>'


def job(job_id: str = "job-1", status: str = "completed", **changes) -> dict:
    return {"id": job_id, "name": "sneakers", "source": "http", "status": status,
            "createdTime": "2026-11-21T13:00:00+00:00", "progress": {"phase": "generating", "total": 4, "done": 1},
            **changes}


def test_the_job_page_shows_ok_images_with_their_parameters_and_only_counts_the_others():
    page = gallery.job_page(job(), manifest())
    assert page.count('class="variant"') == 2
    assert "/api/jobs/job-1/images/v000" in page and "/api/jobs/job-1/images/v001" in page
    # Blocked, unchecked and failed variants: counted, never linked.
    for hidden in ("v002", "v003", "v004"):
        assert f"images/{hidden}" not in page
    assert "1 blocked (not shown)" in page and "1 unchecked (not shown)" in page
    assert "seed</dt><dd>1000" in page and "512×512" in page and "safe" in page


def test_hostile_names_and_prompts_are_escaped_on_every_page():
    hostile = ManifestVariant.from_variant(variant(0, prompt=HOSTILE), status="ok",
                                           **entry("job-1", 0, "ok").model_dump(
                                               include={"blob", "sha256", "output_verdict", "input_verdict"}))
    pages = [gallery.job_page(job(name=HOSTILE), manifest(variants=[hostile])),
             gallery.jobs_page([job(name=HOSTILE)], {"job-1": manifest(variants=[hostile])})]
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_a_running_job_refreshes_itself_and_shows_its_progress():
    page = gallery.job_page(job(status="running"), None)
    assert 'data-refresh="' in page and 'value="25"' in page and "1 of 4 made" in page
    assert 'data-refresh="' not in gallery.job_page(job(), manifest())


def test_the_jobs_list_shows_thumbnails_of_ended_jobs_and_refreshes_while_one_runs():
    page = gallery.jobs_page([job("job-2", "running"), job()], {"job-1": manifest()})
    assert page.count("<img ") == 2 and "/api/jobs/job-1/images/v000" in page
    assert 'data-refresh="' in page
    assert 'data-refresh="' not in gallery.jobs_page([job()], {})
    assert "No jobs with status failed" in gallery.jobs_page([], {}, "failed")


def test_the_jobs_list_links_to_older_jobs_and_back_to_the_newest_keeping_the_filter():
    first = gallery.jobs_page([job()], {}, "completed", older="T0k/n+=")
    assert 'href="/api/gallery?status=completed&amp;continuationToken=T0k%2Fn%2B%3D"' in first
    assert "Newest jobs" not in first
    later = gallery.jobs_page([job()], {}, None, older=None, first=False)
    assert 'href="/api/gallery"' in later and "Older jobs" not in later
    assert "No older jobs." in gallery.jobs_page([], {}, first=False)


def test_only_the_stylesheet_and_script_are_served():
    css, content_type = gallery.static_file("gallery.css")
    assert b".variant" in css and content_type.startswith("text/css")
    assert gallery.static_file("../__init__.py") is None and gallery.static_file("templates") is None


def test_the_new_job_page_is_a_form_with_a_field_for_each_error_path_and_no_inline_script():
    page = gallery.new_job_page()
    for path in ("name", "model", "variants.seeds", "variants.styles", "variants.sizes", "variants.steps"):
        assert f'data-path="{path}"' in page
    assert 'type="file"' in page and "<script>" not in page and " on" + "submit=" not in page


def test_the_new_job_page_offers_the_catalog_default_first_and_leaves_sizes_and_steps_to_the_model():
    defaults = {"steps": 4, "guidance": 0.0, "size": "1024x1024", "scheduler": "euler", "deepcache": False}
    models = [{"name": "default", "default": True, "family_title": "Stable Diffusion 1.x", "flavour": "tiny",
               "defaults": {**defaults, "steps": 25, "size": "512x512"}},
              {"name": HOSTILE, "default": False, "family_title": "FLUX.1", "flavour": "schnell", "defaults": defaults}]
    page = gallery.new_job_page(models)
    assert '<option value="" data-size="512x512" data-steps="25">default — Stable Diffusion 1.x tiny (default)</option>' in page
    assert "FLUX.1 schnell</option>" in page and HOSTILE not in page  # names are escaped
    assert 'placeholder="the model\'s: 512x512"' in page and 'id="steps" name="steps" inputmode="numeric" placeholder="25"' in page
    assert 'value="512x512"' not in page and 'value="25"' not in page  # no size or steps unless asked


def test_the_job_page_marks_signed_images_with_their_c2pa_manifest_and_signer():
    credentials = {"manifest_label": "urn:c2pa:abcd", "signer": "CN=Durable Diffusion development signer"}
    page = gallery.job_page(job(), manifest(variants=[entry("job-1", 0, "ok", content_credentials=credentials),
                                                      entry("job-1", 1, "ok")]))
    assert page.count('<span class="signed"') == 1
    assert "urn:c2pa:abcd" in page and "CN=Durable Diffusion development signer" in page
    assert "credentials</dt><dd>none" in page


def test_a_job_awaiting_review_shows_the_review_bar_and_each_decision_escaped():
    from tests.imagegen.test_manifest import REVIEW, approved

    variants = [entry("job-1", 0, "ok", review=approved("job-1", 0, reviewer=HOSTILE, note=HOSTILE)),
                entry("job-1", 1, "ok"), entry("job-1", 2, "blocked")]
    page = gallery.job_page(job(status="awaiting_review"), manifest(variants=variants, review=REVIEW))
    assert 'id="review"' in page and 'id="approve"' in page and 'id="reviewer"' in page
    assert 'data-decision="approved"' in page and 'data-decision="undecided"' in page
    assert "images/v002" not in page and "1 blocked (not shown)" in page
    assert '<span data-count="approved">1</span> approved' in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert 'data-refresh="' not in page  # it never reloads under a reviewer's selection
    signed = gallery.job_page(job(status="awaiting_review"), manifest(variants=variants, review=REVIEW), HOSTILE)
    assert 'id="reviewer"' not in signed and "Signed in as <b>&lt;img" in signed
    ended = gallery.job_page(job(), manifest(variants=variants, review={**REVIEW, "state": "done", "ended_by": "finish"}))
    assert 'id="review"' not in ended and "review done (finish)" in ended


def test_the_job_page_draws_its_gpu_calls_over_time_from_the_manifest():
    from datetime import timedelta

    from tests.imagegen.test_manifest import CREATED

    def timed(index: int, start: float, end: float) -> ManifestVariant:
        return entry("job-1", index, "ok", started_at=CREATED + timedelta(seconds=start),
                     finished_at=CREATED + timedelta(seconds=end))

    # Two GPU calls: v000 and v001 together from 1 s to 3 s, v002 alone from 3 s to 4 s.
    timed_manifest = manifest(variants=[timed(0, 1, 3), timed(1, 1, 3), timed(2, 3, 4)],
                              finished_at=CREATED + timedelta(seconds=5))
    page = gallery.job_page(job(), timed_manifest)
    assert "2 GPU calls" in page and "(5.0 s)" in page
    assert '<rect class="gpu-call" x="200.0" y="1" width="400.0"' in page
    assert '<rect class="gpu-call" x="600.0" y="13" width="200.0"' in page
    assert "2 images in 2.00 s, from 1.00 s" in page and "1 images in 1.00 s, from 3.00 s" in page
    # A manifest without timings (made before they were recorded) draws no timeline.
    assert 'id="timeline"' not in gallery.job_page(job(), manifest())

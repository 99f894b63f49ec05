"""A model per job: the catalog file (`IMAGEGEN_MODELS`), a job fitted to the model it names
(defaults, refusals, warnings), and the engines `Services` keeps, at most
`IMAGEGEN_MAX_LOADED_MODELS` of them loaded. Tiny models of each family, on CPU."""

from __future__ import annotations

import json

import pytest

from imagegen.core.settings import Settings
from imagegen.core.types import JobValidationError
from imagegen.generation.catalog import DEFAULT_NAME, deployment_models, read_catalog
from imagegen.generation.families import facts_from_configs, read_model_facts
from imagegen.generation.model_fit import fit_job
from imagegen.jobs.spec import Limits, parse_job
from imagegen.jobs.variants import ModelDefaults, expand
from imagegen.service.operations import model_views
from imagegen.service.services import Services
from tests.imagegen.test_diffusion import batch, variant
from tests.imagegen.tiny_families import save_family

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """A catalog of every family, its folders beside it (relative sources), as YAML."""
    root = tmp_path_factory.mktemp("catalog")
    for name in ("sdxl", "sd3", "flux", "flux-schnell"):
        save_family(name, root / name, tiny_vae=name == "flux")
    (root / "models.yaml").write_text(
        "models:\n"
        "  sdxl: {source: sdxl}\n"
        "  sd3: {source: sd3}\n"
        "  flux: {source: flux, tiny_vae: flux-taesd}\n"
        "  flux-schnell: {source: flux-schnell}\n", encoding="utf-8")
    return root / "models.yaml"


def job(**fields):
    return parse_job({"name": "fit", "prompts": [{"text": "a red bicycle"}], **fields})


# --- the catalog file ----------------------------------------------------------------------


def test_the_catalog_adds_its_models_to_the_default_which_keeps_its_own_entry(catalog):
    models = deployment_models(Settings(models=str(catalog)))
    assert models.default == DEFAULT_NAME and models.names() == ["default", "sdxl", "sd3", "flux", "flux-schnell"]
    assert models.entries["default"].source == "tiny"
    assert models.entries["sdxl"].source == str(catalog.parent / "sdxl")  # relative to the catalog file
    assert models.entries["flux"].tiny_vae == str(catalog.parent / "flux-taesd")
    # IMAGEGEN_MODEL may name a catalog entry: that is the default then, and no `default` entry is made.
    named = deployment_models(Settings(models=str(catalog), model="sd3"))
    assert named.default == "sd3" and "default" not in named.entries


def test_without_a_catalog_the_deployment_serves_its_one_model():
    models = deployment_models(Settings(model="stabilityai/sd-turbo", model_revision="abc", tiny_vae="madebyollin/taesd"))
    assert models.names() == ["default"]
    entry = models.entries["default"]
    assert (entry.source, entry.revision, entry.tiny_vae) == ("stabilityai/sd-turbo", "abc", "madebyollin/taesd")


@pytest.mark.parametrize("text, message", [
    ("models: {}", r"`models` must have at least one entry"),
    ("models: {Big Model: {source: a/b}}", r"`models` names model 'Big Model'; a name may use only a-z"),
    ("models: {sdxl: {source: ''}}", r"`models.sdxl.source` must name a model folder or a hub id `owner/name`, got ''"),
    ("models: {sdxl: {source: a/b, weights: x}}", r"`models.sdxl.weights` is not a known field"),
    ("models: {sdxl: {src: a/b}}", r"`models.sdxl.source` is required"),
    ("models: [a, b]", r"`models` must be a mapping of fields, got \['a', 'b'\]"),
    ("models: {sdxl: {source: a/b}", r"the job is not valid YAML at line 1"),
])
def test_a_bad_catalog_names_the_setting_the_file_the_field_and_the_rule(tmp_path, text, message):
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"setting `IMAGEGEN_MODELS` file '.*models.yaml': " + message):
        read_catalog(str(path))


@pytest.mark.parametrize("entry, message", [
    ({"source": "not a folder or hub id"}, r"`models.x.source` must be a model folder or a hub id `owner/name`, "
                                          r"got 'not a folder or hub id', which is neither"),
    ({"source": "stabilityai/sdxl-turbo", "tiny_vae": "madebyollin/taesdxl"},
     r"`models.x.tiny_vae` must be a local folder \(tiny VAEs are never downloaded at run time\), "
     r"got 'madebyollin/taesdxl'"),
])
def test_a_catalog_entry_that_cannot_work_is_refused_at_start(tmp_path, entry, message):
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": {"x": entry}}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"setting `IMAGEGEN_MODELS`: " + message):
        deployment_models(Settings(models=str(path)))
    with pytest.raises(ValueError, match=r"setting `IMAGEGEN_MODELS` file '/no/such.yaml' cannot be read"):
        deployment_models(Settings(models="/no/such.yaml"))


def test_an_unknown_model_is_refused_listing_the_names(catalog):
    models = deployment_models(Settings(models=str(catalog)))
    with pytest.raises(JobValidationError) as caught:
        models.entry("sd9")
    (error,) = caught.value.errors
    assert (error.path, error.rule) == ("model", "unknown_model")
    assert error.message == ("`model` must name one of this deployment's models (`default`, `sdxl`, `sd3`, `flux`, "
                             "`flux-schnell`; GET /api/models), got 'sd9'")


# --- a job fitted to its model -------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("sdxl", ModelDefaults(steps=30, guidance=5.0, size="1024x1024", scheduler="euler", deepcache=True)),
    ("sd3", ModelDefaults(steps=28, guidance=7.0, size="1024x1024", scheduler="euler", deepcache=False)),
    ("flux", ModelDefaults(steps=28, guidance=3.5, size="1024x1024", scheduler="euler", deepcache=False)),
    ("flux-schnell", ModelDefaults(steps=4, guidance=0.0, size="1024x1024", scheduler="euler", deepcache=False)),
])
def test_what_a_job_leaves_out_comes_from_its_models_family(catalog, name, expected):
    facts = read_model_facts(str(catalog.parent / name))
    fit = fit_job(job(), facts, model=name, tiny_vae=False)
    assert fit.defaults == expected and fit.warnings == []
    (made,) = expand(job(model=name), fit.defaults)
    assert (made.model, made.steps, made.guidance, made.width, made.scheduler) == (
        name, expected.steps, expected.guidance, 1024, "euler")
    # What the job says wins; the seeds do not depend on the model or its defaults.
    (asked,) = expand(job(model=name, variants={"steps": 2, "sizes": ["64x64"], "guidance": [1.5]}), fit.defaults)
    assert (asked.steps, asked.width, asked.guidance) == (2, 64, 1.5)
    assert made.seed == expand(job())[0].seed


def test_defaults_are_held_to_the_deployments_limits(catalog):
    facts = read_model_facts(str(catalog.parent / "flux"))
    fit = fit_job(job(), facts, model="flux", tiny_vae=False, limits=Limits(max_steps=20, max_side=1000))
    assert (fit.defaults.steps, fit.defaults.size) == (20, "992x992")  # 992: the largest multiple of 16


def test_what_flux_cannot_do_is_refused_at_once_naming_each_field_rule_and_value(catalog):
    facts = read_model_facts(str(catalog.parent / "flux"))
    asked = job(prompts=[{"text": "a", "negative": "blurry"}, {"text": "b"}, {"text": "c", "negative": "text"}],
                variants={"scheduler": "dpmpp", "sizes": ["1024x1024", "520x512"]}, speedups={"tiny_vae": True})
    with pytest.raises(JobValidationError) as caught:
        fit_job(asked, facts, model="flux", tiny_vae=False)
    found = {(e.path, e.rule): e.message for e in caught.value.errors}
    # 520x512 is off FLUX's 16 px grid, and fine: it is made on the grid and delivered exactly.
    assert list(found) == [("prompts[0].negative", "negative_unsupported"), ("prompts[2].negative", "negative_unsupported"),
                           ("variants.scheduler", "scheduler_unsupported"), ("speedups.tiny_vae", "tiny_vae_unavailable")]
    assert found[("prompts[0].negative", "negative_unsupported")] == (
        "`prompts[0].negative` is not used by FLUX.1 models (model `flux`): they have no classifier-free guidance, "
        "so a negative prompt would be silently ignored; remove it, got 'blurry'")
    assert found[("variants.scheduler", "scheduler_unsupported")] == (
        "`variants.scheduler` must be euler for FLUX.1 models (model `flux`): they sample by flow matching with "
        "their own scheduler, got 'dpmpp'")


def test_sd3_takes_negatives_and_deepcache_on_a_transformer_is_off_with_a_warning(catalog):
    facts = read_model_facts(str(catalog.parent / "sd3"))
    fit = fit_job(job(prompts=[{"text": "a", "negative": "blurry"}], speedups={"deepcache": 3}),
                  facts, model="sd3", tiny_vae=False)
    assert fit.warnings == ["`speedups.deepcache` 3 is off: DeepCache reuses a UNet's deep features and "
                            "Stable Diffusion 3 / 3.5 models (model `sd3`) have a transformer"]
    (made,) = expand(job(prompts=[{"text": "a", "negative": "blurry"}], speedups={"deepcache": 3}), fit.defaults)
    assert (made.deepcache, made.negative) == (1, "blurry")


# --- engines: one per model, few loaded ------------------------------------------------------


def test_services_keep_one_engine_per_model_and_unload_the_least_recently_used(catalog):
    services = Services(Settings(device="cpu", models=str(catalog), max_loaded_models=2))
    sdxl, flux, sd3 = (services.model_engine(name) for name in ("sdxl", "flux", "sd3"))
    assert services.model_engine("sdxl") is sdxl and sdxl is not flux
    for engine in (sdxl, flux):
        engine.generate(batch(variant(scheduler="euler", steps=2, negative="", guidance=3.5)))
    assert sdxl.loaded and flux.loaded
    services.model_engine("sdxl")  # sdxl is now the most recently used; flux the least
    services.model_engine("sd3")  # a third model: flux goes
    assert (sdxl.loaded, flux.loaded) == (True, False)
    sd3.generate(batch(variant(scheduler="euler", steps=2, negative="", guidance=3.5)))
    assert {view["name"]: view["loaded"] for view in model_views(services)} == {
        "default": False, "sdxl": True, "sd3": True, "flux": False, "flux-schnell": False}
    # Unloaded is not gone: the next job of that model loads it again, and sdxl, now the
    # least recently used, makes room.
    again = services.model_engine("flux")
    assert again is flux and again.generate(batch(variant(scheduler="euler", steps=2, negative="", guidance=3.5)))
    assert (sdxl.loaded, sd3.loaded, flux.loaded) == (False, True, True)
    assert services.engines() == [sdxl, sd3, flux]  # least recently used first


def test_the_model_views_say_family_defaults_and_what_cannot_be_read(catalog, tmp_path):
    views = {view["name"]: view for view in model_views(Services(Settings(device="cpu", models=str(catalog))))}
    assert views["default"]["default"] is True and views["default"]["family"] == "sd1"
    assert views["default"]["tiny_vae"] is True  # the tiny model has its own
    assert (views["flux-schnell"]["family"], views["flux-schnell"]["flavour"]) == ("flux", "schnell")
    assert views["flux-schnell"]["defaults"]["steps"] == 4 and views["flux"]["tiny_vae"] is True
    # A folder that went away after the start: the model is listed with why.
    gone = tmp_path / "gone"
    save_family("sdxl", gone)
    (tmp_path / "models.yaml").write_text(f"models: {{old: {{source: {gone}}}}}", encoding="utf-8")
    services = Services(Settings(device="cpu", models=str(tmp_path / "models.yaml")))
    services.models  # noqa: B018 - read while the folder is there
    (gone / "model_index.json").unlink()
    (old,) = [view for view in model_views(services) if view["name"] == "old"]
    assert old["family"] is None and "has no `model_index.json`" in old["problem"]


def test_a_negative_at_guidance_one_or_less_is_a_warning_it_goes_unused():
    turbo = facts_from_configs({"model_index.json": {"_class_name": "StableDiffusionXLPipeline"}}, "stabilityai/sdxl-turbo")
    assert turbo.defaults.guidance == 0.0
    fit = fit_job(job(prompts=[{"text": "a", "negative": "blurry"}]), turbo, model="sdxl-turbo", tiny_vae=False)
    assert fit.warnings == ["`prompts[0].negative` is unused where `variants.guidance` is 1 or less "
                            "(model `sdxl-turbo`: no classifier-free guidance there)"]
    assert fit_job(job(prompts=[{"text": "a", "negative": "blurry"}], variants={"guidance": [5.0]}), turbo,
                   model="sdxl-turbo", tiny_vae=False).warnings == []

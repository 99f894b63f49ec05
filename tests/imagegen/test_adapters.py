"""LoRA adapters (#21 item 3): the job field, the file checks, the submit-time resolution and
the engine applying them, on the tiny model on CPU with tiny LoRAs made by PEFT at test time."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
import torch

from imagegen.core.settings import Settings
from imagegen.core.types import AdapterUse, Batch, JobValidationError, Variant
from imagegen.generation.adapters import AdapterProblem, check_fit, made_for, read_header
from imagegen.generation.engine import DiffusionEngine
from imagegen.generation.families import tiny_model_facts
from imagegen.jobs.spec import parse_job
from imagegen.jobs.variants import batches, expand
from imagegen.service import adapters
from imagegen.service.services import Services
from tests.imagegen.tiny_lora import safetensors_bytes, save_sd_lora, save_sdxl_lora

pytestmark = pytest.mark.usefixtures("one_torch_thread")
MB = 2**20


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """IMAGEGEN_ADAPTERS_DIR with two SD LoRAs, an SDXL one, and files that are not adapters."""
    folder = tmp_path_factory.mktemp("adapters")
    save_sd_lora(folder, "brand", seed=1)
    save_sd_lora(folder, "product.v2", seed=2)
    save_sdxl_lora(folder, "xl-brand", seed=3)
    (folder / "notes.safetensors").write_bytes(b"this is a text file, not safetensors")
    (folder / "weights.safetensors").write_bytes(safetensors_bytes({"conv.weight": torch.zeros(2, 2)}))
    return folder


@pytest.fixture(scope="module")
def services(folder):
    return Services(Settings(adapters_dir=str(folder), max_adapter_bytes=1 * MB))


def job(*adapter_list: dict, **more):
    return parse_job({"name": "lora", "prompts": [{"text": "a sneaker"}], "adapters": list(adapter_list), **more})


def refusal(services, *adapter_list: dict):
    with pytest.raises(JobValidationError) as caught:
        adapters.resolve(job(*adapter_list).adapters, services, tiny_model_facts(), "tiny")
    return [(error.path, error.rule, error.message) for error in caught.value.errors]


# --- the job field ---------------------------------------------------------------------------


def test_the_field_takes_names_and_weights_and_refuses_bad_ones_by_field_and_rule():
    assert [(a.name, a.weight) for a in job({"name": "brand"}, {"name": "b2", "weight": -1}).adapters] == [
        ("brand", 1.0), ("b2", -1.0)]
    cases = [({"name": "brand", "weight": 2.5}, "adapters[0].weight", "adapter_weight"),
             ({"name": "Brand X"}, "adapters[0].name", "adapter_name"),
             ({"name": "brand.safetensors"}, "adapters[0].name", "adapter_name"),
             ({"name": "brand", "weight": "high"}, "adapters[0].weight", "type")]
    for adapter, path, rule in cases:
        with pytest.raises(JobValidationError) as caught:
            job(adapter)
        assert [(e.path, e.rule) for e in caught.value.errors] == [(path, rule)]
        assert repr(next(iter(adapter.values())) if rule == "adapter_name" else adapter["weight"])[:5] in \
            caught.value.errors[0].message
    with pytest.raises(JobValidationError) as caught:
        job({"name": "a"}, {"name": "a"})
    assert caught.value.errors[0].rule == "duplicate"
    with pytest.raises(JobValidationError) as caught:
        job(*[{"name": f"a{n}"} for n in range(5)])
    assert caught.value.errors[0].rule == "max_adapters"


def test_variants_carry_the_adapters_and_keep_their_seeds_and_batches_never_mix_adapter_sets():
    plain = job(variants={"seeds": 3})
    branded = job({"name": "brand", "weight": 0.8}, variants={"seeds": 3})
    use = AdapterUse(name="brand", sha256="0" * 64, weight=0.8)
    assert [v.seed for v in expand(plain)] == [v.seed for v in expand(branded, adapters=[use])]
    assert all(v.adapters == (use,) for v in expand(branded, adapters=[use]))
    with pytest.raises(ValueError):
        expand(branded)  # the adapters checked at submit must come with the job
    mixed = expand(plain) + [v.model_copy(update={"adapters": (use,)}) for v in expand(plain)]
    assert [len(b.variants) for b in batches(mixed, 16)] == [3, 3]


# --- the file checks -------------------------------------------------------------------------


def test_a_peft_lora_reads_as_one_and_fits_the_tiny_model(folder):
    header = read_header((folder / "brand.safetensors").read_bytes(), max_bytes=MB)
    assert made_for(header) == {"family": None, "denoiser": "unet", "context_dim": 32}
    check_fit(header, tiny_model_facts(), "tiny")


def test_files_that_are_not_lora_safetensors_or_too_large_are_refused():
    def problem(data: bytes, **kw) -> str:
        with pytest.raises(AdapterProblem) as caught:
            read_header(data, max_bytes=kw.pop("max_bytes", MB), **kw)
        return caught.value.rule

    assert problem(b"PK\x03\x04 a zip file") == "adapter_format"
    assert problem(b"\x01") == "adapter_format"
    assert problem(struct.pack("<Q", 10**9) + b"{}") == "adapter_format"
    text = b"[1, 2]"
    assert problem(struct.pack("<Q", len(text)) + text) == "adapter_format"
    assert problem(safetensors_bytes({"model.conv.weight": torch.zeros(2)})) == "adapter_format"
    assert problem(b"", size=MB + 1) == "adapter_size"  # by the size alone, before any read


def test_shapes_and_names_tell_other_families(folder):
    sdxl_named = {"text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight": [4, 32]}
    flux_named = {"transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": [4, 32]}
    for shapes, words in ((sdxl_named, "made for SDXL"), (flux_named, "made for FLUX.1")):
        header = json.dumps({name: {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}
                             for name, shape in shapes.items()}).encode()
        with pytest.raises(AdapterProblem, match=words):
            check_fit(read_header(struct.pack("<Q", len(header)) + header, max_bytes=MB), tiny_model_facts(), "tiny")


# --- at submit ---------------------------------------------------------------------------------


def test_submit_resolves_each_adapter_with_its_sha256(services, folder):
    uses = adapters.resolve(job({"name": "brand", "weight": 0.8}, {"name": "product.v2"}).adapters,
                            services, tiny_model_facts(), "tiny")
    digest = hashlib.sha256((folder / "brand.safetensors").read_bytes()).hexdigest()
    assert uses[0] == AdapterUse(name="brand", sha256=digest, weight=0.8)
    assert uses[1].name == "product.v2" and uses[1].weight == 1.0


def test_submit_refuses_unknown_wrong_family_non_lora_and_oversized_adapters_naming_each(services, folder):
    errors = refusal(services, {"name": "nope"}, {"name": "xl-brand"}, {"name": "notes"}, {"name": "weights"})
    assert [(path, rule) for path, rule, _ in errors] == [
        ("adapters[0].name", "adapter_unknown"), ("adapters[1].name", "adapter_family"),
        ("adapters[2].name", "adapter_format"), ("adapters[3].name", "adapter_format")]
    assert "'nope'" in errors[0][2] and "brand, notes, product.v2" in errors[0][2]
    assert "64-wide" in errors[1][2] and "'xl-brand'" in errors[1][2]
    small = Services(Settings(adapters_dir=str(folder), max_adapter_bytes=1000))
    (path, rule, message), = refusal(small, {"name": "brand"})
    assert (path, rule) == ("adapters[0].name", "adapter_size") and "IMAGEGEN_MAX_ADAPTER_BYTES" in message


def test_a_file_changed_after_submit_is_refused_when_its_batch_runs(services):
    use = AdapterUse(name="brand", sha256="0" * 64, weight=1.0)
    with pytest.raises(ValueError, match="changed after the job was submitted"):
        adapters.files_for([variant(adapters=(use,))], services)


# --- the engine --------------------------------------------------------------------------------


def variant(index: int = 0, seed: int = 7, **changes) -> Variant:
    values = dict(id=f"v{index:03d}", index=index, prompt_index=0, prompt="a red sneaker", base_prompt="a red sneaker",
                  seed=seed, width=64, height=64, guidance=7.0, steps=3, scheduler="euler")
    values.update(changes)
    return Variant(**values)


@pytest.fixture(scope="module")
def engine():
    return DiffusionEngine("tiny", settings=Settings(device="cpu"))


def image(engine, files=None, *uses: AdapterUse) -> np.ndarray:
    made = engine.generate(Batch(id="b000", variants=[variant(adapters=tuple(uses))]), adapters=files)
    return np.asarray(made[0].image, dtype=np.int16)


def test_the_engine_applies_adapters_at_their_weights_and_restores_the_base_after(engine, folder):
    brand = AdapterUse(name="brand", sha256="x", weight=1.0)
    product = AdapterUse(name="product.v2", sha256="y", weight=0.7)
    files = {name: (folder / f"{name}.safetensors").read_bytes() for name in ("brand", "product.v2")}
    base = image(engine)
    with_brand = image(engine, files, brand)
    assert np.abs(with_brand - base).max() > 10  # the LoRA changes the image
    assert np.array_equal(image(engine, files, brand.model_copy(update={"weight": 0.0})), base)
    both = image(engine, files, brand, product)
    assert np.abs(both - with_brand).max() > 10  # two at once, each counts
    assert np.array_equal(image(engine, files, brand), with_brand)  # reproducible
    assert np.array_equal(image(engine), base)  # unloaded: the base model, exactly, not reloaded
    pipe = engine.load()
    assert not any("lora" in name for name, _ in pipe.unet.named_modules())
    with pytest.raises(ValueError, match="its file was not given"):
        image(engine, {}, brand)


def test_fused_qkv_projections_are_unfused_for_the_adapters_and_fused_again(folder):
    """On CUDA optimize_for_cuda fuses QKV, which would bypass a LoRA on to_q/to_k/to_v;
    here fused by hand on CPU: the adapter still applies, and the fusion is back after."""
    plain, fused = (DiffusionEngine("tiny", settings=Settings(device="cpu")) for _ in range(2))
    fused.load().fuse_qkv_projections()
    brand = AdapterUse(name="brand", sha256="x", weight=1.0)
    files = {"brand": (folder / "brand.safetensors").read_bytes()}
    assert np.abs(image(fused, files, brand) - image(plain, files, brand)).max() <= 2
    assert np.abs(image(fused) - image(plain)).max() <= 2
    assert any(getattr(m, "fused_projections", False) for m in fused.load().unet.modules())


def test_submit_reads_an_adapter_in_chunks_and_finds_its_header_across_them(services, folder, monkeypatch):
    from imagegen.storage import adapters as adapter_files

    monkeypatch.setattr(adapter_files, "CHUNK_BYTES", 7)  # the header spans hundreds of chunks
    data = (folder / "brand.safetensors").read_bytes()
    (use,) = adapters.resolve(job({"name": "brand"}).adapters, services, tiny_model_facts(), "tiny")
    assert use.sha256 == hashlib.sha256(data).hexdigest()


def test_an_adapter_whose_shapes_do_not_fit_fails_its_batch_and_leaves_the_base_as_it_was(engine, folder):
    from safetensors.torch import load, save

    tensors = load((folder / "brand.safetensors").read_bytes())
    key = next(k for k in tensors if k.endswith("attn1.to_q.lora_A.weight"))
    tensors[key] = torch.zeros(4, 48)  # to_q reads 32 features: passes the header checks, not the load
    base = image(engine)
    with pytest.raises(ValueError, match="adapter 'odd' does not fit"):
        image(engine, {"odd": save(tensors)}, AdapterUse(name="odd", sha256="z", weight=1.0))
    assert np.array_equal(image(engine), base)


def test_a_unet_lora_of_other_block_widths_is_refused_at_submit(folder):
    from safetensors.torch import load

    tensors = load((folder / "brand.safetensors").read_bytes())
    key = next(k for k in tensors if k.startswith("unet.up_blocks.1.") and k.endswith("attn1.to_q.lora_A.weight"))
    tensors[key] = torch.zeros(4, 48)  # up block 1 of the tiny UNet is 32 wide (block_out_channels reversed)
    with pytest.raises(AdapterProblem, match="reads 48 features and that layer of the model has 32") as caught:
        check_fit(read_header(safetensors_bytes(tensors), max_bytes=MB), tiny_model_facts(), "tiny")
    assert caught.value.rule == "adapter_shape"


def test_an_sdxl_lora_fits_a_tiny_sdxl_folder_and_the_engine_applies_and_removes_it(folder, tmp_path):
    from imagegen.generation.families import read_model_facts
    from tests.imagegen.tiny_families import save_family

    model = save_family("sdxl", tmp_path / "sdxl")
    data = (folder / "xl-brand.safetensors").read_bytes()
    check_fit(read_header(data, max_bytes=MB), read_model_facts(str(model)), "sdxl")
    sdxl = DiffusionEngine(str(model), settings=Settings(device="cpu"))
    use = AdapterUse(name="xl-brand", sha256="x", weight=1.0)
    base = image(sdxl)
    assert np.abs(image(sdxl, {"xl-brand": data}, use) - base).max() > 10
    assert np.array_equal(image(sdxl), base)

"""GPU throughput of Stable Diffusion: the seed's settings against our engine's best path.

Builds each architecture from its published configuration with random weights (no
download: speed does not depend on the weights' values), then measures, side by side in
one process, for each variant and batch size: images/s, seconds/image, peak GPU memory,
and the achieved fraction of the FLOP ceiling (UNet FLOPs counted with
torch.utils.flop_counter for the exact shape; the ceiling is the GPU's dense 16-bit
peak divided by the guided UNet FLOPs of one image).

Variants:
  seed      the seed project's settings: fp16, batch 1, attention slicing over SDPA,
            DPM-Solver++, no compile
  eager     our engine without torch.compile: bf16, SDPA, channels_last, fused QKV
  compiled  our engine's path: `imagegen.generation.engine.optimize_for_cuda` (the engine's one
            function), torch.compile of UNet and VAE decoder per --compile-modes;
            the first call (compile) is reported as warm-up, apart from the timings

The options that change the image, each on the eager path (the same pipeline as
`eager`), applied only through `imagegen.generation.engine.speedups`, as a job asks for them:
  deepcache    DeepCache, the whole UNet every --deepcache-interval steps
  tiny-vae     decoding with a tiny VAE: AutoencoderTiny from TAESD's published config
               (taesd and taesdxl share it) with random weights
  fewer-steps  --fewer-steps denoising steps instead of --steps
All six run by default: the three options reuse the eager pipeline (no more weights but
the tiny VAE's, no compile), so together they cost less than three more eager row sets.

Every row's "max diff vs eager" compares its first image with eager's (same weights,
same seed; n/a for seed, in another dtype): for compiled it must stay 16-bit noise; for
the three options above it is how far the image moved. Each row's fraction of the ceiling is against the
ceiling at the steps it ran (its "steps" column); DeepCache's cached steps skip most of
the UNet, so its fraction counts the FLOPs the whole UNet would have needed.

Warm-up calls are never timed; each figure is the median of --runs calls. Writes
`gpu_throughput-<arch>-<size>.json` and `.md` (a markdown table) under --out.

  python bench/gpu_throughput.py --arch sd15 --batch-sizes 1,4,8,16 --steps 25 --size 512
  python bench/gpu_throughput.py --arch tiny --device cpu --batch-sizes 1,2 --steps 2 --fewer-steps 1 --size 64
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderTiny,
    DPMSolverMultistepScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from imagegen.generation.deepcache import MAX_INTERVAL, deepcache
from imagegen.generation.engine import COMPILE_MODE, optimize_for_cuda, pick_device, pick_dtype, speedups
from imagegen.generation.tiny_model import build_tiny_autoencoder, build_tiny_pipeline, build_tokenizer

PROMPT = "a red sneaker on a white table, studio lighting, high quality photo"
NEGATIVE = "blurry, low quality"
GUIDANCE = 7.0
# Dense (no sparsity) 16-bit tensor-core peaks from the vendor data sheets, TFLOP/s.
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}
VARIANTS = ("seed", "eager", "compiled", "deepcache", "tiny-vae", "fewer-steps")

# --- published configurations (from each model's config.json) --------------------------

SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32, norm_eps=1e-5,
    act_fn="silu", downsample_padding=1, flip_sin_to_cos=True, freq_shift=0,
)
SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
    cross_attention_dim=2048, use_linear_projection=True, norm_num_groups=32,
    addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, flip_sin_to_cos=True, freq_shift=0,
)
SD_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    norm_num_groups=32, act_fn="silu",
)
CLIP_VIT_L = dict(  # SD 1.5's text encoder, and SDXL's first
    hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
    max_position_embeddings=77, vocab_size=49408, hidden_act="quick_gelu",
)
CLIP_BIG_G = dict(  # SDXL's second text encoder (OpenCLIP ViT-bigG)
    hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
    max_position_embeddings=77, vocab_size=49408, hidden_act="gelu", projection_dim=1280,
)
SD_SCHEDULER = dict(
    beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    num_train_timesteps=1000, steps_offset=1, algorithm_type="dpmsolver++", solver_order=2,
)
DEFAULT_SIZE = {"sd15": 512, "sdxl": 1024, "tiny": 64}


def build_pipeline(arch: str, device: torch.device, dtype: torch.dtype):
    """`arch` with random weights (seeded: every call gives the same), on `device` in `dtype`."""
    if arch == "tiny":
        pipe = build_tiny_pipeline()
    else:
        torch.manual_seed(0)
        tokenizer = build_tokenizer()  # byte-level CLIP BPE, 77 tokens: ids fit any CLIP vocab
        ids = dict(bos_token_id=len(tokenizer) - 2, eos_token_id=len(tokenizer) - 1, pad_token_id=len(tokenizer) - 1)
        scheduler = DPMSolverMultistepScheduler(**SD_SCHEDULER)
        with torch.device(device):  # initialise on the GPU: random init of 2.6 B parameters on a CPU is slow
            if arch == "sd15":
                components = dict(
                    vae=AutoencoderKL(**SD_VAE, scaling_factor=0.18215),
                    text_encoder=CLIPTextModel(CLIPTextConfig(**CLIP_VIT_L, **ids)),
                    unet=UNet2DConditionModel(**SD15_UNET),
                )
            elif arch == "sdxl":
                components = dict(
                    vae=AutoencoderKL(**SD_VAE, scaling_factor=0.13025, force_upcast=False),
                    text_encoder=CLIPTextModel(CLIPTextConfig(**CLIP_VIT_L, **ids)),
                    text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_BIG_G, **ids)),
                    unet=UNet2DConditionModel(**SDXL_UNET),
                )
            else:
                raise ValueError(f"`--arch` must be sd15, sdxl or tiny, got {arch!r}")
        if arch == "sd15":
            pipe = StableDiffusionPipeline(
                **components, tokenizer=tokenizer, scheduler=scheduler,
                safety_checker=None, feature_extractor=None, requires_safety_checker=False,
            )
        else:
            pipe = StableDiffusionXLPipeline(**components, tokenizer=tokenizer, tokenizer_2=tokenizer, scheduler=scheduler)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, algorithm_type="dpmsolver++")
    pipe.to(device)
    if dtype != torch.float32:  # every component is built in fp32
        pipe.to(dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_tiny_vae(arch: str, device: torch.device, dtype: torch.dtype) -> AutoencoderTiny:
    """A TAESD-shaped tiny VAE with random weights (seeded: every call gives the same).
    TAESD (madebyollin/taesd, and taesdxl) is AutoencoderTiny's default configuration;
    the tiny arch gets the tiny model's own, as the engine does."""
    if arch == "tiny":
        vae = build_tiny_autoencoder()
    else:
        torch.manual_seed(0)
        vae = AutoencoderTiny()  # built on the CPU: 2.4 M parameters
    return vae.to(device=device, dtype=dtype).eval()


# --- measuring ---------------------------------------------------------------------------


def unet_config(arch: str) -> dict:
    if arch == "tiny":
        return dict(build_tiny_pipeline().unet.config)
    return {"sd15": SD15_UNET, "sdxl": SDXL_UNET}[arch]


def unet_step_flops(arch: str, size: int, *, deepcache_cached: bool = False) -> int:
    """FLOPs of one guided denoising step of one image (two UNet passes: text and
    unconditional), counted by torch.utils.flop_counter on a UNet on the meta device
    (shapes only: no memory, no time, the same count on any machine). Attention runs
    through the math kernel, whose matmuls the counter sees. With `deepcache_cached`,
    the FLOPs of a step DeepCache serves from its cache (the step after a full one)."""
    config = unet_config(arch)  # the tiny arch builds its pipeline for it: not on the meta device
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    with torch.device("meta"), deepcache(unet, 2 if deepcache_cached else 1):
        latent = size // 8  # every architecture here has an 8x VAE
        sample = torch.randn(2, unet.config.in_channels, latent, latent)
        context = torch.randn(2, 77, unet.config.cross_attention_dim)
        extra: dict[str, Any] = {}
        if unet.config.addition_embed_type == "text_time":
            extra["added_cond_kwargs"] = {"text_embeds": torch.randn(2, 1280), "time_ids": torch.randn(2, 6)}
        with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH):
            if deepcache_cached:
                unet(sample, torch.tensor(500), encoder_hidden_states=context, **extra)  # fills the cache
            counter = FlopCounterMode(display=False)
            with counter:
                unet(sample, torch.tensor(480), encoder_hidden_states=context, **extra)
    return counter.get_total_flops()


def activation_bytes(model_class, config: dict, call) -> int:
    """Peak activation bytes of `call(model)` in bf16, on fake tensors (shapes only: no
    memory, no GPU) under torch's MemTracker. The GPU allocator's rounding and kernel
    workspaces come on top."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # fake parameters cannot be cast after they are made
    try:
        with FakeTensorMode():
            model = model_class.from_config(config)
            tracker = MemTracker()
            tracker.track_external(model)
            with torch.inference_mode(), tracker:
                call(model)
            peak = tracker.get_tracker_snapshot("peak")
    finally:
        torch.set_default_dtype(default_dtype)
    return sum(value for kinds in peak.values() for kind, value in kinds.items() if "ACT" in str(kind))


def vae_decode_activation_bytes(arch: str, size: int, *, tiny_vae: bool = False) -> int:
    """Decoding one image: the SD VAE decoder's activations (TAESD's with `tiny_vae`).
    What one more image in a call costs (imagegen.generation.engine's CUDA_BYTES_PER_PIXEL)."""
    if tiny_vae:  # TAESD is AutoencoderTiny's default configuration
        config = {} if arch != "tiny" else {  # block_out_channels: recorded, not an argument
            key: value for key, value in build_tiny_autoencoder().config.items() if key != "block_out_channels"}
        vae_class = AutoencoderTiny
    else:
        vae_class, config = AutoencoderKL, dict(build_tiny_pipeline().vae.config) if arch == "tiny" else SD_VAE
    return activation_bytes(vae_class, config, lambda vae: vae.decode(
        torch.randn(1, vae.config.latent_channels, size // 8, size // 8)))


def unet_step_activation_bytes(arch: str, size: int) -> int:
    """One guided UNet step of one image (a batch of two: text and unconditional)."""

    def step(unet):
        extra = {}
        if unet.config.addition_embed_type == "text_time":
            extra["added_cond_kwargs"] = {"text_embeds": torch.randn(2, 1280), "time_ids": torch.randn(2, 6)}
        unet(torch.randn(2, unet.config.in_channels, size // 8, size // 8), torch.tensor(500),
             encoder_hidden_states=torch.randn(2, 77, unet.config.cross_attention_dim), **extra)

    return activation_bytes(UNet2DConditionModel, unet_config(arch), step)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_variant(pipe, device: torch.device, batch: int, size: int, steps: int, runs: int,
                 options: dict[str, Any]) -> dict:
    """Warm-up once (compiles), then `runs` timed calls; median seconds and peak memory.
    Every call runs under `speedups(pipe, **options)` (no options: nothing changes)."""
    arguments = dict(
        prompt=[PROMPT] * batch, negative_prompt=[NEGATIVE] * batch, width=size, height=size,
        num_inference_steps=steps, guidance_scale=GUIDANCE, output_type="np",
    )

    def call():
        generators = [torch.Generator(device="cuda" if device.type == "cuda" else "cpu").manual_seed(1000 + i)
                      for i in range(batch)]
        with torch.inference_mode(), speedups(pipe, **options) as sped_up:
            return sped_up(**arguments, generator=generators).images

    _sync(device)
    started = time.perf_counter()
    first = call()
    _sync(device)
    warmup = time.perf_counter() - started
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = []
    for _ in range(runs):
        _sync(device)
        started = time.perf_counter()
        call()
        _sync(device)
        seconds.append(time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    median = statistics.median(seconds)
    return {
        "batch_size": batch,
        "warmup_s": round(warmup, 6),
        "runs_s": [round(s, 6) for s in seconds],
        "median_s": round(median, 6),
        "seconds_per_image": round(median / batch, 6),
        "images_per_s": round(batch / median, 4),
        "peak_memory_gb": None if peak is None else round(peak, 2),
        "first_image": first[0],  # for the image check; dropped before writing JSON
    }


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops for key, tflops in PEAK_TFLOPS.items() if key in name), None)


# --- the run -------------------------------------------------------------------------------


@dataclass
class Variant:
    name: str
    pipe: Any
    dtype: torch.dtype
    steps: int
    batch_sizes: list[int]
    compile_mode: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the arguments of `speedups(pipe, ...)`
    setting: str | None = None  # the options in words, for the table


def run(args: argparse.Namespace) -> dict:
    device = pick_device(args.device)
    size = args.size or DEFAULT_SIZE[args.arch]
    engine_dtype = pick_dtype(device)
    seed_dtype = torch.float16 if device.type == "cuda" else torch.float32  # no fast fp16 on CPU
    peak = peak_tflops(device, args.peak_tflops)
    step_flops = unet_step_flops(args.arch, size)

    def ceiling(steps: int) -> float | None:  # images/s at the GPU's peak, UNet only
        return peak * 1e12 / (step_flops * steps) if peak else None

    variants: list[Variant] = []
    if "seed" in args.variants:
        seed_pipe = build_pipeline(args.arch, device, seed_dtype)
        seed_pipe.enable_attention_slicing()  # the seed did this, over PyTorch SDPA
        variants.append(Variant("seed", seed_pipe, seed_dtype, args.steps, [1]))  # one image per call
    if set(args.variants) & {"eager", "deepcache", "tiny-vae", "fewer-steps"}:
        eager_pipe = build_pipeline(args.arch, device, engine_dtype)
        optimize_for_cuda(eager_pipe, compile_mode=None)
    if "eager" in args.variants:
        variants.append(Variant("eager", eager_pipe, engine_dtype, args.steps, args.batch_sizes))
    if "compiled" in args.variants:
        for mode in args.compile_modes:
            pipe = build_pipeline(args.arch, device, engine_dtype)
            optimize_for_cuda(pipe, compile_mode=mode)
            variants.append(Variant("compiled", pipe, engine_dtype, args.steps, args.batch_sizes,
                                    compile_mode=mode if device.type == "cuda" else None))
    # The options that change the image: on the eager pipeline, through `speedups` alone.
    if "deepcache" in args.variants:
        variants.append(Variant("deepcache", eager_pipe, engine_dtype, args.steps, args.batch_sizes,
                                options=dict(deepcache_interval=args.deepcache_interval),
                                setting=f"interval {args.deepcache_interval}"))
    if "tiny-vae" in args.variants:
        variants.append(Variant("tiny-vae", eager_pipe, engine_dtype, args.steps, args.batch_sizes,
                                options=dict(tiny_vae=build_tiny_vae(args.arch, device, engine_dtype)),
                                setting="TAESD, random weights" if args.arch != "tiny" else "tiny TAESD"))
    if "fewer-steps" in args.variants:
        variants.append(Variant("fewer-steps", eager_pipe, engine_dtype, args.fewer_steps, args.batch_sizes))

    results = []
    reference = None  # the eager variant's first image (every batch's first image has the same seed)
    for variant in variants:
        for batch in variant.batch_sizes:
            print(f"{variant.name} {variant.compile_mode or ''} batch {batch} ...", file=sys.stderr, flush=True)
            result = time_variant(variant.pipe, device, batch, size, variant.steps, args.runs, variant.options)
            image = result.pop("first_image")
            if reference is None and variant.name == "eager":
                reference = image
            result.update(
                variant=variant.name,
                setting=variant.setting,
                compile_mode=variant.compile_mode,
                dtype=str(variant.dtype).removeprefix("torch."),
                steps=variant.steps,
                fraction_of_ceiling=None if peak is None
                else _significant(result["images_per_s"] / ceiling(variant.steps)),
                # Same weights and seed: our speed-ups may change the image only by 16-bit
                # noise; the options that change the image show here how far it moved.
                max_pixel_diff_vs_eager=None if reference is None or variant.name == "seed"
                else int(np.abs(np.nan_to_num(image) - np.nan_to_num(reference)).max() * 255 + 0.5),
            )
            results.append(result)
    return {
        "arch": args.arch,
        "size": size,
        "steps": args.steps,
        "runs": args.runs,
        "guidance": GUIDANCE,
        "scheduler": "dpmpp",
        "machine": describe_machine(device),
        "unet_step_tflop": _significant(step_flops / 1e12),
        "peak_tflops": peak,
        "ceiling_images_per_s": None if peak is None else round(ceiling(args.steps), 3),
        "results": results,
    }


def describe_machine(device: torch.device) -> dict:
    import diffusers

    return {
        "device": device.type,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "cuda": torch.version.cuda,
    }


def markdown(result: dict) -> str:
    machine = result["machine"]
    lines = [
        f"### {result['arch']} {result['size']}x{result['size']}, {result['steps']} steps, "
        f"guidance {result['guidance']}, on {machine['gpu'] or machine['device']}",
        "",
        f"One guided UNet step: {result['unet_step_tflop']} TFLOP per image; ceiling "
        f"{result['ceiling_images_per_s'] if result['ceiling_images_per_s'] is not None else 'n/a'} images/s "
        f"at {result['peak_tflops'] or 'n/a'} TFLOP/s and {result['steps']} steps; each row's \"of ceiling\" is "
        f"at its own steps. Median of {result['runs']} runs, warm-up excluded. \"Max diff vs eager\": "
        f"16-bit noise at most for compiled; deepcache, tiny-vae and fewer-steps change "
        f"the image, and it shows how far.",
        "",
        "| variant | compile | dtype | steps | batch | images/s | s/image | peak GiB | of ceiling | warm-up s "
        "| max diff vs eager (/255) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["results"]:
        def show(value, fmt="{}"):
            return "n/a" if value is None else fmt.format(value)
        variant = f"{row['variant']} ({row['setting']})" if row["setting"] else row["variant"]
        lines.append(
            f"| {variant} | {row['compile_mode'] or '-'} | {row['dtype']} | {row['steps']} | {row['batch_size']} "
            f"| {row['images_per_s']:.3f} | {row['seconds_per_image']:.4f} | {show(row['peak_memory_gb'])} "
            f"| {show(row['fraction_of_ceiling'], '{:.1%}')} | {row['warmup_s']:.2f} "
            f"| {show(row['max_pixel_diff_vs_eager'])} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=("sd15", "sdxl", "tiny"), default="sd15")
    parser.add_argument("--device", choices=("auto", "cuda", "mps", "cpu"), default="auto")
    parser.add_argument("--batch-sizes", default="1,4,8,16", type=_int_list)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--fewer-steps", type=int, default=15, help="the steps of variant fewer-steps")
    parser.add_argument("--deepcache-interval", type=int, default=3,
                        help=f"variant deepcache runs the whole UNet every this many steps (2 to {MAX_INTERVAL})")
    parser.add_argument("--size", type=int, default=None, help="square side in pixels (default per arch)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure; the median is reported")
    parser.add_argument("--variants", default=",".join(VARIANTS), type=lambda text: text.split(","),
                        help=f"any of {','.join(VARIANTS)}; \"max diff vs eager\" needs eager among them")
    parser.add_argument("--compile-modes", default=COMPILE_MODE, type=lambda text: text.split(","),
                        help="torch.compile modes to compare, e.g. max-autotune-no-cudagraphs,max-autotune")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's 16-bit peak")
    parser.add_argument("--flops-only", action="store_true",
                        help="print the UNet FLOPs and the ceiling (at --peak-tflops, else H100) and stop")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    if args.size is not None and args.size % 8:
        parser.error(f"`--size` must be a multiple of 8, got {args.size}")
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"`--variants` must name {', '.join(VARIANTS)}, got {sorted(unknown)}")
    if "fewer-steps" in args.variants and not 1 <= args.fewer_steps < args.steps and not args.flops_only:
        parser.error(f"`--fewer-steps` must be from 1 to `--steps` - 1 ({args.steps - 1}), got {args.fewer_steps}"
                     " (or leave fewer-steps out of `--variants`)")
    if "deepcache" in args.variants and not 2 <= args.deepcache_interval <= MAX_INTERVAL:
        parser.error(f"`--deepcache-interval` must be from 2 to {MAX_INTERVAL}, got {args.deepcache_interval}")
    return args


def _significant(value: float) -> float:
    return float(f"{value:.4g}")  # four significant digits, however small the figure


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message="invalid value encountered in cast")  # random weights
    if args.flops_only:
        size = args.size or DEFAULT_SIZE[args.arch]
        flops = unet_step_flops(args.arch, size)
        peak = args.peak_tflops or PEAK_TFLOPS["H100"]
        cached = unet_step_flops(args.arch, size, deepcache_cached=True)
        interval = args.deepcache_interval
        print(f"{args.arch} {size}x{size}: one guided UNet step {flops / 1e12:.4g} TFLOP per image; "
              f"ceiling at {peak:g} TFLOP/s and {args.steps} steps: {peak * 1e12 / (flops * args.steps):.4g} images/s")
        print(f"DeepCache: a cached step {cached / 1e12:.4g} TFLOP ({cached / flops:.1%} of a full one); at interval "
              f"{interval} the UNet does {interval * flops / (flops + (interval - 1) * cached):.2f}x fewer FLOPs")
        unet_bytes = unet_step_activation_bytes(args.arch, size)
        decode = vae_decode_activation_bytes(args.arch, size)
        tiny_decode = vae_decode_activation_bytes(args.arch, size, tiny_vae=True)
        print(f"Peak bf16 activations per image: guided UNet step {unet_bytes / 2**20:.0f} MiB; VAE decode "
              f"{decode / 2**20:.0f} MiB ({decode / (size * size):.0f} bytes per output pixel); tiny VAE (TAESD) "
              f"decode {tiny_decode / 2**20:.0f} MiB ({tiny_decode / (size * size):.0f} bytes per pixel)")
        return {"unet_step_flops": flops, "deepcache_cached_step_flops": cached,
                "unet_step_activation_bytes": unet_bytes, "vae_decode_activation_bytes": decode,
                "tiny_vae_decode_activation_bytes": tiny_decode}
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"gpu_throughput-{result['arch']}-{result['size']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()

"""The tiny offline Stable Diffusion: real diffusers classes, random weights, no download.

Tests and the local demo run exactly the code path a real model runs (tokenizer, text
encoder, UNet, VAE, scheduler, the diffusers pipelines) in a few hundredths of a second
per 64 px image on a CPU (docs/performance.md). Its weights are random, so its images are noise: that is expected.

The recipe mirrors real SD 1.5 where it matters to our code: latents have 4 channels,
the VAE has four levels so its scale factor is 8 (a 512 px image is 64 latent pixels),
and the tokenizer is a byte-level CLIP BPE that reads 77 tokens. Bump `TINY_REVISION` (in
imagegen.generation.families) whenever the recipe changes, because manifests record it and
seeds stop reproducing.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderTiny,
    DPMSolverMultistepScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from imagegen.generation import families

TINY_MODEL_ID = families.TINY_MODEL_ID  # one name and revision, read by torch-free code too
TINY_REVISION = families.TINY_REVISION
TINY_SEED = 0
MAX_TOKENS = 77  # CLIP's context, as in every SD 1.x/2.x/XL text encoder

# Words a prompt commonly holds get one token each, so a typical prompt costs about as
# many tokens as it would with the real CLIP vocabulary and truncation warnings fire for
# the same prompts. Anything else falls back to one token per byte.
COMMON_WORDS = (
    "a an the of and with in on at by for from to is as or"
    " photo photograph portrait painting drawing illustration render sketch poster"
    " cat dog bird horse person man woman child car house tree flower mountain city"
    " sky sea ocean river forest street room table chair shoe sneaker cup bottle"
    " red orange yellow green blue purple pink black white gray grey brown gold silver"
    " light lighting studio sunset sunrise night day morning evening soft hard warm cold"
    " dark bright high low detailed detail quality resolution sharp focus blurry blur"
    " style art artist digital oil watercolor cinematic realistic photorealistic"
    " background foreground close up wide angle shot view lens camera film"
    " beautiful old new small big large tiny huge happy sad modern vintage"
    " ugly deformed bad worst text watermark logo signature"
).split()


def build_tiny_pipeline() -> StableDiffusionPipeline:
    """A freshly built tiny SD pipeline; the same weights every time (fixed torch seed).

    The global torch RNG (CPU and CUDA) is forked, so building the model does not change
    any random numbers the caller draws afterwards.
    """
    tokenizer = build_tokenizer()
    with torch.random.fork_rng():
        torch.manual_seed(TINY_SEED)
        unet = _build_unet()
        vae = _build_vae()
        text_encoder = _build_text_encoder(len(tokenizer))
    # SD 1.5's noise schedule, so every scheduler built `from_config` of it behaves as
    # it would with the real model.
    scheduler = DPMSolverMultistepScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        num_train_timesteps=1000, steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,  # our own moderation runs after generation (imagegen.checks.safety)
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --- components --------------------------------------------------------------------


def _build_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )


def _build_vae() -> AutoencoderKL:
    # Four levels, like SD's VAE, so pixels / latents = 2 ** 3 = 8.
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
    )


def build_tiny_autoencoder() -> AutoencoderTiny:
    """The tiny model's stand-in for TAESD (`speedups.tiny_vae`): diffusers' AutoencoderTiny
    with 8 channels and one block per level, random fixed weights. Three upsamplings, so
    its scale factor is 8 like the model's own VAE. Forks the RNG as the pipeline does."""
    with torch.random.fork_rng():
        torch.manual_seed(TINY_SEED)
        return AutoencoderTiny(
            encoder_block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 8, 8, 8),
            num_encoder_blocks=(1, 1, 1, 1),
            num_decoder_blocks=(1, 1, 1, 1),
            latent_channels=4,
        ).eval()


def _build_text_encoder(vocab_size: int) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_TOKENS,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )
    return CLIPTextModel(config).eval()


# --- tokenizer ---------------------------------------------------------------------


def byte_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from the 256 byte values to printable characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def build_tokenizer() -> CLIPTokenizer:
    """A CLIP BPE tokenizer over all 256 bytes plus whole-word merges for `COMMON_WORDS`.

    Built in memory from a vocabulary written here: no files, no download.
    """
    symbols = list(byte_to_unicode().values())
    vocab: dict[str, int] = {}
    for token in symbols + [s + "</w>" for s in symbols]:
        vocab[token] = len(vocab)
    merges: list[tuple[str, str]] = []
    for word in COMMON_WORDS:
        # Merge the word left to right: "cat" -> ("c", "a"), ("ca", "t</w>").
        _add_merges(list(word[:-1]) + [word[-1] + "</w>"], vocab, merges)
    # BPE applies merges by rank across words, so another word's merge ("d"+"i" from
    # "digital") can split one ("stu" "di" "o" for "studio"): join such pieces too.
    for _ in range(3):
        tokenizer = _tokenizer(vocab, merges)
        split = [tokenizer.tokenize(word) for word in COMMON_WORDS]
        split = [pieces for pieces in split if len(pieces) > 1]
        if not split:
            break
        for pieces in split:
            _add_merges(pieces, vocab, merges)
    return _tokenizer(vocab, merges)


def _add_merges(pieces: list[str], vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    merged = pieces[0]
    for piece in pieces[1:]:
        pair = (merged, piece)
        merged += piece
        if pair not in merges:
            merges.append(pair)
        vocab.setdefault(merged, len(vocab))


def _tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]]) -> CLIPTokenizer:
    # The special tokens come last, after every merged token, as in CLIP's vocabulary.
    ids = dict(vocab)
    ids["<|startoftext|>"] = len(ids)
    ids["<|endoftext|>"] = len(ids)
    # transformers annotates `merges` as list[str]; the tokenizers BPE it is passed to takes pairs.
    return CLIPTokenizer(vocab=ids, merges=list(merges), model_max_length=MAX_TOKENS)  # type: ignore[arg-type]

"""Tiny random pipelines of every family, built here, offline: SDXL, SD 3 and FLUX.1.

The same classes and component layout as the real models (SDXL: two CLIP text encoders
and a `text_time` UNet; SD 3: CLIP x2 + T5 + `SD3Transformer2DModel`; FLUX.1: CLIP + T5 +
`FluxTransformer2DModel`; both with 16-channel latents, a VAE that scales by 8 and a
flow-matching scheduler), at the sizes of the diffusers test suite's `get_dummy_components`,
so a 64 px image takes hundredths of a second on a CPU. The tokenizers are built in memory
too: the tiny model's CLIP BPE (imagegen.generation.tiny_model) and a T5 Unigram tokenizer
over the same common words, which `save_pretrained` writes as `tokenizer.json` (no
sentencepiece, no download).

`save_family(name, folder)` writes one as a model folder (`save_pretrained`), which is what
the engine and the app load.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderTiny,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel, T5Tokenizer

from imagegen.generation.tiny_model import COMMON_WORDS, build_tiny_pipeline, build_tokenizer

FAMILY_BUILDERS = ("sd1", "sdxl", "sd3", "flux", "flux-schnell")


def t5_tokenizer(max_tokens: int = 512) -> T5Tokenizer:
    """A T5 Unigram tokenizer: one token per common word (with T5's `▁` word start), else one
    per character, then `</s>`. T5's ids: <pad> 0, </s> 1, <unk> 2."""
    vocab: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    for word in dict.fromkeys(COMMON_WORDS):
        vocab.append(("▁" + word, -1.0))
    for char in string.ascii_letters + string.digits + string.punctuation:
        vocab += [(char, -5.0), ("▁" + char, -5.5)]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=max_tokens)


def _clip_config(vocab_size: int, **more) -> CLIPTextConfig:
    return CLIPTextConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                          vocab_size=vocab_size, max_position_embeddings=77, bos_token_id=vocab_size - 2,
                          eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1, **more)


def _t5_encoder(vocab_size: int, width: int) -> T5EncoderModel:
    return T5EncoderModel(T5Config(vocab_size=vocab_size, d_model=width, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                                   relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                                   decoder_start_token_id=0)).eval()


def _vae(latent_channels: int) -> AutoencoderKL:
    # Four levels, so pixels / latents = 8, as in every real model here. SD 3 and FLUX's
    # VAEs have 16 channels, no quant convs, and a shift besides the scale.
    flow = latent_channels == 16
    return AutoencoderKL(
        block_out_channels=(8, 8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=latent_channels, norm_num_groups=4,
        layers_per_block=1, use_quant_conv=not flow, use_post_quant_conv=not flow,
        **(dict(shift_factor=0.0609, scaling_factor=1.5035) if flow else {}),
    )


def tiny_autoencoder(latent_channels: int = 4) -> AutoencoderTiny:
    """A stand-in for TAESD (4 channels: SD, SDXL) or TAESD3 / TAEF1 (16 channels)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                               num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1),
                               latent_channels=latent_channels).eval()


def tiny_sdxl_pipeline() -> StableDiffusionXLPipeline:
    """An SDXL-family pipeline as small as the tiny model (two text encoders, text_time)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        tokenizer = build_tokenizer()
        vocab = len(tokenizer)
        return StableDiffusionXLPipeline(
            unet=UNet2DConditionModel(
                block_out_channels=(32, 64), layers_per_block=1, sample_size=8,
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
                transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,  # 6 * 8 + 32
                cross_attention_dim=64, norm_num_groups=8,
            ),
            vae=_vae(4),
            text_encoder=CLIPTextModel(_clip_config(vocab)),
            text_encoder_2=CLIPTextModelWithProjection(_clip_config(vocab, projection_dim=32)),
            tokenizer=tokenizer, tokenizer_2=tokenizer,
            scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                             steps_offset=1),
        )


def tiny_sd3_pipeline() -> StableDiffusion3Pipeline:
    """An SD 3 pipeline: CLIP x2 (pooled 32 + 32 = 64) and T5 (64 wide) feeding an MMDiT."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        clip = build_tokenizer()
        t5 = t5_tokenizer()
        return StableDiffusion3Pipeline(
            transformer=SD3Transformer2DModel(
                sample_size=8, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=8,
                num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=64, pooled_projection_dim=64,
            ),
            vae=_vae(16),
            text_encoder=CLIPTextModelWithProjection(_clip_config(len(clip), projection_dim=32)),
            text_encoder_2=CLIPTextModelWithProjection(_clip_config(len(clip), projection_dim=32)),
            text_encoder_3=_t5_encoder(len(t5), 64),
            tokenizer=clip, tokenizer_2=clip, tokenizer_3=t5,
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        )


def tiny_flux_pipeline(dev: bool = True) -> FluxPipeline:
    """A FLUX.1 pipeline: CLIP (pooled) + T5 feeding a Flux transformer; `dev` has the
    distilled-guidance embedding, schnell (`dev=False`) has none."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        clip = build_tokenizer()
        t5 = t5_tokenizer(512 if dev else 256)
        return FluxPipeline(
            transformer=FluxTransformer2DModel(
                patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
                num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
                guidance_embeds=dev,
            ),
            vae=_vae(16),
            text_encoder=CLIPTextModel(_clip_config(len(clip), projection_dim=32)),
            text_encoder_2=_t5_encoder(len(t5), 32),
            tokenizer=clip, tokenizer_2=t5,
            # FLUX's own schedule: the shift grows with the image's token count.
            scheduler=FlowMatchEulerDiscreteScheduler(base_image_seq_len=256, base_shift=0.5, max_image_seq_len=4096,
                                                      max_shift=1.15, shift=3.0, use_dynamic_shifting=True),
        )


def build_family(name: str):
    """The tiny pipeline of `name` (one of FAMILY_BUILDERS)."""
    builders = {"sd1": build_tiny_pipeline, "sdxl": tiny_sdxl_pipeline, "sd3": tiny_sd3_pipeline,
                "flux": tiny_flux_pipeline, "flux-schnell": lambda: tiny_flux_pipeline(dev=False)}
    return builders[name]()


def save_family(name: str, folder: Path, *, tiny_vae: bool = False) -> Path:
    """Write the tiny pipeline of `name` as a model folder; with `tiny_vae`, a tiny VAE that
    fits it beside, in `folder`-taesd. Returns the model folder."""
    pipe = build_family(name)
    pipe.save_pretrained(folder)
    if tiny_vae:
        tiny_autoencoder(pipe.vae.config.latent_channels).save_pretrained(f"{folder}-taesd")
    return folder

"""LoRA adapter files: read their safetensors header, check them, and tell which model they fit.

No torch here, and no tensor is read: the HTTP process checks an adapter at submit from the
file's header alone (an 8-byte little-endian length, then that many bytes of JSON naming
each tensor with its dtype, shape and byte range). A file is refused when it is larger than
`IMAGEGEN_MAX_ADAPTER_BYTES`, is not safetensors, holds tensors that are not LoRA weights, or
was made for another model: another family (SDXL's second text encoder, SD 3's joint blocks,
FLUX's single blocks, a UNet's blocks on a transformer model), or a UNet whose
cross-attention reads text features of another width (768 SD 1.x, 1024 SD 2.x, 2048 SDXL),
or whose attention layers have another width than the model's UNet blocks.
`imagegen.generation.engine` applies the adapters that pass with diffusers' adapter API.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Any

from imagegen.generation.families import ModelFacts

SUFFIX = ".safetensors"
# The header of any real LoRA is far below this; a larger one is not worth parsing.
MAX_HEADER_BYTES = 32 * 2**20
# A LoRA weight, in diffusers/PEFT (`lora_A`, `lora_B`), kohya (`lora_down`, `lora_up`, `alpha`)
# or older diffusers (`lora.down`, `lora.up`) spelling; some trainers add the DoRA magnitude.
LORA_KEY = re.compile(r".*(\.lora_[AB](\.[A-Za-z0-9_]+)?\.weight|\.lora_(down|up)\.weight|\.lora\.(down|up)\.weight"
                      r"|\.alpha|\.dora_scale|\.lora_magnitude_vector(\.[A-Za-z0-9_]+)?)")
# The down (A) matrix of a cross-attention key projection: its input width is the text features'.
CROSS_ATTENTION_DOWN = re.compile(r".*attn2[._]to_k(\.lora_A(\.[A-Za-z0-9_]+)?|\.lora_down|\.lora\.down)\.weight")
# The down (A) matrix of a UNet attention projection that reads the block's own features
# (self-attention's q, k, v, cross-attention's q), by where the block is.
BLOCK_DOWN = re.compile(r".*?(down_blocks|up_blocks|mid_block)[._](?:(\d+)[._])?attentions[._]\d+[._].*"
                        r"(attn1[._]to_[qkv]|attn2[._]to_q)(\.lora_A(\.[A-Za-z0-9_]+)?|\.lora_down|\.lora\.down)\.weight")
# Member names by the width their UNet's cross-attention reads.
CONTEXT_FAMILIES = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL"}


class AdapterProblem(ValueError):
    """An adapter that cannot be used: `rule` is the short rule id, the message says why."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class AdapterHeader:
    """What a safetensors file's header says: each tensor's name and shape, and its metadata."""

    shapes: dict[str, tuple[int, ...]]
    metadata: dict[str, str]


def read_header(data: bytes, *, size: int | None = None, max_bytes: int) -> AdapterHeader:
    """The header of a safetensors file from its first bytes (`data`, the whole file or at
    least its header); `size`: the whole file's size when `data` is only its start.
    AdapterProblem for a file too large, not safetensors, or holding tensors that are not LoRA weights."""
    size = len(data) if size is None else size
    if size > max_bytes:
        raise AdapterProblem("adapter_size", f"is {size:,} bytes; the limit is {max_bytes:,} bytes "
                             "(setting `IMAGEGEN_MAX_ADAPTER_BYTES`)")
    if size < 8:
        raise AdapterProblem("adapter_format", f"is not a safetensors file: {size} bytes, too short for its header")
    (length,) = struct.unpack("<Q", data[:8])
    if length < 2 or length > MAX_HEADER_BYTES or 8 + length > size:
        raise AdapterProblem("adapter_format", "is not a safetensors file: its first 8 bytes give no header length "
                             "that fits the file")
    if len(data) < 8 + length:
        raise ValueError(f"read_header needs the first {8 + length:,} bytes, got {len(data):,}")
    try:
        header = json.loads(data[8:8 + length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise AdapterProblem("adapter_format", "is not a safetensors file: its header is not JSON") from None
    if not isinstance(header, dict):
        raise AdapterProblem("adapter_format", "is not a safetensors file: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    shapes: dict[str, tuple[int, ...]] = {}
    for name, entry in header.items():
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(side, int) and side >= 0 for side in shape):
            raise AdapterProblem("adapter_format", f"is not a safetensors file: tensor {name!r} has no shape")
        shapes[name] = tuple(shape)
    if not shapes:
        raise AdapterProblem("adapter_format", "holds no tensors")
    others = [name for name in shapes if not LORA_KEY.fullmatch(name)]
    if others or not any(re.search(r"lora_A|lora_down|lora\.down", name) for name in shapes):
        example = others[0] if others else next(iter(shapes))
        raise AdapterProblem("adapter_format", f"is not a LoRA adapter: tensor {example!r} is not a LoRA weight "
                             "(`...lora_A.weight`, `...lora_down.weight`, `...alpha`)")
    return AdapterHeader(shapes=shapes, metadata={str(k): str(v) for k, v in metadata.items()}
                         if isinstance(metadata, dict) else {})


def header_length(first_eight: bytes) -> int:
    """How many bytes a safetensors file's header takes, its 8-byte length included."""
    if len(first_eight) < 8:
        return 8
    return 8 + min(struct.unpack("<Q", first_eight[:8])[0], MAX_HEADER_BYTES)


def made_for(header: AdapterHeader) -> dict[str, Any]:
    """What the tensors' names and shapes say of the model an adapter was made for: its
    family where the names tell (`sdxl`, `sd3`, `flux`), its denoiser (`unet`, `transformer`,
    or None for a text-encoder-only adapter), and the width its cross-attention reads."""
    names = list(header.shapes)

    def has(*parts: str) -> bool:
        return any(part in name for name in names for part in parts)

    family = None
    if has("single_transformer_blocks", "single_blocks", "double_blocks"):
        family = "flux"
    elif has("joint_blocks", "context_pre_only") or (has("transformer.transformer_blocks") and not has("unet")):
        family = "sd3"
    elif has("text_encoder_2.", "lora_te2_"):
        family = "sdxl"
    denoiser = None
    if family in ("flux", "sd3") or has("transformer."):
        denoiser = "transformer"
    elif has("unet.", "lora_unet_", "down_blocks", "up_blocks", "mid_block"):
        denoiser = "unet"
    widths = {header.shapes[name][-1] for name in names if CROSS_ATTENTION_DOWN.fullmatch(name)
              and len(header.shapes[name]) >= 2}
    return {"family": family, "denoiser": denoiser, "context_dim": max(widths) if widths else None}


def check_fit(header: AdapterHeader, facts: ModelFacts, model: str) -> None:
    """AdapterProblem (rule `adapter_family`) when the adapter was made for another model
    than `facts`' (named `model` in the message)."""
    found = made_for(header)
    family = facts.family
    where = f"model `{model}` is {family.title}"
    if found["family"] is not None and found["family"] != family.name:
        raise AdapterProblem("adapter_family", f"was made for {_title(found['family'])} and {where}")
    if found["denoiser"] is not None and found["denoiser"] != family.denoiser:
        raise AdapterProblem("adapter_family", f"adapts a {found['denoiser']} and {where}, which has a {family.denoiser}")
    width, expected = found["context_dim"], facts.context_dim
    if width is not None and expected is not None and width != expected:
        made = CONTEXT_FAMILIES.get(width, "another model")
        raise AdapterProblem("adapter_family", f"was made for a model whose cross-attention reads {width}-wide text "
                             f"features ({made}) and {where}, which reads {expected}")
    check_shapes(header, facts, model)


def check_shapes(header: AdapterHeader, facts: ModelFacts, model: str) -> None:
    """AdapterProblem (rule `adapter_shape`) when a UNet attention LoRA reads another width
    than the model's block there (`block_out_channels`; up blocks in reverse order)."""
    channels = facts.block_channels
    if channels is None or facts.family.denoiser != "unet":
        return
    for name, shape in header.shapes.items():
        match = BLOCK_DOWN.fullmatch(name)
        if match is None or len(shape) < 2:
            continue
        kind, number = match.group(1), match.group(2)
        if kind == "mid_block":
            expected = channels[-1]
        elif number is None or int(number) >= len(channels):
            raise AdapterProblem("adapter_shape", f"adapts {name!r}, a block model `{model}` does not have "
                                 f"({len(channels)} down and up blocks)")
        else:
            expected = channels[int(number)] if kind == "down_blocks" else channels[::-1][int(number)]
        if shape[-1] != expected:
            raise AdapterProblem("adapter_shape", f"does not fit model `{model}`: {name!r} reads {shape[-1]} features "
                                 f"and that layer of the model has {expected}")


def _title(family: str) -> str:
    return {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL", "sd3": "SD 3", "flux": "FLUX.1"}.get(family, family)

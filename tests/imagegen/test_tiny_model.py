"""The tiny offline model: real diffusers components, reproducible weights, SD's shapes."""

from __future__ import annotations

import torch

from imagegen.generation.tiny_model import MAX_TOKENS, build_tiny_pipeline, build_tokenizer


def test_built_twice_has_identical_weights():
    first, second = build_tiny_pipeline(), build_tiny_pipeline()
    for name in ("unet", "vae", "text_encoder"):
        a, b = getattr(first, name).state_dict(), getattr(second, name).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[key], b[key]) for key in a), name


def test_building_leaves_the_callers_random_numbers_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_pipeline()
    assert torch.equal(torch.rand(3), expected)


def test_has_sd_shapes_vae_factor_8_and_77_tokens():
    pipe = build_tiny_pipeline()
    assert pipe.vae_scale_factor == 8
    assert pipe.unet.config.in_channels == 4
    assert pipe.tokenizer.model_max_length == MAX_TOKENS == 77
    assert pipe.text_encoder.config.vocab_size == len(pipe.tokenizer)


def test_tokenizer_reads_common_words_whole_and_any_text_by_bytes():
    tokenizer = build_tokenizer()
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("a photo of a red sneaker").input_ids)
    assert tokens == ["<|startoftext|>", "a</w>", "photo</w>", "of</w>", "a</w>", "red</w>",
                      "sneaker</w>", "<|endoftext|>"]
    # Unknown words and non-ASCII text never map to the unknown token: byte fallback.
    ids = tokenizer("zyxwv 靴").input_ids
    assert tokenizer.unk_token_id not in ids[1:-1]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "zyxwv 靴"

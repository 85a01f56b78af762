"""scripts/seeded_checkpoint.py: a published architecture, seeded, that ``run --weights`` loads as such."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from verification.release import decoder_zoo

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("seeded_checkpoint", ROOT / "scripts" / "seeded_checkpoint.py")
seeded_checkpoint = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seeded_checkpoint)


def test_the_qwen3_preset_is_the_published_0_6b_config():
    config = seeded_checkpoint.config_of("qwen3-0.6b")
    assert config.model_type == "qwen3"
    published = dict(
        num_hidden_layers=28,
        hidden_size=1024,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        intermediate_size=3072,
        vocab_size=151936,
        tie_word_embeddings=True,
    )
    assert {key: getattr(config, key) for key in published} == published
    theta = getattr(config, "rope_theta", None) or config.rope_parameters["rope_theta"]
    assert theta == 1_000_000.0


def test_a_shrunk_checkpoint_loads_with_its_sizes_and_norms_away_from_one(tmp_path, capsys):
    out = tmp_path / "qwen3"
    code = seeded_checkpoint.main(
        ["qwen3-0.6b", str(out), "--layers", "2", "--hidden", "64", "--intermediate", "96", "--vocab", "128"]
    )
    assert code == 0 and (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    printed = capsys.readouterr().out
    model = decoder_zoo.from_weights(str(out)).hf_model
    count = sum(p.numel() for p in model.parameters())
    assert f"{count:,} parameters" in printed, printed
    c = model.config
    assert (c.model_type, c.num_hidden_layers, c.hidden_size, c.intermediate_size, c.vocab_size) == (
        "qwen3",
        2,
        64,
        96,
        128,
    )
    assert (c.num_attention_heads, c.num_key_value_heads, c.head_dim) == (16, 8, 128)  # kept from the preset
    norms = [p for name, p in model.named_parameters() if "norm" in name]
    assert norms and all(float((p - 1).abs().max()) > 0.1 for p in norms), "a norm scale left at 1"
    assert torch.equal(model.lm_head.weight, model.model.embed_tokens.weight), "embeddings not tied"


@pytest.mark.parametrize("argv", [["qwen3-0.6b", "{out}", "--layers", "0"], ["qwen3-0.6b", "{existing}"]])
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, capsys, argv):
    existing = tmp_path / "existing"
    existing.mkdir()
    out = tmp_path / "new"
    code = seeded_checkpoint.main([a.format(out=out, existing=existing) for a in argv])
    assert code == 2 and not out.exists() and list(existing.iterdir()) == []
    err = capsys.readouterr().err
    assert "expected" in err or "must be a positive integer" in err, err

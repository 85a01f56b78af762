"""Bad input to the decoders: each a ValueError naming what was expected and what came, raised before
anything runs (the cache is left as it was)."""

from __future__ import annotations

import pytest
import torch
import transformers
from decoder_strategies import DecoderSpec, hf_causal_lm, hf_config

import ane_models
from ane_layers.grouped_query_attention import GroupedQueryAttentionANE
from ane_layers.kv_cache import KVCache
from ane_layers.rotary import rope_inverse_frequencies


def spec(family="llama", **overrides) -> DecoderSpec:
    base = dict(
        family=family,
        layers=2,
        hidden=24,
        heads=6,
        kv_heads=2,
        head_dim=8,
        intermediate=40,
        vocab=50,
        max_positions=64,
        rope_theta=10000.0,
        rope_scaling=None,
        eps=1e-6,
        tied=True,
        bias=False,
        seed=3,
    )
    return DecoderSpec(**{**base, **overrides})


@pytest.fixture(scope="module")
def lm():
    return ane_models.optimize(hf_causal_lm(spec()), cache_capacity=16, prefill_length=8)


def token(value=1):
    return torch.tensor([[value]])


def test_position_beyond_the_cache_capacity(lm):
    with pytest.raises(ValueError, match=r"capacity of 16 .*got slots 16\.\.16"):
        lm.decode_step(token(), 16)
    with pytest.raises(ValueError, match=r"capacity of 16 .*got slots 12\.\.19"):
        lm.prefill(torch.ones(1, 8, dtype=torch.long), 12)
    with pytest.raises(ValueError, match=r"16 \(the cache capacity\), got 8 \+ 10 - 1 = 17"):
        ane_models.generate(lm, torch.ones(1, 8, dtype=torch.long), 10)


def test_position_beyond_max_position_embeddings():
    small = ane_models.optimize(hf_causal_lm(spec(max_positions=16)), cache_capacity=32, prefill_length=8)
    with pytest.raises(
        ValueError, match=r"rotary positions in 0\.\.15 \(max_position_embeddings 16\), got 16\.\.16"
    ):
        small.decode_step(token(), 16)
    with pytest.raises(ValueError, match=r"below max_position_embeddings 16, got up to 17"):
        ane_models.generate(small, torch.ones(1, 8, dtype=torch.long), 11)


def test_prompt_longer_than_the_prefill_length(lm):
    with pytest.raises(ValueError, match=r"at most 8 tokens \(the prefill length\), got 9"):
        ane_models.generate(lm, torch.ones(1, 9, dtype=torch.long), 1)
    with pytest.raises(ValueError, match=r"expected 1 to 8 tokens \(the prefill length\), got 9"):
        lm.prefill(torch.ones(1, 9, dtype=torch.long))


def test_empty_prompt(lm):
    with pytest.raises(ValueError, match=r"at least one row and one token .*got shape \(1, 0\)"):
        ane_models.generate(lm, torch.ones(1, 0, dtype=torch.long), 4)
    with pytest.raises(ValueError, match=r"expected 1 to 8 tokens .*got 0"):
        lm.prefill(torch.ones(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"at least one real token per row, got none in rows \[1\]"):
        ane_models.generate(lm, torch.ones(2, 3, dtype=torch.long), 2, torch.tensor([[1, 1, 1], [0, 0, 0]]))


def test_kv_heads_that_do_not_divide_heads():
    hf = hf_causal_lm(spec())
    hf.config.num_key_value_heads = 4  # transformers checks this at build time only
    with pytest.raises(
        ValueError,
        match=r"num_key_value_heads to divide .*num_attention_heads=6, "
        r"num_key_value_heads=4",
    ):
        ane_models.optimize(hf)
    with pytest.raises(ValueError, match=r"num_attention_heads=6, num_key_value_heads=4"):
        GroupedQueryAttentionANE(24, 6, 4, 4)


@pytest.mark.parametrize("rope_type", ["yarn", "dynamic", "longrope"])
def test_unsupported_rope_scaling_is_refused_by_name(rope_type):
    hf = hf_causal_lm(spec())
    hf.config.rope_parameters = {"rope_type": rope_type, "rope_theta": 10000.0, "factor": 2.0}
    if not hasattr(transformers.LlamaConfig(), "rope_parameters"):  # transformers 4.x
        hf.config.rope_scaling = dict(hf.config.rope_parameters)
    with pytest.raises(
        ValueError, match=rf"rope_type one of \['default', 'linear', 'llama3'\], got '{rope_type}'"
    ):
        ane_models.optimize(hf)
    with pytest.raises(ValueError, match=rope_type):
        rope_inverse_frequencies(8, 10000.0, {"type": rope_type, "factor": 2.0})


def test_cache_from_another_model(lm):
    other = KVCache(num_layers=2, batch_size=1, num_kv_heads=3, head_dim=8, capacity=16)
    with pytest.raises(
        ValueError,
        match=r"expected a KVCache of shapes \(\(2, 1, 16, 1, 16\), .*got "
        r"\(\(2, 1, 16, 1, 24\)",
    ):
        lm.model.set_cache(other)
    half_cache = KVCache(
        num_layers=2, batch_size=1, num_kv_heads=2, head_dim=8, capacity=16, dtype=torch.float16
    )
    with pytest.raises(ValueError, match=r"expected dtype torch.float32 \(the model's\), got torch.float16"):
        lm.model.set_cache(half_cache)
    lm.model.reset_cache()
    lm.model.kv_cache = half_cache  # assigned behind the API's back: the next call refuses it
    try:
        with pytest.raises(
            ValueError, match=r"expected dtype torch.float32 \(the model's\), got torch.float16"
        ):
            lm.decode_step(token(), 0)
    finally:
        lm.model.reset_cache(batch_size=1)
        lm.model.kv_cache = KVCache(2, 1, 2, 8, 16)


def test_batch_other_than_the_cache(lm):
    with pytest.raises(ValueError, match=r"expected batch 1 \(the KV cache's.*got shape \(2, 1\)"):
        lm.decode_step(torch.ones(2, 1, dtype=torch.long), 0)


def test_unsupported_architecture_options_are_named():
    qwen2 = hf_causal_lm(spec("qwen2"))
    qwen2.config.use_sliding_window = True
    with pytest.raises(ValueError, match=r"sliding-window attention \(use_sliding_window=True"):
        ane_models.optimize(qwen2)
    llama = hf_causal_lm(spec())
    llama.config.hidden_act = "gelu"
    with pytest.raises(ValueError, match=r"hidden_act='gelu' \(supported: 'silu'\)"):
        ane_models.optimize(llama)
    llama = hf_causal_lm(spec())
    llama.config.num_local_experts = 8
    with pytest.raises(ValueError, match=r"mixture of experts \(num_local_experts=8"):
        ane_models.optimize(llama)


def test_biases_the_family_does_not_have_are_refused():
    qwen2 = hf_causal_lm(spec("qwen2"))
    qwen2.model.layers[0].self_attn.o_proj.bias = torch.nn.Parameter(torch.zeros(24))  # Qwen 2 has none there
    with pytest.raises(ane_models.CheckpointMismatchError, match=r"unexpected keys .*o_proj\.bias"):
        ane_models.optimize(qwen2)


def test_decoder_options_for_an_encoder_are_refused():
    bert = transformers.BertModel(
        transformers.BertConfig(
            hidden_size=8, num_attention_heads=2, num_hidden_layers=1, intermediate_size=8, vocab_size=20
        )
    )
    with pytest.raises(ValueError, match=r"\['cache_capacity'\] apply to decoders .*got a 'bert' model"):
        ane_models.optimize(bert, cache_capacity=8)


def test_capacity_and_prefill_length_are_checked():
    with pytest.raises(ValueError, match=r"prefill_length: expected 1\.\.8 \(the cache capacity\), got 9"):
        ane_models.optimize(hf_causal_lm(spec()), cache_capacity=8, prefill_length=9)
    with pytest.raises(ValueError, match=r"cache_capacity: expected a positive number of slots, got 0"):
        ane_models.optimize(hf_causal_lm(spec()), cache_capacity=0)


def test_bad_input_leaves_the_cache_untouched(lm):
    lm.reset_cache()
    lm.prefill(torch.arange(1, 5)[None], 0)
    before = lm.model.kv_cache.k_cache.clone()
    with pytest.raises(ValueError):
        lm.prefill(torch.ones(1, 8, dtype=torch.long), 12)
    assert torch.equal(before, lm.model.kv_cache.k_cache), "a refused call wrote to the cache"


def test_config_helper_builds_every_family():
    for family in ("llama", "qwen2", "qwen3"):
        assert hf_config(spec(family)).model_type == family


def test_a_checkpoint_missing_weights_is_refused_not_filled_at_random(tmp_path):
    """transformers draws missing weights at random and loads on: a gate would then verify weights nobody
    trained. One layer's query weight dropped from the safetensors file: refused, naming it."""
    from safetensors.torch import load_file, save_file

    from verification.release import decoder_zoo
    from verification.release.model_zoo import ModelInputError

    config = transformers.LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=64,
        tie_word_embeddings=True,
    )
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path / "whole")
    assert decoder_zoo.from_weights(str(tmp_path / "whole")).hf_model is not None  # the control loads
    tensors = load_file(tmp_path / "whole" / "model.safetensors")
    dropped = "model.layers.1.self_attn.q_proj.weight"
    del tensors[dropped]
    (tmp_path / "cut").mkdir()
    save_file(tensors, tmp_path / "cut" / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "cut" / "config.json").write_text((tmp_path / "whole" / "config.json").read_text())
    with pytest.raises(ModelInputError, match=rf"lacks 1 of the model's weights \(e\.g\. {dropped}\)"):
        decoder_zoo.from_weights(str(tmp_path / "cut"))

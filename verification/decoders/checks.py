"""Verification of a converted decoder step by step: logits per step against torch fp32, token agreement of
greedy generation, the two cache forms, and prefill against sequential decoding inside the program.

A stateful program changes with every call, so one output proves little: every decode step is compared.
The per-step comparison is teacher-forced: reference and program see the same tokens (the reference's
greedy ones), so a step's figure measures that step, not an earlier divergence. Free-running greedy
generation is compared separately (first diverging step, agreement).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

import ane_models
from verification.metrics import psnr

TOP_K = 5
# A position where transformers' two most probable tokens are closer than this (in probability) is a
# near-tie: fp16 rounding may legitimately pick the other one, so it never counts against the program.
# Positions at or above it must agree, in fp16 as in fp32.
NEAR_TIE_GAP = 0.1


@dataclass
class StepFigures:
    """Per step (0 = prefill, over every prompt position; then one per decode step): PSNR of the logits
    against the reference, top-5 overlap with the reference's top 5 (0..1), and whether the argmax is
    the reference's greedy token."""

    psnr_db: list = field(default_factory=list)
    top5_overlap: list = field(default_factory=list)
    argmax_agrees: list = field(default_factory=list)
    top2_gap: list = field(default_factory=list)  # transformers' p(top 1) - p(top 2) at each new token
    kl_divergence: list = field(default_factory=list)  # KL(transformers || program), nats, per new token

    @property
    def argmax_agreement(self) -> float:
        return float(np.mean(self.argmax_agrees)) if self.argmax_agrees else float("nan")

    @property
    def near_ties(self) -> list[int]:
        """New-token positions (0 = the prefill's next token) where transformers' top-2 gap is under
        ``NEAR_TIE_GAP``."""
        return [i for i, gap in enumerate(self.top2_gap) if gap < NEAR_TIE_GAP]

    @property
    def confident_agreement(self) -> float:
        """Share of the positions that are not near-ties whose argmax is transformers' token; NaN when
        every position is a near-tie (nothing to judge: the check is then not measured)."""
        ties = set(self.near_ties)
        judged = [agrees for i, agrees in enumerate(self.argmax_agrees) if i not in ties]
        return float(np.mean(judged)) if judged else float("nan")

    @property
    def max_kl_divergence(self) -> float:
        return float(max(self.kl_divergence)) if self.kl_divergence else float("nan")

    @property
    def worst_psnr_db(self) -> float:
        return float(min(self.psnr_db)) if self.psnr_db else float("nan")


def reference_logits(hf_model, prompt: torch.Tensor, new_tokens: int):
    """transformers' greedy continuation (``eos`` ignored) and its logits at every position of prompt +
    continuation, from one forward pass over the whole sequence (teacher forcing)."""
    with torch.no_grad():
        tokens = hf_model.generate(
            prompt, max_new_tokens=new_tokens, do_sample=False, eos_token_id=None, pad_token_id=0
        )
        logits = hf_model(tokens).logits.float()
    return tokens, logits[0]


def top2_gap(logits: torch.Tensor) -> float:
    """p(top 1) - p(top 2) of one position's logits."""
    top = logits.double().softmax(-1).topk(2).values
    return float(top[0] - top[1])


def kl_divergence(reference: torch.Tensor, got: torch.Tensor) -> float:
    """KL(softmax(reference) || softmax(got)) in nats, over one position's vocabulary."""
    log_p, log_q = reference.double().log_softmax(-1), got.double().log_softmax(-1)
    return float((log_p.exp() * (log_p - log_q)).sum())


def is_degenerate(tokens) -> bool:
    """One token repeated over the whole answer (seeded weights typically do this)."""
    tokens = list(tokens)
    return len(tokens) > 1 and len(set(tokens)) == 1


def _top5_overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    top_a = set(a.topk(TOP_K).indices.tolist())
    return len(top_a & set(b.topk(TOP_K).indices.tolist())) / TOP_K


def compare_steps(
    program_lm, tokens: torch.Tensor, reference: torch.Tensor, prompt_length: int
) -> StepFigures:
    """Feed ``tokens`` (1, S + T: prompt then the reference's greedy tokens) to ``program_lm`` (a
    ``CausalLM``): prefill the prompt, then decode the T - 1 tokens that are fed back; compare its
    logits with ``reference`` (S + T, V) step by step."""
    figures = StepFigures()
    program_lm.reset_cache(1)
    s = prompt_length
    logits = program_lm.prefill(tokens[:, :s], 0, None, torch.ones(1, s, dtype=torch.long))[0]
    figures.psnr_db.append(psnr(reference[:s].numpy(), logits.numpy()))
    steps = [logits[-1]]
    for t in range(s, tokens.shape[1] - 1):
        mask = torch.ones(1, t + 1, dtype=torch.long)
        out = program_lm.decode_step(tokens[:, t : t + 1], t, None, mask)[0]
        figures.psnr_db.append(psnr(reference[t].numpy(), out.numpy()))
        steps.append(out)
    for i, out in enumerate(steps):
        expected = reference[s - 1 + i]
        figures.top5_overlap.append(_top5_overlap(expected, out))
        figures.argmax_agrees.append(bool(int(out.argmax()) == int(tokens[0, s + i])))
        figures.top2_gap.append(top2_gap(expected))
        figures.kl_divergence.append(kl_divergence(expected, out))
    return figures


@dataclass(frozen=True)
class TokenAgreement:
    """Free-running greedy generation against the reference's tokens: the step where they first differ
    (None: identical), and the fraction of new tokens equal position by position."""

    new_tokens: int
    first_diverging_step: int | None
    agreement: float
    tokens: tuple


def token_agreement(program_lm, prompt: torch.Tensor, reference_tokens: torch.Tensor) -> TokenAgreement:
    new = reference_tokens.shape[1] - prompt.shape[1]
    got = ane_models.generate(program_lm, prompt, new, eos_token_id=None)
    ours, theirs = got[0, prompt.shape[1] :], reference_tokens[0, prompt.shape[1] :]
    differ = (ours != theirs).nonzero().flatten()
    first = int(differ[0]) if differ.numel() else None
    return TokenAgreement(new, first, float((ours == theirs).float().mean()), tuple(ours.tolist()))


def free_running_agreement(agreement: TokenAgreement, reference_tokens: torch.Tensor, positions: int):
    """Share of the first ``positions`` free-running tokens equal to ``reference_tokens`` (the answer's
    transformers tokens); None when ``positions`` is 0."""
    if positions == 0:
        return None
    ours = torch.tensor(agreement.tokens[:positions])
    return round(float((ours == reference_tokens[:positions]).float().mean()), 4)


def prefill_vs_sequential(program_lm, prompt: torch.Tensor) -> float:
    """PSNR between the prompt's logits from one prefill call and from feeding the prompt one token at a
    time through the decode function (fresh cache each way), over every prompt position."""
    s = prompt.shape[1]
    program_lm.reset_cache(1)
    at_once = program_lm.prefill(prompt, 0, None, torch.ones(1, s, dtype=torch.long))[0]
    program_lm.reset_cache(1)
    one_by_one = torch.stack(
        [
            program_lm.decode_step(prompt[:, t : t + 1], t, None, torch.ones(1, t + 1, dtype=torch.long))[0]
            for t in range(s)
        ]
    )
    return psnr(one_by_one.numpy(), at_once.numpy())

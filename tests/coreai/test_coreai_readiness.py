"""Core AI's Neural Engine authoring rules (verification.coreai.readiness) on small programs built to break
exactly one rule each, and on the project's models: what they pass and the findings they carry."""

import pytest
import torch
from coreai_cases import model_under_test

pytestmark = pytest.mark.coreai

X = torch.randn(1, 8, 1, 32)  # (B, C, 1, S)


def checks_of(module, inputs, precision="fp16"):
    from verification.coreai import convert
    from verification.coreai.readiness import readiness_checks

    return {c.name: c for c in readiness_checks(convert(module.eval(), inputs, precision=precision))}


def failing(checks):
    return sorted(name for name, c in checks.items() if c.passed is False)


class Conv(torch.nn.Module):
    """The ANE form: 1x1 conv over (B, C, 1, S), sequence last, fp16 all through."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 8, 1)

    def forward(self, x):
        return torch.nn.functional.gelu(self.conv(x))


class AneAttention(torch.nn.Module):
    """One head in the ANE layout: scores (B, key, 1, query), mask (1, key, 1, query), softmax over axis 1."""

    def __init__(self, sentinel: float):
        super().__init__()
        key, query = torch.arange(32).view(32, 1), torch.arange(32).view(1, 32)
        mask = torch.where(key > query, sentinel, 0.0)
        self.register_buffer("mask", mask.view(1, 32, 1, 32))

    def forward(self, q, k, v):
        scores = torch.einsum("bchq,bkhc->bkhq", q, k.transpose(1, 3)) + self.mask
        return torch.einsum("bkhq,bchk->bchq", scores.softmax(dim=1), v)


class GpuAttention(torch.nn.Module):
    """The GPU layout: scores (B, H, query, key), mask (1, 1, query, key), softmax over the last axis."""

    def forward(self, q, k, v):
        mask = torch.triu(torch.full((32, 32), -1e4, dtype=q.dtype), diagonal=1)
        return (q @ k.transpose(-1, -2) + mask).softmax(dim=-1) @ v


class Sdpa(torch.nn.Module):
    def forward(self, q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_the_ane_form_passes_every_rule():
    checks = checks_of(Conv(), (X,))
    assert failing(checks) == [], {n: c.describe() for n, c in checks.items()}
    assert all("neural_engine_rules.md" in c.reason for c in checks.values())


def test_fused_sdpa_is_named():
    q = torch.randn(1, 2, 32, 8)
    checks = checks_of(Sdpa(), (q, q, q))
    assert checks["coreai_no_fused_sdpa"].value == 1 and "invoke" in checks["coreai_no_fused_sdpa"].reason


def test_mask_layout_gpu_against_ane():
    q = torch.randn(1, 2, 32, 8)
    assert checks_of(GpuAttention(), (q, q, q))["coreai_mask_layout"].value == 1
    a = torch.randn(1, 8, 1, 32)
    assert checks_of(AneAttention(-4e4), (a, a, a))["coreai_mask_layout"].value == 0


@pytest.mark.parametrize(
    "sentinel, bad", [(-1e4, False), (-4e4, False), (-65504.0, True), (float("-inf"), True)]
)
def test_mask_sentinel_must_be_finite_with_fp16_headroom(sentinel, bad):
    a = torch.randn(1, 8, 1, 32)
    check = checks_of(AneAttention(sentinel), (a, a, a))["coreai_mask_sentinel"]
    assert check.passed is (not bad), check.describe()


def test_fp32_tensors_in_an_fp16_program_and_not_measured_in_fp32():
    class Upcast(Conv):
        def forward(self, x):
            return torch.exp(self.conv(x).float()).half()

    checks = checks_of(Upcast(), (X,))
    assert checks["coreai_fp32_tensors"].value >= 1 and "exp" in checks["coreai_fp32_tensors"].reason
    fp32 = checks_of(Conv(), (X,), precision="fp32")["coreai_fp32_tensors"]
    assert fp32.measured is False and "fp32 program" in fp32.reason


def test_singleton_last_axis_rank_and_linear():
    class Bad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(32, 32)

        def forward(self, x):  # (B, C, 1, S) -> linear over S, then a rank-6 view and a last axis of 1
            y = self.linear(x)
            return y.reshape(1, 2, 4, 1, 4, 8).sum(dim=-1, keepdim=True)

    checks = checks_of(Bad(), (X,))
    assert failing(checks) == ["coreai_linear_ops", "coreai_rank_over_5", "coreai_singleton_last_axis"], {
        n: c.describe() for n, c in checks.items()
    }


class RankView(torch.nn.Module):
    """A view of (1, 8, 1, 32) as a tensor of the given rank (last axis kept wide), then back."""

    def __init__(self, rank: int):
        super().__init__()
        self.shape = {4: (1, 8, 4, 8), 5: (1, 2, 4, 4, 8), 6: (1, 2, 2, 2, 4, 8)}[rank]

    def forward(self, x):
        return (x.reshape(*self.shape) * 2.0).reshape(1, 8, 1, 32)


@pytest.mark.parametrize("rank, flagged", [(4, False), (5, False), (6, True)])
def test_rank_5_is_allowed_and_rank_6_flagged(rank, flagged):
    """The rule is max rank 5: a rank-5 tensor passes, a rank-6 one is counted."""
    check = checks_of(RankView(rank), (X,))["coreai_rank_over_5"]
    assert check.passed is (not flagged), f"rank {rank}: {check.describe()}"
    assert (check.value > 0) is flagged, f"rank {rank}: {check.value} ops flagged ({check.describe()})"


def test_the_projects_models_against_core_ais_rules(coreai_converted):
    """The ANE DistilBERT keeps every attention rule; the transformers baseline breaks three. In the coreml
    layout (the default) its padding mask is in the model's dtype (no fp32 tensor in the fp16 program) but
    shaped (B, key, 1, 1), and the embedding gather's (B, S, 1) index too: singleton last axes, kept for
    the Core ML copy limits. The coreai layout (ane_models.set_layout) breaks no rule."""
    from verification.coreai.readiness import readiness_checks

    ane = {c.name: c for c in readiness_checks(coreai_converted("distilbert-Model", "fp16"))}
    assert failing(ane) == ["coreai_singleton_last_axis"], {n: c.describe() for n, c in ane.items()}
    assert ane["coreai_fp32_tensors"].value == 0
    baseline = {c.name: c for c in readiness_checks(coreai_converted("baseline-distilbert-Model", "fp16"))}
    assert {"coreai_mask_layout", "coreai_mask_sentinel", "coreai_linear_ops"} <= set(failing(baseline))
    _ = model_under_test  # the models come from coreai_cases through the fixture


@pytest.mark.parametrize(
    "model_id",
    [
        "distilbert-ForSequenceClassification",
        "distilbert-ForMultipleChoice",
        "bert-ForSequenceClassification",
        "roberta-ForSequenceClassification",
        "roberta-ForMultipleChoice",
        "reference-Transformer",
    ],
)
def test_the_coreai_layout_breaks_no_core_ai_rule(model_id):
    """Every first-token head kind, RoBERTa's position count and the reference's three masks, fp16."""
    import copy

    from ane_models import set_layout

    model, inputs = model_under_test(model_id)
    checks = checks_of(set_layout(copy.deepcopy(model), "coreai"), inputs)
    assert failing(checks) == [], {n: c.describe() for n, c in checks.items() if c.passed is False}

"""Core AI's ExportedProgram NaN/Inf validator beside the project's fp16 hazard finder: where they agree,
and the case where they disagree for a real reason (a finfo(float32).min mask)."""

import asyncio

import pytest
import torch
from coreai_cases import model_under_test
from tiny_models import input_dict

pytestmark = [pytest.mark.coreai, pytest.mark.coreml]


class FinfoMinMask(torch.nn.Module):
    """transformers 4.x's additive mask: (1 - mask) * finfo(float32).min, then a softmax."""

    def forward(self, x, mask):
        return (x + (1.0 - mask.to(x.dtype)) * torch.finfo(torch.float32).min).softmax(-1)


class Overflow(torch.nn.Module):
    """Scores scaled past fp16's 65504: Inf in any fp16 arithmetic."""

    def forward(self, x, mask):
        return x * 7e4 + mask.to(x.dtype)


def inputs():
    generator = torch.Generator().manual_seed(3)
    mask = torch.ones(2, 8)
    mask[1, 5:] = 0
    return torch.randn(2, 8, generator=generator) + 0.5, mask


def opinion(model, example):
    from verification.coreai import export
    from verification.coreai.validator import second_opinion
    from verification.coreml import convert
    from verification.mil.hazards import find_hazards

    mlmodel = convert(model, example, precision="fp16")
    hazards = find_hazards(mlmodel, input_dict(mlmodel, example))
    exported, program_inputs = export(model, example, precision="fp16")
    return second_opinion(exported, program_inputs, hazards), hazards


def test_both_clean_on_the_ane_distilbert():
    model, example = model_under_test("distilbert-Model")
    result, hazards = opinion(model, example)
    assert hazards.first_non_finite is None and result.coreai.nan == result.coreai.inf == []
    check = result.check()
    assert check.passed and check.value == 0 and check.reason == "both clean"


def test_both_see_an_overflow():
    result, hazards = opinion(Overflow(), inputs())
    assert hazards.first_non_finite is not None and result.coreai.inf, result
    assert result.check().passed, result.check().describe()


def test_they_disagree_on_a_finfo_min_mask_and_say_why():
    """The MIL program stores finfo(float32).min in fp16 as -inf, and 0 * -inf is NaN at every kept key;
    torch's fp16 CPU kernel multiplies by the scalar in fp32 and rounds once: -inf only where masked, and
    the softmax turns that into a clean 0. Not a false alarm on either side: the ANE stores fp16 literals."""
    result, hazards = opinion(FinfoMinMask(), inputs())
    assert hazards.first_non_finite.op_type == "mul" and hazards.first_non_finite.nan_count > 0
    assert result.coreai.nan == [] and result.coreai.inf[:1] == ["mul"], result.coreai
    check = result.check()
    assert check.passed is False and check.value == 1
    assert "torch's fp16 run has Inf only (first at mul, aten.mul.Tensor)" in check.reason, check.reason


def test_a_validator_object_answers_a_second_check_with_the_first_checks_result():
    """Why verification.coreai.validator builds a new validator per check (coreai-torch 0.4.3)."""
    from verification.coreai import export
    from verification.coreai.validator import _new_validator, non_finite_nodes

    exported, program_inputs = export(FinfoMinMask(), inputs(), precision="fp16")
    reused = _new_validator(exported)

    async def twice():
        infs = await reused.check_for_infs(program_inputs)
        nans = await reused.check_for_nans(program_inputs)
        return infs, nans

    infs, nans = asyncio.run(twice())
    assert [n.name for n in infs.failed_nodes] == ["mul", "add"]
    assert [n.name for n in nans.failed_nodes] == ["mul", "add"], "the reused object's NaN answer"
    fresh = non_finite_nodes(exported, program_inputs)
    assert fresh.nan == [] and fresh.inf == ["mul", "add"]

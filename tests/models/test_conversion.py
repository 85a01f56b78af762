"""Conversion smoke test: one tiny model per family converts (trace, fp32 ML Program) and its MIL
program has no infinite constant anywhere and the fp16-safe eps in every layer_norm. Parity through an
executor is checked elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from model_strategies import hf_class

import ane_models

pytest.importorskip("coremltools")
from verification.coreml.convert import convert  # noqa: E402

CASES = [
    ("distilbert", "Model"),
    ("bert", "ForMultipleChoice"),  # (B, num_choices, S) inputs and token types
    ("roberta", "Model"),  # position ids by cumsum of the non-padding tokens
]


def tiny_config(family: str):
    common = dict(vocab_size=60, max_position_embeddings=32)
    if family == "distilbert":
        return transformers.DistilBertConfig(dim=16, n_heads=2, n_layers=1, hidden_dim=24, **common)
    config_class = transformers.BertConfig if family == "bert" else transformers.RobertaConfig
    return config_class(hidden_size=16, num_attention_heads=2, num_hidden_layers=1, intermediate_size=24,
                        **common)


@pytest.mark.coreml
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning", "ignore::FutureWarning")
@pytest.mark.parametrize(("family", "head"), CASES)
def test_tiny_model_converts_without_infinities(family, head):
    torch.manual_seed(0)
    ane = ane_models.optimize(hf_class(family, head)(tiny_config(family)).eval())
    shape = (1, 2, 8) if head == "ForMultipleChoice" else (1, 8)
    ids = torch.randint(3, 60, shape, dtype=torch.int32)
    mask = torch.ones_like(ids)
    mask[..., 6:] = 0
    inputs = (ids, mask) if family == "distilbert" else (ids, mask, torch.zeros_like(ids))

    program = convert(ane, inputs, precision="fp32")._mil_program

    operations = list(program.functions["main"].operations)
    infinite = []
    for op in operations:
        value = op.outputs[0].val if op.op_type == "const" else None
        if value is not None and np.issubdtype(np.asarray(value).dtype, np.floating):
            if not np.isfinite(np.asarray(value)).all():
                infinite.append(op.name)
    assert not infinite, f"{family}/{head}: constants with Inf/NaN in the MIL program: {infinite}"
    # coremltools' torch frontend maps rsqrt to MIL rsqrt, whose own epsilon (1e-12) adds to ours.
    expected = ane.ane_config.layer_norm_eps + 1e-12
    epsilons = [float(op.epsilon.val) for op in operations if op.op_type == "layer_norm"]
    assert epsilons and np.allclose(epsilons, expected, rtol=1e-6, atol=0), (
        f"{family}/{head}: layer_norm epsilons {epsilons}, expected {expected}")
    if family == "roberta":
        assert "cumsum" in {op.op_type for op in operations}

"""A torch.nn two-layer MLP beside FeedForwardANE."""

from __future__ import annotations

from torch import nn

from ane_layers import porting

from .. import strategies as s
from ..baselines import torch_activation
from .registry import Case, LayerPair, drawn_cases, hidden_states, randomize_parameters, register, run_bc1s


def _feed_forward_cases(scales=s.INPUT_SCALES):
    return drawn_cases(scales=scales, masks=False, options={"activation": s.activations()})


def _torch_mlp(c: Case) -> nn.Module:
    act = torch_activation(c.options["activation"])
    return randomize_parameters(
        nn.Sequential(nn.Linear(c.dims.embed, c.dims.ffn), act, nn.Linear(c.dims.ffn, c.dims.embed)), c.seed
    )


register(
    LayerPair(
        name="feed_forward",
        ane_layer="FeedForwardANE",
        baseline="torch.nn.Sequential(Linear, ReLU|GELU|GELU(tanh), Linear)",
        cases=_feed_forward_cases,
        make_baseline=_torch_mlp,
        transfer=lambda base, c: porting.from_feed_forward(base),
        inputs=lambda c: {"x": hidden_states(c)},
        run_baseline=lambda m, i: m(i["x"]),
        run_ane=lambda m, i: run_bc1s(m, i["x"]),
    )
)

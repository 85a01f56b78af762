"""torch.nn.LayerNorm beside LayerNormANE (normalised over the channel axis)."""

from __future__ import annotations

from torch import nn

from ane_layers import porting

from .. import strategies as s
from .registry import LayerPair, drawn_cases, hidden_states, randomize_parameters, register, run_bc1s


def _layer_norm_cases(scales=s.INPUT_SCALES):
    return drawn_cases(scales=scales, masks=False, options={"eps": s.layer_norm_eps()})


register(
    LayerPair(
        name="layer_norm",
        ane_layer="LayerNormANE",
        baseline="torch.nn.LayerNorm",
        cases=_layer_norm_cases,
        make_baseline=lambda c: randomize_parameters(
            nn.LayerNorm(c.dims.embed, eps=c.options["eps"]), c.seed
        ),
        transfer=lambda base, c: porting.from_layer_norm(base),
        inputs=lambda c: {"x": hidden_states(c)},
        run_baseline=lambda m, i: m(i["x"]),
        run_ane=lambda m, i: run_bc1s(m, i["x"]),
    )
)

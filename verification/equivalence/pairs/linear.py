"""torch.nn.Linear beside LinearANE (a 1x1 Conv2d)."""

from __future__ import annotations

from hypothesis import strategies as st
from torch import nn

from ane_layers import porting

from .. import strategies as s
from .registry import LayerPair, drawn_cases, hidden_states, randomize_parameters, register, run_bc1s


def _linear_cases(scales=s.INPUT_SCALES):
    return drawn_cases(
        scales=scales, masks=False, options={"out_features": st.integers(1, 300), "bias": st.booleans()}
    )


register(
    LayerPair(
        name="linear",
        ane_layer="LinearANE",
        baseline="torch.nn.Linear",
        cases=_linear_cases,
        make_baseline=lambda c: randomize_parameters(
            nn.Linear(c.dims.embed, c.options["out_features"], bias=c.options["bias"]), c.seed
        ),
        transfer=lambda base, c: porting.from_linear(base),
        inputs=lambda c: {"x": hidden_states(c)},
        run_baseline=lambda m, i: m(i["x"]),
        run_ane=lambda m, i: run_bc1s(m, i["x"]),
    )
)

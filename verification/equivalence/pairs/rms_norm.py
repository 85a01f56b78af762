"""transformers' LlamaRMSNorm beside RMSNormANE (normalised over the channel axis)."""

from __future__ import annotations

from hypothesis import strategies as st

from ane_layers import decoder_porting

from .. import strategies as s
from .registry import LayerPair, drawn_cases, hidden_states, randomize_parameters, register, run_bc1s


def _rms_norm_cases(scales=s.INPUT_SCALES):
    return drawn_cases(scales=scales, masks=False, options={"eps": st.sampled_from([1e-6, 1e-5, 1e-3])})


def _llama_rms_norm(c):
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    return randomize_parameters(LlamaRMSNorm(c.dims.embed, eps=c.options["eps"]), c.seed)


register(
    LayerPair(
        name="rms_norm",
        ane_layer="RMSNormANE",
        baseline="transformers LlamaRMSNorm",
        cases=_rms_norm_cases,
        make_baseline=_llama_rms_norm,
        transfer=lambda base, c: decoder_porting.from_llama_rms_norm(base),
        inputs=lambda c: {"x": hidden_states(c)},
        run_baseline=lambda m, i: m(i["x"]),
        run_ane=lambda m, i: run_bc1s(m, i["x"]),
    )
)

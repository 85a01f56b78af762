"""Which layer (torch module path) each weight of a converted program belongs to: the names recipes, the
sensitivity ranking and the mixed recipe it writes use.

coremltools carries each op's torch scope into the program (``verification.coreml.scopes``), but a scope
can name a parent module: the query projection's conv carries its attention block's scope, because
coremltools folds the attention's 1/sqrt(head dim) multiply into that conv's weight. Given the torch
model, each weight is named after the module of the torch parameter it holds (``compare.map_weights``:
by scope and content, by content, or as a scaled copy), so the query projection is ``...self_attn.q_proj``;
without the torch model, the scope is the name.

A recipe layer names a module and every weight under it (``backbone.layers.4`` covers that encoder layer,
``backbone.layers.4.ffn.fc1`` one weight); the most specific name wins. A MIL op name names one op.
"""

from __future__ import annotations

from ..coreml.scopes import op_modules
from .weights import weights

__all__ = ["weight_layers"]


def weight_layers(mlmodel, model=None) -> dict[str, str]:
    """Weight-carrying op name -> the module path of its weight (see the module docstring); ops with no
    known origin are left out."""
    layers = {op: path for op, path in op_modules(mlmodel).items() if path}
    if model is None:
        return {w.op: layers[w.op] for w in weights(mlmodel) if w.op in layers}
    from .compare import map_weights

    mapping = map_weights(model, mlmodel, mlmodel, include_dense=True)
    for (op, _), parameter in mapping.parameters.items():
        layers[op] = parameter.rsplit(".", 1)[0] if "." in parameter else ""
    return {w.op: layers[w.op] for w in weights(mlmodel) if layers.get(w.op)}

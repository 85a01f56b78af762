"""The converted program's parity per layer: each layer's output inside the program (run by the MIL
reference executor) against the same layer's output in torch, so a loss is located in the model.

A layer's output inside the program is found from the op -> torch module map the conversion records
(``verification.coreml.scopes``): among the ops that come from the module (or its submodules), the
outputs that an op from outside it reads, or that the function returns; the last of them in program order
with the torch output's shape. The torch side is a forward hook on the same module (its first tensor output
when it returns a tuple).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from verification.metrics import psnr

from .executor import MILExecutor


@dataclass(frozen=True)
class LayerParity:
    """One layer: ``module`` (torch path), the program op whose output is the layer's (name, type,
    position), the output's shape, and its PSNR and max abs error against torch."""

    module: str
    op: str
    op_type: str
    position: int
    shape: tuple
    psnr_db: float
    max_abs_error: float

    def to_dict(self) -> dict:
        return {
            "layer": self.module,
            "op": self.op,
            "op_type": self.op_type,
            "position": self.position,
            "shape": list(self.shape),
            "psnr_db": self.psnr_db,
            "max_abs_error": self.max_abs_error,
        }


def _inside(path: str | None, module: str) -> bool:
    return path is not None and (path == module or path.startswith(module + ".") or module == "")


def default_layers(model: torch.nn.Module, modules: dict) -> list[str]:
    """The layers worth a figure: every element of an ``nn.ModuleList`` (the transformer layers) and every
    module named ``embeddings``, among those the program's ops come from, in program order."""
    named = dict(model.named_modules())
    candidates = []
    for path, module in named.items():
        if isinstance(module, torch.nn.ModuleList):
            candidates += [f"{path}.{name}" if path else name for name, _ in module.named_children()]
        elif path.rsplit(".", 1)[-1] == "embeddings":
            candidates.append(path)
    order = {}
    for position, path in enumerate(modules.values()):
        for candidate in candidates:
            if candidate not in order and _inside(path, candidate):
                order[candidate] = position
    return sorted(order, key=order.get)


def _boundary_outputs(function, modules: dict, layer: str) -> list:
    """(position, op, output var) for the layer's outputs read from outside it, in program order."""
    readers: dict = {}
    for op in function.operations:
        for value in op.inputs.values():
            for var in value if isinstance(value, (list, tuple)) else [value]:
                readers.setdefault(var.name, []).append(op.name)
    returned = {var.name for var in function.outputs}
    found = []
    for position, op in enumerate(function.operations):
        if op.op_type == "const" or not _inside(modules.get(op.name), layer):
            continue
        for var in op.outputs:
            outside = any(not _inside(modules.get(r), layer) for r in readers.get(var.name, ()))
            if outside or var.name in returned:
                found.append((position, op, var))
    return found


def _torch_outputs(model, torch_inputs, layers) -> dict:
    named = dict(model.named_modules())
    captured: dict = {}
    hooks = []
    for layer in layers:

        def keep(_module, _inputs, output, layer=layer):
            first = output[0] if isinstance(output, (tuple, list)) else output
            if isinstance(first, torch.Tensor):
                captured[layer] = first.detach().double()

        hooks.append(named[layer].register_forward_hook(keep))
    try:
        with torch.no_grad():
            model.eval()(*torch_inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def program_layer_parity(
    program,
    inputs: dict,
    model: torch.nn.Module,
    torch_inputs: tuple,
    *,
    layers: list[str] | None = None,
    mode: str | None = None,
    modules: dict | None = None,
) -> list[LayerParity]:
    """Per-layer PSNR of ``program`` (an .mlpackage path, MLModel or MIL Program converted from
    ``model``) run on ``inputs`` (name -> array) against ``model(*torch_inputs)`` in torch.

    ``layers``: torch module paths (default ``default_layers``); ``mode``: the executor mode (default: fp16
    storage for an fp16 program); ``modules``: op name -> module path (default: what the program records,
    ``verification.coreml.scopes.op_modules``). A layer the program has no op for, or whose output has no
    op of the torch output's shape, raises ``ValueError`` naming it."""
    from verification.coreml.scopes import op_modules

    executor = MILExecutor(program, mode=mode)
    modules = op_modules(program) if modules is None else modules
    if not modules:
        raise ValueError(
            "program_layer_parity: the program records no op -> torch module map; convert it with "
            "verification.coreml.convert (or pass modules=)"
        )
    layers = default_layers(model, modules) if layers is None else list(layers)
    reference = _torch_outputs(model, torch_inputs, layers)
    values = executor.run_all_intermediates(inputs)
    results = []
    for layer in layers:
        if layer not in reference:
            raise ValueError(f"program_layer_parity: torch module {layer!r} returned no tensor (or none ran)")
        expected = reference[layer]
        shape = tuple(expected.shape)
        boundary = [
            (position, op, var)
            for position, op, var in _boundary_outputs(executor.function, modules, layer)
            if var.name in values and tuple(np.shape(values[var.name])) == shape
        ]
        if not boundary:
            raise ValueError(
                f"program_layer_parity: no op of layer {layer!r} outputs a {shape} tensor read outside it"
            )
        position, op, var = boundary[-1]
        got = torch.from_numpy(np.asarray(values[var.name]).astype(np.float64))
        error = float((got - expected).abs().max()) if got.numel() else 0.0
        results.append(
            LayerParity(layer, op.name, op.op_type, position, shape, float(psnr(expected, got)), error)
        )
    return results

"""Conversion of torch modules to Core ML ML Programs with the project's pass pipeline."""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Sequence

import coremltools as ct
import numpy as np
import torch

from . import fp16_range, passes, program_cache, scopes, torch_ops  # noqa: F401 (torch_ops registers)
from .package import load

fp16_range.install()  # coremltools' fp16 range check, in bounded memory (fp16_range.py)

STATE_TARGET = ct.target.iOS18  # Core ML state (read_state / coreml_update_state) came with iOS 18
PRECISIONS = {"fp16": ct.precision.FLOAT16, "fp32": ct.precision.FLOAT32}
EXPORTERS = ("trace", "export")


def pass_pipeline() -> ct.PassPipeline:
    """coremltools' default pipeline plus the project's channel-axis ``layer_norm`` fusion."""
    pipeline = ct.PassPipeline.DEFAULT
    pipeline.insert_pass(pipeline.passes.index(passes.RUNS_BEFORE), passes.FUSE_CHANNEL_LAYER_NORM)
    return pipeline


def _argument_names(model: torch.nn.Module, count: int) -> list[str]:
    parameters = [
        p
        for p in inspect.signature(model.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(parameters) < count:
        return [f"input_{i}" for i in range(count)]
    return [p.name for p in parameters[:count]]


def _tensor_type(name: str, example: torch.Tensor) -> ct.TensorType:
    if not isinstance(example, torch.Tensor):
        raise TypeError(f"example input {name!r}: expected a torch.Tensor, got {type(example).__name__}")
    # Integer inputs (token ids, masks) go in as int32: Core ML has no int64 tensors.
    dtype = np.int32 if not example.is_floating_point() else np.float32
    return ct.TensorType(name=name, shape=tuple(example.shape), dtype=dtype)


def convert(
    model: torch.nn.Module,
    example_inputs: Sequence[torch.Tensor],
    *,
    precision: str = "fp16",
    exporter: str = "trace",
    minimum_deployment_target=None,
    compute_units: ct.ComputeUnit = ct.ComputeUnit.ALL,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    states: Sequence[str] | None = None,
):
    """Convert ``model`` called as ``model(*example_inputs)`` to an ML Program ``MLModel``.

    Inputs are named after the model's ``forward`` arguments, or ``input_names`` with the trace exporter
    (with ``exporter="export"`` coremltools takes the names from the exported program, so ``input_names``
    is refused there); integer inputs become int32. Outputs take ``output_names``, else the model's
    ``output_names`` attribute if it has one (the ``ane_models`` do), else coremltools' generated names.
    ``precision`` is ``"fp16"`` or ``"fp32"``; ``exporter`` is ``"trace"`` (``torch.jit.trace``) or
    ``"export"`` (``torch.export``). The model is put in eval mode. The package's user-defined metadata
    records the torch module each op comes from (``verification.coreml.scopes.op_modules`` reads it).

    ``states``: names of registered buffers (as ``model.named_buffers()`` names them, e.g.
    ``"model.kv_cache.k_cache"``) the model writes in place; each becomes a Core ML state of the buffer's
    shape, in fp16 (the only state type Core ML has, whatever the precision; named with dots as
    underscores), and the deployment target defaults to iOS 18, the first with
    states; an older target is refused before anything is traced.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {sorted(PRECISIONS)}, got {precision!r}")
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter: expected one of {list(EXPORTERS)}, got {exporter!r}")
    example_inputs = tuple(example_inputs)
    if input_names is not None and exporter == "export":
        forward_names = _argument_names(model, len(example_inputs))
        raise ValueError(
            f"input_names: not supported with exporter='export' (coremltools names the inputs of a "
            f"torch.export program after forward's arguments: {forward_names}), got {list(input_names)}; "
            "use exporter='trace' to choose input names"
        )
    names = list(input_names) if input_names is not None else _argument_names(model, len(example_inputs))
    if len(names) != len(example_inputs):
        raise ValueError(f"input_names: expected {len(example_inputs)} names, got {len(names)}")
    inputs = [_tensor_type(n, x) for n, x in zip(names, example_inputs, strict=True)]
    state_types = _state_types(model, states, minimum_deployment_target)
    if state_types and minimum_deployment_target is None:
        minimum_deployment_target = STATE_TARGET
    model = model.eval()
    if exporter == "export":
        # Core ML has no int64 tensors: let the exported graph see the int32 inputs it will get.
        example_inputs = tuple(x if x.is_floating_point() else x.to(torch.int32) for x in example_inputs)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        if exporter == "trace":
            source = torch.jit.trace(model, example_inputs)
        else:
            source = torch.export.export(model, example_inputs).run_decompositions({})
            handles = scopes.tag_export_nodes(source)
    output_names = output_names if output_names is not None else getattr(model, "output_names", None)
    outputs = [ct.TensorType(name=n) for n in output_names] if output_names else None
    key = None
    if program_cache.cache_dir() is not None:  # hashing every weight is work only a cache needs
        key = program_cache.program_key(
            source,
            {
                "inputs": [
                    (n, tuple(x.shape), str(x.dtype)) for n, x in zip(names, example_inputs, strict=True)
                ],
                "outputs": output_names,
                "precision": precision,
                "exporter": exporter,
                "minimum_deployment_target": minimum_deployment_target,
                "compute_units": compute_units,
                "states": [(s.name, tuple(s.wrapped_type.shape.shape)) for s in state_types],
                "pass_pipeline": pass_pipeline().passes,
            },
        )
        cached = program_cache.lookup(key)
        if cached is not None:
            return load(cached, compute_units=compute_units)
    # coremltools logs every pass at INFO/WARNING: quiet during this conversion only.
    logger = logging.getLogger("coremltools")
    previous_level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        mlmodel = ct.convert(
            source,
            inputs=inputs if exporter == "trace" else None,
            outputs=outputs,
            convert_to="mlprogram",
            compute_precision=PRECISIONS[precision],
            minimum_deployment_target=minimum_deployment_target,
            compute_units=compute_units,
            states=state_types or None,
            pass_pipeline=pass_pipeline(),
        )
    finally:
        logger.setLevel(previous_level)
    paths = scopes.module_paths(mlmodel._mil_program, model, handles if exporter == "export" else None)
    scopes.record(mlmodel, paths)
    if key is not None:
        program_cache.store(key, mlmodel)
    return mlmodel


def _state_types(model: torch.nn.Module, states, target) -> list:
    """``ct.StateType``s for the named buffers, checked before any tracing."""
    if not states:
        return []
    if isinstance(states, str):
        raise TypeError(f"states: expected a sequence of buffer names, got the string {states!r}")
    if target is not None and target < STATE_TARGET:
        raise ValueError(
            f"states: Core ML state needs minimum_deployment_target iOS18 or newer, got {target.name} "
            f"(states asked for: {list(states)})"
        )
    buffers = dict(model.named_buffers())
    unknown = [name for name in states if name not in buffers]
    if unknown:
        raise ValueError(f"states: expected names of the model's buffers {sorted(buffers)}, got {unknown}")
    # Core ML states are fp16 only (coremltools 9 refuses others), in fp32 programs too: there the
    # program casts the state to fp32 after reading it and back before writing it.
    return [
        ct.StateType(wrapped_type=ct.TensorType(shape=tuple(buffers[n].shape), dtype=np.float16), name=n)
        for n in states
    ]

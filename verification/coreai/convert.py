"""Conversion of torch modules to Core AI programs: ``torch.export``, Core AI's decompositions, then
``coreai_torch.TorchConverter``.

Precision follows the torch model, as in Core AI itself: ``precision="fp16"`` converts a half-precision
copy of the model (the caller's model is left as it was), so weights, activations and float inputs are
fp16 in the program. Integer inputs go in as int32, as on the Core ML path.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .extra import require

PRECISIONS = ("fp32", "fp16")


class CoreAIConversionError(RuntimeError):
    """Core AI (torch.export or coreai-torch's converter) could not convert the model; the message names
    the stage and carries the converter's own error."""


class NotDecomposedError(ValueError):
    """An ExportedProgram still holds ops that Core AI's decomposition table decomposes."""


@dataclass
class CoreAIProgram:
    """A converted Core AI program with what ``predict`` and the checks need to know about it."""

    program: object  # coreai.authoring.AIProgram
    exported_program: torch.export.ExportedProgram
    input_names: list[str]
    output_names: list[str]
    input_shapes: dict[str, tuple[int, ...]]
    input_dtypes: dict[str, np.dtype]
    precision: str
    conversion_seconds: float = 0.0
    converter_log: str = field(default="", repr=False)

    def feeds(self, inputs) -> dict[str, np.ndarray]:
        """``inputs`` (tensors or arrays in the model's argument order) by input name, cast to the dtypes the
        program takes (fp16 programs take fp16 float inputs; ids are int32)."""
        inputs = list(inputs)
        if len(inputs) != len(self.input_names):
            raise ValueError(
                f"inputs: expected {len(self.input_names)} ({self.input_names}), got {len(inputs)}"
            )
        arrays = [x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x) for x in inputs]
        return {
            name: array.astype(self.input_dtypes[name], copy=False)
            for name, array in zip(self.input_names, arrays, strict=True)
        }

    @property
    def mlir_module(self):
        """The program's MLIR module (Core AI keeps it on a private attribute; read-only use)."""
        return self.program._module._mlir_module


def import_coreai_torch():
    """``coreai_torch``, imported without its version warning (it compares torch's local version
    ``2.13.0+cpu`` against ``2.13.0`` and warns although that is the validated version)."""
    require()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="coreai-torch has only been validated")
        import coreai_torch
    return coreai_torch


def argument_names(model: torch.nn.Module, count: int) -> list[str]:
    parameters = [
        p
        for p in inspect.signature(model.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(parameters) < count:
        return [f"input_{i}" for i in range(count)]
    return [p.name for p in parameters[:count]]


def _program_inputs(inputs: Sequence, precision: str) -> tuple[torch.Tensor, ...]:
    converted = []
    for i, x in enumerate(inputs):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"example input {i}: expected a torch.Tensor, got {type(x).__name__}")
        if x.is_floating_point():
            converted.append(x.to(torch.float16 if precision == "fp16" else torch.float32))
        else:
            converted.append(x.to(torch.int32))
    return tuple(converted)


def non_decomposed_ops(exported_program: torch.export.ExportedProgram) -> list[str]:
    """Ops of ``exported_program`` that Core AI's decomposition table would still decompose (symbolic-size
    queries such as ``aten.sym_size.int`` are in the table but stay after decomposing: not counted)."""
    table = import_coreai_torch().get_decomp_table()
    return sorted(
        {
            str(node.target)
            for node in exported_program.graph.nodes
            if node.op == "call_function"
            and node.target in table
            and not str(node.target).startswith("aten.sym_")
        }
    )


def export(model: torch.nn.Module, inputs: Sequence[torch.Tensor], *, precision: str = "fp32"):
    """The decomposed ExportedProgram Core AI converts, and the inputs it was exported with."""
    coreai_torch = import_coreai_torch()
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {list(PRECISIONS)}, got {precision!r}")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    inputs = _program_inputs(inputs, precision)
    model = model.eval()
    if precision == "fp16":
        model = copy.deepcopy(model).half()
    try:
        with torch.no_grad():
            exported = torch.export.export(model, inputs)
            return exported.run_decompositions(coreai_torch.get_decomp_table()), inputs
    except Exception as error:
        raise CoreAIConversionError(
            f"torch.export of {type(model).__name__} failed before Core AI could convert it "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def convert_exported(
    exported_program: torch.export.ExportedProgram,
    *,
    precision: str,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    example_inputs: Sequence[torch.Tensor] | None = None,
) -> CoreAIProgram:
    """Convert an already decomposed ``ExportedProgram`` (``run_decompositions(get_decomp_table())``).

    A program that still holds decomposable ops is refused before the converter sees it.
    """
    coreai_torch = import_coreai_torch()
    if not isinstance(exported_program, torch.export.ExportedProgram):
        raise TypeError(
            "exported_program: expected a torch.export.ExportedProgram, got "
            f"{type(exported_program).__name__}"
        )
    pending = non_decomposed_ops(exported_program)
    if pending:
        raise NotDecomposedError(
            f"the ExportedProgram is not decomposed for Core AI: it still holds {', '.join(pending)}; "
            "expected ep.run_decompositions(coreai_torch.get_decomp_table()) first"
        )
    placeholders = [
        spec for spec in exported_program.graph_signature.input_specs if spec.kind.name == "USER_INPUT"
    ]
    names = list(input_names) if input_names else [spec.arg.name for spec in placeholders]
    if len(names) != len(placeholders):
        raise ValueError(f"input_names: expected {len(placeholders)} names, got {len(names)}")
    converter = coreai_torch.TorchConverter(mode=coreai_torch.TorchConverter.Mode.RELEASE)
    log = io.StringIO()
    start = time.perf_counter()
    try:
        # The converter prints a progress header on stdout: keep it for the record, off the terminal.
        with contextlib.redirect_stdout(log):
            converter.add_exported_program(
                exported_program, input_names=names, output_names=list(output_names or []) or None
            )
            program = converter.to_coreai()
    except Exception as error:
        version = getattr(coreai_torch, "__version__", "?")
        raise CoreAIConversionError(
            f"coreai-torch {version} TorchConverter could not convert the program "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from error
    seconds = time.perf_counter() - start
    shapes, dtypes = _input_specs(exported_program, placeholders, names, example_inputs)
    return CoreAIProgram(
        program=program,
        exported_program=exported_program,
        input_names=names,
        output_names=_output_names(program, output_names),
        input_shapes=shapes,
        input_dtypes=dtypes,
        precision=precision,
        conversion_seconds=seconds,
        converter_log=log.getvalue(),
    )


def _input_specs(exported_program, placeholders, names, example_inputs):
    values = {}
    for spec, name in zip(placeholders, names, strict=True):
        node = next(n for n in exported_program.graph.nodes if n.name == spec.arg.name)
        values[name] = node.meta.get("val")
    if example_inputs is not None:
        values = dict(zip(names, example_inputs, strict=True))
    shapes = {n: tuple(int(d) for d in v.shape) for n, v in values.items()}
    dtypes = {n: np.dtype(torch.empty((), dtype=v.dtype).numpy().dtype) for n, v in values.items()}
    return shapes, dtypes


def main_graph(mlir_module):
    """The ``coreai.graph @main`` of a program's MLIR module (private graphs, such as composites, aside)."""
    for op in mlir_module.body.operations:
        if "sym_name" in op.attributes and str(op.attributes["sym_name"]).strip('"') == "main":
            return op
    raise ValueError("the Core AI program has no graph named 'main'")


def _output_names(program, requested) -> list[str]:
    if requested:
        return list(requested)
    attributes = main_graph(program._module._mlir_module).attributes["res_attrs"]
    return [str(a["coreai.name"]).strip('"') for a in attributes]


def convert(
    model: torch.nn.Module,
    inputs: Sequence[torch.Tensor],
    *,
    precision: str = "fp32",
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> CoreAIProgram:
    """Convert ``model`` called as ``model(*inputs)`` to a Core AI program (``precision`` fp32 or fp16).

    Inputs take ``input_names``, else the names of ``forward``'s arguments; outputs take
    ``output_names``, else the model's ``output_names`` attribute (the ``ane_models`` have one), else the
    converter's generated names. Raises ``CoreAIUnavailable`` without the extra and
    ``CoreAIConversionError`` (naming the converter's error) when Core AI cannot convert the model.
    """
    require()
    inputs = tuple(inputs)
    names = list(input_names) if input_names is not None else argument_names(model, len(inputs))
    if len(names) != len(inputs):
        raise ValueError(f"input_names: expected {len(inputs)} names, got {len(names)}")
    output_names = output_names if output_names is not None else getattr(model, "output_names", None)
    start = time.perf_counter()
    exported, program_inputs = export(model, inputs, precision=precision)
    converted = convert_exported(
        exported,
        precision=precision,
        input_names=names,
        output_names=output_names,
        example_inputs=program_inputs,
    )
    converted.conversion_seconds = time.perf_counter() - start
    return converted

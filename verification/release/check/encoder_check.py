"""``check`` of an encoder package: feed the package and the transformers reference the same inputs, compare
every matched output, then the fp16 hazards, readiness and the compression found in the package.

Inputs are those ``ane-verify run`` feeds the same reference (seeded random ids with padding, or the
checkpoint's tokenizer on built-in sentences or ``--text``), so a package made by ``run`` gets ``run``'s
figures back. Outputs are compared at real tokens (padding carries no meaning); a classifier's logits as
class probabilities, as ``run`` and the published DistilBERT test do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...metrics import psnr
from .. import model_zoo
from .mapping import (
    ENCODER_INPUTS,
    Mapping,
    MappingError,
    check_map_names,
    choose_size,
    match_inputs,
    match_outputs,
)

HAZARD_CHECKS = ("fp16_non_finite_ops", "fp16_unrepresentable_constants")
DEFAULT_SEQ_LEN = 128  # for a flexible sequence axis, as ``run``'s default
ADDITIVE_MASKED = -1e4  # an additive mask's masked value: exp() of it is 0, and it is finite in fp16
# (-inf would make the mask's own add an fp16 'non-finite op', a fault of the input, not the package)


@dataclass
class EncoderPlan:
    function: object  # interface.Function
    inputs: list  # [InputMatch]
    outputs: list  # [OutputMatch]
    by_role: dict  # role -> the int32 (B, S) tensor both models are fed
    mapping: Mapping


def plan(interface, reference, map_file, seq_len, batch_size, texts) -> EncoderPlan:
    """The function, the matched inputs and outputs, the sizes and the inputs: everything decided before
    the package runs (``MappingError`` when something cannot be matched for certain)."""
    where = interface.path
    name = map_file.functions.get("main", interface.default_function)
    function = interface.function(name)
    check_map_names(interface, [name], map_file)
    if function.states:
        raise MappingError(
            f"{where}: function {name!r} declares states {[str(s) for s in function.states]}; the reference "
            f"{reference.label} is an encoder (a stateful package is checked against a causal LM)"
        )
    pair = reference.pair
    if pair.choices:
        raise MappingError(
            f"--reference: {pair.architecture} (multiple choice) is not supported by check yet"
        )
    inputs = match_inputs(function, ENCODER_INPUTS, map_file, f"{where} function {name!r}")
    ids = function.input(next(m.name for m in inputs if m.role == "input_ids"))
    if len(ids.shape) != 2:
        raise MappingError(f"{where}: input {ids}: expected token ids of shape (B, S)")
    batch = choose_size(
        ids.shape[0], batch_size, len(texts) or 1, "--batch-size", f"{where} input {ids.name}"
    )
    default_len = min(DEFAULT_SEQ_LEN, pair.max_seq_len)
    seq = choose_size(ids.shape[1], seq_len, default_len, "--seq-len", f"{where} input {ids.name}")
    if seq > pair.max_seq_len:
        raise MappingError(
            f"{where}: sequence length {seq} exceeds the reference's {pair.max_seq_len} positions"
        )
    tensors = model_zoo.example_inputs(pair, seq, batch, list(texts) or None)
    by_role = dict(zip(("input_ids", "attention_mask", "token_type_ids"), tensors, strict=False))
    outputs = match_outputs(
        function, _reference_fields(reference.model, by_role), batch, seq, map_file, where
    )
    mapping = Mapping("encoder", {name: inputs}, outputs, {"main": name})
    return EncoderPlan(function, inputs, outputs, by_role, mapping)


def _call(model, by_role: dict, rows: int | None = None, length: int | None = None):
    kwargs = {k: v[:rows, :length].long() for k, v in by_role.items()}
    if "token_type_ids" not in _forward_arguments(model):
        kwargs.pop("token_type_ids", None)
    with torch.no_grad():
        return model(**kwargs, return_dict=True)


def _forward_arguments(model) -> tuple:
    import inspect

    return tuple(inspect.signature(model.forward).parameters)


def _reference_fields(model, by_role: dict) -> dict:
    """Each tensor output of the reference: field -> (axes, channels), told apart by two probes of one
    row at two lengths (the axis that follows the length is the sequence)."""
    short, longer = _call(model, by_role, 1, 2), _call(model, by_role, 1, 3)
    fields = {}
    for key, value in short.items():
        other = longer.get(key)
        if not isinstance(value, torch.Tensor) or not isinstance(other, torch.Tensor):
            continue
        seq_axis = [i for i, (a, b) in enumerate(zip(value.shape, other.shape, strict=False)) if a != b]
        if value.dim() == 3 and seq_axis == [1]:
            fields[key] = ("bsc", int(value.shape[2]))
        elif value.dim() == 2 and seq_axis == [1]:
            fields[key] = ("bs", None)
        elif value.dim() == 2 and not seq_axis:
            fields[key] = ("bc", int(value.shape[1]))
    return fields


def feeds(function, inputs, by_role: dict) -> dict:
    """The package's inputs: each role's tensor in the declared dtype and shape; a mask in its form."""
    feed = {}
    for match in inputs:
        feature = function.input(match.name)
        value = by_role.get(match.role)
        if value is None:  # e.g. token_type_ids the reference does not take: zeros
            value = torch.zeros_like(by_role["input_ids"])
        array = value.numpy()
        if match.form == "additive":
            array = np.where(array > 0, 0.0, ADDITIVE_MASKED)
        dtypes = {"int32": np.int32, "int64": np.int64, "fp16": np.float16, "fp32": np.float32}
        dtype = dtypes.get(feature.dtype, np.float32)
        shape = tuple(d if isinstance(d, int) else -1 for d in feature.shape)
        if shape.count(-1) <= 1 and len(shape) != array.ndim:
            array = array.reshape(shape)  # e.g. a (B, 1, 1, S) mask
        feed[match.name] = array.astype(dtype)
    return feed


def as_reference_layout(array: np.ndarray, layout: str) -> np.ndarray:
    """A package output in the reference's axes (B, S, C) / (B, C) / (B, S)."""
    if layout == "bc1s":
        return array[:, :, 0, :].transpose(0, 2, 1)
    if layout == "bcs":
        return array.transpose(0, 2, 1)
    if layout == "b11s":
        return array[:, 0, 0, :]
    return array


def output_parity(outputs, package_outputs: dict, reference, by_role: dict) -> list[dict]:
    """One row per matched output: its PSNR against the reference in torch fp32, and how it was compared."""
    expected = _call(reference.model, by_role)
    real = by_role["attention_mask"].bool().numpy() if "attention_mask" in by_role else None
    rows = []
    for match in outputs:
        got = as_reference_layout(np.asarray(package_outputs[match.name], np.float32), match.layout)
        want = expected[match.reference].float().numpy()
        if got.shape != want.shape:
            raise MappingError(
                f"output {match.name!r} in layout {match.layout} is {got.shape}; the reference's "
                f"{match.reference} is {want.shape}"
            )
        if want.ndim == 2 and match.layout == "bc" and match.reference.endswith("logits"):
            value, compared = psnr(_softmax(want), _softmax(got)), "class probabilities"
        elif real is not None and want.shape[:2] == real.shape:
            value, compared = psnr(want[real], got[real]), "at real tokens"
        else:
            value, compared = psnr(want, got), "every element"
        rows.append(
            {
                "output": match.name,
                "reference": match.reference,
                "layout": match.layout,
                "psnr_db": round(float(value), 4),
                "max_abs_error": float(np.max(np.abs(want - got))),
                "compared": compared,
            }
        )
    return rows


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)

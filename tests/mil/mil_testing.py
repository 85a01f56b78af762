"""MIL executor test helpers: one-op programs, their coremltools reference values, and closeness checks."""

from __future__ import annotations

import coremltools as ct
import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import Function, Program, types

from verification.metrics import psnr
from verification.mil import MILExecutor

_MIL_DTYPE_OF_NUMPY = {
    np.dtype(np.float32): types.fp32,
    np.dtype(np.float16): types.fp16,
    np.dtype(np.int32): types.int32,
    np.dtype(np.bool_): types.bool,
}


def one_op_program(op_type: str, data: dict, attrs: dict, *, as_inputs: bool, opset=ct.target.iOS16):
    """A program running ``mb.<op_type>(**data, **attrs)``. With ``as_inputs`` every array in ``data`` (a
    list of arrays for a tuple input) becomes a function input, otherwise a constant, in which case
    coremltools' own ``value_inference`` computes the op's output while building (``outputs[i].val``).
    Returns (program, feed dict for the executor, the op's output vars)."""
    placeholders, feed = {}, {}
    if as_inputs:
        for key, value in data.items():
            for i, array in enumerate(value if isinstance(value, list) else [value]):
                name = f"{key}_{i}"
                placeholders[name] = mb.placeholder(shape=array.shape, dtype=_MIL_DTYPE_OF_NUMPY[array.dtype])
                feed[name] = array
    with Function(placeholders, opset) as function:
        kwargs = {}
        for key, value in data.items():
            if not as_inputs:
                kwargs[key] = value
            elif isinstance(value, list):
                kwargs[key] = [function.inputs[f"{key}_{i}"] for i in range(len(value))]
            else:
                kwargs[key] = function.inputs[f"{key}_0"]
        outputs = getattr(mb, op_type)(**kwargs, **attrs)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        function.set_outputs(outputs)
    program = Program()
    program.add_function("main", function)
    return program, feed, outputs


def coremltools_reference(op_type: str, data: dict, attrs: dict, opset=ct.target.iOS16) -> list:
    """The op's outputs as coremltools' value_inference computes them (numpy), one array per output."""
    _, _, outputs = one_op_program(op_type, data, attrs, as_inputs=False, opset=opset)
    values = [out.val for out in outputs]
    assert all(v is not None for v in values), f"coremltools computed no value for {op_type}{attrs}"
    return [np.asarray(v) for v in values]


def run_one_op(
    op_type: str, data: dict, attrs: dict, *, mode="fp32", opset=ct.target.iOS16, fold_constants=True
) -> list:
    """The op's outputs as the executor computes them at run time (inputs are function inputs). With no
    ``data`` every input is a constant: the executor folds the op at load time, or with
    ``fold_constants=False`` runs it on every call."""
    program, feed, outputs = one_op_program(op_type, data, attrs, as_inputs=True, opset=opset)
    results = MILExecutor(program, mode=mode, fold_constants=fold_constants).run(feed)
    return [results[out.name] for out in outputs]


def describe_difference(expected, actual) -> str:
    """Every number needed to understand a mismatch: shapes, dtypes, max abs error and where, PSNR."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    text = f"expected shape {expected.shape} {expected.dtype}, got {actual.shape} {actual.dtype}"
    if expected.shape != actual.shape or expected.size == 0:
        return text
    if expected.dtype.kind in "f" or actual.dtype.kind in "f":
        error = np.abs(expected.astype(np.float64) - actual.astype(np.float64))
        worst = np.unravel_index(np.nanargmax(error), error.shape) if np.isfinite(error).any() else ()
        text += (
            f"; max abs error {np.nanmax(error):.3g} at {worst} (expected {expected[worst]!r}, got "
            f"{actual[worst]!r}); PSNR {psnr(expected, actual):.1f} dB"
        )
    else:
        mismatches = int(np.sum(expected != actual))
        text += f"; {mismatches} of {expected.size} elements differ"
    return text


def assert_close(expected, actual, *, rtol=1e-5, atol=1e-6, what=""):
    expected, actual = np.asarray(expected), np.asarray(actual)
    assert expected.shape == actual.shape, f"{what}: {describe_difference(expected, actual)}"
    if expected.dtype.kind == "b" or actual.dtype.kind == "b" or expected.dtype.kind in "iu":
        assert np.array_equal(expected, actual), f"{what}: {describe_difference(expected, actual)}"
        return
    ok = np.allclose(
        actual.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True
    )
    assert ok, f"{what}: {describe_difference(expected, actual)}"

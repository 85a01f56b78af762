"""The compressed-constant kernels (verification/mil/kernels/constexpr.py) against coremltools' own value
inference (``materialized_val_inference`` of each op definition), on Hypothesis-drawn shapes, bit widths,
per-block LUT and scale groupings, vector sizes, sparsity masks and dtypes, in the iOS18 and iOS16 forms.
``test_every_kernel_is_checked_by_a_kernel_test_module`` (test_kernel_table.py) counts the op types checked in
this module."""

from __future__ import annotations

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import Function, Program, types
from hypothesis import given, settings
from hypothesis import strategies as st
from mil_testing import assert_close

from verification.mil import MILExecutor

seeds = st.integers(0, 2**31 - 1)
bit_widths = st.sampled_from([1, 2, 3, 4, 6, 8])
_UINT = {1: types.np_uint1_dtype, 2: types.np_uint2_dtype, 3: types.np_uint3_dtype, 4: types.np_uint4_dtype}
_UINT |= {6: types.np_uint6_dtype, 8: np.dtype(np.uint8)}


@st.composite
def blocked_shapes(draw, min_rank=1, max_rank=3):
    """(shape, groups): each dim is ``groups[d]`` blocks of equal size (LUTs and scales per block)."""
    rank = draw(st.integers(min_rank, max_rank))
    groups = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    blocks = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    return tuple(g * b for g, b in zip(groups, blocks, strict=True)), tuple(groups)


def unsigned_indices(seed, shape, nbits):
    values = np.random.default_rng(seed).integers(0, 2**nbits, shape)
    return values.astype(_UINT[nbits])


def lookup_tables(seed, groups, nbits, vector_size, dtype):
    rng = np.random.default_rng(seed + 1)
    shape = (*groups, 2**nbits, vector_size)
    if np.dtype(dtype).kind == "i":
        return rng.integers(-128, 128, shape).astype(dtype)
    return rng.uniform(-4, 4, shape).astype(dtype)


def sparsity_mask(seed, shape, density):
    mask = np.random.default_rng(seed + 2).random(shape) < density
    return mask.astype(types.np_uint1_dtype)


def check_constexpr_against_coremltools(op_type, attrs, *, opset=ct.target.iOS18, mode="fp16_storage"):
    """Build ``mb.<op_type>(**attrs)`` (all inputs constant) and compare every output the executor decodes
    at load time with coremltools' ``materialized_val_inference`` of the same op. coremltools computes fp16
    outputs in fp16: the fp16-storage mode rounds them once, as fp16 arithmetic does here (exact inputs)."""
    with Function({}, opset) as function:
        outputs = getattr(mb, op_type)(**attrs)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        function.set_outputs(outputs)
    program = Program()
    program.add_function("main", function)
    expected = outputs[0].op.materialized_val_inference()
    expected = list(expected) if isinstance(expected, tuple) else [expected]
    executor = MILExecutor(program, mode=mode)
    assert executor.op_count == 0, f"{op_type}: decompressed at every call, not once at load"
    actual = executor.run({})
    shapes = {k: getattr(v, "shape", v) for k, v in attrs.items()}
    for i, (out, value) in enumerate(zip(outputs, expected, strict=True)):
        assert_close(
            np.asarray(value), actual[out.name], rtol=1e-6, atol=1e-6, what=f"{op_type} {shapes} [{i}]"
        )


@settings(deadline=None)
@given(
    blocked=blocked_shapes(),
    nbits=bit_widths,
    vector_size=st.sampled_from([1, 1, 2, 3]),
    dtype=st.sampled_from([np.float32, np.float16, np.int8]),
    seed=seeds,
    data=st.data(),
)
def test_lut_to_dense_matches_coremltools(blocked, nbits, vector_size, dtype, seed, data):
    shape, groups = blocked
    attrs = {
        "indices": unsigned_indices(seed, shape, nbits),
        "lut": lookup_tables(seed, groups, nbits, vector_size, dtype),
    }
    if vector_size > 1:
        attrs["vector_axis"] = data.draw(st.integers(-len(shape), len(shape) - 1), label="vector_axis")
    check_constexpr_against_coremltools("constexpr_lut_to_dense", attrs)


@settings(deadline=None)
@given(
    blocked=blocked_shapes(),
    dtype=st.sampled_from([np.int8, np.uint8, types.np_int4_dtype, types.np_uint4_dtype]),
    offset=st.booleans(),
    scale_dtype=st.sampled_from([np.float32, np.float16]),
    seed=seeds,
)
def test_blockwise_shift_scale_matches_coremltools(blocked, dtype, offset, scale_dtype, seed):
    shape, groups = blocked
    rng = np.random.default_rng(seed)
    info = np.iinfo(np.int8) if np.dtype(dtype).kind == "i" else np.iinfo(np.uint8)
    low, high = (
        (info.min, info.max + 1) if np.dtype(dtype).metadata is None else (info.min >> 4, (info.max >> 4) + 1)
    )
    attrs = {
        "data": rng.integers(low, high, shape).astype(dtype),
        "scale": rng.uniform(0.01, 2.0, groups).astype(scale_dtype),
    }
    if offset:
        attrs["offset"] = rng.integers(low, high, groups).astype(dtype)
    check_constexpr_against_coremltools("constexpr_blockwise_shift_scale", attrs)


@settings(deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple),
    density=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
    dtype=st.sampled_from([np.float32, np.float16, np.int8]),
    seed=seeds,
)
def test_sparse_to_dense_matches_coremltools(shape, density, dtype, seed):
    mask = sparsity_mask(seed, shape, density)
    values = np.random.default_rng(seed).uniform(-3, 3, int(mask.sum())).astype(dtype)
    if int(mask.sum()) == 0:
        mask.flat[0] = 1
        values = np.array([1.5], dtype)
    check_constexpr_against_coremltools("constexpr_sparse_to_dense", {"nonzero_data": values, "mask": mask})


@settings(deadline=None)
@given(
    blocked=blocked_shapes(),
    nbits=bit_widths,
    vector_size=st.sampled_from([1, 2]),
    density=st.sampled_from([0.3, 0.8, 1.0]),
    seed=seeds,
    data=st.data(),
)
def test_lut_to_sparse_matches_coremltools(blocked, nbits, vector_size, density, seed, data):
    shape, groups = blocked
    mask = sparsity_mask(seed, shape, density)
    mask.flat[0] = 1
    attrs = {
        "indices_mask": mask,
        "indices_nonzero_data": unsigned_indices(seed, (int(mask.sum()),), nbits),
        "lut": lookup_tables(seed, groups, nbits, vector_size, np.float16),
    }
    if vector_size > 1:
        attrs["vector_axis"] = data.draw(st.integers(-len(shape), len(shape) - 1), label="vector_axis")
    check_constexpr_against_coremltools("constexpr_lut_to_sparse", attrs)


@settings(deadline=None)
@given(blocked=blocked_shapes(), density=st.sampled_from([0.3, 1.0]), offset=st.booleans(), seed=seeds)
def test_sparse_blockwise_shift_scale_matches_coremltools(blocked, density, offset, seed):
    shape, groups = blocked
    rng = np.random.default_rng(seed)
    mask = sparsity_mask(seed, shape, density)
    mask.flat[0] = 1
    attrs = {
        "data_mask": mask,
        "nonzero_data": rng.integers(-128, 128, int(mask.sum())).astype(np.int8),
        "scale": rng.uniform(0.01, 2.0, groups).astype(np.float16),
    }
    if offset:
        attrs["offset"] = rng.integers(-128, 128, groups).astype(np.int8)
    check_constexpr_against_coremltools("constexpr_sparse_blockwise_shift_scale", attrs)


# ---------------------------------------------------------------- the iOS16 forms (bit-packed)


def packed(values: np.ndarray, nbits: int) -> np.ndarray:
    """Pack unsigned ``nbits`` values LSB first, element 0 in the lowest bits of byte 0 (the op docs)."""
    bits = ((values.reshape(-1, 1).astype(np.int64) >> np.arange(nbits)) & 1).reshape(-1)
    bits = np.concatenate([bits, np.zeros((-len(bits)) % 8, np.int64)])
    return (bits.reshape(-1, 8) << np.arange(8)).sum(axis=1).astype(np.uint8)


@settings(deadline=None)
@given(
    shape=st.lists(st.integers(1, 7), min_size=1, max_size=3).map(tuple),
    nbits=st.sampled_from([1, 2, 4, 6, 8]),
    seed=seeds,
)
def test_ios16_lut_to_dense_unpacks_like_coremltools(shape, nbits, seed):
    values = np.random.default_rng(seed).integers(0, 2**nbits, shape)
    attrs = {
        "indices": packed(values, nbits),
        "lut": np.random.default_rng(seed).uniform(-2, 2, 2**nbits).astype(np.float16),
        "shape": np.array(shape, np.uint32),
    }
    check_constexpr_against_coremltools("constexpr_lut_to_dense", attrs, opset=ct.target.iOS16)


@settings(deadline=None)
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=3).map(tuple), seed=seeds)
def test_ios16_sparse_to_dense_unpacks_like_coremltools(shape, seed):
    mask = np.random.default_rng(seed).random(shape) < 0.5
    mask.flat[0] = True
    attrs = {
        "nonzero_data": np.random.default_rng(seed).uniform(-2, 2, int(mask.sum())).astype(np.float16),
        "mask": packed(mask.astype(np.int64), 1),
        "shape": np.array(shape, np.uint32),
    }
    check_constexpr_against_coremltools("constexpr_sparse_to_dense", attrs, opset=ct.target.iOS16)


@settings(deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple),
    per_axis=st.booleans(),
    dtype=st.sampled_from([np.int8, np.uint8]),
    seed=seeds,
    data=st.data(),
)
def test_affine_dequantize_matches_coremltools(shape, per_axis, dtype, seed, data):
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    count = shape[axis] if per_axis else None
    info = np.iinfo(dtype)
    attrs = {
        "quantized_data": rng.integers(info.min, info.max + 1, shape).astype(dtype),
        "zero_point": rng.integers(info.min, info.max + 1, count or ()).astype(dtype),
        "scale": rng.uniform(0.01, 2.0, count or ()).astype(np.float16),
        "axis": axis,
    }
    check_constexpr_against_coremltools("constexpr_affine_dequantize", attrs, opset=ct.target.iOS16)


@pytest.mark.parametrize("opset", [ct.target.iOS16, ct.target.iOS18])
@settings(deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), seed=seeds)
def test_constexpr_cast_matches_coremltools(opset, shape, seed):
    values = np.random.default_rng(seed).uniform(-65504, 65504, shape).astype(np.float16)
    values.flat[0] = np.float16(2**-24)  # the smallest fp16 subnormal survives the widening
    attrs = {"source_val": values, "output_dtype": "fp32"}
    check_constexpr_against_coremltools("constexpr_cast", attrs, opset=opset)


@settings(deadline=None)
@given(blocked=blocked_shapes(min_rank=2, max_rank=2), nbits=st.sampled_from([2, 4]), seed=seeds)
def test_compressed_weights_decode_the_same_in_every_precision_mode(blocked, nbits, seed):
    """fp16 LUTs decode to the same fp16 values whether the executor stores fp16 as fp32 or float16."""
    shape, groups = blocked
    attrs = {
        "indices": unsigned_indices(seed, shape, nbits),
        "lut": lookup_tables(seed, groups, nbits, 1, np.float16),
    }
    for mode in ("fp16_storage", "fp16_native"):
        check_constexpr_against_coremltools("constexpr_lut_to_dense", attrs, mode=mode)

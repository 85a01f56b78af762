"""The executor's iOS 18 state: the kernels (slice_update against coremltools' value_inference; read_state
and coreml_update_state against a torch module's buffer, the formula they implement), state persisting
across calls, in-place cache writes and when they are refused, and bad states."""

from __future__ import annotations

import sys
from pathlib import Path

import coremltools as ct
import numpy as np
import pytest
import torch
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import Function, Program, types
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from mil_testing import assert_close, coremltools_reference, describe_difference, run_one_op

from verification.coreml import convert, save, save_multifunction
from verification.mil import MILExecutor, load_program
from verification.mil.kernels.state import write_slice
from verification.mil.state import StateError

sys.path.insert(0, str(Path(__file__).parents[1] / "coreml"))
from stateful_models import CAPACITY, CHANNELS, seeded  # noqa: E402

IOS18 = ct.target.iOS18


# ---------------------------------------------------------------- slice_update


@st.composite
def slice_update_cases(draw):
    """x, the slice (begin, end, stride, masks) and an update of the slice's shape."""
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    begin, end, stride, begin_mask, end_mask, squeeze = [], [], [], [], [], []
    for size in shape:
        begin.append(draw(st.integers(-size, size - 1)))
        end.append(draw(st.integers(-size, size)))
        stride.append(draw(st.sampled_from([1, 1, 2, -1, -2])))
        begin_mask.append(draw(st.booleans()))
        end_mask.append(draw(st.booleans()))
        squeeze.append(draw(st.integers(0, 4)) == 0)
        # A squeezed axis reads begin: with begin masked too, coremltools' reference depends on its value
        # inference overwriting the op's stride (it does, in place), not on the op's definition.
        begin_mask[-1] &= not squeeze[-1]
    seed = draw(st.integers(0, 2**31 - 1))
    return shape, begin, end, stride, begin_mask, end_mask, squeeze, seed


def _numpy_slices(shape, begin, end, stride, begin_mask, end_mask, squeeze):
    slices = []
    for axis in range(len(shape)):
        b = None if begin_mask[axis] else begin[axis]
        if squeeze[axis]:
            slices.append(
                slice(b, None if b in (None, -1) else b + 1, 1)
                if stride[axis] > 0 or b is not None
                else slice(-1, None)
            )
        else:
            slices.append(slice(b, None if end_mask[axis] else end[axis], stride[axis]))
    return tuple(slices)


@settings(deadline=None)
@given(case=slice_update_cases())
def test_slice_update_matches_coremltools(case):
    shape, begin, end, stride, begin_mask, end_mask, squeeze, seed = case
    rng = np.random.default_rng(seed)
    region = np.empty(shape)[_numpy_slices(shape, begin, end, stride, begin_mask, end_mask, squeeze)]
    update_shape = tuple(d for d, s in zip(region.shape, squeeze, strict=True) if not s)
    assume(region.size > 0 and len(update_shape) > 0)
    x = rng.uniform(-3, 3, shape).astype(np.float32)
    update = rng.uniform(-3, 3, update_shape).astype(np.float32)
    attrs = dict(
        begin=np.array(begin, np.int32),
        end=np.array(end, np.int32),
        stride=np.array(stride, np.int32),
        begin_mask=begin_mask,
        end_mask=end_mask,
        squeeze_mask=squeeze,
    )
    expected = coremltools_reference("slice_update", {"x": x, "update": update}, attrs, opset=IOS18)[0]
    actual = run_one_op("slice_update", {"x": x, "update": update}, attrs, opset=IOS18)[0]
    assert_close(expected, actual, what=f"slice_update shape {shape} {attrs}")
    # The in-place writer is the same write, on x itself.
    inplace = write_slice(
        torch.from_numpy(x.copy()),
        torch.from_numpy(update),
        begin,
        end,
        stride,
        begin_mask,
        end_mask,
        squeeze,
    ).numpy()
    assert np.array_equal(expected, inplace), describe_difference(expected, inplace)


def test_slice_update_past_the_end_names_the_shapes():
    x = np.zeros((1, 4, 1, 8), np.float32)
    with pytest.raises(ValueError, match=r"update of shape \(1, 4, 1, 1\) does not fit the slice"):
        write_slice(torch.from_numpy(x), torch.ones(1, 4, 1, 1), [0, 0, 0, 8], [1, 4, 1, 9])


# ---------------------------------------------------------------- read_state / coreml_update_state


@pytest.fixture(scope="module")
def tiny_stateful(tmp_path_factory):
    """The tiny cache model and its fp16 and fp32 stateful programs, prefill (4 columns) and decode."""
    root = tmp_path_factory.mktemp("stateful")
    model = seeded(3)
    position = torch.tensor([0], dtype=torch.int32)
    paths = {}
    for precision in ("fp16", "fp32"):
        functions = {}
        for name, n in (("prefill", 4), ("decode", 1)):
            functions[name] = convert(
                model, (torch.randn(1, CHANNELS, 1, n), position), precision=precision, states=["cache"]
            )
            paths[precision, name] = save(functions[name], root / f"{precision}_{name}.mlpackage")
        paths[precision] = save_multifunction(functions, root / f"{precision}.mlpackage")
    return model, paths


def executors_of(path, mode=None):
    """One executor per function over one loaded program (so they can share a state)."""
    program = load_program(path)
    return {name: MILExecutor(program, function_name=name, mode=mode) for name in ("prefill", "decode")}


def run_stateful_steps(model, executors, steps, seed=0):
    """Run (function, columns) steps through torch and the executor sharing one state; yield per step the
    torch output, the program's, torch's cache and the program's state."""
    torch.manual_seed(seed)
    model.cache.zero_()
    state = executors["decode"].make_state()
    position = 0
    for name, n in steps:
        x = torch.randn(1, CHANNELS, 1, n)
        with torch.no_grad():
            expected = model(x, torch.tensor(position)).numpy()
        (got,) = (
            executors[name]
            .run({"x": x.numpy(), "position": np.array([position], np.int32)}, state=state)
            .values()
        )
        yield expected, got, model.cache.numpy().copy(), state.read("cache").astype(np.float32)
        position += n


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_read_state_and_coreml_update_state_keep_the_cache_across_calls(tiny_stateful, precision):
    """The state after each call is the torch buffer after the same call (read_state reads it,
    coreml_update_state writes it), and each output matches torch's. Core ML states are fp16 only, so
    the fp32 program is compared with torch holding its cache in fp16 (at 100 dB; 82 dB against an fp32
    cache, measured)."""
    model, paths = tiny_stateful
    executors = executors_of(paths[precision])
    floor = 100 if precision == "fp32" else 50
    model.fp16_cache = True
    steps = [("prefill", 4)] + [("decode", 1)] * 6 + [("prefill", 4)]
    for i, (expected, got, cache, state) in enumerate(run_stateful_steps(model, executors, steps)):
        assert_close(cache, state, rtol=2e-3, atol=2e-3, what=f"{precision} state after step {i}")
        from verification.metrics import psnr

        assert psnr(expected, got) > floor, f"{precision} step {i}: {describe_difference(expected, got)}"


# Checked by the stateful runs above (tests/mil/test_kernel_table.py reads this).
OPS_CHECKED_BY_PROGRAMS = ("read_state", "coreml_update_state")


def test_fp16_program_writes_its_cache_in_place_and_fp32_cannot(tiny_stateful):
    """fp16: read_state -> slice_update -> coreml_update_state writes the state's own tensor. fp32: the
    state is fp16 (Core ML's only state type) and is cast to fp32 before the write, so it cannot."""
    _, paths = tiny_stateful
    fp16 = MILExecutor(paths["fp16", "decode"])
    assert len(fp16.in_place_updates) == 1
    assert any(step[0] is write_slice for step in fp16._steps)
    assert MILExecutor(paths["fp32", "decode"]).in_place_updates == set()


def _read_after_write_program(read_old_after: bool) -> Program:
    """state (8,) fp16; out = old[0:2] (+ new[0:2]) where the write sets slots p..p+1 to ``u``."""
    placeholders = {
        "cache": mb.state_tensor_placeholder(shape=(8,), dtype=types.fp16),
        "u": mb.placeholder(shape=(2,), dtype=types.fp16),
        "p": mb.placeholder(shape=(1,), dtype=types.int32),
    }
    with Function(placeholders, IOS18) as f:
        old = mb.read_state(input=f.inputs["cache"])
        head = mb.slice_by_index(x=old, begin=[0], end=[2])
        end = mb.add(x=f.inputs["p"], y=2)
        new = mb.slice_update(x=old, update=f.inputs["u"], begin=f.inputs["p"], end=end)
        written = mb.coreml_update_state(state=f.inputs["cache"], value=new)
        new_head = mb.slice_by_index(x=written, begin=[0], end=[2])
        f.set_outputs(
            [mb.add(x=head, y=new_head) if read_old_after else mb.mul(x=new_head, y=np.float16(2.0))]
        )
    program = Program()
    program.add_function("main", f)
    return program


@pytest.mark.parametrize("read_old_after", [True, False])
def test_in_place_write_is_refused_while_the_old_content_is_still_needed(read_old_after):
    executor = MILExecutor(_read_after_write_program(read_old_after))
    assert bool(executor.in_place_updates) is not read_old_after
    state = executor.make_state()
    u = np.array([1.5, -2.0], np.float16)
    out1 = list(executor.run({"u": u, "p": np.array([0], np.int32)}, state=state).values())[0]
    out2 = list(executor.run({"u": u * 2, "p": np.array([0], np.int32)}, state=state).values())[0]
    if read_old_after:  # old head + new head: 0 + u, then u + 2u
        assert np.array_equal(out1, u) and np.array_equal(out2, (u + 2 * u).astype(np.float16)), (out1, out2)
    else:
        assert np.array_equal(out2, (4 * u).astype(np.float16)), out2
    assert np.array_equal(state.read("cache")[:2], 2 * u)


def _read_between_write_and_update_program() -> Program:
    """state (8,) fp16; the write sets slots p..p+1 to ``u``, then a second read_state of the cache sits
    between that write and the state's update: it must see the old content (the update has not happened)."""
    placeholders = {
        "cache": mb.state_tensor_placeholder(shape=(8,), dtype=types.fp16),
        "u": mb.placeholder(shape=(2,), dtype=types.fp16),
        "p": mb.placeholder(shape=(1,), dtype=types.int32),
    }
    with Function(placeholders, IOS18) as f:
        old = mb.read_state(input=f.inputs["cache"])
        end = mb.add(x=f.inputs["p"], y=2)
        new = mb.slice_update(x=old, update=f.inputs["u"], begin=f.inputs["p"], end=end)
        again = mb.read_state(input=f.inputs["cache"])  # after the write-site, before the update
        old_head = mb.slice_by_index(x=again, begin=[0], end=[2])
        mb.coreml_update_state(state=f.inputs["cache"], value=new)
        f.set_outputs([mb.identity(x=old_head)])
    program = Program()
    program.add_function("main", f)
    return program


def test_a_read_between_the_write_and_the_update_sees_the_old_state():
    executor = MILExecutor(_read_between_write_and_update_program())
    state = executor.make_state()
    u = np.array([1.5, -2.0], np.float16)
    zero = np.array([0], np.int32)
    out1 = list(executor.run({"u": u, "p": zero}, state=state).values())[0]
    out2 = list(executor.run({"u": 2 * u, "p": zero}, state=state).values())[0]
    # The read sees the state before this call's update: zeros, then the first call's u.
    assert np.array_equal(out1, np.zeros(2, np.float16)), f"call 1: expected the old [0, 0], got {out1}"
    assert np.array_equal(out2, u), f"call 2: expected the old {u}, got {out2} (the new {2 * u}?)"
    assert np.array_equal(state.read("cache")[:2], 2 * u), state.read("cache")
    assert executor.in_place_updates == set(), (
        f"in-place write chosen although a read_state of the old content follows it: "
        f"{executor.in_place_updates}"
    )


# ---------------------------------------------------------------- bad states


def test_bad_states_are_refused_before_anything_runs(tiny_stateful):
    model, paths = tiny_stateful
    decode = MILExecutor(paths["fp16", "decode"])
    feed = {"x": np.zeros((1, CHANNELS, 1, 1), np.float16), "position": np.array([0], np.int32)}
    with pytest.raises(StateError, match=r"declares states \(cache \(1, 8, 1, 16\) fp16\).*got none"):
        decode.run(feed)
    other = MILExecutor(paths["fp16", "prefill"]).make_state()  # another program (package)
    before = other.read("cache").copy()
    with pytest.raises(StateError, match="made by another model"):
        decode.run(feed, state=other)
    assert np.array_equal(other.read("cache"), before)
    fp32 = MILExecutor(paths["fp16", "decode"], mode="fp32")
    with pytest.raises(StateError, match="another model"):
        fp32.run(feed, state=decode.make_state())
    with pytest.raises(StateError, match=r"expected shape \(1, 8, 1, 16\), got \(1, 8, 1, 15\)"):
        decode.make_state().write("cache", np.zeros((1, 8, 1, 15)))
    assert CAPACITY == 16

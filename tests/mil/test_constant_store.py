"""Executors of one package share each decoded weight; a weight with other values never shares."""

from __future__ import annotations

import coremltools as ct
import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import Function, Program, types

from verification.mil import MILExecutor, constant_store

WIDTH = 256  # a 256 x 256 fp32 weight is 256 KB, above the store's MIN_BYTES


def linear_program(weight: np.ndarray, bias: np.ndarray) -> Program:
    """y = x @ weight.T + bias, the weight and bias constants of the program."""
    with Function({"x": mb.placeholder(shape=(1, WIDTH), dtype=types.fp32)}, ct.target.iOS16) as function:
        y = mb.linear(x=function.inputs["x"], weight=weight, bias=bias, name="y")
        function.set_outputs([y])
    program = Program()
    program.add_function("main", function)
    return program


def weight_constant(executor: MILExecutor):
    """The name and stored tensor of the executor's large (weight) constant."""
    (name,) = [n for n, t in executor.constants.items() if t.numel() == WIDTH * WIDTH]
    return name, executor.constants[name]


def test_two_executors_of_equal_weights_hold_one_tensor_and_a_changed_weight_its_own():
    rng = np.random.default_rng(18)
    weight = rng.standard_normal((WIDTH, WIDTH)).astype(np.float32)
    bias = rng.standard_normal(WIDTH).astype(np.float32)
    changed = weight.copy()
    changed[3, 7] += 1.0  # one element: the digest must see it
    x = {"x": rng.standard_normal((1, WIDTH)).astype(np.float32)}

    first = MILExecutor(linear_program(weight, bias), mode="fp32")
    second = MILExecutor(linear_program(weight.copy(), bias), mode="fp32")  # same values, other array
    other = MILExecutor(linear_program(changed, bias), mode="fp32")
    (_, a), (_, b), (_, c) = weight_constant(first), weight_constant(second), weight_constant(other)

    assert a is b, "two executors of equal weights decoded two copies"
    assert c is not a, "a weight with one element changed was served the stored tensor of the original"
    assert float(c[3, 7] - a[3, 7]) == 1.0
    got, expected = other.run(x)["y"], x["x"] @ changed.T + bias
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4, err_msg="the changed weight's output")
    # the small bias (1 KB) is copied per executor, not hashed
    (small_a,), (small_b,) = (
        [t for t in e.constants.values() if t.numel() == WIDTH] for e in (first, second)
    )
    assert small_a is not small_b and bool((small_a == small_b).all())


def test_storage_forms_do_not_share_and_the_store_lets_go_when_executors_do():
    rng = np.random.default_rng(19)
    weight = rng.standard_normal((WIDTH, WIDTH)).astype(np.float16)
    bias = rng.standard_normal(WIDTH).astype(np.float16)
    with Function({"x": mb.placeholder(shape=(1, WIDTH), dtype=types.fp16)}, ct.target.iOS16) as function:
        function.set_outputs([mb.linear(x=function.inputs["x"], weight=weight, bias=bias, name="y")])
    program = Program()
    program.add_function("main", function)

    before = constant_store.held_bytes()
    native = MILExecutor(program, mode="fp16_native")
    storage = MILExecutor(program, mode="fp16_storage")
    (_, as_fp16), (_, as_fp32) = weight_constant(native), weight_constant(storage)
    assert as_fp16.dtype.is_floating_point and as_fp16.element_size() == 2
    assert as_fp32.element_size() == 4, "fp16-storage mode must hold the fp16 weight as fp32, not share fp16"
    assert constant_store.held_bytes() - before >= WIDTH * WIDTH * (2 + 4)
    # an fp16 value needs no rounding: the fp32 mode (the hazard finder's reference) holds the same tensor
    reference = MILExecutor(program, mode="fp32")
    assert weight_constant(reference)[1] is as_fp32

    del native, storage, reference, as_fp16, as_fp32
    assert constant_store.held_bytes() <= before, "the store kept weights alive after their executors went"


def test_a_tied_embedding_read_as_a_table_and_as_a_head_weight_is_one_tensor():
    """The same bytes as a (vocab, hidden) gather table and a (vocab, hidden, 1, 1) conv weight (a tied
    LM head, as converted): one decoded tensor in two shapes, each op still computing with its own."""
    rng = np.random.default_rng(20)
    vocab, hidden = 512, 128  # 256 KB of fp32
    table = rng.standard_normal((vocab, hidden)).astype(np.float32)
    with Function(
        {"ids": mb.placeholder(shape=(3,), dtype=types.int32), "x": mb.placeholder(shape=(1, hidden, 1, 2))},
        ct.target.iOS16,
    ) as function:
        rows = mb.gather(x=table, indices=function.inputs["ids"], axis=0, name="rows")
        logits = mb.conv(x=function.inputs["x"], weight=table.reshape(vocab, hidden, 1, 1), name="logits")
        function.set_outputs([rows, logits])
    program = Program()
    program.add_function("main", function)
    executor = MILExecutor(program, mode="fp32")
    big = [t for t in executor.constants.values() if t.numel() == vocab * hidden]
    assert len(big) == 2 and {t.dim() for t in big} == {2, 4}, [tuple(t.shape) for t in big]
    assert big[0].untyped_storage().data_ptr() == big[1].untyped_storage().data_ptr(), "two decoded copies"
    ids, x = np.array([0, 7, 511], np.int32), rng.standard_normal((1, hidden, 1, 2)).astype(np.float32)
    out = executor.run({"ids": ids, "x": x})
    np.testing.assert_array_equal(out["rows"], table[ids])
    np.testing.assert_allclose(out["logits"][0, :, 0, :], table @ x[0, :, 0, :], rtol=1e-4, atol=1e-4)

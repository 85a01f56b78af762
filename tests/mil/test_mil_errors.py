"""Bad inputs give errors that name the problem and what was expected; unknown ops never run."""

from __future__ import annotations

import shutil

import coremltools as ct
import numpy as np
import pytest
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import types

from verification.mil import (
    KERNELS,
    InputError,
    MILExecutor,
    ProgramLoadError,
    UnsupportedOpError,
    load_program,
)
from verification.mil import executor as executor_module

pytestmark = pytest.mark.coreml


def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "nothing.mlpackage"
    with pytest.raises(ProgramLoadError, match=r"does not exist.*expected a saved \.mlpackage"):
        load_program(missing)


def test_a_plain_directory_is_not_a_package(tmp_path):
    with pytest.raises(ProgramLoadError, match=r"not an ML package.*\*\.mlpackage"):
        load_program(tmp_path)


def test_corrupt_packages_are_reported(saved_models, tmp_path):
    source = saved_models["ane_block_fp32_default"][0]
    no_manifest = tmp_path / "no_manifest.mlpackage"
    shutil.copytree(source, no_manifest)
    (no_manifest / "Manifest.json").unlink()
    with pytest.raises(ProgramLoadError, match="corrupt ML package.*Manifest.json is missing"):
        load_program(no_manifest)
    garbage = tmp_path / "garbage.mlpackage"
    shutil.copytree(source, garbage)
    for spec in garbage.rglob("model.mlmodel"):
        spec.write_bytes(b"this is not a protobuf")
    with pytest.raises(ProgramLoadError, match="corrupt"):
        load_program(garbage)


def test_neural_network_models_are_refused_with_the_reason(tmp_path):
    import torch

    traced = torch.jit.trace(torch.nn.Linear(3, 2).eval(), torch.zeros(1, 3))
    model = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=(1, 3))], convert_to="neuralnetwork")
    path = tmp_path / "nn.mlmodel"
    model.save(str(path))
    for source in (model, path):
        with pytest.raises(ProgramLoadError, match="'neuralNetwork' model, not an ML Program.*mlprogram"):
            load_program(source)


def test_other_objects_are_refused():
    with pytest.raises(ProgramLoadError, match="cannot load a MIL program from a int"):
        load_program(3)


@pytest.fixture(scope="module")
def executor(saved_models):
    path, _, feed = saved_models["bert_finite_mask_fp32"]
    return MILExecutor(path), feed


def test_missing_and_unexpected_input_names(executor):
    runner, feed = executor
    with pytest.raises(InputError, match=r"missing \['attention_mask'\], unexpected \['mask'\]"):
        runner.run({"ids": feed["ids"], "mask": feed["attention_mask"]})


def test_wrong_shape_names_input_expected_and_received(executor):
    runner, feed = executor
    with pytest.raises(
        InputError, match=r"input 'ids': expected shape \(1, 8\) \(rank 2\), received shape \(1, 9\)"
    ):
        runner.run({**feed, "ids": np.zeros((1, 9), np.int32)})
    with pytest.raises(InputError, match=r"received shape \(8,\) \(rank 1\)"):
        runner.run({**feed, "ids": np.zeros(8, np.int32)})


def test_wrong_dtype_names_input_expected_and_received(executor):
    runner, feed = executor
    with pytest.raises(
        InputError, match=r"input 'ids': expected an integer array \(int32\), received dtype float32"
    ):
        runner.run({**feed, "ids": feed["ids"].astype(np.float32)})
    with pytest.raises(InputError, match=r"do not fit int32"):
        runner.run({**feed, "ids": np.full((1, 8), 2**40, np.int64)})


def test_float_inputs_refuse_integers():
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3))])
    def program(x):
        return mb.relu(x=x)

    with pytest.raises(
        InputError, match=r"input 'x': expected a floating-point array \(fp32\), received dtype int64"
    ):
        MILExecutor(program).run({"x": np.zeros((2, 3), np.int64)})


def test_flexible_dimensions_accept_any_size():
    from coremltools.converters.mil.mil import get_new_symbol

    length = get_new_symbol()

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, length))])
    def program(x):
        return mb.softmax(x=x, axis=-1)

    runner = MILExecutor(program)
    assert runner.inputs["x"].shape == (1, None)
    for size in (3, 7):
        (out,) = runner.run({"x": np.zeros((1, size), np.float32)}).values()
        assert out.shape == (1, size)
    with pytest.raises(InputError, match=r"expected shape \(1, 'flexible'\)"):
        runner.run({"x": np.zeros((2, 3), np.float32)})


def test_an_op_without_kernel_is_named_with_its_position(monkeypatch):
    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3)), mb.TensorSpec(shape=(2, 3))])
    def program(x, y):
        return mb.softmax(x=mb.add(x=x, y=y), axis=0)

    table = dict(KERNELS)
    del table["softmax"]
    monkeypatch.setattr(executor_module, "KERNELS", table)
    operations = list(program.functions["main"].operations)
    position = next(i for i, op in enumerate(operations) if op.op_type == "softmax")
    name = operations[position].name
    expected = (
        rf"MIL op type 'softmax' \(op '{name}', position {position} of {len(operations)} in function 'main'"
    )
    with pytest.raises(UnsupportedOpError, match=expected):
        MILExecutor(program)


def test_an_op_type_nobody_supports_is_refused():
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4, 4, 4))])
    def program(x):
        return mb.space_to_depth(x=x, block_size=2)

    operations = list(program.functions["main"].operations)
    position = next(i for i, op in enumerate(operations) if op.op_type == "space_to_depth")
    expected = (
        rf"'space_to_depth' \(op '{operations[position].name}', position {position} of {len(operations)}"
    )
    with pytest.raises(UnsupportedOpError, match=expected):
        MILExecutor(program)


def test_unknown_mode_is_refused():
    @mb.program(input_specs=[mb.TensorSpec(shape=(2,), dtype=types.fp32)])
    def program(x):
        return mb.relu(x=x)

    with pytest.raises(ValueError, match=r"unknown mode 'fp8'; expected one of"):
        MILExecutor(program, mode="fp8")

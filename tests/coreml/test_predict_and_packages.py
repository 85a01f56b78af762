"""Backends, packages and bad input: each error names the problem and the expected value."""

import importlib
import logging
import os
import platform
from types import SimpleNamespace

import coremltools as ct
import numpy as np
import pytest
import torch

from verification.coreml import PackageError, convert, load, predict, resolve_backend, save
from verification.coreml import package as package_module
from verification.coreml.predict import _predict_coreml
from verification.mil import InputError, ProgramLoadError

# the module (verification.coreml exports its predict function under the same name)
predict_module = importlib.import_module("verification.coreml.predict")

pytestmark = pytest.mark.coreml


class Scale(torch.nn.Module):
    def forward(self, x):
        return x * 2.0 + 1.0


class Shift(torch.nn.Module):
    def forward(self, x):
        return x - 5.0


@pytest.fixture(scope="module")
def tiny_mlmodel():
    return convert(Scale(), (torch.zeros(1, 4, 1, 3),), precision="fp32", output_names=["y"])


def test_auto_runs_the_mil_executor_off_macos():
    expected = "coreml" if platform.system() == "Darwin" else "mil"
    assert resolve_backend("auto") in (expected, "mil")


@pytest.mark.skipif(platform.system() == "Darwin", reason="checks the non-macOS message")
def test_coreml_backend_off_macos_says_why():
    with pytest.raises(RuntimeError, match=r"backend 'coreml' is not available here .*need macOS"):
        resolve_backend("coreml")


def test_unknown_backend_lists_choices():
    with pytest.raises(ValueError, match=r"expected one of \['auto', 'coreml', 'mil'\], got 'gpu'"):
        predict("x.mlpackage", {}, backend="gpu")


def test_save_load_and_predict_from_the_package(tmp_path, tiny_mlmodel):
    path = save(tiny_mlmodel, tmp_path / "Scale.mlpackage")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Scale.mlpackage"], "no staging left behind"
    x = np.arange(12, dtype=np.float32).reshape(1, 4, 1, 3)
    out = predict(path, {"x": x}, backend="mil")
    np.testing.assert_array_equal(out["y"], x * 2 + 1)
    assert load(path).get_spec().description.output[0].name == "y"


def test_save_refuses_other_suffixes_and_missing_directories(tmp_path, tiny_mlmodel):
    with pytest.raises(PackageError, match=r"expected a path ending in .mlpackage, got .*model.bin"):
        save(tiny_mlmodel, tmp_path / "model.bin")
    with pytest.raises(PackageError, match=r"the directory .*nowhere.* does not exist"):
        save(tiny_mlmodel, tmp_path / "nowhere" / "m.mlpackage")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_save_leaves_the_previous_package_intact(tmp_path, tiny_mlmodel, monkeypatch):
    path = save(tiny_mlmodel, tmp_path / "Model.mlpackage")
    x = np.arange(12, dtype=np.float32).reshape(1, 4, 1, 3)
    shifted = convert(Shift(), (torch.zeros(1, 4, 1, 3),), precision="fp32", output_names=["y"])
    real_replace = os.replace

    def failing_swap(source, destination):
        if os.fspath(destination) == os.fspath(path) and os.path.basename(source) == path.name:
            raise OSError("planted: the new package cannot be moved into place")
        return real_replace(source, destination)

    monkeypatch.setattr(package_module.os, "replace", failing_swap)
    with pytest.raises(OSError, match="planted"):
        save(shifted, path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Model.mlpackage"], "no staging left behind"
    np.testing.assert_array_equal(predict(path, {"x": x}, backend="mil")["y"], x * 2 + 1)
    save(shifted, path)  # and a save that succeeds replaces it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Model.mlpackage"]
    np.testing.assert_array_equal(predict(path, {"x": x}, backend="mil")["y"], x - 5)


def test_missing_and_corrupt_packages(tmp_path, tiny_mlmodel):
    with pytest.raises(PackageError, match=r"no model package at .*absent.mlpackage"):
        load(tmp_path / "absent.mlpackage")
    fake = tmp_path / "fake.mlpackage"
    fake.mkdir()
    with pytest.raises(PackageError, match=r"is not an .mlpackage \(no Manifest.json inside\)"):
        load(fake)
    with pytest.raises(
        ProgramLoadError, match=r"corrupt ML package '.*fake.mlpackage': Manifest.json is missing"
    ):
        predict(fake, {}, backend="mil")
    garbage = save(tiny_mlmodel, tmp_path / "garbage.mlpackage")
    for spec in garbage.rglob("model.mlmodel"):
        spec.write_bytes(b"this is not a protobuf")
    with pytest.raises(PackageError, match=r"load: corrupt model package '.*garbage.mlpackage' \(\w+"):
        load(garbage)
    with pytest.raises(
        ProgramLoadError, match=r"corrupt ML package '.*garbage.mlpackage': coremltools could not"
    ):
        predict(garbage, {"x": np.zeros((1, 4, 1, 3), np.float32)}, backend="mil")


def test_wrong_input_names_shapes_and_dtypes_are_named(tiny_mlmodel):
    """The MIL path: each message names the input, what the program expects and what it received."""
    with pytest.raises(InputError, match=r"missing \['x'\], unexpected \['z'\]; expected exactly \['x'\]"):
        predict(tiny_mlmodel, {"z": np.zeros((1, 4, 1, 3), np.float32)}, backend="mil")
    with pytest.raises(
        InputError,
        match=r"input 'x': expected shape \(1, 4, 1, 3\) \(rank 4\), "
        r"received shape \(1, 4, 1, 5\) \(rank 4\)",
    ):
        predict(tiny_mlmodel, {"x": np.zeros((1, 4, 1, 5), np.float32)}, backend="mil")
    with pytest.raises(
        InputError, match=r"input 'x': expected a floating-point array \(fp32\), received dtype int32"
    ):
        predict(tiny_mlmodel, {"x": np.zeros((1, 4, 1, 3), np.int32)}, backend="mil")


def test_coreml_path_checks_inputs_against_the_spec_before_predicting(tiny_mlmodel):
    """Recorded behaviour of the Core ML branch, run with a stand-in model (Core ML runs on macOS only)."""
    calls = []
    model = SimpleNamespace(
        get_spec=tiny_mlmodel.get_spec,
        predict=lambda inputs: calls.append(inputs) or {"y": inputs["x"] * 2 + 1},
    )
    x = np.ones((1, 4, 1, 3), np.float32)
    assert _predict_coreml(model, {"x": x}, None)["y"].tolist() == (x * 2 + 1).tolist()
    with pytest.raises(ValueError, match=r"expected names \['x'\], got \['q'\]"):
        _predict_coreml(model, {"q": x}, None)
    with pytest.raises(ValueError, match=r"input 'x': expected shape \(1, 4, 1, 3\), got \(2, 4, 1, 3\)"):
        _predict_coreml(model, {"x": np.ones((2, 4, 1, 3), np.float32)}, None)
    with pytest.raises(ValueError, match=r"input 'x': expected dtype float32, got int32"):
        _predict_coreml(model, {"x": np.ones((1, 4, 1, 3), np.int32)}, None)
    assert len(calls) == 1


@pytest.fixture(scope="module")
def neural_network_model():
    traced = torch.jit.trace(torch.nn.Linear(3, 2).eval(), torch.zeros(1, 3))
    return ct.convert(traced, inputs=[ct.TensorType(name="x", shape=(1, 3))], convert_to="neuralnetwork")


def test_both_backends_refuse_a_neural_network_model_with_the_same_message(neural_network_model):
    """Core ML would run a neural network model: the Core ML branch checks the spec type before anything."""
    x = {"x": np.zeros((1, 3), np.float32)}
    with pytest.raises(ProgramLoadError) as on_mil:
        predict(neural_network_model, x, backend="mil")
    with pytest.raises(ProgramLoadError) as on_coreml:
        _predict_coreml(neural_network_model, x, None)
    assert str(on_coreml.value) == str(on_mil.value)
    assert "the given MLModel is a 'neuralNetwork' model, not an ML Program" in str(on_coreml.value)
    assert "convert_to='mlprogram'" in str(on_coreml.value)


def stand_in_model(units, spec_source, label, calls):
    """An MLModel stand-in loaded on ``units`` whose predictions record ``label``."""
    return SimpleNamespace(
        compute_unit=units,
        get_spec=spec_source.get_spec,
        predict=lambda inputs: calls.append(label) or {"y": inputs["x"]},
    )


def test_an_in_memory_model_is_reloaded_only_when_other_compute_units_are_asked_for(
    tiny_mlmodel, monkeypatch
):
    """Core ML fixes the compute units when it loads a model: asking an MLModel loaded on ALL for CPU_ONLY
    must reload it (decision logic here with stand-ins; the reload itself runs on macOS)."""
    calls, reloads = [], []

    def fake_reload(model, units):
        reloads.append(units)
        return stand_in_model(units, tiny_mlmodel, f"reloaded on {units.name}", calls)

    monkeypatch.setattr(predict_module, "_reload", fake_reload)
    model = stand_in_model(ct.ComputeUnit.ALL, tiny_mlmodel, "as loaded", calls)
    x = {"x": np.ones((1, 4, 1, 3), np.float32)}
    _predict_coreml(model, x, ct.ComputeUnit.CPU_ONLY)
    _predict_coreml(model, x, ct.ComputeUnit.ALL)
    _predict_coreml(model, x, None)
    assert reloads == [ct.ComputeUnit.CPU_ONLY]
    assert calls == ["reloaded on CPU_ONLY", "as loaded", "as loaded"]


def test_reload_keeps_the_program_and_weights_and_sets_the_compute_units(tiny_mlmodel):
    reloaded = predict_module._reload(tiny_mlmodel, ct.ComputeUnit.CPU_ONLY)
    assert reloaded.compute_unit == ct.ComputeUnit.CPU_ONLY
    assert reloaded.get_spec() == tiny_mlmodel.get_spec()
    x = np.random.default_rng(0).standard_normal((1, 4, 1, 3)).astype(np.float32)
    np.testing.assert_array_equal(predict(reloaded, {"x": x}, backend="mil")["y"], x * 2 + 1)


def test_convert_refuses_input_names_with_torch_export():
    with pytest.raises(
        ValueError,
        match=r"input_names: not supported with exporter='export' .*forward's arguments: \['x'\]\), "
        r"got \['image'\]; use exporter='trace'",
    ):
        convert(Scale(), (torch.zeros(1, 4, 1, 3),), exporter="export", input_names=["image"])
    renamed = convert(Scale(), (torch.zeros(1, 4, 1, 3),), precision="fp32", input_names=["image"])
    assert [d.name for d in renamed.get_spec().description.input] == ["image"]


def test_convert_quiets_the_coremltools_logger_only_while_converting():
    logger = logging.getLogger("coremltools")
    previous = logger.level
    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        convert(Scale(), (torch.zeros(1, 4, 1, 3),), precision="fp32")
        assert logger.level == logging.DEBUG, "convert changed the coremltools logger for the whole process"
        chatter = [r.getMessage() for r in records if r.levelno < logging.ERROR]
        assert chatter == [], f"coremltools logged below ERROR during convert: {chatter[:3]}"
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)

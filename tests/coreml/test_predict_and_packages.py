"""Backends, packages and bad input: each error names the problem and the expected value."""

import platform
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from verification.coreml import PackageError, convert, load, predict, resolve_backend, save
from verification.coreml.predict import _predict_coreml
from verification.mil import InputError, ProgramLoadError

pytestmark = pytest.mark.coreml


class Scale(torch.nn.Module):
    def forward(self, x):
        return x * 2.0 + 1.0


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


def test_missing_and_corrupt_packages(tmp_path):
    with pytest.raises(PackageError, match=r"no model package at .*absent.mlpackage"):
        load(tmp_path / "absent.mlpackage")
    fake = tmp_path / "fake.mlpackage"
    fake.mkdir()
    with pytest.raises(PackageError, match=r"is not an .mlpackage \(no Manifest.json inside\)"):
        load(fake)
    with pytest.raises(ProgramLoadError):
        predict(fake, {}, backend="mil")


def test_wrong_input_names_shapes_and_dtypes_are_named(tiny_mlmodel):
    with pytest.raises(InputError, match=r"x"):
        predict(tiny_mlmodel, {"z": np.zeros((1, 4, 1, 3), np.float32)}, backend="mil")
    with pytest.raises(InputError, match=r"\(1, 4, 1, 3\)"):
        predict(tiny_mlmodel, {"x": np.zeros((1, 4, 1, 5), np.float32)}, backend="mil")


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


@pytest.mark.macos
def test_coreml_and_mil_agree_on_macos(tmp_path, tiny_mlmodel):
    x = np.random.default_rng(0).standard_normal((1, 4, 1, 3)).astype(np.float32)
    path = save(tiny_mlmodel, tmp_path / "Scale.mlpackage")
    on_coreml = predict(path, {"x": x}, backend="coreml")["y"]
    np.testing.assert_allclose(on_coreml, predict(path, {"x": x}, backend="mil")["y"], rtol=1e-3)

"""Bad input to the Core AI target: clear errors naming what was expected and what came, raised before
anything is converted or written, and nothing half-written left behind."""

import os

import numpy as np
import pytest
import torch

import verification.coreai as coreai
from verification.coreai import extra


class Cumprod(torch.nn.Module):
    """Exports fine; coreai-torch 0.4.3 has no lowering for aten.cumprod."""

    def forward(self, x):
        return torch.cumprod(x, 1)


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x):
        return torch.nn.functional.gelu(self.linear(x))


@pytest.fixture(scope="module")
def tiny_program():
    torch.manual_seed(0)
    return coreai.convert(Tiny(), (torch.randn(2, 4),))


def test_without_the_extra_every_entry_point_says_how_to_install_it(monkeypatch):
    """Simulated: the coreai packages cannot be found. One line, the install command, nothing built."""
    real = extra.importlib.util.find_spec
    monkeypatch.setattr(
        extra.importlib.util, "find_spec", lambda name, *a: None if name == "coreai_torch" else real(name, *a)
    )
    for call in (
        lambda: coreai.convert(Tiny(), (torch.randn(2, 4),)),
        lambda: coreai.predict("model.aimodel", {}),
        lambda: coreai.open_asset("model.aimodel"),
    ):
        with pytest.raises(coreai.CoreAIUnavailable) as caught:
            call()
        message = str(caught.value)
        assert "\n" not in message and 'pip install -c constraints.txt -e ".[coreai]"' in message, message
        # the packages named (or, on Python 3.10, the version): whatever is missing here, it says so
        assert "coreai_torch" in message or "Python >= 3.11" in message, message


@pytest.mark.coreai
def test_a_model_core_ai_cannot_convert_names_the_converters_error():
    with pytest.raises(coreai.CoreAIConversionError, match=r"TorchConverter.*aten\.cumprod\.default"):
        coreai.convert(Cumprod(), (torch.randn(3, 5),))


@pytest.mark.coreai
def test_a_model_torch_export_refuses_names_the_stage():
    class DataDependent(torch.nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x  # control flow on a value: torch.export refuses it

    with pytest.raises(coreai.CoreAIConversionError, match=r"torch\.export of DataDependent failed"):
        coreai.convert(DataDependent(), (torch.randn(3, 5),))


@pytest.mark.coreai
def test_a_non_decomposed_exported_program_is_refused_before_the_converter():
    exported = torch.export.export(Tiny().eval(), (torch.randn(2, 4),))  # no run_decompositions
    with pytest.raises(coreai.NotDecomposedError) as caught:
        coreai.convert_exported(exported, precision="fp32")
    message = str(caught.value)
    assert (
        "aten.linear.default" in message and "run_decompositions(coreai_torch.get_decomp_table())" in message
    )
    with pytest.raises(TypeError, match="expected a torch.export.ExportedProgram, got Tiny"):
        coreai.convert_exported(Tiny(), precision="fp32")


@pytest.mark.coreai
def test_wrong_arguments_are_named():
    with pytest.raises(ValueError, match=r"precision: expected one of \['fp32', 'fp16'\], got 'int8'"):
        coreai.convert(Tiny(), (torch.randn(2, 4),), precision="int8")
    with pytest.raises(TypeError, match="example input 0: expected a torch.Tensor, got list"):
        coreai.convert(Tiny(), ([1.0, 2.0],))
    with pytest.raises(ValueError, match="input_names: expected 1 names, got 2"):
        coreai.convert(Tiny(), (torch.randn(2, 4),), input_names=["a", "b"])


@pytest.mark.coreai
def test_an_mlpackage_where_an_aimodel_is_expected_is_refused(tmp_path, tiny_program):
    package = tmp_path / "model.mlpackage"
    package.mkdir()
    (package / "Manifest.json").write_text("{}")
    for call in (
        lambda: coreai.open_asset(package),
        lambda: coreai.predict(package, {"x": np.zeros((2, 4))}),
    ):
        with pytest.raises(
            coreai.AssetError, match=r"is a Core ML \.mlpackage, expected a Core AI \.aimodel"
        ):
            call()
    with pytest.raises(coreai.AssetError, match=r"is a Core ML \.mlpackage"):
        coreai.save(tiny_program, package)
    assert sorted(os.listdir(tmp_path)) == ["model.mlpackage"] and os.listdir(package) == ["Manifest.json"]
    with pytest.raises(coreai.AssetError, match=r"expected a path ending in \.aimodel, got .*model\.onnx"):
        coreai.save(tiny_program, tmp_path / "model.onnx")
    with pytest.raises(coreai.AssetError, match="no Core AI asset at"):
        coreai.open_asset(tmp_path / "missing.aimodel")


@pytest.mark.coreai
def test_an_aimodel_where_an_mlpackage_is_expected_is_refused(tmp_path, tiny_program):
    from verification.coreml import PackageError, load

    asset = coreai.save(tiny_program, tmp_path / "model.aimodel")
    with pytest.raises(PackageError, match=r"is a Core AI \.aimodel, expected a Core ML \.mlpackage"):
        load(asset)


@pytest.mark.coreai
def test_a_failed_save_leaves_the_previous_asset_and_no_staging_directory(tmp_path, tiny_program):
    path = coreai.save(tiny_program, tmp_path / "model.aimodel")
    before = {name: (path / name).read_bytes() for name in os.listdir(path)}

    class Broken:
        def save_asset(self, target):
            target.mkdir()
            (target / "main.mlirb").write_bytes(b"half")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        coreai.save(Broken(), path)
    assert {name: (path / name).read_bytes() for name in os.listdir(path)} == before
    assert sorted(os.listdir(tmp_path)) == ["model.aimodel"]


@pytest.mark.coreai
def test_inputs_are_checked_against_the_function_before_running(tiny_program):
    good = tiny_program.feeds([torch.randn(2, 4)])
    assert set(coreai.predict(tiny_program, good)) == set(tiny_program.output_names)
    cases = {
        "inputs: expected names \\['x'\\], got \\['y'\\]": {"y": good["x"]},
        "input 'x': expected shape \\(2, 4\\), got \\(3, 4\\)": {"x": np.zeros((3, 4), np.float32)},
        "input 'x': expected dtype float32, got float64": {"x": good["x"].astype(np.float64)},
    }
    for message, inputs in cases.items():
        with pytest.raises(coreai.CoreAIRuntimeError, match=message):
            coreai.predict(tiny_program, inputs)


@pytest.mark.coreai
def test_a_compute_unit_off_the_os_runtime_is_refused(tiny_program):
    with pytest.raises(
        coreai.CoreAIRuntimeError, match="compute_unit 'neural_engine' needs Core AI's OS runtime"
    ):
        coreai.predict(tiny_program, tiny_program.feeds([torch.randn(2, 4)]), compute_unit="neural_engine")
    with pytest.raises(ValueError, match="compute_unit: expected one of"):
        coreai.predict(tiny_program, {}, compute_unit="tpu")


@pytest.mark.coreai
def test_a_session_loads_once_and_answers_as_predict_does(tiny_program):
    feeds = tiny_program.feeds([torch.randn(2, 4)])
    expected = coreai.predict(tiny_program, feeds)
    session = coreai.Session(tiny_program)
    with pytest.raises(RuntimeError, match="inside a `with` block"):
        session.run(feeds)
    with session:
        for _ in range(2):
            got = session.run(feeds)
            assert list(got) == list(expected) and all(np.array_equal(got[k], expected[k]) for k in got)
    with pytest.raises(coreai.CoreAIRuntimeError, match="compute_unit 'gpu' needs Core AI's OS runtime"):
        coreai.Session(tiny_program, compute_unit="gpu")

"""verification/mil/weight_file.py: a package's constants as read-only views into one mapping of its
weight file, the same values coremltools' own loader reads, shared across functions and loads."""

import shutil
import tracemalloc
from pathlib import Path

import coremltools as ct
import numpy as np
import pytest
import torch
from coremltools.converters.mil.frontend.milproto.load import load as coremltools_load

from verification.coreml import convert, save, save_multifunction
from verification.mil import weight_file
from verification.mil.program import ProgramLoadError, load_program

APPLE_PACKAGE = next((Path(__file__).parents[1] / "foreign" / "packages").glob("*/*.mlpackage"))


class SharedWeights(torch.nn.Module):
    """A 1x1 conv over 256 channels (a 256 KB fp32 weight) and a bias: one weight for every shape."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv = torch.nn.Conv2d(256, 256, 1)

    def forward(self, x):
        return self.conv(x)


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    """name -> path: Apple's ane_transformers DistilBERT (made by Apple's code path), a two-function fp16
    package whose functions share the weight, an fp32 one, and a 4-bit palettized one."""
    root = tmp_path_factory.mktemp("weight_file")
    model = SharedWeights().eval()
    functions = {
        name: convert(
            model, (torch.randn(1, 256, 1, n),), precision="fp16", minimum_deployment_target=ct.target.iOS18
        )
        for name, n in (("prefill", 4), ("decode", 1))
    }
    fp32 = convert(model, (torch.randn(1, 256, 1, 4),), precision="fp32")
    config = ct.optimize.coreml.OptimizationConfig(
        global_config=ct.optimize.coreml.OpPalettizerConfig(nbits=4, weight_threshold=1)
    )
    palettized = ct.optimize.coreml.palettize_weights(fp32, config)
    return {
        "apple": APPLE_PACKAGE,
        "two functions": save_multifunction(functions, root / "two.mlpackage"),
        "fp32": save(fp32, root / "fp32.mlpackage"),
        "palettized": save(palettized, root / "palettized.mlpackage"),
    }


def constants(program) -> dict:
    """(function, the const op's position, its op name up to the loader's counter) -> its array."""
    return {
        (name, position, op.name.rstrip("0123456789")): op.outputs[0].val
        for name, function in program.functions.items()
        for position, op in enumerate(function.operations)
        if op.op_type == "const" and isinstance(op.outputs[0].val, np.ndarray)
    }


def coremltools_own(path: Path):
    model = ct.models.MLModel(str(path), skip_model_load=True)
    spec = model.get_spec()
    return coremltools_load(spec, spec.specificationVersion, model.weights_dir)


@pytest.mark.parametrize("name", ["apple", "two functions", "fp32", "palettized"])
def test_every_constant_is_what_coremltools_reads(packages, name):
    expected, got = constants(coremltools_own(packages[name])), constants(load_program(packages[name]))
    assert expected.keys() == got.keys(), f"{name}: constants differ: {expected.keys() ^ got.keys()}"
    views = 0
    for key, want in expected.items():
        value = got[key]
        assert (value.dtype, value.shape) == (want.dtype, want.shape), (
            f"{name} {key}: {value.dtype}{value.shape}, coremltools reads {want.dtype}{want.shape}"
        )
        assert np.array_equal(value, want, equal_nan=value.dtype.kind == "f"), f"{name} {key}: values differ"
        views += not value.flags.writeable
    assert views > 0, f"{name}: no constant was read as a view of the weight file"


def test_two_functions_and_two_loads_share_one_mapping_and_copy_nothing(packages):
    path = packages["two functions"]
    tracemalloc.start()
    try:
        first = load_program(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    weights = [v for v in constants(first).values() if v.nbytes >= 64 * 1024]
    assert len(weights) == 2, f"expected the 256x256 weight in each function, got {len(weights)}"
    prefill, decode = weights
    assert np.shares_memory(prefill, decode), "the functions' weight is two copies"
    assert not prefill.flags.writeable
    again = [v for v in constants(load_program(path)).values() if v.nbytes >= 64 * 1024]
    assert np.shares_memory(again[0], prefill), "a second load of the package mapped its weights again"
    assert peak < prefill.nbytes, f"loading allocated {peak} bytes for a {prefill.nbytes}-byte weight"


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda data: data[:40], "shorter than the 64-byte header"),
        (lambda data: data[:-100], "expected 256 x 2 bytes for shape (256,)"),
        (lambda data: data[:64] + b"\0" * (len(data) - 64), "no blob record at offset"),
        (lambda data: data[:4] + (7).to_bytes(4, "little") + data[8:], "blob storage version 2, got 7"),
    ],
    ids=["truncated header", "truncated blob", "no record", "another version"],
)
def test_a_damaged_weight_file_is_refused_naming_it(packages, tmp_path, damage, expected):
    path = tmp_path / "damaged.mlpackage"
    shutil.copytree(packages["two functions"], path)
    (weights,) = path.rglob("weight.bin")
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(ProgramLoadError, match="weight.bin") as error:
        load_program(path)
    assert expected in str(error.value), str(error.value)
    assert "WeightFileError" in str(error.value)


def test_the_loader_is_coremltools_own_again_after_a_load(packages):
    from coremltools.converters.mil.frontend.milproto import load as milproto_load

    before = milproto_load._load_value
    load_program(packages["fp32"])
    assert milproto_load._load_value is before
    with pytest.raises(ProgramLoadError):
        load_program(packages["fp32"].parent / "missing.mlpackage")
    assert milproto_load._load_value is before
    assert weight_file.VIEW_DTYPES  # the dtypes read as views are named


def test_an_fp32_programs_executor_computes_on_the_mapped_weights_without_a_copy(packages):
    from verification.mil.executor import MILExecutor

    executor = MILExecutor(packages["fp32"])
    (weight,) = [v for v in constants(executor.program).values() if v.nbytes >= 64 * 1024]
    tensors = [t for t in executor.constants.values() if t.numel() == weight.size]
    assert len(tensors) == 1 and np.shares_memory(tensors[0].numpy(), weight), "the weight was copied"
    out = executor.run({"x": np.ones((1, 256, 1, 4), np.float32)})
    assert np.isfinite(next(iter(out.values()))).all()

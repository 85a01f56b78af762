"""verification/coreml/function_merge.py: the multifunction package coremltools' own save_multifunction
writes, byte for byte, without loading any function's weights."""

import shutil
import tracemalloc
from pathlib import Path

import coremltools as ct
import pytest
import torch
from coremltools.models.utils import load_spec
from test_decoder_programs import CAPACITY, PREFILL, tiny_llama

import ane_models
from verification.coreml import convert, function_merge, save
from verification.decoders import conversion


def _parts_of_a_decoder(root: Path, cache: str, precision: str, monkeypatch, seed: int = 5) -> dict:
    """The single-function packages convert_decoder merges (copied before it deletes them)."""
    root.mkdir(exist_ok=True)
    captured = {}
    real = conversion.save_multifunction

    def keep_parts(parts, path, **kwargs):
        for name, part in parts.items():
            captured[name] = Path(shutil.copytree(part, root / f"{cache}_{precision}_{name}.mlpackage"))
        return real(parts, path, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(conversion, "save_multifunction", keep_parts)
        lm = ane_models.optimize(tiny_llama(seed=seed), cache_capacity=CAPACITY, prefill_length=PREFILL)
        conversion.convert_decoder(
            lm, root / f"{cache}_{precision}.mlpackage", cache=cache, precision=precision
        )
    return captured


def coremltools_merge(parts: dict, path: Path, default: str) -> Path:
    descriptor = ct.utils.MultiFunctionDescriptor()
    for name, part in parts.items():
        descriptor.add_function(str(part), "main", name)
    descriptor.default_function_name = default
    ct.utils.save_multifunction(descriptor, str(path))
    return path


def without_op_names(spec):
    """The spec with every op's name attribute dropped: coremltools' loader renames the state-update ops it
    rebuilds (``coreml_update_state_4`` becomes ``_0``), the merge keeps the converter's names."""
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                op.attributes.pop("name", None)
    return spec


def weight_bytes(package: Path) -> bytes:
    (weights,) = package.rglob("weight.bin")
    return weights.read_bytes()


@pytest.mark.parametrize("cache, precision", [("state", "fp16"), ("io", "fp32")])
def test_the_merge_is_coremltools_own_package(tmp_path, monkeypatch, cache, precision):
    parts = _parts_of_a_decoder(tmp_path, cache, precision, monkeypatch)
    theirs = coremltools_merge(parts, tmp_path / "theirs.mlpackage", "decode")
    ours = tmp_path / "ours.mlpackage"
    function_merge.merge_functions(parts, ours, "decode")
    expected, got = without_op_names(load_spec(str(theirs))), without_op_names(load_spec(str(ours)))
    assert got == expected, f"{cache} {precision}: the merged spec differs from coremltools' own"
    shared = len(weight_bytes(theirs))
    separate = sum(len(weight_bytes(part)) for part in parts.values())
    assert weight_bytes(ours) == weight_bytes(theirs), f"weight files differ: {len(weight_bytes(ours))} bytes"
    assert shared < separate, f"the functions' weights were not shared: {shared} of {separate} bytes"


def test_merging_holds_no_weight_in_memory(tmp_path):
    """Two functions sharing a 4 MB weight: the merge allocates less than the weight (coremltools' own
    held both functions' copies)."""
    torch.manual_seed(0)
    model = torch.nn.Conv2d(1024, 1024, 1).eval()
    parts = {
        name: save(
            convert(
                model,
                (torch.randn(1, 1024, 1, n),),
                precision="fp32",
                minimum_deployment_target=ct.target.iOS18,
            ),
            tmp_path / f"{name}.mlpackage",
        )
        for name, n in (("prefill", 4), ("decode", 1))
    }
    tracemalloc.start()
    try:
        function_merge.merge_functions(parts, tmp_path / "merged.mlpackage", "decode")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    weight = model.weight.numel() * 4
    assert peak < weight / 4, f"merging allocated {peak} bytes at peak for a {weight}-byte weight"
    assert len(weight_bytes(tmp_path / "merged.mlpackage")) < 1.1 * weight, "the weight was written twice"


def test_functions_holding_different_weights_keep_both(tmp_path, monkeypatch):
    """Two decoders of different seeds as the two functions: no blob may be shared by mistake."""
    parts = {
        "prefill": _parts_of_a_decoder(tmp_path / "a", "state", "fp16", monkeypatch, seed=5)["prefill"],
        "decode": _parts_of_a_decoder(tmp_path / "b", "state", "fp16", monkeypatch, seed=6)["decode"],
    }
    theirs = coremltools_merge(parts, tmp_path / "theirs.mlpackage", "decode")
    ours = tmp_path / "ours.mlpackage"
    function_merge.merge_functions(parts, ours, "decode")
    assert without_op_names(load_spec(str(ours))) == without_op_names(load_spec(str(theirs)))
    assert weight_bytes(ours) == weight_bytes(theirs)
    assert len(weight_bytes(ours)) > 1.9 * max(len(weight_bytes(p)) for p in parts.values()) - 128

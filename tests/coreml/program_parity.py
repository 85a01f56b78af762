"""One check shared by the executor tests and the Core ML runtime tests: a converted program of a tiny
model (``tiny_models``) against the torch model it came from, output by output."""

from __future__ import annotations

import torch
from tiny_models import input_dict, model_under_test, output_names

from verification import thresholds
from verification.coreml import predict
from verification.metrics import assert_parity

EXPORTERS = ("trace", "export")


def fp16_floor(model_id: str, mode: str) -> float:
    """The measured floor of an fp16 program (verification/thresholds.py says what was measured)."""
    if "ForMultipleChoice" in model_id:
        return thresholds.COREML_FP16_MULTIPLE_CHOICE_PSNR_DB
    if mode == "fp16_native":
        return thresholds.COREML_FP16_NATIVE_RANDOM_PSNR_DB
    return thresholds.COREML_FP16_RANDOM_PSNR_DB


def assert_program_matches_torch(
    mlmodel, model_id: str, min_psnr_db: float, *, label: str, backend="mil", mode=None, compute_units=None
):
    """Run ``mlmodel`` (converted from ``model_id``) on ``backend`` and require every output to reach
    ``min_psnr_db`` against torch; ``label`` says which program and runtime, for the failure message."""
    model, inputs = model_under_test(model_id)
    with torch.no_grad():
        expected = model(*inputs)
    if isinstance(expected, torch.Tensor):
        expected = (expected,)
    outputs = predict(
        mlmodel, input_dict(mlmodel, inputs), backend=backend, mode=mode, compute_units=compute_units
    )
    names = output_names(mlmodel)
    assert len(names) == len(expected), f"{model_id}: outputs {names} vs {len(expected)} torch outputs"
    for name, reference in zip(names, expected, strict=True):
        result = assert_parity(
            reference,
            outputs[name],
            min_psnr_db=min_psnr_db,
            name=f"{model_id} output {name!r} [{label}]",
            context=f"inputs {[tuple(x.shape) for x in inputs]}, padded second row",
        )
        print(f"{model_id} {name!r} [{label}]: {result.psnr_db:.1f} dB")  # the measurements (pytest -s)

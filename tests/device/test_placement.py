"""ANE placement: the summary and gate from recorded compute-plan records; the compute plan on a Mac."""

from __future__ import annotations

import json
import platform

import pytest
from recorded_devices import recorded

from verification import thresholds
from verification.checks import CheckFailed, enforce
from verification.device import NotAvailableHere, compute_plan_gate, detect
from verification.placement import (
    CPU,
    GPU,
    NEURAL_ENGINE,
    OpPlacement,
    PlacementNotMeasured,
    compute_plan_records,
    measure_placement,
    placement_checks,
    summarize,
)

ANE_CPU_GPU = (NEURAL_ENGINE, CPU, GPU)


def op(op_type, device, cost, name=None):
    supported = ANE_CPU_GPU if device == NEURAL_ENGINE else (CPU, GPU)
    return OpPlacement(op_type, device, supported, cost, name or op_type)


def small_plan():
    """14 non-const ops: 12 on the ANE (cost 0.9), a gather and an int32 equal on the CPU (cost 0.1)."""
    return (
        [op("const", None, None)]
        + [op("conv", NEURAL_ENGINE, 0.08) for _ in range(10)]
        + [op("softmax", NEURAL_ENGINE, 0.05) for _ in range(2)]
        + [op("gather", CPU, 0.01, "embeddings"), op("equal", CPU, 0.09, "padding")]
    )


def test_summary_by_hand():
    summary = summarize(small_plan())
    assert summary.ops == 14 and summary.ops_by_device == {NEURAL_ENGINE: 12, CPU: 2}
    assert summary.ane_op_share == pytest.approx(12 / 14)
    assert summary.ane_cost_share == pytest.approx(0.9)
    assert [r.name for r in summary.fallbacks] == ["embeddings", "padding"]
    assert [r.name for r in summary.disallowed_fallbacks] == ["padding"]
    assert summary.to_dict()["fallback_op_types"] == {"gather": 1, "equal": 1}
    json.dumps(summary.to_dict())


def test_only_the_embedding_lookup_may_leave_the_neural_engine():
    checks = {c.name: c for c in placement_checks(summarize(small_plan()))}
    assert checks["ane_fallback_ops"].value == 1 and checks["ane_fallback_ops"].passed is False
    assert "equal padding on cpu" in checks["ane_fallback_ops"].reason
    assert checks["ane_op_share"].passed is False and checks["ane_cost_share"].passed is False
    with pytest.raises(CheckFailed, match=r"ane_op_share: FAILED: .* = 0\.8571 \(threshold 0\.99\)"):
        enforce(checks.values())


def test_a_published_like_plan_passes():
    """602 of 606 ops on the ANE, the 4 others embedding gathers (the published DistilBERT's count)."""
    records = [op("einsum", NEURAL_ENGINE, 0.99 / 602) for _ in range(602)]
    records += [op("gather", CPU, 0.0025) for _ in range(4)]
    summary = summarize(records)
    assert summary.ane_op_share == pytest.approx(602 / 606)
    checks = placement_checks(summary)
    assert all(c.passed for c in checks), [c.describe() for c in checks]
    assert {c.name: c.threshold for c in checks} == {
        "ane_op_share": thresholds.ANE_OP_SHARE_MIN,
        "ane_cost_share": thresholds.ANE_COST_SHARE_MIN,
        "ane_fallback_ops": thresholds.ANE_FALLBACK_OPS_MAX,
    }


def test_ops_without_a_device_count_as_fallbacks_and_missing_costs_are_not_measured():
    records = [op("conv", NEURAL_ENGINE, None) for _ in range(3)] + [OpPlacement("relu", None, (), None)]
    summary = summarize(records)
    assert summary.ops_by_device == {NEURAL_ENGINE: 3, "unknown": 1} and summary.ane_cost_share is None
    cost = {c.name: c for c in placement_checks(summary)}["ane_cost_share"]
    assert not cost.measured and "no cost estimate" in cost.reason


def test_a_plan_without_ops_is_refused():
    with pytest.raises(ValueError, match="no non-const ops"):
        summarize([op("const", None, None)])


def test_measured_report_through_injected_records():
    run, info = recorded("m1")
    device = detect(run=run, platform_info=info, coreml_runtime=True)
    report = measure_placement(
        "model.mlmodelc",
        device=device,
        records_from=lambda path, units, device: small_plan(),
        allowed_fallback_op_types=("gather", "equal"),
    )
    assert report.measured and report.reason is None and report.device["chip"] == "Apple M1"
    assert {c.name: c.passed for c in report.checks}["ane_fallback_ops"] is True
    json.dumps(report.to_dict())


@pytest.mark.parametrize("name", ["macos_14_3_m2_max", "intel_mac", "this machine"])
def test_no_compute_plan_gives_a_not_available_report(name):
    if name == "this machine":
        device = detect()
        if compute_plan_gate(device) is None:
            pytest.skip("this machine can read compute plans")
    else:
        run, info = recorded(name)
        device = detect(run=run, platform_info=info, coreml_runtime=(name != "intel_mac"))

    def never(*args):
        raise AssertionError("asked for a compute plan where there is none")

    report = measure_placement("model.mlpackage", device=device, records_from=never)
    assert not report.measured and report.reason.startswith("not available here")
    assert [c.name for c in report.checks] == ["ane_op_share", "ane_cost_share", "ane_fallback_ops"]
    assert all(c.passed is None and c.reason == report.reason for c in report.checks)
    with pytest.warns(PlacementNotMeasured, match="not available here"):
        enforce(report.checks, category=PlacementNotMeasured)
    strict = measure_placement("model.mlpackage", device=device, strict=True, records_from=never)
    with pytest.raises(CheckFailed, match="strict mode"):
        enforce(strict.checks)


@pytest.mark.skipif(platform.system() == "Darwin", reason="checks the answer where Core ML cannot run")
def test_compute_plan_records_without_core_ml_raise_not_available_here():
    with pytest.raises(NotAvailableHere, match="not available here: compute plans need macOS 14.4"):
        compute_plan_records("model.mlmodelc")


@pytest.mark.macos
def test_compute_plan_of_a_tiny_model_on_this_mac(tmp_path):
    import torch
    import transformers

    import ane_models
    from verification.coreml import convert, save

    if (reason := compute_plan_gate(detect())) is not None:
        pytest.skip(reason)
    torch.manual_seed(0)
    config = transformers.DistilBertConfig(
        dim=32, n_heads=2, n_layers=1, hidden_dim=64, vocab_size=60, max_position_embeddings=32
    )
    ids = torch.randint(3, 60, (1, 16), dtype=torch.int32)
    model = ane_models.optimize(transformers.DistilBertModel(config).eval())
    path = save(convert(model, (ids, torch.ones_like(ids))), tmp_path / "tiny.mlpackage")
    report = measure_placement(path, compute_units="CPU_AND_NE")
    assert report.measured and report.summary.ops > 10
    assert 0 < report.summary.ane_op_share <= 1, report.summary.to_dict()

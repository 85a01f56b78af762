"""Sample reports in the report.json schema, built by hand so every rendering can be checked."""

from verification.release.reports.schema import seal

HOSTILE = "<script>alert('x')</script> & <b>|pipe|</b> `tick` \x1b[31m"
DETAIL_KEYS = (
    "layer_parity",
    "op_counts",
    "fp16_precision",
    "speedup",
    "stages",
    "hazards_text",
    "readiness",
)

TOOL = {
    "name": "ane-verify",
    "version": "0.1.0",
    "commit": "0123456789abcdef" * 2 + "01234567",
    "modified": True,
}
CREATED = "2026-12-01T10:00:00Z"
SOURCE = {
    "architecture": "DistilBertForSequenceClassification",
    "checkpoint": "seeded config",
    "seed": 0,
    "inputs": "random token ids (seed 0), rows after the first padded in their last quarter",
}

LAYER_PARITY = [
    {"layer": "embeddings", "psnr_db": 95.7},
    {"layer": "layer 0", "psnr_db": 128.4},
    {"layer": "layer 1", "psnr_db": 80.0},
    {"layer": "output", "psnr_db": "inf"},
]
OP_COUNTS = {
    "baseline": {"linear": 38, "softmax": 6, "layer_norm": 13},
    "optimized": {"conv": 38, "softmax": 72, "layer_norm": 13, "einsum": 24},
}
FP16_PRECISION = [
    {"op": "logits_cast", "op_type": "cast", "layer": "classifier", "psnr_db": -1.0},
    {"op": "scores_1", "op_type": "einsum", "psnr_db": 48.2},
    {"op": "layer_norm_3", "op_type": "layer_norm", "psnr_db": 71.5},
]
TIMINGS = [
    {"label": "baseline/CPU_AND_NE", "median_ms": 12.4, "p90_ms": 13.0, "runs": 50},
    {"label": "optimized/CPU_AND_NE", "median_ms": 3.1, "p90_ms": 3.4, "runs": 120},
    {"label": "optimized/CPU_ONLY", "median_ms": 9.8, "p90_ms": 10.5, "runs": 40},
]
READINESS = {
    "kind": "static estimate",
    "rows": [
        {"metric": "ops", "baseline": 158, "optimized": 401, "ratio": 0.39},
        {"metric": "copies per layer", "baseline": 12, "optimized": 0, "ratio": None},
    ],
}


def check(name, value, threshold, passed, metric="figure"):
    return {
        "name": name,
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "passed": passed,
        "measured": True,
    }


def not_measured(name, reason, threshold=2.0, *, strict=False):
    return {
        "name": name,
        "metric": "latency ratio",
        "value": None,
        "threshold": threshold,
        "passed": False if strict else None,
        "measured": False,
        "reason": reason,
    }


def sample_checks(*, failing=False, speedup_measured=False, strict=False):
    checks = [
        check("torch_parity_psnr_db", 116.5, 90.0, True, "min PSNR"),
        check("coreml_parity_psnr_db", 50.0 if failing else 81.8, 60.0, not failing, "class probabilities"),
        check("fp16_non_finite_ops", 0, 0, True, "ops going NaN"),
    ]
    if speedup_measured:
        checks.append(check("speedup_vs_baseline", 4.0, 2.0, True, "latency ratio"))
        checks.append(check("ane_speedup_vs_cpu_only", 3.16, 5.0, False, "latency ratio"))
    else:
        checks.append(not_measured("speedup_vs_baseline", "no Core ML runtime on Linux", strict=strict))
    return checks


def sample_details(*, speedup_measured=False, keys=DETAIL_KEYS):
    details = {
        "layer_parity": LAYER_PARITY,
        "op_counts": OP_COUNTS,
        "fp16_precision": FP16_PRECISION,
        "speedup": (
            {"measured": True, "reason": None, "timings": TIMINGS}
            if speedup_measured
            else {"measured": False, "reason": "no Core ML runtime on Linux", "timings": []}
        ),
        "stages": [{"name": "convert", "seconds": 10.5}, {"name": "gate", "seconds": 0.25}],
        "hazards_text": "first NaN: none <ok> & done",
        "readiness": READINESS,
    }
    return {key: details[key] for key in keys}


def sample_report(
    *,
    failing=False,
    model="distilbert",
    details=DETAIL_KEYS,
    speedup_measured=False,
    strict=False,
    checks=None,
    artifacts=None,
):
    """A sealed report; ``details`` names the details keys to include (empty: no details at all)."""
    report = {
        "schema_version": 1,
        "model": model,
        "config": {
            "seq_len": 128,
            "batch_size": 1,
            "precision": "fp16",
            "exporter": "trace",
            "backend": "mil",
        },
        "environment": {
            "fingerprint": {"chip": None, "os": "Linux 6.1", "machine": "x86_64", "torch": "2.13.0"},
            "versions": {"python": "3.11.2", "torch": "2.13.0", "coremltools": "9.0"},
        },
        "checks": checks
        if checks is not None
        else sample_checks(failing=failing, speedup_measured=speedup_measured, strict=strict),
        "artifacts": artifacts
        or {"report_json": "out/report.json", "optimized_mlpackage": "out/model.mlpackage"},
        "tool": dict(TOOL),
        "created": CREATED,
        "source": dict(SOURCE),
    }
    if details:
        report["details"] = sample_details(speedup_measured=speedup_measured, keys=details)
    return seal(report)

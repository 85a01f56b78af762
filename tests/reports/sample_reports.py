"""Sample reports in the report.json schema, built by hand so every rendering can be checked."""

from verification.reports.schema import seal


def sample_report(*, failing: bool = False, model: str = "distilbert", with_details: bool = True) -> dict:
    checks = [
        {
            "name": "torch_parity_psnr_db",
            "metric": "min PSNR",
            "value": 116.5,
            "threshold": 90.0,
            "passed": True,
            "measured": True,
        },
        {
            "name": "coreml_parity_psnr_db",
            "metric": "class probabilities",
            "value": 50.0 if failing else 81.8,
            "threshold": 60.0,
            "passed": not failing,
            "measured": True,
        },
        {
            "name": "fp16_non_finite_ops",
            "metric": "ops going NaN",
            "value": 0,
            "threshold": 0,
            "passed": True,
            "measured": True,
        },
        {
            "name": "speedup_vs_baseline",
            "metric": "latency ratio",
            "value": None,
            "threshold": 2.0,
            "passed": None,
            "measured": False,
            "reason": "no Core ML runtime on Linux",
        },
    ]
    details = {
        "layer_parity": [
            {"layer": "embeddings", "psnr_db": 95.7},
            {"layer": "layer 0", "psnr_db": 128.4},
            {"layer": "layer 1", "psnr_db": 80.0},
        ],
        "op_counts": {"baseline": {"linear": 38, "softmax": 6}, "optimized": {"conv": 38, "softmax": 72}},
        "fp16_precision": [
            {"op": "logits_cast", "op_type": "cast", "psnr_db": 64.9},
            {"op": "scores_1", "op_type": "einsum", "psnr_db": 68.2},
        ],
        "speedup": {"measured": False, "reason": "no Core ML runtime on Linux", "timings": []},
        "stages": [{"name": "convert", "seconds": 10.5}, {"name": "gate", "seconds": 0.5}],
        "hazards_text": "first NaN: none <ok>",
        "readiness": {"rows": [{"metric": "ops", "baseline": 158, "optimized": 401, "ratio": 0.39}]},
    }
    return seal(
        {
            "schema_version": 1,
            "model": model,
            "config": {
                "seq_len": 128,
                "batch_size": 1,
                "precision": "fp16",
                "exporter": "trace",
                "backend": "mil",
            },
            "environment": {"fingerprint": {"chip": None, "os": "Linux"}, "versions": {"torch": "2.13.0"}},
            "checks": checks,
            "artifacts": {"report_json": "out/report.json"},
            **({"details": details} if with_details else {}),
        }
    )

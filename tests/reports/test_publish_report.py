"""``publish_report``: a broken program's figures (an output that is NaN, a PSNR of -inf) are measured
results and reach every report, written by name, instead of failing the JSON writer."""

import json
import math

from verification.release.pipeline import finite_or_named, publish_report, staged_output


def test_non_finite_figures_in_the_details_are_written_by_name(tmp_path):
    out = tmp_path / "out"
    rows = [{"output": "logits", "psnr_db": float("-inf"), "max_abs_error": float("nan")}]
    with staged_output(out) as staging:
        report = publish_report(
            staging,
            out,
            model="m",
            config={
                "seq_len": 8,
                "batch_size": 1,
                "precision": "fp16",
                "exporter": "trace",
                "backend": "mil",
            },
            source={},
            checks=[],
            artifacts={},
            details={"output_parity": rows, "nested": ({"x": math.inf}, 1.5)},
        )
    written = json.loads((out / "report.json").read_text())
    assert written["details"]["output_parity"][0] == {
        "output": "logits",
        "psnr_db": "-inf",
        "max_abs_error": "nan",
    }
    assert written["details"]["nested"] == [{"x": "inf"}, 1.5]
    assert report["details"] == written["details"]
    assert sorted(p.name for p in out.iterdir()) == ["junit.xml", "report.html", "report.json", "report.md"]


def test_finite_values_are_left_as_they_are():
    value = {"a": [1, 2.5, "text", None, True], "b": {"c": -0.0}}
    assert finite_or_named(value) == value


def test_a_failure_inside_the_staged_output_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    try:
        with staged_output(out) as staging:
            (staging / "half-written.bin").write_bytes(b"x")
            raise RuntimeError("stage failed")
    except RuntimeError:
        pass
    assert not out.exists()

"""A failed readiness check names the ops it counted (op type, name, position, place among the layer
norms, torch module) in every report format: report.json's details, report.md, report.html, junit.xml.
The findings come from a real readiness analysis of a hand-built program with torch scopes."""

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import types
from coremltools.converters.mil.mil.scope import ScopeInfo, ScopeSource
from sample_reports import HOSTILE, sample_report

from verification.readiness import analyze, findings_by_check, readiness_checks
from verification.release.reports.render_html import render_html
from verification.release.reports.render_junit import render_junit
from verification.release.reports.render_markdown import render_markdown
from verification.release.reports.schema import seal


def traced(module_types, module_names):
    return mb.scope(
        ScopeInfo(source=ScopeSource.TORCHSCRIPT_MODULE_TYPE, data=module_types),
        ScopeInfo(source=ScopeSource.TORCHSCRIPT_MODULE_NAME, data=module_names),
    )


def program_with_two_copies_outside():
    """An embedding switch and a head transpose, with their torch scopes, around one layer."""

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 8, 4), dtype=types.fp16)])
    def program(x):
        with traced(["EmbeddingsANE", "transpose"], ["embeddings", "55"]):
            x = mb.transpose(x=x, perm=[0, 2, 1], name="switch_in")
        for _ in range(3):
            x = mb.layer_norm(x=x, axes=[1], epsilon=np.float16(1e-5))
        with traced(["TokenClassifierANE", "transpose"], ["classifier", "367"]):
            return mb.transpose(x=x, perm=[0, 2, 1], name="switch_out")

    return program


def failing_report(model=HOSTILE):
    readiness = analyze(program_with_two_copies_outside())
    checks = [c.to_dict() for c in readiness_checks(readiness)]  # default head: one copy outside allowed
    report = dict(sample_report(model=model, checks=checks))
    report.pop("digest")
    report["details"] = {
        "readiness_findings": {
            name: [asdict(f) for f in found] for name, found in findings_by_check(readiness).items()
        }
    }
    report["passed"] = False
    return seal(report)


def test_report_json_details_keep_every_counted_op():
    report = json.loads(json.dumps(failing_report()))
    outside = report["details"]["readiness_findings"]["readiness_copies_outside_layers"]
    assert [(f["op"], f["op_type"], f["position"]) for f in outside] == [
        ("switch_in", "transpose", 1),
        ("switch_out", "transpose", 12),
    ]
    assert outside[0]["layer"] == "embeddings (up to the first layer norm)"
    assert outside[0]["module"] == "embeddings"
    assert outside[1]["layer"] == "head (after the last layer norm)"
    assert outside[1]["module"] == "classifier"
    check = next(c for c in report["checks"] if c["name"] == "readiness_copies_outside_layers")
    assert check["passed"] is False and "transpose switch_out at #12" in check["reason"]


def test_markdown_html_and_junit_name_the_ops_of_the_failed_check():
    report = failing_report()
    markdown = render_markdown(report)
    html = render_html(report)
    junit = render_junit(report)
    for text in (markdown, html):
        assert "readiness_copies_outside_layers" in text
        for expected in ("switch_in", "switch_out", "#1", "#12", "embeddings", "classifier"):
            assert expected in text, expected
    assert "the ops it counted" in markdown and "the ops it counted" in html
    case = next(
        c for c in ET.fromstring(junit).iter("testcase") if c.get("name") == "readiness_copies_outside_layers"
    )
    failure = case.find("failure").text
    assert (
        "transpose switch_in (#1; embeddings (up to the first layer norm); embeddings): (1, 8, 4)" in failure
    )
    assert "transpose switch_out (#12; head (after the last layer norm); classifier): (1, 4, 8)" in failure
    # the passing readiness checks list nothing
    assert "Failed `readiness_off_ane_ops`" not in markdown and "readiness_off_ane_ops</code>:" not in html


def test_a_passing_check_lists_no_ops():
    report = dict(failing_report())
    report.pop("digest")
    report["checks"] = [{**c, "passed": True, "reason": None} for c in report["checks"]]
    report["passed"] = True
    report = seal(report)
    assert "the ops it counted" not in render_markdown(report)
    assert "the ops it counted" not in render_html(report)
    assert "switch_in" not in render_junit(report)

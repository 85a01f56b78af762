"""junit.xml: a test case per check, failures and skips counted, readable by ElementTree."""

import xml.etree.ElementTree as ET

from sample_reports import HOSTILE, sample_report

from verification.release.reports.render_junit import render_junit


def _suite(report):
    root = ET.fromstring(render_junit(report))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    return suite


def _counts(suite):
    return {key: suite.get(key) for key in ("name", "tests", "failures", "errors", "skipped", "time")}


def test_counts_failures_skips_and_stage_time():
    suite = _suite(sample_report(failing=True))
    assert _counts(suite) == {
        "name": "ane-verify",
        "tests": "4",
        "failures": "1",
        "errors": "0",
        "skipped": "1",
        "time": "10.750",
    }
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert list(cases) == [
        "torch_parity_psnr_db",
        "coreml_parity_psnr_db",
        "fp16_non_finite_ops",
        "speedup_vs_baseline",
    ]
    assert {case.get("classname") for case in cases.values()} == {"ane-verify.distilbert"}
    failure = cases["coreml_parity_psnr_db"].find("failure")
    assert failure.get("message") == "class probabilities: value 50, threshold 60"
    assert cases["speedup_vs_baseline"].find("skipped").get("message") == "no Core ML runtime on Linux"
    assert [len(cases[name]) for name in ("torch_parity_psnr_db", "fp16_non_finite_ops")] == [0, 0]


def test_a_passing_report_has_no_failures_and_no_details_means_zero_time():
    suite = _suite(sample_report(details=()))
    assert (suite.get("failures"), suite.get("skipped"), suite.get("time")) == ("0", "1", "0.000")
    assert suite.find("testcase/failure") is None


def test_strict_mode_turns_an_unmeasured_check_into_a_failure_with_its_reason():
    suite = _suite(sample_report(strict=True))
    assert (suite.get("failures"), suite.get("skipped")) == ("1", "0")
    case = suite.find("testcase[@name='speedup_vs_baseline']")
    assert case.find("failure").get("message") == "no Core ML runtime on Linux"
    assert case.find("skipped") is None


def test_the_run_configuration_is_recorded_as_properties():
    properties = {p.get("name"): p.get("value") for p in _suite(sample_report()).iter("property")}
    assert properties == {
        "seq_len": "128",
        "batch_size": "1",
        "precision": "fp16",
        "exporter": "trace",
        "backend": "mil",
        "written by": "ane-verify 0.1.0 (commit 0123456789ab, with local changes)",
        "written at": "2026-12-01T10:00:00Z",
        "architecture": "DistilBertForSequenceClassification",
        "checkpoint": "seeded config",
        "seed": "0",
        "inputs": "random token ids (seed 0), rows after the first padded in their last quarter",
    }


def test_hostile_strings_and_control_characters_still_parse():
    check = {
        "name": HOSTILE + "\x00",
        "metric": "m",
        "value": 1,
        "threshold": 2,
        "passed": False,
        "measured": True,
    }
    suite = _suite(sample_report(model=HOSTILE, checks=[check]))
    case = suite.find("testcase")
    assert case.get("name") == HOSTILE.replace("\x1b", "\ufffd") + "\ufffd"
    assert case.get("classname") == "ane-verify." + HOSTILE.replace("\x1b", "\ufffd")

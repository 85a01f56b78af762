"""The pytest plugin: --ane-report writes the report schema; macos tests skip with the reason off macOS."""

import platform

import pytest

from verification.release.reports.schema import read

INNER_TESTS = """
import pytest

def test_ok():
    pass

def test_broken():
    assert 1 == 2

@pytest.mark.macos
def test_needs_a_mac():
    pass

def test_fixtures(device_spec, prediction_backend):
    assert prediction_backend in ("coreml", "mil")
    assert device_spec.os_name
"""


def test_report_counts_failures_and_is_sealed(pytester):
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest("--ane-report", "report.json")
    result.assert_outcomes(passed=2, failed=1, skipped=1 if platform.system() != "Darwin" else 0)
    report = read(pytester.path / "report.json")  # validates the schema and the digest
    total = next(c for c in report["checks"] if c["name"] == "pytest_failures")
    assert (total["value"], total["passed"], total["measured"]) == (1, False, True)
    assert report["passed"] is False
    assert report["environment"]["versions"]["torch"]


@pytest.mark.skipif(platform.system() == "Darwin", reason="checks the off-macOS skip")
def test_macos_tests_are_skipped_with_the_reason(pytester):
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest("-rs", "-k", "needs_a_mac")
    result.stdout.fnmatch_lines(["*needs macOS with Core ML; this is Linux*"])


def test_report_path_must_be_a_writable_file(pytester):
    pytester.makepyfile(test_inner="def test_ok():\n    pass\n")
    result = pytester.runpytest("--ane-report", "missing/dir/r.json")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--ane-report: the directory 'missing/dir' does not exist*"])
    assert not (pytester.path / "missing").exists()

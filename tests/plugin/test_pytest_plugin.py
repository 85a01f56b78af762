"""The pytest plugin: --ane-report writes the report schema; macos tests skip with the reason off macOS."""

import os
import platform
from pathlib import Path

import numpy as np
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


FIGURE_TESTS = """
import numpy as np
import pytest

from verification.metrics import assert_parity

REFERENCE = np.linspace(-1.0, 1.0, 64)


def test_close():
    for noise in (1e-6, 1e-4, 1e-5):  # three comparisons under one name: the worst is kept
        assert_parity(REFERENCE, REFERENCE + noise, min_psnr_db=60.0, name="close/linear", seed=7)


def test_far():
    assert_parity(REFERENCE, REFERENCE + 0.5, min_psnr_db=60.0, name="far/linear")


def test_no_figures():
    pass
"""


def _figures_of(report):
    return {(f["test"].split("::")[-1], f["name"]): f for f in report["details"]["figures"]}


@pytest.mark.parametrize("workers", [None, "1"])
def test_the_report_keeps_the_figures_tests_measured(pytester, workers, monkeypatch):
    from verification.metrics import parity

    pytester.makepyfile(test_figures=FIGURE_TESTS)
    if workers is None:
        result = pytester.runpytest("--ane-report", "report.json")
    else:  # xdist: figures measured in a worker process reach the controller's report
        root = str(Path(__file__).resolve().parents[2])  # the worker imports this tree's code
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        result = pytester.runpytest("--ane-report", "report.json", "-n", workers, "-p", "xdist")
    result.assert_outcomes(passed=2, failed=1)
    figures = _figures_of(read(pytester.path / "report.json"))
    assert set(figures) == {("test_close", "close/linear"), ("test_far", "far/linear")}
    reference = np.linspace(-1.0, 1.0, 64)
    close = figures[("test_close", "close/linear")]
    assert close["psnr_db"] == pytest.approx(parity(reference, reference + 1e-4).psnr_db)
    assert (close["min_psnr_db"], close["comparisons"], close["passed"], close["seed"]) == (60.0, 3, True, 7)
    far = figures[("test_far", "far/linear")]
    assert far["passed"] is False and far["psnr_db"] < 60.0 and far["comparisons"] == 1


def test_figures_are_not_recorded_without_a_report(pytester):
    # a session of its own: the suite itself may run with --ane-report (every tox cell does)
    pytester.makepyfile(
        """
        from verification import metrics

        def test_nothing_listens():
            assert metrics._FIGURE_OBSERVERS == []
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_report_records_the_host_the_wall_time_ran_on(pytester):
    pytester.makepyfile(test_inner="def test_ok():\n    pass\n")
    pytester.runpytest("--ane-report", "report.json", "-p", "no:xdist").assert_outcomes(passed=1)
    host = read(pytester.path / "report.json")["details"]["host"]
    assert host["cores"] == os.cpu_count() and host["xdist_workers"] is None
    assert host["cpu"] and isinstance(host["cpu"], str)
    if Path("/proc/cpuinfo").exists():
        models = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.split(":")[0].strip() in ("model name", "Model")
        ]
        assert host["cpu"] == (models[0] if models else host["cpu"])

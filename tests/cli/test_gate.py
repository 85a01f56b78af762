"""``ane-verify gate``: the comparison at a threshold, checks of unknown direction, threshold sources.

Built on sealed reports made here (no conversion): every figure is placed exactly at, just above and just
below its threshold, so the verdicts do not depend on one run's values.
"""

import json
import math

import pytest

from verification.release import gate_config
from verification.release.cli import main
from verification.release.reports.schema import seal, stamped, write_json_atomically


def _check(name, value, threshold, *, passed=None, measured=True, **extra):
    direction = gate_config.direction_of(name)
    if passed is None and measured and direction is not None:
        passed = gate_config.passes(value, threshold, direction)
    check = {
        "name": name,
        "metric": f"figure of {name}",
        "value": value,
        "threshold": threshold,
        "passed": passed,
        "measured": measured,
        **extra,
    }
    if not measured:
        check["reason"] = "not measured here (test)"
    return check


def _report(tmp_path, checks, name="report.json"):
    report = seal(
        stamped(
            {
                "schema_version": 1,
                "model": "pytest",
                "config": {
                    "seq_len": None,
                    "batch_size": None,
                    "precision": None,
                    "exporter": None,
                    "backend": "mil",
                },
                "environment": {"fingerprint": {}, "versions": {}},
                "checks": checks,
                "artifacts": {},
            }
        )
    )
    return write_json_atomically(tmp_path / name, report)


def _next_up(x):
    return math.nextafter(x, math.inf)


def _next_down(x):
    return math.nextafter(x, -math.inf)


@pytest.mark.parametrize("name", sorted(gate_config.CHECKS))
def test_every_known_check_passes_at_its_threshold_and_fails_one_ulp_on_the_wrong_side(name):
    direction = gate_config.direction_of(name)
    threshold = gate_config.default_threshold(name, precision="fp16", seq_len=128, batch_size=1)
    at = _check(name, threshold, 0.0, passed=False)
    above = _check(name, _next_up(threshold), 0.0, passed=False)
    below = _check(name, _next_down(threshold), 0.0, passed=False)
    judged = {
        key: gate_config.evaluate(c, threshold)["passed"]
        for key, c in (("at", at), ("above", above), ("below", below))
    }
    expected = (
        {"at": True, "above": True, "below": False}
        if direction == gate_config.AT_LEAST
        else {"at": True, "above": False, "below": True}
    )
    assert judged == expected, f"{name} ({direction}) at threshold {threshold!r}: {judged}"


@pytest.mark.parametrize("direction", [gate_config.AT_LEAST, gate_config.AT_MOST])
@pytest.mark.parametrize("threshold", [0.0, 1.0, 60.0, 65504.0, 2.0**-24, -3.5])
def test_the_comparison_at_just_above_and_just_below(direction, threshold):
    assert gate_config.passes(threshold, threshold, direction)
    assert gate_config.passes(_next_up(threshold), threshold, direction) is (
        direction == gate_config.AT_LEAST
    )
    assert gate_config.passes(_next_down(threshold), threshold, direction) is (
        direction == gate_config.AT_MOST
    )
    assert not gate_config.passes(math.nan, threshold, direction)


def test_the_gate_command_at_a_threshold_both_directions(tmp_path, capsys):
    path = _report(
        tmp_path,
        [_check("coreml_parity_psnr_db", 60.0, 60.0), _check("readiness_off_ane_ops", 4, 4)],
    )
    assert main(["gate", str(path)]) == 0
    flags = ["--threshold", f"coreml_parity_psnr_db={_next_up(60.0)!r}"]
    assert main(["gate", str(path), *flags]) == 1  # at least just above 60 dB: 60 fails
    assert main(["gate", str(path), "--threshold", f"readiness_off_ane_ops={_next_down(4.0)!r}"]) == 1
    assert main(["gate", str(path), "--threshold", "readiness_off_ane_ops=4"]) == 0


def test_a_pytest_report_with_failed_tests_fails_the_gate(tmp_path, capsys):
    """The reported defect: one failed test, threshold 0, judged as "value >= 0", passed."""
    path = _report(
        tmp_path,
        [_check("pytest_models_failures", 1, 0), _check("pytest_failures", 1, 0)],
    )
    assert main(["gate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "pytest_failures" in out and "FAILED" in out
    # only an explicit, named threshold lets it pass
    assert (
        main(
            ["gate", str(path), "--threshold", "pytest_failures=1", "--threshold", "pytest_models_failures=1"]
        )
        == 0
    )


def test_a_check_of_unknown_direction_keeps_its_stored_verdict(tmp_path, capsys):
    stored_fail = _check("some_future_check", 5.0, 1.0, passed=False)
    stored_pass = _check("another_future_check", 0.0, 1.0, passed=True)
    assert gate_config.direction_of(stored_fail) is None
    assert gate_config.evaluate(stored_fail, 1.0)["passed"] is False
    assert gate_config.evaluate(stored_fail, -100.0)["passed"] is False  # no threshold flips it
    path = _report(tmp_path, [stored_fail, stored_pass])
    assert main(["gate", str(path)]) == 1
    only_pass = _report(tmp_path, [stored_pass], name="pass.json")
    assert main(["gate", str(only_pass)]) == 0
    # a name the gate does not know cannot be given a threshold at all
    code = main(["gate", str(path), "--threshold", "some_future_check=10"])
    assert code == 2 and "unknown check name some_future_check" in capsys.readouterr().err


def test_a_stored_direction_is_used(tmp_path):
    check = _check("some_future_check", 5.0, 1.0, passed=False, direction=gate_config.AT_MOST)
    assert gate_config.evaluate(check, 5.0)["passed"] is True
    assert gate_config.evaluate(check, _next_down(5.0))["passed"] is False


def test_each_threshold_names_its_source(tmp_path, monkeypatch, capsys):
    path = _report(
        tmp_path,
        [
            _check("coreml_parity_psnr_db", 70.0, 60.0, threshold_source="default"),
            _check("torch_parity_psnr_db", 100.0, 90.0, threshold_source="default"),
            _check("readiness_off_ane_ops", 2, 4, threshold_source="default"),
        ],
    )
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.ane-verify.thresholds]\n"coreml_parity_psnr_db" = 80\n')
    monkeypatch.chdir(project)
    assert main(["gate", str(path), "--threshold", "readiness_off_ane_ops=1"]) == 1
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows["coreml_parity_psnr_db"].rstrip().endswith(str((project / "pyproject.toml").resolve()))
    assert rows["readiness_off_ane_ops"].rstrip().endswith("--threshold")
    assert rows["torch_parity_psnr_db"].rstrip().endswith("default")


def test_resolve_records_sources(tmp_path):
    config = tmp_path / "gate.toml"
    config.write_text('[tool.ane-verify.thresholds]\n"coreml_parity_psnr_db" = 80\n"ane_op_share" = 0.5\n')
    thresholds = gate_config.resolve(str(config), ["ane_op_share=0.9"])
    assert dict(thresholds) == {"coreml_parity_psnr_db": 80.0, "ane_op_share": 0.9}
    assert thresholds.source("coreml_parity_psnr_db") == str(config.resolve())
    assert thresholds.source("ane_op_share") == "--threshold"
    assert thresholds.source("torch_parity_psnr_db") == "default"
    assert dict(gate_config.resolve(None, None, project_dir=tmp_path)) == {}  # no pyproject.toml there


def test_reports_are_written_readable(tmp_path):
    path = _report(tmp_path, [_check("pytest_failures", 0, 0)])
    assert path.stat().st_mode & 0o777 == 0o644
    assert json.loads(path.read_text())["tool"]["name"] == "ane-verify"

"""scripts/matrix_report.py: the version-compatibility table from the cells' ``--ane-report`` JSON files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from verification.release.reports.schema import seal, write_json_atomically

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("matrix_report", ROOT / "scripts" / "matrix_report.py")
matrix_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(matrix_report)


HOST = {"cpu": "Intel(R) Xeon(R) Processor", "cores": 2, "xdist_workers": 2}


def _report(
    versions: dict,
    areas: dict,
    seconds: float = 123.4,
    exit_status: int = 0,
    extra=(),
    host=HOST,
    created="2026-12-02T07:30:00Z",
) -> dict:
    checks = []
    for area, counts in areas.items():
        failed = counts.get("failed", 0)
        checks.append(
            {
                "name": f"pytest_{area}_failures",
                "metric": f"failed tests in tests/{area}",
                "value": failed,
                "threshold": 0,
                "passed": failed == 0,
                "measured": True,
            }
        )
    checks.extend(extra)
    return seal(
        {
            "schema_version": 1,
            "created": created,
            "model": "pytest",
            "config": {
                "seq_len": None,
                "batch_size": None,
                "precision": None,
                "exporter": None,
                "backend": "mil",
            },
            "environment": {"fingerprint": {}, "versions": versions},
            "checks": checks,
            "artifacts": {},
            "details": {
                "tests": areas,
                "exit_status": exit_status,
                "stages": [{"name": "pytest", "seconds": seconds}],
                "host": host,
            },
        }
    )


DEFAULT = {
    "python": "3.11.9",
    "torch": "2.13.0+cpu",
    "coremltools": "9.0",
    "transformers": "5.23.0",
    "numpy": "2.4.6",
}
LEGACY = {
    "python": "3.11.9",
    "torch": "2.7.1",
    "coremltools": "8.3.0",
    "transformers": "4.46.3",
    "numpy": "1.26.4",
}


@pytest.fixture
def reports(tmp_path):
    directory = tmp_path / "reports"
    directory.mkdir()
    write_json_atomically(
        directory / "torch213-cml90-tf523.json",
        _report(DEFAULT, {"layers": {"passed": 40, "skipped": 2}, "mil": {"passed": 30}}, seconds=250.0),
    )
    write_json_atomically(
        directory / "torch27-cml83-tf446.json",
        _report(LEGACY, {"layers": {"passed": 39, "failed": 1, "skipped": 2}}, seconds=59.6, exit_status=1),
    )
    return directory


def test_one_row_per_cell_with_installed_versions_counts_and_wall_time(reports):
    rows, problems = matrix_report.load(reports, None)
    assert problems == []
    text = matrix_report.render(rows)
    default = next(line for line in text.splitlines() if line.startswith("| `torch213-cml90-tf523`"))
    assert "| 2.13.0+cpu | 9.0 | 5.23.0 | 2.4.6 | 70 | 0 | 2 | 4 min 10 s | 2026-12-02 | passes |" in default
    legacy = next(line for line in text.splitlines() if line.startswith("| `torch27-cml83-tf446`"))
    assert (
        "| 2.7.1 | 8.3.0 | 4.46.3 | 1.26.4 | 39 | 1 | 2 | 1 min 00 s | 2026-12-02 "
        "| FAILS (pytest_layers_failures) |" in legacy
    )


def test_per_area_table_across_cells(reports):
    text = matrix_report.render(matrix_report.load(reports, None)[0])
    assert "| layers | 40 / 0 / 2 | 39 / 1 / 2 |" in text
    assert "| mil | 30 / 0 / 0 | - |" in text


def test_cells_of_tox_ini_without_a_report_get_a_row(reports, tmp_path):
    ini = tmp_path / "tox.ini"
    ini.write_text(
        "[tox]\nenv_list =\n    torch213-cml90-tf523\n    torch213-cml90-tf457\n"
        "    torch27-cml83-tf446\n    lint\n"
    )
    cells = matrix_report.cells_from_tox_ini(ini)
    assert cells == ["torch213-cml90-tf523", "torch213-cml90-tf457", "torch27-cml83-tf446"]
    rows, problems = matrix_report.load(reports, cells)
    assert [row["cell"] for row in rows] == cells
    assert len(problems) == 1 and "torch213-cml90-tf457" in problems[0]
    assert "no report (the cell did not run)" in matrix_report.render(rows)


def test_the_projects_tox_ini_names_the_required_cells_the_coreai_cell_included():
    cells = matrix_report.cells_from_tox_ini(ROOT / "tox.ini")
    assert {
        "torch213-cml90-tf523",
        "torch213-cml90-tf523-coreai",
        "torch213-cml90-tf457",
        "torch27-cml83-tf446",
    } <= set(cells)
    assert not {"matrix-report", "lint", "demo", "bench"} & set(cells)


def test_an_edited_report_is_refused_not_tabulated(reports):
    path = reports / "torch27-cml83-tf446.json"
    data = json.loads(path.read_text())
    data["details"]["tests"]["layers"]["failed"] = 0  # hide the failure by hand
    data["checks"][0]["passed"] = True
    path.write_text(json.dumps(data))
    rows, problems = matrix_report.load(reports, None)
    legacy = next(row for row in rows if row["cell"] == "torch27-cml83-tf446")
    assert legacy["missing"].startswith("invalid report")
    assert problems and "digest" in problems[0]


def test_measured_figures_and_unmeasured_checks_are_listed(tmp_path):
    extra = [
        {
            "name": "psnr_probabilities",
            "metric": "dB",
            "value": 71.234567,
            "threshold": 60,
            "passed": True,
            "measured": True,
        },
        {
            "name": "speedup",
            "metric": "x",
            "value": None,
            "threshold": 2,
            "passed": None,
            "measured": False,
            "reason": "not an in-spec device",
        },
    ]
    write_json_atomically(
        tmp_path / "torch213-cml90-tf523.json", _report(DEFAULT, {"layers": {"passed": 1}}, extra=extra)
    )
    text = matrix_report.render(matrix_report.load(tmp_path, None)[0])
    assert "psnr_probabilities = 71.23" in text
    assert "`speedup` not measured: not an in-spec device" in text


def test_write_keeps_hand_written_notes_around_the_markers(reports, tmp_path):
    output = tmp_path / "compatibility.md"
    rows = matrix_report.load(reports, None)[0]
    matrix_report.write(output, matrix_report.render(rows))
    text = output.read_text()
    assert text.startswith("# Version compatibility") and matrix_report.BEGIN in text
    output.write_text("# Title\n\nintro\n\n" + text.split("\n", 2)[2] + "\n## Notes\n\nhand-written\n")
    (reports / "torch27-cml83-tf446.json").unlink()
    matrix_report.write(output, matrix_report.render(matrix_report.load(reports, None)[0]))
    text = output.read_text()
    assert text.startswith("# Title\n\nintro\n") and text.rstrip().endswith("hand-written")
    assert "torch27-cml83-tf446" not in text and text.count(matrix_report.BEGIN) == 1


def test_a_file_without_markers_is_left_untouched_and_every_output_is_written(reports, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# Project\n\nhand-written, no markers\n")
    assert matrix_report.main([str(reports), "--output", str(readme)]) == 2
    assert readme.read_text() == "# Project\n\nhand-written, no markers\n"
    assert "expected the markers" in capsys.readouterr().err
    readme.write_text(f"# Project\n\n{matrix_report.BEGIN}\nold\n{matrix_report.END}\n\nafter\n")
    compatibility = tmp_path / "docs" / "compatibility.md"
    assert matrix_report.main([str(reports), "--output", str(compatibility), "--output", str(readme)]) == 0
    table = "| `torch213-cml90-tf523`"
    assert table in compatibility.read_text()
    text = readme.read_text()
    assert table in text and "old" not in text and text.endswith("\n\nafter\n")


def test_main_exit_codes(reports, tmp_path, capsys):
    assert matrix_report.main([str(reports)]) == 0
    assert "| `torch213-cml90-tf523`" in capsys.readouterr().out
    assert matrix_report.main([str(reports), "--require-all"]) == 1  # the legacy cell fails
    empty = tmp_path / "empty"
    empty.mkdir()
    assert matrix_report.main([str(empty)]) == 2


def test_the_table_names_the_machine_and_each_rows_date(reports):
    text = matrix_report.render(matrix_report.load(reports, None)[0])
    assert "Measured 2026-12-02 on Intel(R) Xeon(R) Processor (2 cores, pytest -n 2);" in text


def test_cells_on_different_machines_are_named_each(tmp_path):
    other = {"cpu": "Apple M1", "cores": 8, "xdist_workers": None}
    write_json_atomically(tmp_path / "torch213-cml90-tf523.json", _report(DEFAULT, {"layers": {"passed": 1}}))
    write_json_atomically(
        tmp_path / "torch213-cml90-tf457.json",
        _report(DEFAULT, {"layers": {"passed": 1}}, host=other, created="2026-12-03T01:00:00Z"),
    )
    text = matrix_report.render(matrix_report.load(tmp_path, None)[0])
    assert "Measured 2026-12-02, 2026-12-03 on `torch213-cml90-tf457`: Apple M1 (8 cores, pytest" in text
    assert "`torch213-cml90-tf523`: Intel(R) Xeon(R) Processor (2 cores, pytest -n 2)" in text


def test_a_cell_that_did_not_run_is_a_row_saying_why_even_over_an_old_report(reports, tmp_path, capsys):
    ini = tmp_path / "tox.ini"
    ini.write_text("[tox]\nenv_list =\n    torch213-cml90-tf523\n    torch27-cml83-tf446\n")
    output = tmp_path / "compatibility.md"
    reason = "torch 2.7.1 is a 4 GB CUDA download, not possible here"
    argv = [str(reports), "--tox-ini", str(ini), "--output", str(output)]
    assert matrix_report.main([*argv, "--not-run", f"torch27-cml83-tf446={reason}"]) == 0
    legacy = next(line for line in output.read_text().splitlines() if "`torch27-cml83-tf446`" in line)
    assert legacy.endswith(f"| did not run: {reason} |")
    assert "39" not in legacy  # the old report in the directory is not this run's
    assert "torch27-cml83-tf446: did not run" in capsys.readouterr().err


@pytest.mark.parametrize(
    "value, expected",
    [
        ("torch27-cml83-tf446", "expected CELL=REASON"),
        ("torch27-cml83-tf446=", "expected CELL=REASON"),
        ("lint=no reason", "expected CELL=REASON"),
        ("torch99-cml90-tf523=typo", "expected a cell of the tox.ini env_list"),
    ],
)
def test_a_bad_not_run_value_exits_2_naming_the_option(reports, tmp_path, capsys, value, expected):
    ini = tmp_path / "tox.ini"
    ini.write_text("[tox]\nenv_list =\n    torch213-cml90-tf523\n    torch27-cml83-tf446\n")
    assert matrix_report.main([str(reports), "--tox-ini", str(ini), "--not-run", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("matrix-report: --not-run: ") and expected in err and err.count("\n") == 1

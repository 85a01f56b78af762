"""report.md: the verdict, a row per check, details as tables, and nothing a string can break."""

import re

import pytest
from markdown_tables import table_after
from sample_reports import DETAIL_KEYS, HOSTILE, sample_report

from verification.release.reports.render_markdown import render_markdown


def test_the_verdict_and_the_summary_come_first():
    lines = render_markdown(sample_report(failing=True)).splitlines()
    assert lines[0] == "# ane-verify: FAILED"
    assert lines[2] == "Model `distilbert`. 4 checks: 2 passed, 1 failed, 1 not measured."
    assert render_markdown(sample_report()).startswith("# ane-verify: PASSED\n")


def test_a_row_per_check_with_value_threshold_and_verdict():
    rows = table_after(render_markdown(sample_report(failing=True)), "## Checks")
    assert rows == [
        ["`torch_parity_psnr_db`", "min PSNR", "116.5", "90", "passed"],
        ["`coreml_parity_psnr_db`", "class probabilities", "50", "60", "**FAILED**"],
        ["`fp16_non_finite_ops`", "ops going NaN", "0", "0", "passed"],
        ["`speedup_vs_baseline`", "latency ratio", "no Core ML runtime on Linux", "2", "not measured"],
    ]


def test_strict_mode_marks_the_unmeasured_check_failed():
    rows = table_after(render_markdown(sample_report(strict=True)), "## Checks")
    assert rows[-1][-1] == "**FAILED (strict: not measured)**"


@pytest.mark.parametrize(
    "value, shown", [("inf", "inf"), ("-inf", "-inf"), ("nan", "nan"), (7, "7"), (0.123456, "0.1235")]
)
def test_values_of_every_kind_are_shown_as_stored(value, shown):
    check = {
        "name": "x_psnr_db",
        "metric": "m",
        "value": value,
        "threshold": 1.0,
        "passed": True,
        "measured": True,
    }
    rows = table_after(render_markdown(sample_report(checks=[check])), "## Checks")
    assert rows[0][2] == shown


def test_a_measured_figure_shows_its_caveat():
    check = {
        "name": "speedup_vs_baseline",
        "metric": "latency ratio",
        "value": 2.5,
        "threshold": 2.0,
        "passed": True,
        "measured": True,
        "reason": "the baseline's median did not settle within the time budget",
    }
    rows = table_after(render_markdown(sample_report(checks=[check])), "## Checks")
    assert rows[0][2] == "2.5 (the baseline's median did not settle within the time budget)"


def test_details_become_tables():
    text = render_markdown(sample_report(speedup_measured=True))
    assert table_after(text, "## Parity per layer") == [
        ["`embeddings`", "95.7", "yes"],
        ["`layer 0`", "128.4", "yes"],
        ["`layer 1`", "80", "**no**"],
        ["`output`", "inf", "yes"],
    ]
    assert ["`linear`", "38", "0"] in table_after(text, "## Op counts")
    worst_op = ["`logits_cast`", "`cast`", "`classifier`", "-1"]
    assert table_after(text, "## fp16 precision loss per op")[0] == worst_op
    assert table_after(text, "## Speed-up")[1] == ["`optimized/CPU_AND_NE`", "3.1", "3.4", "120"]
    assert table_after(text, "## ANE readiness (static estimate)")[0] == ["ops", "158", "401", "0.39"]
    assert table_after(text, "## Stage timings")[-1] == ["**total**", "**10.75**", "-"]
    assert "```text\nfirst NaN: none <ok> & done\n```" in text
    assert ["`coremltools`", "`9.0`"] in table_after(text, "| library | version |")


def test_speedup_not_measured_says_why():
    text = render_markdown(sample_report(details=("speedup",)))
    assert "> **Not measured here:** no Core ML runtime on Linux" in text


@pytest.mark.parametrize("key", DETAIL_KEYS, ids=[f"only-{key}" for key in DETAIL_KEYS])
def test_a_section_appears_only_with_its_details_key(key):
    headings = {
        "layer_parity": "## Parity per layer",
        "op_counts": "## Op counts",
        "fp16_precision": "## fp16 precision loss per op",
        "speedup": "## Speed-up",
        "stages": "## Stage timings",
        "hazards_text": "## fp16 hazards",
        "readiness": "## ANE readiness",
    }
    text = render_markdown(sample_report(details=(key,)))
    assert {k for k, heading in headings.items() if heading in text} == {key}


def _outside_code(markdown: str) -> str:
    without_blocks = re.sub(r"^(`{3,})text\n.*?^\1$", "", markdown, flags=re.S | re.M)
    return re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", without_blocks)


def test_hostile_strings_neither_break_tables_nor_inject_html():
    check = {
        "name": HOSTILE,
        "metric": HOSTILE,
        "value": None,
        "threshold": 1,
        "passed": None,
        "measured": False,
    }
    check["reason"] = HOSTILE + "\nsecond line"
    report = sample_report(model=HOSTILE, checks=[check], artifacts={"model": f"/a|b/{HOSTILE}"})
    report["details"]["hazards_text"] = "```\n" + HOSTILE + "\n```"
    text = render_markdown(report)
    rows = table_after(text, "## Checks")
    assert len(rows) == 1 and len(rows[0]) == 5, rows
    assert rows[0][3:] == ["1", "not measured"]
    assert table_after(text, "## Artifacts")[0][0] == "`model`"
    outside = _outside_code(text)
    assert re.findall(r"(?<!\\)[<&]", outside) == [], outside
    assert "\x1b" not in text  # no terminal escape sequences
    hazards = text.split("## fp16 hazards\n\n")[1]
    assert hazards.startswith("````text\n```\n")  # a longer fence than the text's own

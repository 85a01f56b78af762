"""Any string a report may hold (model path, check name, reason) leaves every rendering intact."""

import xml.etree.ElementTree as ET

from html_structure import Page
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_tables import table_after
from sample_reports import sample_report

from verification.release.reports.render_html import render_html
from verification.release.reports.render_junit import render_junit
from verification.release.reports.render_markdown import render_markdown

ANY_TEXT = st.text(min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(model=ANY_TEXT, name=ANY_TEXT, reason=ANY_TEXT)
def test_renderings_survive_any_string(model, name, reason):
    check = {
        "name": name,
        "metric": reason,
        "value": None,
        "threshold": 1.0,
        "passed": None,
        "measured": False,
    }
    report = sample_report(model=model, checks=[{**check, "reason": reason}], artifacts={name: model})
    report["details"]["hazards_text"] = reason

    suite = ET.fromstring(render_junit(report)).find("testsuite")
    assert len(suite.findall("testcase")) == 1 and suite.find("testcase/skipped") is not None

    page = Page(render_html(report))
    assert page.nesting_errors == [] and page.open == []
    assert {tag for tag, _ in page.elements} <= {
        *("html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "span", "strong", "div"),
        *("table", "caption", "thead", "tbody", "tr", "th", "td", "pre", "svg", "text", "rect", "line"),
    }

    rows = table_after(render_markdown(report), "## Checks")
    assert len(rows) == 1 and len(rows[0]) == 5 and rows[0][-1] == "not measured", rows

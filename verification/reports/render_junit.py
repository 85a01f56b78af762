"""``junit.xml``: one test case per check, for CI systems that read JUnit."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from . import content


def render_junit(report: dict) -> str:
    checks = report["checks"]
    failures = [c for c in checks if c["passed"] is False]
    skipped = [c for c in checks if c["passed"] is None]
    suite = ET.Element(
        "testsuite",
        name="ane-verify",
        tests=str(len(checks)),
        failures=str(len(failures)),
        errors="0",
        skipped=str(len(skipped)),
        time=f"{content.stage_seconds(report):.2f}",
    )
    for check in checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"ane-verify.{report['model']}", name=check["name"], time="0"
        )
        description = (
            f"{check['metric']}: value {content.value_text(check['value'])}, "
            f"threshold {content.value_text(check['threshold'])}"
        )
        if check["passed"] is False:
            message = check.get("reason") or description
            ET.SubElement(case, "failure", message=message, type="GateFailed").text = description
        elif check["passed"] is None:
            ET.SubElement(case, "skipped", message=check.get("reason") or "not measured")
    root = ET.Element("testsuites")
    root.append(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

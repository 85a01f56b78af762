"""``junit.xml``: one test case per check, for CI systems that read JUnit.

A failed check is a ``<failure>``, a check not measured is ``<skipped>`` with its reason (in strict mode
it failed, and is a ``<failure>``). The suite's ``time`` is the sum of the pipeline's stage times.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from . import content

# XML 1.0 forbids most control characters even when escaped; ElementTree would write them anyway.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _figures(check: dict) -> str:
    value = content.value_text(check["value"])
    return f"{check['metric']}: value {value}, threshold {content.threshold_text(check)}"


def render_junit(report: dict) -> str:
    checks = report["checks"]
    suite = ET.Element(
        "testsuite",
        name="ane-verify",
        tests=str(len(checks)),
        failures=str(sum(c["passed"] is False for c in checks)),
        errors="0",
        skipped=str(sum(c["passed"] is None for c in checks)),
        time=f"{content.stage_seconds(report):.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in report["config"].items():
        ET.SubElement(properties, "property", name=_xml_text(key), value=_xml_text(value))
    for key, value in content.provenance_rows(report):
        ET.SubElement(properties, "property", name=_xml_text(key), value=_xml_text(value))
    classname = _xml_text(f"ane-verify.{report['model']}")
    counted = dict(content.readiness_failures(report))
    for check in checks:
        case = ET.SubElement(suite, "testcase", classname=classname, name=_xml_text(check["name"]), time="0")
        if check["passed"] is False:
            message = check.get("reason") if not check["measured"] else _figures(check)
            failure = ET.SubElement(case, "failure", message=_xml_text(message), type="CheckFailed")
            failure.text = _xml_text(
                "\n".join(
                    [_figures(check), *(content.finding_line(r) for r in counted.get(check["name"], []))]
                )
            )
        elif check["passed"] is None:
            ET.SubElement(case, "skipped", message=_xml_text(check.get("reason") or "not measured"))
    root = ET.Element("testsuites", name="ane-verify")
    for key in ("tests", "failures", "errors", "skipped", "time"):
        root.set(key, suite.get(key, ""))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

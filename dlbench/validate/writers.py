"""The report on the console (rich), as JSON (atomic write, schema in dlbench/data/validate-report.schema.json)
and as JUnit XML, the format CI systems (Jenkins, GitLab, GitHub test reporters) read: one testsuite per host,
one testcase per check, FAIL as <failure>, SKIP as <skipped>, the evidence of every check in <system-out>.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from importlib import resources

from dlbench import atomic
from dlbench.checks import FAIL, PASS, SKIP, WARN, CheckResult
from dlbench.validate.report import Report

SCHEMA_RESOURCE = "data/validate-report.schema.json"
VERDICT_STYLE = {PASS: "green", WARN: "yellow", FAIL: "bold red", SKIP: "dim", "INFO": "cyan"}


def json_schema() -> dict:
    return json.loads(resources.files("dlbench").joinpath(SCHEMA_RESOURCE).read_text())


def format_measured(check: CheckResult) -> str:
    if check.measured is None:
        return ""
    value = check.measured
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{text} {check.unit}".strip()


def evidence(check: CheckResult) -> str:
    """The check in words: what was measured, against what, according to whom."""
    lines = [f"{check.verdict}: {check.title}"]
    if check.measured is not None:
        lines.append(f"measured: {format_measured(check)}")
    if check.per_gpu:
        lines.append("per GPU: " + ", ".join(f"{gpu}: {value}" for gpu, value in check.per_gpu.items()))
    if check.expected:
        lines.append(f"expected: {check.expected}")
    if check.source:
        lines.append(f"source: {check.source}")
    if check.detail:
        lines.append(check.detail)
    return "\n".join(lines)


def write_json(report: Report, path) -> None:
    atomic.write_json(path, report.to_dict())


def junit_xml(report: Report) -> str:
    data = report.to_dict()
    counts = data["counts"]
    suite_attrs = {
        "name": f"dlbench validate {data['host']}",
        "tests": str(len(report.checks)),
        "failures": str(counts[FAIL]),
        "errors": "0",
        "skipped": str(counts[SKIP]),
        "time": f"{data['duration_seconds']:.3f}",
        "timestamp": data["started"].rstrip("Z"),
        "hostname": data["host"] or "localhost",
    }
    suites = ET.Element("testsuites", {k: suite_attrs[k] for k in ("name", "tests", "failures", "errors", "time")})
    suite = ET.SubElement(suites, "testsuite", suite_attrs)
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict", data["verdict"]),
        ("dlbench_version", data["tool"]["version"]),
        ("driver_version", data["environment"].get("driver_version") or ""),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": str(value)})
    for check in report.checks:
        family, _, name = check.id.partition(".")
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"dlbench.validate.{family}",
                "name": name or family,
                "time": f"{check.duration_seconds:.3f}",
            },
        )
        summary = check.detail or check.expected or check.verdict
        if check.verdict == SKIP:
            ET.SubElement(case, "skipped", {"message": summary})
        elif check.verdict == FAIL:
            failure = ET.SubElement(case, "failure", {"message": summary, "type": FAIL})
            failure.text = evidence(check)
        ET.SubElement(case, "system-out").text = evidence(check)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_junit(report: Report, path) -> None:
    atomic.write_text(path, junit_xml(report))


def console_table(report: Report, command: str = "dlbench validate"):
    from rich.table import Table

    data = report.to_dict()
    table = Table(title=f"{command} {data['host']}: {data['verdict']}", show_lines=False)
    for column in ("check", "verdict", "measured", "expected", "source / reason"):
        table.add_column(column, overflow="fold")
    for check in report.checks:
        style = VERDICT_STYLE.get(check.verdict, "")
        reason = check.detail if check.verdict in (SKIP, FAIL, WARN) and check.detail else (check.source or "")
        table.add_row(check.id, f"[{style}]{check.verdict}[/]", format_measured(check), check.expected or "", reason)
    return table

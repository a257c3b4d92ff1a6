"""Spec: the host against a declared host spec (`--spec FILE`), field by field; see dlbench/hostspec."""

from __future__ import annotations

import socket

from dlbench.checks import CheckResult
from dlbench.hostspec import compare, facts
from dlbench.hostspec.reader import host_reader
from dlbench.validate.context import Context
from dlbench.validate.report import Report


def run(ctx: Context) -> list[CheckResult]:
    # the NVML reader of this run, so the GPUs judged are the ones every other check measures
    return compare.check(ctx.options.spec, facts.collect(host_reader(), nvml_reader=ctx.reader))


def report(declared: dict, host: dict, spec_path) -> Report:
    """`dlbench env --spec`: the host as read (`facts.collect`) against a declared spec, a report of these checks alone."""
    checked = Report({"hostname": socket.gethostname()}, {"spec": str(spec_path)})
    for result in compare.check(declared, host):
        checked.add(result)
    return checked

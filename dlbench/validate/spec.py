"""Spec: the host against a declared host spec (`--spec FILE`), field by field; see dlbench/hostspec."""

from __future__ import annotations

from dlbench.hostspec import compare, facts
from dlbench.hostspec.reader import host_reader
from dlbench.validate.context import Context
from dlbench.checks import CheckResult


def run(ctx: Context) -> list[CheckResult]:
    # the NVML reader of this run, so the GPUs judged are the ones every other check measures
    return compare.check(ctx.options.spec, facts.collect(host_reader(), nvml_reader=ctx.reader))

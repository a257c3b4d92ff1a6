"""Runs the check families in order and fills the report.

Order matters: the stack, inventory and power limits read the idle host first, the load checks (compute, memory,
interconnect, burn-in, training, container) run under NVML sampling, and the link, fabric and health verdicts come
last, from what the load showed. A check that raises becomes a FAIL carrying the error: on new hardware an exception is evidence.
"""

from __future__ import annotations

import time
import traceback
from typing import Callable

from dlbench import environment
from dlbench.hostspec import facts
from dlbench.validate import (
    compute,
    fabric,
    gpudirect,
    health,
    interconnect,
    inventory,
    memory,
    p2p,
    pcie,
    power,
    stack,
    storage,
    training,
)
from dlbench.validate.context import Context
from dlbench.checks import FAIL, CheckResult
from dlbench.validate.report import Report


def families(ctx: Context) -> list[tuple[str, Callable[[Context], list[CheckResult]]]]:
    chosen = [
        ("stack", stack.run),
        ("inventory", inventory.run),
        ("power", power.run),
        ("compute", compute.run),
        ("memory", memory.run),
        ("interconnect", interconnect.run),
        ("interconnect", p2p.run),
        ("gpudirect", gpudirect.run),  # the PCIe path to the NICs, then each GPU-NIC pair's RDMA bandwidth
        ("training", training.run),
    ]
    if ctx.options.data_dir is not None:  # --level long, or --data-dir given
        chosen.append(("storage", storage.run))
    if ctx.options.spec:
        from dlbench.validate import spec

        chosen.insert(0, ("spec", spec.run))  # the idle host, before any load
    if ctx.options.image:
        from dlbench.validate import container

        chosen.append(("container", container.run))
    if ctx.options.level == "long":
        chosen.append(("power", power.sustained))  # 120 s near TDP, after the short loads
    if ctx.options.burn_in_seconds:
        from dlbench.validate import burnin

        chosen.append(("burnin", burnin.run))
    chosen += [
        ("link", lambda c: [inventory.pcie_link(c)]),
        ("link", pcie.run),
        ("fabric", fabric.run),
        ("health", health.run),
    ]
    return chosen


def _guarded(family: str, run: Callable[[Context], list[CheckResult]], ctx: Context) -> list[CheckResult]:
    started = time.monotonic()
    try:
        results = run(ctx)
    except Exception as error:  # noqa: BLE001 - a crash on new hardware is a finding, not a reason to stop
        frame = traceback.extract_tb(error.__traceback__)[-1]
        results = [
            CheckResult(
                f"{family}.error",
                f"{family} checks ran to the end",
                FAIL,
                detail=f"{type(error).__name__}: {error} (at {frame.filename}:{frame.lineno})",
            )
        ]
    elapsed = time.monotonic() - started
    for result in results:
        result.duration_seconds = round(elapsed / max(1, len(results)), 3)
    return results


def _environment(ctx: Context) -> dict:
    """The host as `dlbench env` describes it, with the GPUs and driver as the NVML reader of this run saw them."""
    env = environment.collect()
    reader = ctx.reader
    env["driver_version"] = reader.driver_version or None
    env["nvml"] = "ok" if reader.up else reader.problem
    env["gpus"] = [
        {
            "index": gpu.index,
            "name": gpu.name,
            "uuid": gpu.uuid,
            "pci_bus_id": gpu.pci_bus_id,
            "memory_total_bytes": ctx.baseline.get(gpu.index, {}).get("memory_total_bytes"),
            "vbios": ctx.static[gpu.index].vbios_version if gpu.index in ctx.static else None,
        }
        for gpu in reader.gpus
    ]
    # firmware the fleet summary compares across hosts (summarize.VERSIONS)
    env["firmware"] = {"nic": facts.nic_firmware(ctx.host), "cpu_microcode": facts.cpu_microcode(ctx.host)}
    return env


def validate(
    ctx: Context,
    on_result: Callable[[CheckResult], None] = lambda result: None,
    on_family: Callable[[str], None] = lambda name: None,
) -> Report:
    report = Report(_environment(ctx), ctx.options.to_dict())
    try:
        for family, run in families(ctx):
            on_family(family)
            for result in _guarded(family, run, ctx):
                report.add(result)
                ctx.results.append(result)
                on_result(result)
    finally:
        ctx.close()
    report.finished = time.time()
    return report

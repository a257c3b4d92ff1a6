"""Helpers for the `dlbench validate` tests: a simulated NVML in-process, and a Context over it."""

from __future__ import annotations

from dlbench.telemetry import fake_nvml
from dlbench.validate.context import Context, Options
from dlbench.validate.nvml_extra import extend_simulation


def simulated_nvml(*gpus: dict):
    """A simulated NVML (dlbench/telemetry/fake_nvml.py plus the validation calls) with one GPU per dict:
    {"preset": "h100-sxm", "values": {...}, "faults": {...}} as in a scenario file."""
    fake = fake_nvml.FakeNvml([fake_nvml.FakeGpu(i, g["preset"], dict(g.get("values", {})), dict(g.get("faults", {})))
                               for i, g in enumerate(gpus)])
    return extend_simulation(fake)


def context(*gpus: dict, **options) -> Context:
    options.setdefault("cpu", True)
    options.setdefault("interval_seconds", 0.05)
    return Context(Options(**options), nvml=simulated_nvml(*gpus) if gpus else None)

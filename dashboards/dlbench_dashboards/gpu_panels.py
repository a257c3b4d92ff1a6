"""Per-GPU panels that more than one dashboard shows: each metric's query, unit and scale are written here once.

A dashboard passes its legend (with the host on the fleet overview, without it where one host is selected) and
its own description where the dashboards explain the panel differently.
"""

from __future__ import annotations

from .panels import stat_panel, state_timeline, table_panel, time_series
from .selectors import ACTIVE, GPU, UP_DOWN

# The alert DlbenchGPUTemperatureHigh fires above 85 °C.
TEMPERATURE_THRESHOLDS = [(None, "green"), (85, "red")]


def gpu_query(metric: str, legend: str, suffix: str = "") -> tuple[str, str]:
    """`metric` of the selected GPUs, one series per GPU named `legend` + `suffix`."""
    return f"{metric}{{{GPU}}}", legend + suffix


def against(
    metric: str, reference: str, legend: str, reference_suffix: str, own_suffix: str = ""
) -> list[tuple[str, str]]:
    """`metric` per GPU beside the `reference` it is measured against (a maximum, a limit, a total)."""
    return [gpu_query(metric, legend, own_suffix), gpu_query(reference, legend, reference_suffix)]


def fraction(title: str, metric: str, legend: str, *, description: str):
    """A per-GPU ratio on a fixed 0 to 100% scale."""
    return time_series(
        title, [gpu_query(metric, legend)], unit="percentunit", min_value=0, max_value=1, description=description
    )


def utilization(legend: str, *, description: str):
    return fraction("GPU utilization", "dlbench_gpu_utilization_ratio", legend, description=description)


def _per_gpu(metric: str, legend: str, reference: tuple[str, str] | None, own_suffix: str = ""):
    """`metric` per GPU; with `reference` = (metric, legend suffix), also what it is measured against."""
    if reference is None:
        return [gpu_query(metric, legend)]
    return against(metric, reference[0], legend, reference[1], own_suffix)


def memory_used(legend: str, *, description: str, title: str = "GPU memory used", with_total: bool = False):
    total = ("dlbench_gpu_memory_total_bytes", " total") if with_total else None
    queries = _per_gpu("dlbench_gpu_memory_used_bytes", legend, total, own_suffix=" used")
    return time_series(title, queries, unit="bytes", min_value=0, description=description)


def power(legend: str, *, description: str, title: str = "GPU power", with_limit: bool = False):
    limit = ("dlbench_gpu_power_limit_watts", " limit") if with_limit else None
    queries = _per_gpu("dlbench_gpu_power_watts", legend, limit)
    return time_series(title, queries, unit="watt", min_value=0, description=description)


def temperature(legend: str, *, description: str, title: str = "GPU temperature", with_memory: bool = False):
    memory = ("dlbench_gpu_memory_temperature_celsius", " memory") if with_memory else None
    queries = _per_gpu("dlbench_gpu_temperature_celsius", legend, memory)
    return time_series(title, queries, unit="celsius", thresholds=TEMPERATURE_THRESHOLDS, description=description)


def clocks_limited(legend: str, *, description: str):
    return state_timeline(
        "Clocks limited",
        [gpu_query("dlbench:gpu_clocks_limited:max", legend)],
        states=ACTIVE,
        description=description,
    )


def up_timeline(legend: str):
    return state_timeline(
        "GPU up", [gpu_query("dlbench_gpu_up", legend)], states=UP_DOWN, description="Whether each GPU answers NVML."
    )


def up_count(title: str, *, description: str):
    return stat_panel(title, [(f"sum(dlbench_gpu_up{{{GPU}}})", "")], unit="none", description=description)


def xid_events(per: str, *, description: str):
    """One row per `per` label set (e.g. "gpu, uuid, xid"): how many events and when the last one came."""
    return table_panel(
        "XID events since exporter start",
        [
            (f"sum by ({per}) (dlbench_gpu_xid_errors_total{{{GPU}}})", "events"),
            (f"max by ({per}) (dlbench_gpu_last_xid_timestamp_seconds{{{GPU}}}) * 1000", "last seen"),
        ],
        description=description,
        units={"last seen": "dateTimeAsIso"},
    )

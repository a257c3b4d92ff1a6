"""GPU fleet overview: every host and GPU at a glance."""

from __future__ import annotations

from . import gpu_panels
from .gpu_panels import gpu_query
from .panels import datasource_variable, label_variable, new_dashboard, stat_panel, table_panel, time_series
from .selectors import GPU, GPU_LEGEND

UID = "dlbench-gpu-fleet"
LEGEND = GPU_LEGEND  # many hosts: name the host too

# The "GPUs" table's value columns: column, metric, unit.
GPU_COLUMNS = [
    ("utilization", "dlbench_gpu_utilization_ratio", "percentunit"),
    ("memory used", "dlbench:gpu_memory_used:ratio", "percentunit"),
    ("temperature", "dlbench_gpu_temperature_celsius", "celsius"),
    ("power", "dlbench_gpu_power_watts", "watt"),
]

# The memory-error table's columns: column, aggregation over a GPU's series, metric, extra label matcher.
MEMORY_ERROR_COLUMNS = [
    ("uncorrectable ECC (life)", "sum", "dlbench_gpu_ecc_errors_total", ', type="uncorrected"'),
    ("rows remapped (uncorrectable)", "sum", "dlbench_gpu_remapped_rows", ', type="uncorrectable"'),
    ("remap pending", "max", "dlbench_gpu_row_remap_pending", ""),
    ("remap failed", "max", "dlbench_gpu_row_remap_failure", ""),
]


def build():
    # Jobs come from dlbench_exporter_gpus, which only exporters serve, and `All` means exactly those jobs: a
    # `dlbench run --metrics-port` also serves its GPU's series (which would count that GPU twice), and its target
    # is down between runs (which is no exporter down).
    board, layout = new_dashboard(
        "GPU fleet overview",
        UID,
        "Every host and GPU watched by dlbench exporter: utilization, memory, temperature, power, throttling, "
        "GPUs down, XID and ECC events.",
        [
            datasource_variable(),
            label_variable("job", "Job", "label_values(dlbench_exporter_gpus, job)", all_matches_anything=False),
            label_variable("hostname", "Host", 'label_values(dlbench_exporter_gpus{job=~"$job"}, hostname)'),
            label_variable("gpu", "GPU", 'label_values(dlbench_gpu_up{job=~"$job", hostname=~"$hostname"}, gpu)'),
        ],
    )
    bad_if_any = [(None, "green"), (1, "red")]

    layout.row("At a glance")
    layout.add(
        gpu_panels.up_count("GPUs answering", description="GPUs that answer NVML now."),
        stat_panel(
            "GPUs down",
            [(f"count(dlbench_gpu_up{{{GPU}}} == 0) or vector(0)", "")],
            unit="none",
            description="GPUs the exporter knows but that do not answer NVML (fallen off the bus, failing).",
            thresholds=bad_if_any,
        ),
        stat_panel(
            "Exporters down",
            [('count(up{job=~"$job"} == 0) or vector(0)', "")],
            unit="none",
            description="Scrape targets of the selected jobs Prometheus cannot reach.",
            thresholds=bad_if_any,
        ),
        stat_panel(
            "Mean GPU utilization",
            [(f"avg(dlbench_gpu_utilization_ratio{{{GPU}}})", "")],
            unit="percentunit",
            description="Mean over the selected GPUs.",
            graph=True,
        ),
        stat_panel(
            "Power draw",
            [(f"sum(dlbench_gpu_power_watts{{{GPU}}})", "")],
            unit="watt",
            description="Board power of the selected GPUs together.",
            graph=True,
        ),
        stat_panel(
            "GPUs with limited clocks",
            [(f"sum(dlbench:gpu_clocks_limited:max{{{GPU}}}) or vector(0)", "")],
            unit="none",
            description="GPUs held below full clocks by power cap, thermal or hardware slowdown now.",
            thresholds=[(None, "green"), (1, "orange")],
        ),
        width=4,
        height=4,
    )

    layout.row("Utilization and memory")
    layout.add(
        gpu_panels.utilization(LEGEND, description="Fraction of time a kernel ran, per GPU."),
        gpu_panels.fraction(
            "GPU memory used",
            "dlbench:gpu_memory_used:ratio",
            LEGEND,
            description="Device memory used over total, per GPU (recording rule).",
        ),
        width=12,
        height=8,
    )

    layout.row("Temperature and power")
    layout.add(
        gpu_panels.temperature(
            LEGEND,
            description="Die temperature; the alert DlbenchGPUTemperatureHigh fires above 85 °C for 5 minutes.",
        ),
        time_series(
            "Power against limit",
            [gpu_query("dlbench:gpu_power_limit:ratio", LEGEND)],
            unit="percentunit",
            min_value=0,
            thresholds=[(None, "green"), (1, "orange")],
            description="Board power over the enforced power limit; at 100% the GPU is power-capped.",
        ),
        width=12,
        height=8,
    )

    layout.row("Health")
    layout.add(
        gpu_panels.up_timeline(LEGEND),
        gpu_panels.clocks_limited(
            LEGEND,
            description="Power cap, thermal or hardware slowdown holding the clocks down (the GPU node detail "
            "dashboard shows which reason).",
        ),
        width=12,
        height=8,
    )
    layout.add(
        table_panel(
            "GPUs",
            [(f"dlbench_gpu_info{{{GPU}}}", "")] + [gpu_query(metric, column) for column, metric, _ in GPU_COLUMNS],
            description="One row per GPU, now.",
            units={column: unit for column, _, unit in GPU_COLUMNS},
            hide=("Time", "__name__", "job", "instance", "Value #A", "cuda_driver_version"),
        ),
        width=24,
        height=8,
    )
    layout.add(
        gpu_panels.xid_events(
            "hostname, gpu, uuid, xid",
            description="XID codes each GPU reported since its exporter started; 48, 62, 64, 74, 79, 95, 119 and 120 "
            "are critical. Empty is good news.",
        ),
        table_panel(
            "Uncorrectable ECC and row remapping",
            [
                (f"{function} by (hostname, gpu, uuid) ({metric}{{{GPU}{matcher}}})", column)
                for column, function, metric, matcher in MEMORY_ERROR_COLUMNS
            ],
            description="Lifetime memory-error state of each GPU. A pending remap needs a GPU reset; a failed one an RMA.",
        ),
        width=12,
        height=8,
    )
    return board

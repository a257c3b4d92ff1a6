"""GPU fleet overview: every host and GPU at a glance."""

from __future__ import annotations

from .panels import (
    datasource_variable,
    label_variable,
    new_dashboard,
    stat_panel,
    state_timeline,
    table_panel,
    time_series,
)
from .selectors import ACTIVE, GPU, GPU_LEGEND, UP_DOWN

UID = "dlbench-gpu-fleet"


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
        stat_panel(
            "GPUs answering",
            [(f"sum(dlbench_gpu_up{{{GPU}}})", "")],
            unit="none",
            description="GPUs that answer NVML now.",
        ),
        4,
        4,
    )
    layout.add(
        stat_panel(
            "GPUs down",
            [(f"count(dlbench_gpu_up{{{GPU}}} == 0) or vector(0)", "")],
            unit="none",
            description="GPUs the exporter knows but that do not answer NVML (fallen off the bus, failing).",
            thresholds=bad_if_any,
        ),
        4,
        4,
    )
    layout.add(
        stat_panel(
            "Exporters down",
            [('count(up{job=~"$job"} == 0) or vector(0)', "")],
            unit="none",
            description="Scrape targets of the selected jobs Prometheus cannot reach.",
            thresholds=bad_if_any,
        ),
        4,
        4,
    )
    layout.add(
        stat_panel(
            "Mean GPU utilization",
            [(f"avg(dlbench_gpu_utilization_ratio{{{GPU}}})", "")],
            unit="percentunit",
            description="Mean over the selected GPUs.",
            graph=True,
        ),
        4,
        4,
    )
    layout.add(
        stat_panel(
            "Power draw",
            [(f"sum(dlbench_gpu_power_watts{{{GPU}}})", "")],
            unit="watt",
            description="Board power of the selected GPUs together.",
            graph=True,
        ),
        4,
        4,
    )
    layout.add(
        stat_panel(
            "GPUs with limited clocks",
            [(f"sum(dlbench:gpu_clocks_limited:max{{{GPU}}}) or vector(0)", "")],
            unit="none",
            description="GPUs held below full clocks by power cap, thermal or hardware slowdown now.",
            thresholds=[(None, "green"), (1, "orange")],
        ),
        4,
        4,
    )

    layout.row("Utilization and memory")
    layout.add(
        time_series(
            "GPU utilization",
            [(f"dlbench_gpu_utilization_ratio{{{GPU}}}", GPU_LEGEND)],
            unit="percentunit",
            min_value=0,
            max_value=1,
            description="Fraction of time a kernel ran, per GPU.",
        ),
        12,
        8,
    )
    layout.add(
        time_series(
            "GPU memory used",
            [(f"dlbench:gpu_memory_used:ratio{{{GPU}}}", GPU_LEGEND)],
            unit="percentunit",
            min_value=0,
            max_value=1,
            description="Device memory used over total, per GPU (recording rule).",
        ),
        12,
        8,
    )

    layout.row("Temperature and power")
    layout.add(
        time_series(
            "GPU temperature",
            [(f"dlbench_gpu_temperature_celsius{{{GPU}}}", GPU_LEGEND)],
            unit="celsius",
            thresholds=[(None, "green"), (85, "red")],
            description="Die temperature; the alert DlbenchGPUTemperatureHigh fires above 85 °C for 5 minutes.",
        ),
        12,
        8,
    )
    layout.add(
        time_series(
            "Power against limit",
            [(f"dlbench:gpu_power_limit:ratio{{{GPU}}}", GPU_LEGEND)],
            unit="percentunit",
            min_value=0,
            thresholds=[(None, "green"), (1, "orange")],
            description="Board power over the enforced power limit; at 100% the GPU is power-capped.",
        ),
        12,
        8,
    )

    layout.row("Health")
    layout.add(
        state_timeline(
            "GPU up",
            [(f"dlbench_gpu_up{{{GPU}}}", GPU_LEGEND)],
            states=UP_DOWN,
            description="Whether each GPU answers NVML.",
        ),
        12,
        8,
    )
    layout.add(
        state_timeline(
            "Clocks limited",
            [(f"dlbench:gpu_clocks_limited:max{{{GPU}}}", GPU_LEGEND)],
            states=ACTIVE,
            description="Power cap, thermal or hardware slowdown holding the clocks down (the GPU node detail "
            "dashboard shows which reason).",
        ),
        12,
        8,
    )
    layout.add(
        table_panel(
            "GPUs",
            [
                (f"dlbench_gpu_info{{{GPU}}}", ""),
                (f"dlbench_gpu_utilization_ratio{{{GPU}}}", "utilization"),
                (f"dlbench:gpu_memory_used:ratio{{{GPU}}}", "memory used"),
                (f"dlbench_gpu_temperature_celsius{{{GPU}}}", "temperature"),
                (f"dlbench_gpu_power_watts{{{GPU}}}", "power"),
            ],
            description="One row per GPU, now.",
            units={
                "utilization": "percentunit",
                "memory used": "percentunit",
                "temperature": "celsius",
                "power": "watt",
            },
            hide=("Time", "__name__", "job", "instance", "Value #A", "cuda_driver_version"),
        ),
        24,
        8,
    )
    layout.add(
        table_panel(
            "XID events since exporter start",
            [
                (f"sum by (hostname, gpu, uuid, xid) (dlbench_gpu_xid_errors_total{{{GPU}}})", "events"),
                (
                    f"max by (hostname, gpu, uuid, xid) (dlbench_gpu_last_xid_timestamp_seconds{{{GPU}}}) * 1000",
                    "last seen",
                ),
            ],
            description="XID codes each GPU reported since its exporter started; 48, 62, 64, 74, 79, 95, 119 and 120 are "
            "critical. Empty is good news.",
            units={"last seen": "dateTimeAsIso"},
        ),
        12,
        8,
    )
    layout.add(
        table_panel(
            "Uncorrectable ECC and row remapping",
            [
                (
                    f'sum by (hostname, gpu, uuid) (dlbench_gpu_ecc_errors_total{{{GPU}, type="uncorrected"}})',
                    "uncorrectable ECC (life)",
                ),
                (
                    f'sum by (hostname, gpu, uuid) (dlbench_gpu_remapped_rows{{{GPU}, type="uncorrectable"}})',
                    "rows remapped (uncorrectable)",
                ),
                (f"max by (hostname, gpu, uuid) (dlbench_gpu_row_remap_pending{{{GPU}}})", "remap pending"),
                (f"max by (hostname, gpu, uuid) (dlbench_gpu_row_remap_failure{{{GPU}}})", "remap failed"),
            ],
            description="Lifetime memory-error state of each GPU. A pending remap needs a GPU reset; a failed one an RMA.",
        ),
        12,
        8,
    )
    return board

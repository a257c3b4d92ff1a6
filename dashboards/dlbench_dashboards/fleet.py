"""GPU fleet overview: every host at a glance, readable at 100 hosts x 8 GPUs.

Panels aggregate per host (one line or row per host, not per GPU); a click on a host's series or row opens the GPU
node detail dashboard for that host, where every GPU has its own series.
"""

from __future__ import annotations

from .panels import (
    annotation,
    datasource_variable,
    label_variable,
    link,
    new_dashboard,
    stat_panel,
    table_panel,
    time_series,
)
from .selectors import GPU, NODE_LINK, NODE_LINK_FROM_ROW, RESTART_ANNOTATION, XID_ANNOTATION

UID = "dlbench-gpu-fleet"
HOST_LEGEND = "{{hostname}}"
BY_HOST = "by (job, hostname)"
BY_OWNER = "by (job, hostname, slurm_job_id, namespace, pod)"  # a process's Slurm job or Kubernetes pod
TO_NODE = [link("GPU node detail for ${__field.labels.hostname}", NODE_LINK)]

# GPUs down per host, 0 for a host whose GPUs all answer (so that every host has a value)
GPUS_DOWN = f"count {BY_HOST} (dlbench_gpu_up{{{GPU}}} == 0) or (count {BY_HOST} (dlbench_gpu_up{{{GPU}}}) * 0)"

# The "Hosts" table's value columns: column, query (per host), unit.
HOST_COLUMNS = [
    ("GPUs", f"count {BY_HOST} (dlbench_gpu_up{{{GPU}}})", "none"),
    ("GPUs down", GPUS_DOWN, "none"),
    ("mean utilization", f"avg {BY_HOST} (dlbench_gpu_utilization_ratio{{{GPU}}})", "percentunit"),
    ("hottest GPU", f"max {BY_HOST} (dlbench_gpu_temperature_celsius{{{GPU}}})", "celsius"),
    ("power", f"sum {BY_HOST} (dlbench_gpu_power_watts{{{GPU}}})", "watt"),
    ("GPUs slowed", f"sum {BY_HOST} (dlbench:gpu_clocks_limited:max{{{GPU}}})", "none"),
]

# The memory-error table's columns: column, aggregation over a GPU's series, metric, extra label matcher. Only GPUs
# with something to report in any column get a row, so the table stays short on a large healthy fleet.
MEMORY_ERROR_COLUMNS = [
    ("uncorrectable ECC (life)", "sum", "dlbench_gpu_ecc_errors_total", ', type="uncorrected"'),
    ("rows remapped (uncorrectable)", "sum", "dlbench_gpu_remapped_rows", ', type="uncorrectable"'),
    ("remap pending", "max", "dlbench_gpu_row_remap_pending", ""),
    ("remap failed", "max", "dlbench_gpu_row_remap_failure", ""),
]


MEMORY_ERROR_QUERIES = [
    (column, f"{function} by (job, hostname, gpu, uuid) ({metric}{{{GPU}{matcher}}})")
    for column, function, metric, matcher in MEMORY_ERROR_COLUMNS
]
ANY_MEMORY_ERROR = " or ".join(f"{expr} > 0" for _, expr in MEMORY_ERROR_QUERIES)


def per_host(title: str, expr: str, *, unit: str, description: str, **options):
    """One series per host, each a link to that host's node dashboard."""
    return time_series(title, [(expr, HOST_LEGEND)], unit=unit, description=description, **options).data_links(TO_NODE)


def build():
    # Jobs come from dlbench_exporter_gpus, which only exporters serve, and `All` means exactly those jobs: a
    # `dlbench run --metrics-port` also serves its GPU's series (which would count that GPU twice), and its target
    # is down between runs (which is no exporter down).
    board, layout = new_dashboard(
        "GPU fleet overview",
        UID,
        "Every host watched by dlbench exporter, one line per host: utilization, memory, temperature, power, GPUs "
        "down, slowed clocks, XID and ECC events. Click a host for its GPUs.",
        [
            datasource_variable(),
            label_variable("job", "Job", "label_values(dlbench_exporter_gpus, job)", all_matches_anything=False),
            label_variable("hostname", "Host", 'label_values(dlbench_exporter_gpus{job=~"$job"}, hostname)'),
            label_variable("gpu", "GPU", 'label_values(dlbench_gpu_up{job=~"$job", hostname=~"$hostname"}, gpu)'),
        ],
        annotations=[
            annotation("XID events", XID_ANNOTATION, "red"),
            annotation("Exporter restarts", RESTART_ANNOTATION, "blue"),
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
        stat_panel(
            "GPUs down",
            [(f"count(dlbench_gpu_up{{{GPU}}} == 0) or vector(0)", "")],
            unit="none",
            description="GPUs the exporter knows but that do not answer NVML (lost, or a read that hangs).",
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
            "GPUs slowed",
            [(f"sum(dlbench:gpu_clocks_limited:max{{{GPU}}}) or vector(0)", "")],
            unit="none",
            description="GPUs held down by thermal or hardware slowdown or the power brake now: trouble. The "
            "software power cap, where a busy GPU sits by design, is not counted (see 'GPUs at power cap').",
            thresholds=[(None, "green"), (1, "orange")],
        ),
        stat_panel(
            "GPUs at power cap",
            [(f"sum(dlbench:gpu_power_capped:max{{{GPU}}}) or vector(0)", "")],
            unit="none",
            description="GPUs running at their software power limit now: normal at full load, shown for capacity "
            "planning rather than as a fault.",
            thresholds=[(None, "blue")],
        ),
        width=4,
        height=4,
    )

    layout.row("Utilization and memory (per host)")
    layout.add(
        per_host(
            "GPU utilization",
            f"avg {BY_HOST} (dlbench_gpu_utilization_ratio{{{GPU}}})",
            unit="percentunit",
            min_value=0,
            max_value=1,
            description="Mean over each host's GPUs. Click a host for each GPU.",
        ),
        per_host(
            "GPU memory used (fullest GPU)",
            f"max {BY_HOST} (dlbench:gpu_memory_used:ratio{{{GPU}}})",
            unit="percentunit",
            min_value=0,
            max_value=1,
            description="Device memory used over total on each host's fullest GPU.",
        ),
        width=12,
        height=8,
    )

    layout.row("Who uses the GPUs")
    layout.add(
        table_panel(
            "GPU memory by Slurm job or Kubernetes pod",
            [
                (f"sum {BY_OWNER} (dlbench_gpu_process_memory_used_bytes{{{GPU}}})", "GPU memory"),
                (f"count {BY_OWNER} (dlbench_gpu_process_memory_used_bytes{{{GPU}}})", "processes"),
            ],
            description="GPU memory of the processes of each Slurm job or pod now, from their cgroups (empty "
            "job and pod: neither). Each GPU lists its 10 largest processes.",
            units={"GPU memory": "bytes"},
        ),
        width=24,
        height=8,
    )

    layout.row("Temperature and power (per host)")
    layout.add(
        per_host(
            "Hottest GPU",
            f"max {BY_HOST} (dlbench_gpu_temperature_celsius{{{GPU}}})",
            unit="celsius",
            thresholds=[(None, "green"), (85, "red")],
            description="Die temperature of each host's hottest GPU; DlbenchGPUTemperatureHigh fires above 85 °C "
            "for 5 minutes.",
        ),
        per_host(
            "Power against limit",
            f"sum {BY_HOST} (dlbench_gpu_power_watts{{{GPU}}})"
            f" / sum {BY_HOST} (dlbench_gpu_power_limit_watts{{{GPU}}})",
            unit="percentunit",
            min_value=0,
            thresholds=[(None, "green"), (1, "orange")],
            description="Each host's GPU power over their enforced limits together.",
        ),
        width=12,
        height=8,
    )

    layout.row("Health (per host)")
    layout.add(
        per_host(
            "GPUs down",
            GPUS_DOWN,
            unit="none",
            min_value=0,
            description="GPUs not answering NVML, per host (0 while all answer).",
        ),
        per_host(
            "GPUs slowed",
            f"sum {BY_HOST} (dlbench:gpu_clocks_limited:max{{{GPU}}}) > 0",
            unit="none",
            min_value=0,
            description="GPUs held down by thermal or hardware slowdown or the power brake, per host (the node "
            "dashboard shows which reason); the power cap is left out.",
        ),
        width=12,
        height=8,
    )
    layout.add(
        table_panel(
            "Hosts",
            [(expr, column) for column, expr, _ in HOST_COLUMNS],
            description="One row per host, now. Click a host name for its GPUs.",
            units={column: unit for column, _, unit in HOST_COLUMNS},
            hide=("Time", "__name__", "instance"),
        ).data_links([link("GPU node detail for ${__data.fields.hostname}", NODE_LINK_FROM_ROW)]),
        width=24,
        height=8,
    )
    layout.add(
        table_panel(
            "XID events since exporter start",
            [
                (f"sum by (job, hostname, xid) (dlbench_gpu_xid_errors_total{{{GPU}}})", "events"),
                (f"max by (job, hostname, xid) (dlbench_gpu_last_xid_timestamp_seconds{{{GPU}}}) * 1000", "last seen"),
            ],
            description="XID codes per host since its exporter started, application codes (13, 31, 43, 45) "
            "included: they never alert but show here. Hardware codes page. Empty is good news.",
            units={"last seen": "dateTimeAsIso"},
            hide=("Time", "__name__", "instance"),
        ).data_links([link("GPU node detail for ${__data.fields.hostname}", NODE_LINK_FROM_ROW)]),
        table_panel(
            "Uncorrectable ECC and row remapping",
            [
                (f"{expr} and on (job, hostname, gpu, uuid) ({ANY_MEMORY_ERROR})", column)
                for column, expr in MEMORY_ERROR_QUERIES
            ],
            description="GPUs with lifetime memory errors or remaps, only those. A pending remap needs a GPU reset; "
            "a failed one an RMA.",
        ),
        width=12,
        height=8,
    )
    return board

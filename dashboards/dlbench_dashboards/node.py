"""GPU node detail: one host, every metric the exporter has for its GPUs and for the host itself."""

from __future__ import annotations

from . import gpu_panels
from .gpu_panels import against, gpu_query
from .panels import (
    annotation,
    datasource_variable,
    gauge_panel,
    label_variable,
    new_dashboard,
    stat_panel,
    state_timeline,
    table_panel,
    time_series,
)
from .selectors import ACTIVE, GPU, GPU_ONLY_LEGEND, HOST, RESTART_ANNOTATION, TROUBLE_REASONS, XID_ANNOTATION

UID = "dlbench-gpu-node"
POWER_CAP = {"0": ("no", "green"), "1": ("at cap", "blue")}
RATE = "$__rate_interval"
LEGEND = GPU_ONLY_LEGEND

# One dial per GPU, now: title, metric, unit, full scale, thresholds, description.
NOW_GAUGES = [
    (
        "Utilization now",
        "dlbench_gpu_utilization_ratio",
        "percentunit",
        1,
        [(None, "blue"), (0.8, "green")],
        "Current utilization of each GPU.",
    ),
    (
        "Memory used now",
        "dlbench:gpu_memory_used:ratio",
        "percentunit",
        1,
        [(None, "green"), (0.9, "orange"), (0.97, "red")],
        "Device memory used over total, per GPU.",
    ),
    (
        "Temperature now",
        "dlbench_gpu_temperature_celsius",
        "celsius",
        100,
        [(None, "green"), (75, "orange"), (85, "red")],
        "Die temperature of each GPU; the alert threshold is 85 °C.",
    ),
]

# Clocks against their maxima: title, clock (as named in the metric), description.
CLOCKS = [
    ("SM clock", "sm", "Current SM clock against the highest the GPU can run."),
    ("Memory clock", "memory", "Current memory clock against its maximum."),
]


def _gpu_rate(metric: str, suffix: str = "", function: str = "rate") -> tuple[str, str]:
    """Per-second (or, with function="increase", per-interval) change of a GPU counter."""
    expr, legend = gpu_query(metric, LEGEND, suffix)
    return f"{function}({expr}[{RATE}])", legend


def _host(metric: str, legend: str) -> tuple[str, str]:
    return f"{metric}{{{HOST}}}", legend


def _host_bytes_per_second(title: str, counters: list[tuple[str, str]], description: str):
    queries = [(f"rate({metric}{{{HOST}}}[{RATE}])", legend) for metric, legend in counters]
    return time_series(title, queries, unit="Bps", min_value=0, description=description)


def _clock(title: str, clock: str, description: str):
    queries = against(f"dlbench_gpu_{clock}_clock_hertz", f"dlbench_gpu_{clock}_clock_max_hertz", LEGEND, " max")
    return time_series(title, queries, unit="hertz", min_value=0, description=description)


def build():
    board, layout = new_dashboard(
        "GPU node detail",
        UID,
        "One host: per-GPU time series for everything dlbench exporter collects, clocks against their maxima, "
        "throttle reasons over time, PCIe, energy, and the host's CPU, memory, disk and network.",
        [
            datasource_variable(),
            label_variable("job", "Job", "label_values(dlbench_exporter_gpus, job)", multi=False),
            label_variable(
                "hostname", "Host", 'label_values(dlbench_exporter_gpus{job=~"$job"}, hostname)', multi=False
            ),
            label_variable("gpu", "GPU", 'label_values(dlbench_gpu_up{job=~"$job", hostname=~"$hostname"}, gpu)'),
        ],
        annotations=[
            annotation("XID events", XID_ANNOTATION, "red"),
            annotation("Exporter restarts", RESTART_ANNOTATION, "blue"),
        ],
    )

    layout.row("Host at a glance")
    layout.add(
        stat_panel(
            "GPU model",
            [(f"count by (name) (dlbench_gpu_info{{{GPU}}})", "{{name}}")],
            unit="none",
            text_mode="value_and_name",
            description="GPU models on this host and how many of each.",
        ),
        stat_panel(
            "Driver",
            [
                (
                    f"count by (driver_version, cuda_driver_version) (dlbench_gpu_info{{{GPU}}})",
                    "{{driver_version}} (CUDA {{cuda_driver_version}})",
                )
            ],
            unit="none",
            text_mode="name",
            description="NVIDIA driver and the CUDA version it supports.",
        ),
        width=6,
        height=4,
    )
    layout.add(
        gpu_panels.up_count("GPUs up", description="GPUs answering NVML now."),
        stat_panel(
            "NVML",
            [(f"min(dlbench_exporter_nvml_up{{{HOST}}})", "")],
            unit="none",
            description="Whether the exporter could initialise NVML.",
            thresholds=[(None, "red"), (1, "green")],
        ),
        stat_panel(
            "Data age",
            [(f"max(time() - dlbench_exporter_last_sample_timestamp_seconds{{{HOST}}})", "")],
            unit="s",
            description="Age of the sample the exporter serves; old means its sampler is stuck.",
            thresholds=[(None, "green"), (60, "orange"), (120, "red")],
        ),
        stat_panel(
            "GPU energy in range",
            [(f"sum(increase(dlbench_gpu_energy_joules_total{{{GPU}}}[$__range]))", "")],
            unit="joule",
            description="Energy the selected GPUs used over the dashboard's time range.",
        ),
        width=3,
        height=4,
    )
    layout.add(
        *(
            gauge_panel(
                title,
                [gpu_query(metric, LEGEND)],
                unit=unit,
                max_value=full_scale,
                thresholds=thresholds,
                description=description,
            )
            for title, metric, unit, full_scale, thresholds, description in NOW_GAUGES
        ),
        width=8,
        height=5,
    )

    layout.row("Utilization and memory")
    layout.add(
        gpu_panels.utilization(LEGEND, description="Fraction of time a kernel ran."),
        gpu_panels.fraction(
            "Memory copy utilization",
            "dlbench_gpu_memory_copy_utilization_ratio",
            LEGEND,
            description="Fraction of time device memory was read or written.",
        ),
        gpu_panels.memory_used(
            LEGEND, title="Memory used", with_total=True, description="Device memory used, against the total."
        ),
        width=8,
        height=8,
    )

    layout.row("GPU efficiency")
    layout.add(
        time_series(
            "SM activity against utilization",
            against(
                "dlbench_gpu_sm_active_ratio", "dlbench_gpu_utilization_ratio", LEGEND, " utilization", " SM active"
            ),
            unit="percentunit",
            min_value=0,
            max_value=1,
            description="Utilization counts time any kernel ran; SM activity, the fraction of SMs busy. High "
            "utilization with low SM activity is a busy but inefficient GPU (kernels too small, launch-bound). "
            "Hopper and newer only (NVML GPM).",
        ),
        time_series(
            "Tensor cores and memory bandwidth",
            [
                gpu_query("dlbench_gpu_tensor_active_ratio", LEGEND, " tensor"),
                gpu_query("dlbench_gpu_dram_active_ratio", LEGEND, " DRAM"),
            ],
            unit="percentunit",
            min_value=0,
            max_value=1,
            description="Time the tensor cores worked, and memory bandwidth used against the maximum: training "
            "in bf16/fp16 should keep the tensor cores busy. Hopper and newer only.",
        ),
        gpu_panels.fraction(
            "SM occupancy",
            "dlbench_gpu_sm_occupancy_ratio",
            LEGEND,
            description="Warps resident against the maximum the SMs hold. Hopper and newer only.",
        ),
        width=8,
        height=8,
    )

    layout.row("Clocks and throttling")
    layout.add(
        *(_clock(title, clock, description) for title, clock, description in CLOCKS),
        time_series(
            "Performance state",
            [gpu_query("dlbench_gpu_performance_state", LEGEND)],
            unit="none",
            min_value=0,
            max_value=15,
            description="P-state: 0 is the fastest, 8 and above idle.",
        ),
        width=8,
        height=8,
    )
    layout.add(
        state_timeline(
            "Clocks slowed",
            [(f'dlbench_gpu_clocks_event_active{{{GPU}, reason=~"{TROUBLE_REASONS}"}}', "GPU {{gpu}} {{reason}}")],
            states=ACTIVE,
            description="Reasons that mean trouble, over time: thermal or hardware slowdown, the power brake.",
        ),
        state_timeline(
            "At power cap",
            [gpu_query("dlbench:gpu_power_capped:max", LEGEND)],
            states=POWER_CAP,
            description="The software power cap: where a GPU at full load sits by design, not a fault. Idle, "
            "application clocks, display clocks and sync boost are not shown.",
        ),
        width=12,
        height=10,
    )

    layout.row("Temperature, power and energy")
    layout.add(
        gpu_panels.temperature(LEGEND, title="Temperature", with_memory=True, description="Die and HBM temperature."),
        gpu_panels.power(LEGEND, title="Power", with_limit=True, description="Board power against the enforced limit."),
        time_series(
            "Energy rate",
            [_gpu_rate("dlbench_gpu_energy_joules_total")],
            unit="watt",
            min_value=0,
            description="Mean power from the energy counter: exact over the interval, unlike the 1 s "
            "trailing power reading.",
        ),
        width=8,
        height=8,
    )

    layout.row("PCIe and memory errors")
    layout.add(
        time_series(
            "PCIe link",
            [
                gpu_query("dlbench_gpu_pcie_link_generation", LEGEND, " gen"),
                gpu_query("dlbench_gpu_pcie_link_width", LEGEND, " lanes"),
            ],
            unit="none",
            min_value=0,
            description="Current link generation and width; both drop at idle to save power.",
        ),
        time_series(
            "PCIe replays",
            [_gpu_rate("dlbench_gpu_pcie_replay_errors_total")],
            unit="ops",
            min_value=0,
            description="Retransmitted PCIe packets per second: a steady rise points at a riser, cable or slot.",
        ),
        time_series(
            "ECC errors",
            [_gpu_rate("dlbench_gpu_ecc_errors_total", " {{type}}", function="increase")],
            unit="none",
            min_value=0,
            description="New ECC errors per interval; uncorrected ones raise an alert.",
        ),
        width=8,
        height=8,
    )
    layout.add(
        state_timeline(
            "Row remapping",
            [
                gpu_query("dlbench_gpu_row_remap_pending", LEGEND, " pending"),
                gpu_query("dlbench_gpu_row_remap_failure", LEGEND, " failed"),
            ],
            states=ACTIVE,
            description="A pending remap needs a GPU reset; a failed one means the GPU needs service.",
        ),
        gpu_panels.up_timeline(LEGEND),
        gpu_panels.xid_events(
            "gpu, uuid, xid",
            description="XID codes each GPU reported since its exporter started, application codes (13, 31, 43, 45) "
            "included: they never alert but show here. 48, 62, 64, 74, 79, 95, 119, 120, 140, 149 and 154 page.",
        ),
        table_panel(
            "Remapped rows",
            [(f'dlbench_gpu_remapped_rows{{{GPU}, type="{kind}"}}', kind) for kind in ("correctable", "uncorrectable")],
            description="Memory rows replaced by spares, over the GPU's life.",
            hide=("Time", "__name__", "job", "instance", "type"),
        ),
        width=12,
        height=8,
    )

    layout.row("Interconnect")
    layout.add(
        time_series(
            "PCIe traffic",
            [
                _gpu_rate("dlbench_gpu_pcie_transmitted_bytes_total", " sent"),
                _gpu_rate("dlbench_gpu_pcie_received_bytes_total", " received"),
            ],
            unit="Bps",
            min_value=0,
            description="Bytes per second over PCIe, from the GPU's byte counters.",
        ),
        time_series(
            "PCIe link against its maximum",
            against("dlbench_gpu_pcie_link_width", "dlbench_gpu_pcie_link_max_width", LEGEND, " max lanes", " lanes")
            + against(
                "dlbench_gpu_pcie_link_generation", "dlbench_gpu_pcie_link_max_generation", LEGEND, " max gen", " gen"
            ),
            unit="none",
            min_value=0,
            description="Width and generation against the best the GPU and slot allow. Fewer lanes is a degraded "
            "link; a lower generation only matters under load (idle GPUs lower it to save power).",
        ),
        time_series(
            "NVLink traffic",
            [
                (f"rate(dlbench_gpu_nvlink_transmitted_bytes_total{{{GPU}}}[{RATE}])", LEGEND + " sent"),
                (f"rate(dlbench_gpu_nvlink_received_bytes_total{{{GPU}}}[{RATE}])", LEGEND + " received"),
            ],
            unit="Bps",
            min_value=0,
            description="Data bytes per second over all NVLink links of each GPU.",
        ),
        width=8,
        height=8,
    )
    layout.add(
        time_series(
            "NVLink links active",
            against("dlbench_gpu_nvlink_links_active", "dlbench_gpu_nvlink_links", LEGEND, " links", " active"),
            unit="none",
            min_value=0,
            description="Links in the active state per GPU against the links it has (18 on an H100 SXM); a drop is "
            "a link down.",
        ),
        time_series(
            "NVLink errors",
            [
                (f"increase(dlbench_gpu_nvlink_{kind}_errors_total{{{GPU}}}[{RATE}])", f"{LEGEND} {kind}")
                for kind in ("replay", "recovery", "crc")
            ],
            unit="none",
            min_value=0,
            description="New data-link replays, recoveries and CRC errors per interval, over all links of each GPU.",
        ),
        width=12,
        height=8,
    )

    layout.row("Host")
    layout.add(
        time_series(
            "CPU",
            [_host("dlbench_host_cpu_utilization_ratio", "busy")],
            unit="percentunit",
            min_value=0,
            max_value=1,
            description="CPU busy fraction over all cores.",
        ),
        time_series(
            "Load average",
            [_host("dlbench_host_load_average", "{{period}}")],
            unit="none",
            min_value=0,
            description="1, 5 and 15 minute load averages.",
        ),
        time_series(
            "Host memory",
            [_host(f"dlbench_host_memory_{state}_bytes", state) for state in ("used", "available", "total")],
            unit="bytes",
            min_value=0,
            description="Host memory in use and available to new work.",
        ),
        _host_bytes_per_second(
            "Disk I/O",
            [("dlbench_host_disk_read_bytes_total", "read"), ("dlbench_host_disk_written_bytes_total", "written")],
            "Bytes per second read from and written to all disks.",
        ),
        _host_bytes_per_second(
            "Network",
            [
                ("dlbench_host_network_received_bytes_total", "received"),
                ("dlbench_host_network_transmitted_bytes_total", "sent"),
            ],
            "Bytes per second on all interfaces but loopback.",
        ),
        time_series(
            "Exporter sample duration",
            [_host("dlbench_exporter_collect_duration_seconds", "sample duration")],
            unit="s",
            min_value=0,
            description="How long one sample of all GPUs and the host takes (a GPU that hangs adds its deadline).",
        ),
        time_series(
            "Failing NVML calls",
            [(f"sum by (call) (rate(dlbench_exporter_nvml_errors_total{{{HOST}}}[{RATE}]))", "{{call}}")],
            unit="short",
            min_value=0,
            no_value="none",
            description="Failed NVML calls per second, by function; each leaves that one series out of a sample.",
        ),
        width=8,
        height=8,
    )
    return board

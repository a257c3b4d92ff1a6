"""GPU node detail: one host, every metric the exporter has for its GPUs and for the host itself."""

from __future__ import annotations

from .panels import (
    datasource_variable,
    gauge_panel,
    label_variable,
    new_dashboard,
    stat_panel,
    state_timeline,
    table_panel,
    time_series,
)
from .selectors import ACTIVE, BENIGN_REASONS, GPU, GPU_ONLY_LEGEND, HOST, UP_DOWN

UID = "dlbench-gpu-node"
RATE = "$__rate_interval"


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
    )
    legend = GPU_ONLY_LEGEND

    layout.row("Host at a glance")
    layout.add(
        stat_panel(
            "GPU model",
            [(f"count by (name) (dlbench_gpu_info{{{GPU}}})", "{{name}}")],
            unit="none",
            text_mode="value_and_name",
            description="GPU models on this host and how many of each.",
        ),
        6,
        4,
    )
    layout.add(
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
        6,
        4,
    )
    layout.add(
        stat_panel(
            "GPUs up", [(f"sum(dlbench_gpu_up{{{GPU}}})", "")], unit="none", description="GPUs answering NVML now."
        ),
        3,
        4,
    )
    layout.add(
        stat_panel(
            "NVML",
            [(f"min(dlbench_exporter_nvml_up{{{HOST}}})", "")],
            unit="none",
            description="Whether the exporter could initialise NVML.",
            thresholds=[(None, "red"), (1, "green")],
        ),
        3,
        4,
    )
    layout.add(
        stat_panel(
            "Data age",
            [(f"max(time() - dlbench_exporter_last_success_timestamp_seconds{{{HOST}}})", "")],
            unit="s",
            description="Seconds since the exporter last sampled every GPU successfully.",
            thresholds=[(None, "green"), (60, "orange"), (120, "red")],
        ),
        3,
        4,
    )
    layout.add(
        stat_panel(
            "GPU energy in range",
            [(f"sum(increase(dlbench_gpu_energy_joules_total{{{GPU}}}[$__range]))", "")],
            unit="joule",
            description="Energy the selected GPUs used over the dashboard's time range.",
        ),
        3,
        4,
    )

    layout.add(
        gauge_panel(
            "Utilization now",
            [(f"dlbench_gpu_utilization_ratio{{{GPU}}}", legend)],
            unit="percentunit",
            max_value=1,
            thresholds=[(None, "blue"), (0.8, "green")],
            description="Current utilization of each GPU.",
        ),
        8,
        5,
    )
    layout.add(
        gauge_panel(
            "Memory used now",
            [(f"dlbench:gpu_memory_used:ratio{{{GPU}}}", legend)],
            unit="percentunit",
            max_value=1,
            thresholds=[(None, "green"), (0.9, "orange"), (0.97, "red")],
            description="Device memory used over total, per GPU.",
        ),
        8,
        5,
    )
    layout.add(
        gauge_panel(
            "Temperature now",
            [(f"dlbench_gpu_temperature_celsius{{{GPU}}}", legend)],
            unit="celsius",
            max_value=100,
            thresholds=[(None, "green"), (75, "orange"), (85, "red")],
            description="Die temperature of each GPU; the alert threshold is 85 °C.",
        ),
        8,
        5,
    )

    layout.row("Utilization and memory")
    layout.add(
        time_series(
            "GPU utilization",
            [(f"dlbench_gpu_utilization_ratio{{{GPU}}}", legend)],
            unit="percentunit",
            min_value=0,
            max_value=1,
            description="Fraction of time a kernel ran.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "Memory copy utilization",
            [(f"dlbench_gpu_memory_copy_utilization_ratio{{{GPU}}}", legend)],
            unit="percentunit",
            min_value=0,
            max_value=1,
            description="Fraction of time device memory was read or written.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "Memory used",
            [
                (f"dlbench_gpu_memory_used_bytes{{{GPU}}}", legend + " used"),
                (f"dlbench_gpu_memory_total_bytes{{{GPU}}}", legend + " total"),
            ],
            unit="bytes",
            min_value=0,
            description="Device memory used, against the total.",
        ),
        8,
        8,
    )

    layout.row("Clocks and throttling")
    layout.add(
        time_series(
            "SM clock",
            [
                (f"dlbench_gpu_sm_clock_hertz{{{GPU}}}", legend),
                (f"dlbench_gpu_sm_clock_max_hertz{{{GPU}}}", legend + " max"),
            ],
            unit="hertz",
            min_value=0,
            description="Current SM clock against the highest the GPU can run.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "Memory clock",
            [
                (f"dlbench_gpu_memory_clock_hertz{{{GPU}}}", legend),
                (f"dlbench_gpu_memory_clock_max_hertz{{{GPU}}}", legend + " max"),
            ],
            unit="hertz",
            min_value=0,
            description="Current memory clock against its maximum.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "Performance state",
            [(f"dlbench_gpu_performance_state{{{GPU}}}", legend)],
            unit="none",
            min_value=0,
            max_value=15,
            description="P-state: 0 is the fastest, 8 and above idle.",
        ),
        8,
        8,
    )
    layout.add(
        state_timeline(
            "Clock-event reasons",
            [(f'dlbench_gpu_clocks_event_active{{{GPU}, reason!~"{BENIGN_REASONS}"}}', "GPU {{gpu}} {{reason}}")],
            states=ACTIVE,
            description="What holds each GPU's clocks down, over time: power cap, thermal or hardware slowdown, power brake, "
            "sync boost. Idle, application and display clocks are left out.",
        ),
        24,
        10,
    )

    layout.row("Temperature, power and energy")
    layout.add(
        time_series(
            "Temperature",
            [
                (f"dlbench_gpu_temperature_celsius{{{GPU}}}", legend),
                (f"dlbench_gpu_memory_temperature_celsius{{{GPU}}}", legend + " memory"),
            ],
            unit="celsius",
            thresholds=[(None, "green"), (85, "red")],
            description="Die and HBM temperature.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "Power",
            [
                (f"dlbench_gpu_power_watts{{{GPU}}}", legend),
                (f"dlbench_gpu_power_limit_watts{{{GPU}}}", legend + " limit"),
            ],
            unit="watt",
            min_value=0,
            description="Board power against the enforced limit.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "Energy rate",
            [(f"rate(dlbench_gpu_energy_joules_total{{{GPU}}}[{RATE}])", legend)],
            unit="watt",
            min_value=0,
            description="Mean power from the energy counter: exact over the interval, unlike the 1 s "
            "trailing power reading.",
        ),
        8,
        8,
    )

    layout.row("PCIe and memory errors")
    layout.add(
        time_series(
            "PCIe link",
            [
                (f"dlbench_gpu_pcie_link_generation{{{GPU}}}", legend + " gen"),
                (f"dlbench_gpu_pcie_link_width{{{GPU}}}", legend + " lanes"),
            ],
            unit="none",
            min_value=0,
            description="Current link generation and width; both drop at idle to save power.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "PCIe replays",
            [(f"rate(dlbench_gpu_pcie_replay_errors_total{{{GPU}}}[{RATE}])", legend)],
            unit="ops",
            min_value=0,
            description="Retransmitted PCIe packets per second: a steady rise " "points at a riser, cable or slot.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "ECC errors",
            [(f"increase(dlbench_gpu_ecc_errors_total{{{GPU}}}[{RATE}])", legend + " {{type}}")],
            unit="none",
            min_value=0,
            description="New ECC errors per interval; uncorrected ones raise an alert.",
        ),
        8,
        8,
    )
    layout.add(
        state_timeline(
            "Row remapping",
            [
                (f"dlbench_gpu_row_remap_pending{{{GPU}}}", legend + " pending"),
                (f"dlbench_gpu_row_remap_failure{{{GPU}}}", legend + " failed"),
            ],
            states=ACTIVE,
            description="A pending remap needs a GPU reset; a failed one means the GPU needs service.",
        ),
        12,
        8,
    )
    layout.add(
        state_timeline(
            "GPU up",
            [(f"dlbench_gpu_up{{{GPU}}}", legend)],
            states=UP_DOWN,
            description="Whether each GPU answers NVML.",
        ),
        12,
        8,
    )
    layout.add(
        table_panel(
            "XID events since exporter start",
            [
                (f"sum by (gpu, uuid, xid) (dlbench_gpu_xid_errors_total{{{GPU}}})", "events"),
                (f"max by (gpu, uuid, xid) (dlbench_gpu_last_xid_timestamp_seconds{{{GPU}}}) * 1000", "last seen"),
            ],
            description="XID codes each GPU reported; 48, 62, 64, 74, 79, 95, 119 and 120 are critical.",
            units={"last seen": "dateTimeAsIso"},
        ),
        12,
        8,
    )
    layout.add(
        table_panel(
            "Remapped rows",
            [
                (f'dlbench_gpu_remapped_rows{{{GPU}, type="correctable"}}', "correctable"),
                (f'dlbench_gpu_remapped_rows{{{GPU}, type="uncorrectable"}}', "uncorrectable"),
            ],
            description="Memory rows replaced by spares, over the GPU's life.",
            hide=("Time", "__name__", "job", "instance", "type"),
        ),
        12,
        8,
    )

    layout.row("Host")
    layout.add(
        time_series(
            "CPU",
            [(f"dlbench_host_cpu_utilization_ratio{{{HOST}}}", "busy")],
            unit="percentunit",
            min_value=0,
            max_value=1,
            description="CPU busy fraction over all cores.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "Load average",
            [(f"dlbench_host_load_average{{{HOST}}}", "{{period}}")],
            unit="none",
            min_value=0,
            description="1, 5 and 15 minute load averages.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "Host memory",
            [
                (f"dlbench_host_memory_used_bytes{{{HOST}}}", "used"),
                (f"dlbench_host_memory_available_bytes{{{HOST}}}", "available"),
                (f"dlbench_host_memory_total_bytes{{{HOST}}}", "total"),
            ],
            unit="bytes",
            min_value=0,
            description="Host memory in use and available to new work.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "Disk I/O",
            [
                (f"rate(dlbench_host_disk_read_bytes_total{{{HOST}}}[{RATE}])", "read"),
                (f"rate(dlbench_host_disk_written_bytes_total{{{HOST}}}[{RATE}])", "written"),
            ],
            unit="Bps",
            min_value=0,
            description="Bytes per second read from and written to all disks.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "Network",
            [
                (f"rate(dlbench_host_network_received_bytes_total{{{HOST}}}[{RATE}])", "received"),
                (f"rate(dlbench_host_network_transmitted_bytes_total{{{HOST}}}[{RATE}])", "sent"),
            ],
            unit="Bps",
            min_value=0,
            description="Bytes per second on all interfaces but loopback.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "Exporter",
            [
                (f"dlbench_exporter_collect_duration_seconds{{{HOST}}}", "sample duration"),
                (f"sum(rate(dlbench_exporter_nvml_errors_total{{{HOST}}}[{RATE}])) or vector(0)", "NVML errors/s"),
            ],
            unit="s",
            min_value=0,
            description="How long one sample of all GPUs takes, and failing NVML calls.",
        ),
        8,
        8,
    )
    return board

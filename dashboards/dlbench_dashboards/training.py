"""Training run: a live `dlbench run --metrics-port` beside the GPU metrics of the host it runs on."""

from __future__ import annotations

from .panels import (
    datasource_variable,
    label_variable,
    new_dashboard,
    stat_panel,
    table_panel,
    time_series,
    state_timeline,
)
from .selectors import ACTIVE, GPU, GPU_ONLY_LEGEND, TRAIN

UID = "dlbench-training-run"
RATE = "$__rate_interval"
RUN_LEGEND = "{{run_id}} {{workload}}"
STAT_LEGEND = "{{workload}}"


def _step_quantile(q: float) -> tuple[str, str]:
    return (
        f"histogram_quantile({q}, sum by (le, run_id, workload) "
        f"(rate(dlbench_train_step_seconds_bucket{{{TRAIN}}}[{RATE}])))",
        f"p{round(q * 100)} {RUN_LEGEND}",
    )


def build():
    board, layout = new_dashboard(
        "Training run",
        UID,
        "Throughput, step-time quantiles, MFU and loss of a live dlbench run, with the GPUs of the same host beside them.",
        [
            datasource_variable(),
            label_variable("run_id", "Run", "label_values(dlbench_train_info, run_id)"),
            label_variable("workload", "Workload", 'label_values(dlbench_train_info{run_id=~"$run_id"}, workload)'),
            label_variable(
                "hostname",
                "Host",
                'label_values(dlbench_train_info{run_id=~"$run_id", workload=~"$workload"}, hostname)',
            ),
            label_variable("job", "GPU job", 'label_values(dlbench_gpu_up{hostname=~"$hostname"}, job)', multi=False),
            label_variable("gpu", "GPU", 'label_values(dlbench_gpu_up{job=~"$job", hostname=~"$hostname"}, gpu)'),
        ],
    )

    layout.row("Run")
    layout.add(
        table_panel(
            "Run",
            [(f"dlbench_train_info{{{TRAIN}}}", "")],
            description="Identity of the selected runs: device, precision and batch size.",
            hide=("Time", "__name__", "job", "instance", "Value"),
        ),
        8,
        4,
    )
    layout.add(
        stat_panel(
            "Throughput",
            [(f"dlbench_train_samples_per_second{{{TRAIN}}}", STAT_LEGEND)],
            unit="none",
            graph=True,
            description="Samples per second over the last 20 steps.",
        ),
        4,
        4,
    )
    layout.add(
        stat_panel(
            "MFU",
            [(f"dlbench_train_mfu_ratio{{{TRAIN}}}", STAT_LEGEND)],
            unit="percentunit",
            graph=True,
            no_value="n/a (CPU or unknown GPU peak)",
            description="Model FLOPs utilisation: achieved FLOP/s over the GPU's dense peak. Not defined on CPU.",
        ),
        4,
        4,
    )
    layout.add(
        stat_panel(
            "Steps",
            [(f"dlbench_train_steps_total{{{TRAIN}}}", STAT_LEGEND)],
            unit="none",
            description="Timed training steps done.",
        ),
        4,
        4,
    )
    layout.add(
        stat_panel(
            "Loss",
            [(f"dlbench_train_loss{{{TRAIN}}}", STAT_LEGEND)],
            unit="none",
            graph=True,
            description="Latest training loss.",
        ),
        4,
        4,
    )

    layout.add(
        time_series(
            "Throughput",
            [(f"dlbench_train_samples_per_second{{{TRAIN}}}", RUN_LEGEND)],
            unit="none",
            min_value=0,
            description="Samples per second over the last 20 steps; the alert "
            "DlbenchTrainingThroughputDropped compares it with the run's own previous hour.",
        ),
        12,
        8,
    )
    layout.add(
        time_series(
            "Step time",
            [_step_quantile(0.5), _step_quantile(0.9), _step_quantile(0.99)],
            unit="s",
            min_value=0,
            description="Step-time quantiles from the run's histogram.",
        ),
        12,
        8,
    )
    layout.add(
        time_series(
            "MFU",
            [(f"dlbench_train_mfu_ratio{{{TRAIN}}}", RUN_LEGEND)],
            unit="percentunit",
            min_value=0,
            max_value=1,
            no_value="n/a (CPU or unknown GPU peak)",
            description="Model FLOPs utilisation. Not defined on CPU.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "Loss",
            [(f"dlbench_train_loss{{{TRAIN}}}", RUN_LEGEND)],
            unit="none",
            description="Training loss, read at most once per second.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "Steps per second",
            [(f"rate(dlbench_train_steps_total{{{TRAIN}}}[{RATE}])", RUN_LEGEND)],
            unit="none",
            min_value=0,
            description="Timed steps per second.",
        ),
        8,
        8,
    )

    layout.row("GPUs of the run's host")
    layout.add(
        time_series(
            "GPU utilization",
            [(f"dlbench_gpu_utilization_ratio{{{GPU}}}", GPU_ONLY_LEGEND)],
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
            "GPU memory used",
            [(f"dlbench_gpu_memory_used_bytes{{{GPU}}}", GPU_ONLY_LEGEND)],
            unit="bytes",
            min_value=0,
            description="Device memory in use.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "GPU power",
            [(f"dlbench_gpu_power_watts{{{GPU}}}", GPU_ONLY_LEGEND)],
            unit="watt",
            min_value=0,
            description="Board power draw.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "GPU temperature",
            [(f"dlbench_gpu_temperature_celsius{{{GPU}}}", GPU_ONLY_LEGEND)],
            unit="celsius",
            thresholds=[(None, "green"), (85, "red")],
            description="Die temperature.",
        ),
        8,
        8,
    )
    layout.add(
        time_series(
            "SM clock against max",
            [(f"dlbench:gpu_sm_clock_max:ratio{{{GPU}}}", GPU_ONLY_LEGEND)],
            unit="percentunit",
            min_value=0,
            max_value=1,
            description="Current SM clock over its maximum (recording rule).",
        ),
        8,
        8,
    )
    layout.add(
        state_timeline(
            "Clocks limited",
            [(f"dlbench:gpu_clocks_limited:max{{{GPU}}}", GPU_ONLY_LEGEND)],
            states=ACTIVE,
            description="Power cap, thermal or hardware slowdown holding clocks down.",
        ),
        8,
        8,
    )
    return board

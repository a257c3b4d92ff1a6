"""Training run: a live `dlbench run --metrics-port` beside the GPU metrics of the host it runs on."""

from __future__ import annotations

from . import gpu_panels
from .panels import datasource_variable, label_variable, new_dashboard, stat_panel, table_panel, time_series
from .selectors import GPU_ONLY_LEGEND, TRAIN

UID = "dlbench-training-run"
RATE = "$__rate_interval"
# one series per rank of a data-parallel job: the legends name it, so that a slow rank stands out
RUN_LEGEND = "{{run_id}} {{workload}} rank {{rank}}"
STAT_LEGEND = "{{workload}} rank {{rank}}"
JOB_LEGEND = "{{workload}} (selected ranks)"
LEGEND = GPU_ONLY_LEGEND  # one host's GPUs
MFU_UNDEFINED = "n/a (CPU or unknown GPU peak)"


def _train(metric: str, legend: str) -> tuple[str, str]:
    return f"{metric}{{{TRAIN}}}", legend


def _job(aggregation: str, metric: str) -> tuple[str, str]:
    """The selected ranks of each run together: with Rank on All, the whole job (`sum` for throughput, as rank 0's
    result adds its ranks up; `avg` for ratios such as MFU, the job's achieved FLOP/s over its GPUs' summed peaks
    when the GPUs are alike)."""
    return f"{aggregation} by (run_id, workload) ({metric}{{{TRAIN}}})", JOB_LEGEND


def _step_quantile(q: float) -> tuple[str, str]:
    return (
        f"histogram_quantile({q}, sum by (le, run_id, workload, rank) "
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
            label_variable(
                "rank",
                "Rank",
                "label_values(dlbench_train_info"
                '{run_id=~"$run_id", workload=~"$workload", hostname=~"$hostname"}, rank)',
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
            description="Identity of the selected runs, one row per rank: device, precision and batch size.",
            hide=("Time", "__name__", "job", "instance", "Value"),
        ),
        width=8,
        height=4,
    )
    layout.add(
        stat_panel(
            "Job throughput",
            [_job("sum", "dlbench_train_samples_per_second")],
            unit="none",
            graph=True,
            description="Samples per second of the selected ranks together, each over its last 20 steps: with Rank on "
            "All, the job's aggregate (the result's distributed.aggregate). The time series below shows each rank.",
        ),
        stat_panel(
            "MFU",
            [_job("avg", "dlbench_train_mfu_ratio")],
            unit="percentunit",
            graph=True,
            no_value=MFU_UNDEFINED,
            description="Model FLOPs utilisation, the mean of the selected ranks': achieved FLOP/s over the GPU's dense "
            "peak. Not defined on CPU.",
        ),
        stat_panel(
            "Steps",
            [_train("dlbench_train_steps_total", STAT_LEGEND)],
            unit="none",
            description="Timed training steps done.",
        ),
        stat_panel(
            "Loss",
            [_train("dlbench_train_loss", STAT_LEGEND)],
            unit="none",
            graph=True,
            description="Latest training loss.",
        ),
        width=4,
        height=4,
    )

    layout.add(
        time_series(
            "Throughput",
            [_train("dlbench_train_samples_per_second", RUN_LEGEND)],
            unit="none",
            min_value=0,
            description="Samples per second over the last 20 steps; the alert "
            "DlbenchTrainingThroughputDropped compares it with the run's own previous hour.",
        ),
        time_series(
            "Step time",
            [_step_quantile(q) for q in (0.5, 0.9, 0.99)],
            unit="s",
            min_value=0,
            description="Step-time quantiles from the run's histogram.",
        ),
        width=12,
        height=8,
    )
    layout.add(
        time_series(
            "MFU",
            [_train("dlbench_train_mfu_ratio", RUN_LEGEND)],
            unit="percentunit",
            min_value=0,
            max_value=1,
            no_value=MFU_UNDEFINED,
            description="Model FLOPs utilisation. Not defined on CPU.",
        ),
        time_series(
            "Loss",
            [_train("dlbench_train_loss", RUN_LEGEND)],
            unit="none",
            description="Training loss, read at most once per second.",
        ),
        time_series(
            "Steps per second",
            [(f"rate(dlbench_train_steps_total{{{TRAIN}}}[{RATE}])", RUN_LEGEND)],
            unit="none",
            min_value=0,
            description="Timed steps per second.",
        ),
        width=8,
        height=8,
    )

    layout.row("GPUs of the run's host")
    layout.add(
        gpu_panels.utilization(LEGEND, description="Fraction of time a kernel ran."),
        gpu_panels.memory_used(LEGEND, description="Device memory in use."),
        gpu_panels.power(LEGEND, description="Board power draw."),
        gpu_panels.temperature(LEGEND, description="Die temperature."),
        gpu_panels.fraction(
            "SM clock against max",
            "dlbench:gpu_sm_clock_max:ratio",
            LEGEND,
            description="Current SM clock over its maximum (recording rule).",
        ),
        gpu_panels.clocks_limited(
            LEGEND,
            description="Thermal or hardware slowdown or the power brake holding clocks down; the power cap a "
            "GPU at full load sits on is not counted.",
        ),
        width=8,
        height=8,
    )
    return board

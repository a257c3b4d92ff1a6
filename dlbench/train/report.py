"""What a person sees during and after a run: a progress bar on stderr and a summary table."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dlbench.train.observers import RunInfo, RunObserver


class ProgressBar(RunObserver):
    """Timed steps as a bar (or elapsed time under --duration). rich refreshes from its own thread, so
    `on_step` only records a number."""

    def __init__(self, total_steps: int | None, duration: float | None, console: Console):
        self.total = total_steps if not duration else None
        self.duration = duration
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = None
        self.elapsed = 0.0

    def on_start(self, info: RunInfo) -> None:
        self.progress.start()
        self.task = self.progress.add_task(f"{info.workload} on {info.device}: warming up", total=self.total, detail="")

    def on_timed_start(self) -> None:
        self.progress.update(self.task, description="timed steps")

    def on_step(self, step, step_seconds, samples, loss) -> None:
        self.elapsed += step_seconds
        detail = f"step {step}" + (f"/{self.total}" if self.total else f", {self.elapsed:.0f}/{self.duration:.0f} s")
        self.progress.update(self.task, completed=step, detail=detail)

    def close(self) -> None:
        self.progress.stop()


def _fmt(value, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def _tokens(count: int | None) -> str:
    return f" = {count:,} tokens" if count else ""


def _distributed_rows(job: dict | None) -> list[tuple[str, str]]:
    """A torchrun job: its shape, the aggregate throughput, the slowest rank and the measured communication share.
    The throughput rows above stay rank 0's own, comparable with a single-GPU run."""
    if not job:
        return []
    rows = [
        (
            "ranks",
            f"{job['world_size']} = {job['nodes']} node(s) x {job['processes_per_node']} ({job['backend']}, "
            f"{job['strategy']}, global batch {job['global_batch_size']}{_tokens(job.get('global_batch_tokens'))})",
        )
    ]
    aggregate = job.get("aggregate") or {}
    if aggregate.get("samples_per_second") is not None:
        rows.append(("aggregate throughput (samples/s)", _fmt(aggregate["samples_per_second"], ",.1f")))
    if aggregate.get("tokens_per_second") is not None:
        rows.append(("aggregate throughput (tokens/s)", _fmt(aggregate["tokens_per_second"], ",.0f")))
    slowest = job.get("slowest_rank")
    if slowest:
        rows.append(
            (
                "slowest rank",
                f"{slowest['rank']} on {slowest['host']} ({_fmt(slowest['samples_per_second'], ',.1f')}/s)",
            )
        )
    communication = job.get("communication") or {}
    if communication.get("share") is not None:
        rows.append(("gradient sync share of a pass", f"{communication['share']:.1%} (DDP no_sync comparison)"))
    return rows


def _llm_mfu_rows(llm: dict | None) -> list[tuple[str, str]]:
    """The Llama workloads' MFU as torchtitan reports it, and against the host's measured MAMF (--mamf-from)."""
    if not llm:
        return []
    rows = []
    if llm.get("mfu") is not None:
        rows.append(("MFU (torchtitan, bf16 peak)", f"{llm['mfu']:.1%} of {llm['mfu_peak_tflops']:,.1f} TFLOP/s"))
    mamf = llm.get("mamf")
    if mamf:
        rows.append(
            (
                "MFU vs measured MAMF",
                f"{llm['mfu_vs_mamf']:.1%} of {mamf['tflops']:,.1f} TFLOP/s"
                if llm.get("mfu_vs_mamf") is not None
                else f"n/a ({mamf['reason'] or 'no tokens timed'})",
            )
        )
    return rows


def summary_table(result: dict) -> Table:
    workload, metrics, config = result["workload"], result["metrics"] or {}, result["config"]
    env = result.get("environment") or {}
    table = Table(title=f"dlbench run {workload['name']}: {result['status']}", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    throughput = metrics.get("throughput") or {}
    steps = metrics.get("step_time_seconds") or {}
    rows = [
        ("device", f"{config.get('device')} ({env.get('device_name', '?')})"),
        ("precision / batch", f"{config.get('precision')} / {config.get('batch_size')}"),
        ("timed steps", f"{metrics.get('steps_timed', 0)} in {_fmt(metrics.get('timed_seconds'), '.2f', ' s')}"),
    ]
    if throughput.get("tokens_per_second"):  # the headline of a language workload
        rows.append(("throughput (tokens/s)", _fmt(throughput["tokens_per_second"], ",.0f")))
    rows.append(
        (
            f"throughput ({'images' if workload.get('sample_unit') == 'images' else 'sequences'}/s)",
            _fmt(throughput.get("samples_per_second"), ",.1f"),
        )
    )
    rows += _distributed_rows(result.get("distributed"))
    if metrics.get("input_wait_share"):
        on_gpu = metrics.get("input_wait_measured_on") == "device"  # CUDA events: the GPU's idle time
        waiting = "GPU idle waiting for input" if on_gpu else "waiting for input"
        rows.append(
            (
                waiting,
                f"{metrics['input_wait_share']:.1%} of the window "
                f"(compute alone: {_fmt(throughput.get('compute_samples_per_second'), ',.1f')}/s)",
            )
        )
    warmup = result.get("warmup") or {}
    if warmup:
        state = {True: "settled", False: "NOT settled", None: "fixed"}[warmup.get("settled")]
        rows.append(("warm-up", f"{warmup['steps']} steps in {warmup['seconds']:.1f} s ({state})"))
    if steps:
        rows.append(
            (
                "step time mean / p50 / p90 / p99 (ms)",
                " / ".join(f"{steps[k] * 1000:.1f}" for k in ("mean", "p50", "p90", "p99")),
            )
        )
    achieved = metrics.get("achieved_flops_per_second")
    rows.append(("achieved TFLOP/s", _fmt(achieved / 1e12 if achieved else None, ".2f")))
    mfu = metrics.get("mfu")
    rows.append(
        (
            "MFU",
            f"{mfu:.1%}"
            if mfu is not None
            else ("n/a (CPU)" if str(config.get("device")).startswith("cpu") else "unknown (GPU not in peak table)"),
        )
    )
    rows += _llm_mfu_rows(result.get("llm"))
    if metrics.get("peak_device_memory_bytes") is not None:
        rows.append(("peak device memory", f"{metrics['peak_device_memory_bytes'] / 2**30:.2f} GiB"))
    elif metrics.get("peak_host_memory_bytes") is not None:
        rows.append(("peak host memory (RSS)", f"{metrics['peak_host_memory_bytes'] / 2**30:.2f} GiB"))
    gpu = (result.get("telemetry") or {}).get("gpu") or {}
    if gpu.get("utilization_mean_ratio") is not None:
        rows.append(
            ("GPU utilization mean / max", f"{gpu['utilization_mean_ratio']:.0%} / {gpu['utilization_max_ratio']:.0%}")
        )
    if gpu.get("power_mean_watts") is not None:
        rows.append(("mean power", f"{gpu['power_mean_watts']:.0f} W"))
    if gpu.get("energy_joules") is not None:
        rows.append(
            (
                "energy (per sample)",
                f"{gpu['energy_joules']:.0f} J ({_fmt(gpu.get('energy_per_sample_joules'), '.3f')} J)",
            )
        )
    if gpu.get("temperature_max_celsius") is not None:
        rows.append(("max temperature", f"{gpu['temperature_max_celsius']:.0f} °C"))
    loss = metrics.get("loss") or {}
    rows.append(("loss first -> last", f"{_fmt(loss.get('first'), '.4f')} -> {_fmt(loss.get('last'), '.4f')}"))
    if result.get("error"):
        rows.append(("note", result["error"]))
    for warning in result.get("warnings") or []:
        rows.append(("warning", warning))
    for sentence in (result.get("telemetry") or {}).get("explanations") or []:
        rows.append(("why it may be slow", sentence))
    for name, value in rows:
        table.add_row(name, value)
    return table

"""Training: reference workloads through `dlbench run`'s runner, against the throughput expected of the GPU model.

resnet50 (bf16, synthetic ImageNet-shaped data, channels-first as the published figures) and gpt2 (bf16) on the
first GPU. The expected figures (validate_baselines.json, "training") are published measurements of similar but not
identical setups (Lambda's deeplearning-benchmark used fp16 AMP and its own batch sizes), so falling short is a WARN,
never a FAIL: the micro-benchmarks carry the hard verdicts. gpt2 has no published per-GPU figure; its MFU is reported.

Each check reports the run's headline figure in the run's own unit (images/s for resnet50, tokens/s for gpt2), and
times as `dlbench run` does by default: warm-up until step time settles, then a window of seconds (30 s on a GPU at
--level quick), not a fixed handful of steps, which on an H100 would be half a second of a cold GPU.
"""

from __future__ import annotations

from dlbench.validate import baselines
from dlbench.validate.compute import device_name
from dlbench.validate.context import Context
from dlbench.validate.judge import against_reference
from dlbench.checks import FAIL, INFO, CheckResult, skip

WORKLOADS = ("resnet50", "gpt2")
# timed seconds on a GPU; None: `dlbench run`'s default window (dlbench/train/window.py, GPU_DEFAULT_SECONDS)
DURATION = {"quick": None, "long": 120.0}
# On a CPU a resnet50 step takes tens of seconds: the smoke workload goes through the same runner instead.
CPU_SMOKE = ("mnist-mlp", {"batch_size": 32})


def train(workload: str, device: str, duration: float | None = None, **sizes) -> dict:
    """One `dlbench run` of `workload` with the run's own warm-up and window rules (`duration` seconds, or its
    default window); the result document."""
    from dlbench.train.runner import Run, RunConfig

    run = Run(RunConfig(workload, device=device, precision="bf16", duration=duration, **sizes))
    try:
        return run.execute()
    finally:
        run.close()


def _measured(check_id: str, title: str, result: dict) -> tuple[CheckResult | None, float | None, str, dict]:
    """(a FAIL when the run did not complete, else None; the run's headline throughput; its unit; supporting data).

    The headline is what the run reports first: images/s for image workloads, tokens/s for language models (their
    samples are sequences, seq_len tokens each)."""
    metrics = result.get("metrics") or {}
    throughput = metrics.get("throughput") or {}
    headline = throughput.get("headline", "samples_per_second")
    value = throughput.get(headline)
    if result["status"] != "completed" or value is None:
        return CheckResult(check_id, title, FAIL, detail=result.get("error") or result["status"]), None, "", {}
    unit = "tokens/s" if headline == "tokens_per_second" else f"{result['workload']['sample_unit']}/s"
    data = {
        "mfu": metrics.get("mfu"),
        "batch_size": result["config"]["batch_size"],
        "run_id": result["run_id"],
        "samples_per_second": throughput.get("samples_per_second"),
        "timed_seconds": metrics.get("timed_seconds"),
        "steps_timed": metrics.get("steps_timed"),
        "step_time_seconds": metrics.get("step_time_seconds"),
    }
    return None, round(value, 2), unit, data


def run(ctx: Context) -> list[CheckResult]:
    torch = ctx.torch()
    if torch is None:
        return [skip(f"training.{w}", f"{w} training throughput", ctx.no_torch_reason()) for w in WORKLOADS]
    device = ctx.compute_devices()[0]
    if not ctx.on_gpu():
        workload, sizes = CPU_SMOKE
        check_id, title = "training.smoke", f"{workload} through the training runner on the CPU"
        with ctx.under_load(check_id):
            failed, throughput, unit, data = _measured(check_id, title, train(workload, "cpu", **sizes))
        smoke = failed or CheckResult(
            check_id, title, INFO, throughput, unit, data=data, detail="CPU path: no expectation applies"
        )
        return [smoke] + [
            skip(f"training.{w}", f"{w} training throughput", "GPU only: a step takes tens of seconds on a CPU")
            for w in WORKLOADS
        ]
    name = device_name(torch, device)
    results = []
    for workload in WORKLOADS:
        check_id, title = f"training.{workload}", f"{workload} bf16 training throughput on {device}"
        with ctx.under_load(check_id):
            failed, throughput, unit, data = _measured(
                check_id, title, train(workload, str(device), DURATION[ctx.options.level])
            )
        if failed:
            results.append(failed)
            continue
        reference = baselines.training_reference(name, workload)
        results.append(
            against_reference(
                check_id,
                title,
                throughput,
                unit,
                reference,
                reference.tolerance if reference else 0.15,
                can_fail=False,
                data=data,
                no_reference=f"no published {workload} figure for {name}; MFU {data['mfu'] or 0:.1%}",
            )
        )
    return results

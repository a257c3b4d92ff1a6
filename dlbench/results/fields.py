"""What a result says: its workload, the settings that decide its number, its environment, its headline metrics.

Reads `dlbench run`'s result (schema_version 1 and later) and results converted from pytest-benchmark. Fields a newer
dlbench adds (resolved settings beside requested ones, the GPU's UUID, the step-time samples) are used when present;
their absence never fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from dlbench.results.stats import Summary
from dlbench.train.results import SHORT_WINDOW_SECONDS

# Where a newer result may keep the settings a run resolved ("auto" -> "bf16"), before the flat `config`.
_RESOLVED_SECTIONS = (("resolved",), ("settings", "resolved"), ("config", "resolved"))
# The per-step times, in seconds, in the order they were measured; first name wins.
STEP_TIMES_KEYS = ("step_times_seconds", "step_times_s")


def _dig(document: Any, path: tuple) -> Any:
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def setting(result: dict, name: str) -> Any:
    """A setting as the run resolved it."""
    for section in _RESOLVED_SECTIONS:
        resolved = _dig(result, section)
        if isinstance(resolved, dict) and name in resolved:
            return resolved[name]
    return (result.get("config") or {}).get(name)


def workload_name(result: dict) -> str:
    return str((result.get("workload") or {}).get("name"))


def device_model(result: dict) -> str | None:
    env = result.get("environment") or {}
    gpu = (result.get("telemetry") or {}).get("gpu") or {}
    return env.get("device_name") or gpu.get("name")


def _world_size(result: dict) -> int:
    for path in (("config", "world_size"), ("distributed", "world_size"), ("environment", "world_size")):
        value = _dig(result, path)
        if value:
            return int(value)
    return 1


def _channels_last(result: dict) -> bool:
    # the runner applies channels-last to image workloads only; a language run that asked for it ran without it
    return bool(setting(result, "channels_last")) and _dig(result, ("workload", "seq_len")) is None


def _strategy(result: dict) -> str | None:
    """How the model was spread over the ranks: DDP replicates it, FSDP shards it (and gathers it in every pass), so
    the same workload does different work. None for a run outside torchrun."""
    strategy = _dig(result, ("distributed", "strategy"))
    if strategy:
        return str(strategy)
    if setting(result, "fsdp"):
        return "fsdp"
    return "ddp" if _world_size(result) > 1 else None


def _pad_vocab(result: dict) -> bool:
    # --pad-vocab grows GPT-2's output layer from 50257 to 50304 rows: a different matmul, and different FLOPs
    return bool(setting(result, "pad_vocab"))


def _data(result: dict) -> str:
    data = setting(result, "data")
    return "synthetic" if data in (None, "synthetic") else "dataset"  # paths differ between hosts; the kind matters


# The fields a number depends on: two results are comparable when these are equal. Name -> how to read it.
MATCH_FIELDS: dict[str, Callable[[dict], Any]] = {
    "workload": workload_name,
    "precision": lambda r: setting(r, "precision"),
    "batch_size": lambda r: setting(r, "batch_size"),
    "seq_len": lambda r: (
        _dig(r, ("workload", "seq_len")) if _dig(r, ("workload", "seq_len")) is not None else setting(r, "seq_len")
    ),
    "channels_last": _channels_last,
    "compile": lambda r: bool(setting(r, "compile")),
    "device_model": device_model,
    "world_size": _world_size,
    "strategy": _strategy,
    "pad_vocab": _pad_vocab,
    "optimizer": lambda r: setting(r, "optimizer"),
    "data": _data,
    "params": lambda r: setting(r, "params"),  # a pytest-benchmark parametrisation
}
IGNORABLE = tuple(name for name in MATCH_FIELDS if name != "workload")


def match_key(result: dict, ignore: tuple[str, ...] = ()) -> tuple:
    return tuple((name, _hashable(read(result))) for name, read in MATCH_FIELDS.items() if name not in ignore)


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def differing_fields(a: dict, b: dict, ignore: tuple[str, ...] = ()) -> dict[str, tuple]:
    """name -> (a's value, b's value) for each match field that differs."""
    out = {}
    for name, read in MATCH_FIELDS.items():
        if name not in ignore and _hashable(read(a)) != _hashable(read(b)):
            out[name] = (read(a), read(b))
    return out


def step_times(result: dict) -> list[float] | None:
    metrics = result.get("metrics") or {}
    for key in STEP_TIMES_KEYS:
        values = metrics.get(key)
        if isinstance(values, list) and values and all(isinstance(v, (int, float)) for v in values):
            return [float(v) for v in values]
    return None


def step_summary(result: dict) -> Summary | None:
    """The step-time distribution: from the samples when the result kept them, else from its summary."""
    samples = step_times(result)
    if samples:
        return Summary.of_samples(samples)
    metrics = result.get("metrics") or {}
    stats = metrics.get("step_time_seconds") or {}
    count = metrics.get("steps_timed")
    if not stats or not count or stats.get("mean") is None or stats.get("stdev") is None:
        return None  # without the deviation a test is impossible: two means alone never decide
    median = stats.get("p50") if stats.get("p50") is not None else stats["mean"]
    return Summary(
        count=int(count),
        mean=stats["mean"],
        median=median,
        stdev=stats["stdev"],
        q1=stats.get("q1"),
        q3=stats.get("q3"),
    )


def throughput(result: dict, per_step: bool = False) -> tuple[float, str] | None:
    """(rate, unit): samples over the timed seconds as the run recorded it (total over total), else (or with
    `per_step`) one over the mean step time (a pytest-benchmark entry's OPS: rounds per second)."""
    rate = _dig(result, ("metrics", "throughput", "samples_per_second"))
    if not per_step and isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate > 0:
        return float(rate), "samples/s"
    mean = _dig(result, ("metrics", "step_time_seconds", "mean"))
    if isinstance(mean, (int, float)) and not isinstance(mean, bool) and mean > 0:
        return 1.0 / mean, "steps/s"
    return None


def suspect_reasons(result: dict) -> list[str]:
    """Why this run's numbers cannot be trusted to compare, from what the run itself recorded: other processes
    busy on its CPU cores (its contention flag), a warm-up that never settled, a window too short to time."""
    reasons = []
    metrics = result.get("metrics") or {}
    load = metrics.get("cpu_contention") or {}
    if load.get("distorted"):
        reasons.append(
            f"other processes kept {load.get('other_processes_cores_mean', 0):.1f} of its "
            f"{load.get('cores_available', '?')} CPU cores busy ({load.get('other_processes_share', 0):.0%})"
        )
    if (result.get("warmup") or {}).get("settled") is False:
        reasons.append("its step time had not settled when warm-up ended")
    seconds = metrics.get("timed_seconds")
    if isinstance(seconds, (int, float)) and metrics.get("steps_timed") and seconds < SHORT_WINDOW_SECONDS:
        reasons.append(f"its timed window lasted {seconds:.3f} s")
    return reasons


# Environment facts shown beside a comparison: they explain a difference, they do not block one.
def environment_facts(result: dict) -> dict[str, Any]:
    env = result.get("environment") or {}
    torch_build = env.get("torch") or {}
    gpu = (result.get("telemetry") or {}).get("gpu") or {}
    gpus = env.get("gpus") or []
    return {
        "host": env.get("hostname"),
        "device": device_model(result),
        "gpu_uuid": gpu.get("uuid") or (gpus[0].get("uuid") if gpus and isinstance(gpus[0], dict) else None),
        "driver": env.get("driver_version"),
        "torch": torch_build.get("version"),
        "cuda": torch_build.get("cuda"),
        "cudnn": torch_build.get("cudnn"),
        "dlbench": result.get("dlbench_version") or env.get("dlbench_version"),
    }


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    read: Callable[[dict], float | None]
    higher_is_better: bool | None  # None: neither (power draw)
    scale: float = 1.0  # multiply the stored value by this for display


def _metric(*path: str) -> Callable[[dict], float | None]:
    def read(result: dict) -> float | None:
        value = _dig(result, path)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    return read


HEADLINE_METRICS = (
    Metric("step time p50", "ms", _metric("metrics", "step_time_seconds", "p50"), False, 1e3),
    Metric("step time p90", "ms", _metric("metrics", "step_time_seconds", "p90"), False, 1e3),
    Metric("throughput", "samples/s", _metric("metrics", "throughput", "samples_per_second"), True),
    Metric("throughput", "tokens/s", _metric("metrics", "throughput", "tokens_per_second"), True),
    Metric("achieved", "TFLOP/s", _metric("metrics", "achieved_flops_per_second"), True, 1e-12),
    Metric("bandwidth", "GB/s", _metric("metrics", "bytes_per_second"), True, 1e-9),
    Metric("MFU", "%", _metric("metrics", "mfu"), True, 1e2),
    Metric("peak device memory", "GiB", _metric("metrics", "peak_device_memory_bytes"), False, 2**-30),
    Metric("mean power", "W", _metric("telemetry", "gpu", "power_mean_watts"), None),
    Metric("energy per sample", "J", _metric("telemetry", "gpu", "energy_per_sample_joules"), False),
    Metric("GPU utilisation", "%", _metric("telemetry", "gpu", "utilization_mean_ratio"), True, 1e2),
)

"""Profiling activity through NVML GPM (GPU Performance Monitoring, Hopper and newer): how busy the SMs, tensor cores,
memory and FP pipes were, which utilisation alone does not tell (a GPU can be "100% utilised" by one small kernel).

Names and signatures are nvidia-ml-py's (pynvml.py 13.x): nvmlGpmQueryDeviceSupport(device).isSupportedDevice,
nvmlGpmSampleAlloc(), nvmlGpmSampleGet(device, sample), nvmlGpmMetricsGet(c_nvmlGpmMetricsGet_t) with
NVML_GPM_METRICS_GET_VERSION; every NVML_GPM_METRIC_* used here is a percentage 0.0-100.0 (pynvml.py comments).
A metric is the average between two samples: each read takes one sample and computes the metrics since the previous
read's, so the figures cover exactly the sampling interval and the first read of a GPU has none. GPUs before
Hopper answer isSupportedDevice = 0 (or NOT_SUPPORTED): their GPM families are absent.
"""

from __future__ import annotations

from typing import Any

from dlbench.telemetry.fields import once_per_start

# reading key -> NVML_GPM_METRIC_* name; "pipe_active.<pipe>" keys land in one labelled family
GPM_METRICS = {
    "graphics_engine_active_ratio": "NVML_GPM_METRIC_GRAPHICS_UTIL",
    "sm_active_ratio": "NVML_GPM_METRIC_SM_UTIL",
    "sm_occupancy_ratio": "NVML_GPM_METRIC_SM_OCCUPANCY",
    "tensor_active_ratio": "NVML_GPM_METRIC_ANY_TENSOR_UTIL",
    "dram_active_ratio": "NVML_GPM_METRIC_DRAM_BW_UTIL",
    "pipe_active.fp64": "NVML_GPM_METRIC_FP64_UTIL",
    "pipe_active.fp32": "NVML_GPM_METRIC_FP32_UTIL",
    "pipe_active.fp16": "NVML_GPM_METRIC_FP16_UTIL",
}


def read_gpm(reader: Any, index: int, r: dict) -> None:
    nvml = reader.nvml
    state = once_per_start(reader, index, "gpm", lambda: _start(reader, index))
    if not state:
        return
    previous, current = state["samples"]
    if reader._call(index, "nvmlGpmSampleGet", current) is None:
        return
    state["samples"] = (current, previous)  # this sample is the next read's first
    if not state["have_previous"]:
        state["have_previous"] = True
        return
    wanted = {key: getattr(nvml, name) for key, name in GPM_METRICS.items() if hasattr(nvml, name)}
    request = nvml.c_nvmlGpmMetricsGet_t()
    request.version = nvml.NVML_GPM_METRICS_GET_VERSION
    request.numMetrics = len(wanted)
    request.sample1, request.sample2 = previous, current
    for slot, metric_id in zip(request.metrics, wanted.values()):
        slot.metricId = metric_id
    try:
        result = nvml.nvmlGpmMetricsGet(request)
    except nvml.NVMLError:
        reader._count_error("nvmlGpmMetricsGet")
        return
    for key, slot in zip(wanted, result.metrics):
        if slot.nvmlReturn != nvml.NVML_SUCCESS:
            continue  # a metric this GPU does not offer (FP16 pipe on some parts): left out
        ratio = min(max(slot.value / 100.0, 0.0), 1.0)
        group, _, pipe = key.partition(".")
        if pipe:
            r.setdefault("gpm_" + group + "_ratio", {})[pipe] = ratio
        else:
            r["gpm_" + key] = ratio


def _start(reader: Any, index: int) -> dict:
    """Two sample buffers for a GPU that supports GPM; {} (no GPM, asked again after the next NVML start) otherwise."""
    support = reader._call(index, "nvmlGpmQueryDeviceSupport")
    if support is None or not support.isSupportedDevice:
        return {}
    try:
        samples = (reader.nvml.nvmlGpmSampleAlloc(), reader.nvml.nvmlGpmSampleAlloc())
    except reader.nvml.NVMLError:
        reader._count_error("nvmlGpmSampleAlloc")
        return {}
    return {"samples": samples, "have_previous": False}

"""Profiling activity through NVML GPM (GPU Performance Monitoring, Hopper and newer): how busy the SMs, tensor cores,
memory and FP pipes were, which utilisation alone does not tell (a GPU can be "100% utilised" by one small kernel).

Names and signatures are nvidia-ml-py's (pynvml.py 13.x): nvmlGpmQueryDeviceSupport(device).isSupportedDevice,
nvmlGpmSampleAlloc(), nvmlGpmSampleGet(device, sample), nvmlGpmMigSampleGet(device, gpuInstanceId, sample) (device is
the parent GPU, gpuInstanceId the MIG GPU instance; "Read a sample of GPM metrics ... for a MIG GPU Instance", NVML
API reference, GPM Functions), nvmlGpmSampleFree(sample), nvmlGpmMetricsGet(c_nvmlGpmMetricsGet_t) with
NVML_GPM_METRICS_GET_VERSION; every NVML_GPM_METRIC_* used here is a percentage 0.0-100.0 (pynvml.py comments).
A metric is the average between two samples: each read takes one sample and computes the metrics since the previous
read's, so the figures cover exactly the sampling interval and the first read of a GPU has none. GPUs before
Hopper answer isSupportedDevice = 0 (or NOT_SUPPORTED): their GPM families are absent, also per MIG instance (an
A100 in MIG mode has none).

Sample buffers are NVML allocations: each stream's two are freed with nvmlGpmSampleFree when NVML is shut down
(free_gpm_samples), so an exporter whose NVML restarts again and again does not leak two buffers per GPU per restart.
"""

from __future__ import annotations

from typing import Any, Callable

from dlbench.nvml.calls import GpuCalls

from dlbench.nvml.fields import once_per_start

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
# reader.static key part of a GPM stream: (index, "gpm") for a GPU, (index, "gpm", gi, profile) per MIG GPU instance
_STREAM = "gpm"


def read_gpm(reader: GpuCalls, index: int, r: dict) -> None:
    """The whole GPU's GPM metrics into reading `r`."""
    state = once_per_start(reader, index, _STREAM, lambda: _start(reader, index))
    _read_stream(reader, index, state, lambda sample: reader.call(index, "nvmlGpmSampleGet", sample), r)


def read_mig_gpm(reader: GpuCalls, index: int, gpu_instance_id: int, profile: str, instance: dict) -> None:
    """One MIG GPU instance's GPM metrics into its reading, sampled through its parent GPU's handle.

    The stream is the instance's id and profile: an id that comes back with another profile (instances destroyed and
    created again) is a new instance, whose first sample must not be averaged against the old one's last.
    """
    key = (index, _STREAM, gpu_instance_id, profile)
    if key not in reader.static:
        reader.static[key] = _start(reader, index)
    _read_stream(
        reader,
        index,
        reader.static[key],
        lambda sample: reader.call(index, "nvmlGpmMigSampleGet", gpu_instance_id, sample),
        instance,
    )


def free_gone_mig_gpm(reader: GpuCalls, index: int, present: set[tuple[int, str]]) -> None:
    """Free the streams of GPU `index`'s MIG GPU instances that are no longer there: (id, profile) not in `present`.

    MIG instances are destroyed and created while NVML stays up; without this each one gone keeps its two buffers
    until the exporter or NVML restarts. Runs in the GPU's own read, so no call of that GPU is using them.
    """
    for key in [
        key
        for key in list(reader.static)
        if isinstance(key, tuple) and len(key) == 4 and key[:2] == (index, _STREAM) and key[2:] not in present
    ]:
        _free(reader.nvml, reader.static.pop(key, None))


def free_gpm_samples(reader: GpuCalls, busy: set[int]) -> None:
    """nvmlGpmSampleFree every stream's buffers, before NVML shuts down; forget the streams either way.

    `busy`: GPUs whose read is still in progress (a hung call). Their buffers may be written to at any moment, so
    they are left allocated rather than freed under the call: one stream's two buffers per hung GPU, not per restart.
    """
    # list() first: a hung GPU's thread may still add entries of its own
    for key in [key for key in list(reader.static) if isinstance(key, tuple) and key[1:2] == (_STREAM,)]:
        state = reader.static.pop(key, None)
        if key[0] not in busy:
            _free(reader.nvml, state)


def _free(nvml: Any, state: dict | None) -> None:
    """nvmlGpmSampleFree a stream's two buffers (a stream never started has none)."""
    for sample in (state or {}).get("samples", ()):
        try:
            nvml.nvmlGpmSampleFree(sample)
        except nvml.NVMLError:
            pass  # NVML already failing (that is why it restarts): nothing more can be done for the buffer


def _read_stream(reader: GpuCalls, index: int, state: dict, take: Callable[[Any], Any], r: dict) -> None:
    """Take one sample into the stream and, from its second sample on, put the metrics since the last into `r`."""
    nvml = reader.nvml
    if not state:
        return
    previous, current = state["samples"]
    if take(current) is None:
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
        reader.count_error("nvmlGpmMetricsGet")
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


def _start(reader: GpuCalls, index: int) -> dict:
    """Two sample buffers for a GPU that supports GPM; {} (no GPM, asked again after the next NVML start) otherwise."""
    support = reader.call(index, "nvmlGpmQueryDeviceSupport")
    if support is None or not support.isSupportedDevice:
        return {}
    nvml, samples = reader.nvml, []
    try:
        while len(samples) < 2:
            samples.append(nvml.nvmlGpmSampleAlloc())
    except nvml.NVMLError:
        reader.count_error("nvmlGpmSampleAlloc")
        for sample in samples:  # the first of the two, when the second could not be had
            nvml.nvmlGpmSampleFree(sample)
        return {}
    return {"samples": tuple(samples), "have_previous": False}

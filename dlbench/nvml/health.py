"""GPU health beyond XID: the recovery action the driver asks for, ECC, retired pages, throttle durations, fan,
video engines and power-limit bounds. Adds keys to one GPU's reading (see NvmlReader._read_into).

Names and signatures are nvidia-ml-py's (pynvml.py, 13.x): nvmlDeviceGetFieldValues, nvmlDeviceGetTotalEccErrors,
nvmlDeviceGetFanSpeed, nvmlDeviceGetEncoderUtilization / nvmlDeviceGetDecoderUtilization ([percent, sampling period
in us]), nvmlDeviceGetPowerManagementDefaultLimit and nvmlDeviceGetPowerManagementLimitConstraints ([min, max], mW).
"""

from __future__ import annotations


from dlbench.nvml.calls import GpuCalls

from dlbench.nvml.fields import field_ids, once_per_start, read_fields

# NVML_FI_DEV_GET_GPU_RECOVERY_ACTION replaces the deprecated NVML_FI_DEV_RESET_STATUS and
# NVML_FI_DEV_DRAIN_AND_RESET_STATUS (pynvml.py comments); values are nvmlDeviceGpuRecoveryAction_t:
# 0 none, 1 GPU reset, 2 node reboot, 3 drain P2P, 4 drain and reset (NVML_GPU_RECOVERY_ACTION_* in pynvml.py).
# Pages are retired on GPUs before Ampere; from Ampere on, row remapping replaces it and these fields answer
# NOT_SUPPORTED (NVIDIA "GPU Memory Error Management", dynamic page retirement vs row remapping).
HEALTH_FIELDS = {
    "recovery_action": "NVML_FI_DEV_GET_GPU_RECOVERY_ACTION",
    "retired_single_bit_ecc": "NVML_FI_DEV_RETIRED_SBE",
    "retired_double_bit_ecc": "NVML_FI_DEV_RETIRED_DBE",
    "retired_pending": "NVML_FI_DEV_RETIRED_PENDING",
}
# Time spent in each clock-event reason since the driver loaded, in nanoseconds (nvidia-smi's "Clocks Event
# Reasons Counters"); label values match dlbench_gpu_clocks_event_active's reasons. SW power cap and sync boost are
# NVML_FI_DEV_PERF_POLICY_POWER / _SYNC_BOOST, numbered alike in every header (CLOCKS_EVENT_REASON_* names alias them).
CLOCKS_EVENT_DURATION_FIELDS = {
    "sw_power_cap": "NVML_FI_DEV_PERF_POLICY_POWER",
    "sync_boost": "NVML_FI_DEV_PERF_POLICY_SYNC_BOOST",
}
# The three slowdown counters are numbered by the driver's generation, not by the installed binding: NVIDIA's nvml.h
# (NVIDIA/go-nvml gen/nvml/nvml.h, synced per CUDA release) put them at 251-253 in CUDA 12.9 and 13.0 (R575, R580),
# where CUDA 12.8 (R570) and 13.1+ (R590 on) have power smoothing (NVML_FI_PWR_SMOOTHING_*), and at 269-271 from 13.1,
# which 12.9/13.0 gave to power smoothing (269 ACTIVE_PRESET_PROFILE, 270 ADMIN_OVERRIDE_PERCENT_TMP_FLOOR, 271
# ADMIN_OVERRIDE_RAMP_UP_RATE). NVIDIA's mock driver pins 251-253 for driver 580.65.06 (NVIDIA/k8s-test-infra,
# "269-271 are power-smoothing ramp fields to that driver"). nvidia-ml-py's constants follow the header it was cut
# from (13.615.71: 269-271), and pyproject does not tie it to the driver, so the ids are chosen here from the CUDA
# version the running driver reports (nvmlSystemGetCudaDriverVersion): a binding from the other generation must not
# read power smoothing as throttle time.
SLOWDOWN_REASONS = ("sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")
SLOWDOWN_FIELDS_BY_CUDA = (  # (first CUDA driver version, first field id); before the first: no such counters
    ((12, 9), 251),
    ((13, 1), 269),
)


def slowdown_field_ids(cuda_driver_version: str) -> dict[str, int]:
    """reason -> field id of its duration counter in the running driver ({} when the driver has none or is unknown)."""
    try:
        version = tuple(int(part) for part in cuda_driver_version.split(".")[:2])
    except ValueError:
        return {}
    first = None
    for since, field_id in SLOWDOWN_FIELDS_BY_CUDA:
        if version >= since:
            first = field_id
    return {} if first is None else {reason: first + i for i, reason in enumerate(SLOWDOWN_REASONS)}


def read_health(reader: GpuCalls, index: int, r: dict) -> None:
    nvml, call = reader.nvml, reader.call
    health = field_ids(nvml, HEALTH_FIELDS)
    durations = {**field_ids(nvml, CLOCKS_EVENT_DURATION_FIELDS), **slowdown_field_ids(reader.cuda_driver_version)}
    values = read_fields(reader, index, [(f, 0) for f in (*health.values(), *durations.values())])
    got = {label: values[(f, 0)] for label, f in health.items() if (f, 0) in values}
    if "recovery_action" in got:
        r["recovery_action"] = int(got["recovery_action"])
    retired = {
        kind: int(got["retired_" + kind]) for kind in ("single_bit_ecc", "double_bit_ecc") if "retired_" + kind in got
    }
    if retired:
        r["retired_pages"] = retired
    if "retired_pending" in got:
        r["retired_pages_pending"] = int(bool(got["retired_pending"]))
    seconds = {label: values[(f, 0)] / 1e9 for label, f in durations.items() if (f, 0) in values}
    if seconds:
        r["clocks_event_duration_seconds"] = seconds
    volatile = {}
    for kind, error_type in (
        ("corrected", nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED),
        ("uncorrected", nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED),
    ):
        count = call(index, "nvmlDeviceGetTotalEccErrors", error_type, nvml.NVML_VOLATILE_ECC, variant="_volatile")
        if count is not None:
            volatile[kind] = int(count)
    if volatile:
        r["ecc_volatile_errors"] = volatile
    fan = call(index, "nvmlDeviceGetFanSpeed")  # passively cooled data-centre boards answer NOT_SUPPORTED
    if fan is not None:
        r["fan_speed_ratio"] = fan / 100.0
    for key, function in (
        ("encoder_utilization_ratio", "nvmlDeviceGetEncoderUtilization"),
        ("decoder_utilization_ratio", "nvmlDeviceGetDecoderUtilization"),
    ):
        utilization = call(index, function)
        if utilization is not None:
            r[key] = utilization[0] / 100.0
    r.update(once_per_start(reader, index, "power_limits", lambda: _power_limits(reader, index)))


def _power_limits(reader: GpuCalls, index: int) -> dict:
    limits = {}
    default = reader.call(index, "nvmlDeviceGetPowerManagementDefaultLimit")
    if default is not None:
        limits["power_default_limit_watts"] = default / 1000.0
    bounds = reader.call(index, "nvmlDeviceGetPowerManagementLimitConstraints")
    if bounds is not None:
        limits["power_min_limit_watts"], limits["power_max_limit_watts"] = bounds[0] / 1000.0, bounds[1] / 1000.0
    return limits

"""The metric catalogue: every name dlbench exposes, with type, unit, labels, source and absence rule.

The Prometheus collectors build their families from this table and `docs/metrics.md` is rendered from it
(`python -m dlbench.exporter.catalogue --markdown > docs/metrics.md`), so the documentation cannot drift from what
is served. Dashboards and alert rules are written against these names: rename nothing without telling them.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace

from dlbench.nvml.processes import TOP_PROCESSES
from dlbench.nvml.reader import CLOCKS_EVENT_REASONS

GPU_LABELS = ("gpu", "uuid", "hostname")
HOST_LABELS = ("hostname",)
TRAIN_LABELS = ("run_id", "workload", "hostname")
# a live run's series also name the torchrun rank that serves them (0 for a single-process run): in a data-parallel
# job every rank serves its own port, and their series must not collide in Prometheus
LIVE_LABELS = TRAIN_LABELS + ("rank",)
OWNER_LABELS = ("pid", "slurm_job_id", "namespace", "pod")  # a process and the job or pod it belongs to
PROCESS_LABELS = GPU_LABELS + OWNER_LABELS
MIG_LABELS = GPU_LABELS + ("mig_uuid", "gpu_instance_id", "compute_instance_id", "profile")
DCGM_LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION")
# dcgm-exporter adds these to a MIG GPU instance's series (gpu, UUID and the rest stay the parent GPU's)
DCGM_MIG_LABELS = DCGM_LABELS + ("GPU_I_PROFILE", "GPU_I_ID")

SUPPORTED = "absent where the GPU does not support it (NVML_ERROR_NOT_SUPPORTED) and while the GPU is down"
NVLINK_ABSENT = SUPPORTED + " (GPUs without NVLink)"
GPM_ABSENT = (
    "absent on GPUs before Hopper (no GPM), in the first sample after the exporter or NVML starts (a GPM "
    "metric needs two samples), and while the GPU is down"
)


@dataclass(frozen=True)
class MetricSpec:
    name: str  # the exposed name; counters end in _total
    type: str  # gauge, counter or histogram
    unit: str  # base unit, or "" for plain numbers
    help: str
    source: str  # where the value comes from (NVML call, psutil function, run hook)
    absent_when: str
    group: str  # gpu, nvlink_link, process, mig, mig_process, host, exporter, train, run, dcgm
    field: str  # key of the reading the value is taken from; "a.b" reads a nested dict
    labels: tuple[str, ...] = ()
    scale: float = 1.0  # multiplier from the reading's base unit (dcgm-exporter uses %, MiB, MHz, mJ)
    integer: str = ""  # "round" or "floor" to the integers DCGM reports ("floor": bytes to whole MiB, as DCGM)

    @property
    def family_name(self) -> str:
        """The name prometheus_client wants for the family (counters without _total)."""
        return self.name[: -len("_total")] if self.type == "counter" and self.name.endswith("_total") else self.name


def _gpu(name, type_, unit, help_, source, field, labels=GPU_LABELS, absent=SUPPORTED):
    return MetricSpec(name, type_, unit, help_, source, absent, "gpu", field, labels)


def _link(name, type_, unit, help_, source, field):
    return MetricSpec(
        name,
        type_,
        unit,
        help_,
        source,
        NVLINK_ABSENT + "; only with --nvlink-per-link",
        "nvlink_link",
        field,
        GPU_LABELS + ("link",),
    )


def _host(name, type_, unit, help_, source, field, labels=HOST_LABELS):
    return MetricSpec(
        name, type_, unit, help_, source, "never (psutil reads are always available on Linux)", "host", field, labels
    )


def _dcgm(name, help_, source, field, scale=1.0, absent=SUPPORTED, integer="round"):
    type_ = "counter" if name in DCGM_COUNTERS else "gauge"
    return MetricSpec(
        name, type_, "", help_, source, absent + "; only with --dcgm-compat", "dcgm", field, DCGM_LABELS, scale, integer
    )


# The DCGM fields dcgm-exporter types counter (its etc/default-counters.csv and etc/dcp-metrics-included.csv, "counter"
# in the second column), among those served here. Their names lack Prometheus's _total, so OpenMetrics cannot carry
# them as counters: with --dcgm-compat the exporter answers in the Prometheus text format, as dcgm-exporter does
# (PrerenderedMetrics). DCGM_FI_PROF_PCIE_TX/RX_BYTES, commented "counter" in the csv, stay gauges: DCGM serves them
# as a rate in bytes per second, and so does this exporter.
DCGM_COUNTERS = frozenset(
    {
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
        "DCGM_FI_DEV_POWER_VIOLATION",
        "DCGM_FI_DEV_SYNC_BOOST_VIOLATION",
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
        "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
        "DCGM_FI_DEV_RETIRED_SBE",
        "DCGM_FI_DEV_RETIRED_DBE",
        "DCGM_FI_DEV_RETIRED_PENDING",
        "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
        "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
    }
)


# per GPU: profiling activity through NVML GPM (dlbench/nvml/gpm.py); also per MIG instance below
_GPM_SPECS = (
    _gpu(
        "dlbench_gpu_graphics_engine_active_ratio",
        "gauge",
        "ratio",
        "Fraction of the last sampling interval any compute or graphics work was active on the GPU.",
        "nvmlGpmMetricsGet(NVML_GPM_METRIC_GRAPHICS_UTIL) / 100",
        "gpm_graphics_engine_active_ratio",
        absent=GPM_ABSENT,
    ),
    _gpu(
        "dlbench_gpu_sm_active_ratio",
        "gauge",
        "ratio",
        "Fraction of SMs busy over the last sampling interval: low beside a high dlbench_gpu_utilization_ratio means "
        "kernels too small to fill the GPU.",
        "nvmlGpmMetricsGet(NVML_GPM_METRIC_SM_UTIL) / 100",
        "gpm_sm_active_ratio",
        absent=GPM_ABSENT,
    ),
    _gpu(
        "dlbench_gpu_sm_occupancy_ratio",
        "gauge",
        "ratio",
        "Warps resident on the SMs against the theoretical maximum, over the last sampling interval.",
        "nvmlGpmMetricsGet(NVML_GPM_METRIC_SM_OCCUPANCY) / 100",
        "gpm_sm_occupancy_ratio",
        absent=GPM_ABSENT,
    ),
    _gpu(
        "dlbench_gpu_tensor_active_ratio",
        "gauge",
        "ratio",
        "Fraction of the last sampling interval the SMs were running any tensor-core operation.",
        "nvmlGpmMetricsGet(NVML_GPM_METRIC_ANY_TENSOR_UTIL) / 100",
        "gpm_tensor_active_ratio",
        absent=GPM_ABSENT,
    ),
    _gpu(
        "dlbench_gpu_dram_active_ratio",
        "gauge",
        "ratio",
        "Device-memory bandwidth used against the theoretical maximum, over the last sampling interval.",
        "nvmlGpmMetricsGet(NVML_GPM_METRIC_DRAM_BW_UTIL) / 100",
        "gpm_dram_active_ratio",
        absent=GPM_ABSENT,
    ),
    _gpu(
        "dlbench_gpu_pipe_active_ratio",
        "gauge",
        "ratio",
        "Fraction of the last sampling interval the SMs were doing non-tensor math on the pipe: fp64, fp32 or fp16.",
        "nvmlGpmMetricsGet(NVML_GPM_METRIC_FP64_UTIL / FP32_UTIL / FP16_UTIL) / 100",
        "gpm_pipe_active_ratio",
        labels=GPU_LABELS + ("pipe",),
        absent=GPM_ABSENT + ", per pipe",
    ),
)

MIG_ABSENT = "absent unless the GPU is in MIG mode with instances"


def _mig_help(gpu_help: str) -> str:
    """A GPU GPM help text for a MIG GPU instance. Its comparison with dlbench_gpu_utilization_ratio goes: NVML has no
    whole-GPU utilisation in MIG mode, so that series is absent there."""
    return (
        gpu_help.split(": low beside a high dlbench_gpu_utilization_ratio")[0]
        .rstrip(".")
        .replace("the GPU", "the MIG GPU instance")
        + "."
    )


def _mig_gpm_specs() -> tuple[MetricSpec, ...]:
    """The GPU's GPM specs (defined once, in _GPM_SPECS) for a MIG GPU instance, sampled with nvmlGpmMigSampleGet."""
    return tuple(
        MetricSpec(
            spec.name.replace("dlbench_gpu_", "dlbench_mig_"),
            spec.type,
            spec.unit,
            _mig_help(spec.help) + " Shared by the compute instances of one GPU instance.",
            spec.source.replace("nvmlGpmMetricsGet(", "nvmlGpmMetricsGet(MIG: "),
            spec.absent_when + "; absent unless the GPU is in MIG mode with instances",
            "mig",
            spec.field,
            MIG_LABELS + spec.labels[len(GPU_LABELS) :],
        )
        for spec in _GPM_SPECS
    )


CATALOGUE: tuple[MetricSpec, ...] = (
    # --- per GPU ------------------------------------------------------------------------------------------------
    _gpu(
        "dlbench_gpu_info",
        "gauge",
        "",
        "Identity of a GPU; value is always 1.",
        "nvmlDeviceGetName, nvmlDeviceGetUUID, nvmlDeviceGetPciInfo, nvmlSystemGetDriverVersion, "
        "nvmlSystemGetCudaDriverVersion",
        "info",
        labels=("gpu", "uuid", "name", "pci_bus_id", "hostname", "driver_version", "cuda_driver_version"),
        absent="never for a GPU NVML enumerated at start (kept while the GPU is down)",
    ),
    _gpu(
        "dlbench_gpu_up",
        "gauge",
        "",
        "1 if the GPU answers NVML; 0 if NVML calls it lost (GPU_IS_LOST, RESET_REQUIRED), its read missed the "
        "sample's deadline, or every query of its read failed (dlbench_gpu_query_error_ratio 1). A single failing "
        "query does not count (see dlbench_exporter_nvml_errors_total).",
        "every NVML call of the sample",
        "up",
        absent="never for a GPU NVML enumerated",
    ),
    _gpu(
        "dlbench_gpu_query_error_ratio",
        "gauge",
        "ratio",
        "Fraction of the GPU's NVML queries in the latest sample that failed with an error other than NOT_SUPPORTED "
        "(UNKNOWN, TIMEOUT, NO_PERMISSION, ...): 1 is a GPU that answers nothing although NVML does not call it "
        "lost, between 0 and 1 a GPU with some readings missing.",
        "every NVML call of the sample",
        "query_error_ratio",
        absent="absent while the GPU is lost or its read is late",
    ),
    _gpu(
        "dlbench_gpu_read_late",
        "gauge",
        "",
        "1 while the GPU's NVML read has not finished within the sample's deadline (a hung call), else 0.",
        "sampler",
        "late",
        absent="never for a GPU NVML enumerated",
    ),
    _gpu(
        "dlbench_gpu_utilization_ratio",
        "gauge",
        "ratio",
        "Fraction of the sample period a kernel ran on the GPU.",
        "nvmlDeviceGetUtilizationRates().gpu / 100",
        "utilization_ratio",
    ),
    _gpu(
        "dlbench_gpu_memory_copy_utilization_ratio",
        "gauge",
        "ratio",
        "Fraction of the sample period device memory was read or written.",
        "nvmlDeviceGetUtilizationRates().memory / 100",
        "memory_copy_utilization_ratio",
    ),
    _gpu(
        "dlbench_gpu_memory_used_bytes",
        "gauge",
        "bytes",
        "Device memory allocated, without what the driver reserves (NVML v2 memory info).",
        "nvmlDeviceGetMemoryInfo(nvmlMemory_v2).used (v1 .used, which includes reserved, on drivers before R510)",
        "memory_used_bytes",
    ),
    _gpu(
        "dlbench_gpu_memory_free_bytes",
        "gauge",
        "bytes",
        "Device memory free.",
        "nvmlDeviceGetMemoryInfo(nvmlMemory_v2).free",
        "memory_free_bytes",
    ),
    _gpu(
        "dlbench_gpu_memory_reserved_bytes",
        "gauge",
        "bytes",
        "Device memory reserved for the driver and firmware (total = used + free + reserved).",
        "nvmlDeviceGetMemoryInfo(nvmlMemory_v2).reserved",
        "memory_reserved_bytes",
        absent=SUPPORTED + " or the driver predates the v2 memory call",
    ),
    _gpu(
        "dlbench_gpu_memory_total_bytes",
        "gauge",
        "bytes",
        "Device memory in total.",
        "nvmlDeviceGetMemoryInfo(nvmlMemory_v2).total",
        "memory_total_bytes",
    ),
    _gpu(
        "dlbench_gpu_temperature_celsius",
        "gauge",
        "celsius",
        "GPU die temperature.",
        "nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU)",
        "temperature_celsius",
    ),
    _gpu(
        "dlbench_gpu_memory_temperature_celsius",
        "gauge",
        "celsius",
        "HBM temperature (data-centre GPUs only).",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_MEMORY_TEMP)",
        "memory_temperature_celsius",
    ),
    _gpu(
        "dlbench_gpu_power_watts",
        "gauge",
        "watts",
        "Board power draw.",
        "nvmlDeviceGetPowerUsage (mW / 1000)",
        "power_watts",
    ),
    _gpu(
        "dlbench_gpu_power_limit_watts",
        "gauge",
        "watts",
        "Power limit the driver enforces now (read every sample: nvidia-smi -pl and dynamic caps change it).",
        "nvmlDeviceGetEnforcedPowerLimit (mW / 1000)",
        "power_limit_watts",
    ),
    _gpu(
        "dlbench_gpu_energy_joules_total",
        "counter",
        "joules",
        "Energy used since the driver was loaded.",
        "nvmlDeviceGetTotalEnergyConsumption (mJ / 1000)",
        "energy_joules",
    ),
    _gpu(
        "dlbench_gpu_sm_clock_hertz",
        "gauge",
        "hertz",
        "Current SM clock.",
        "nvmlDeviceGetClockInfo(NVML_CLOCK_SM) (MHz * 1e6)",
        "sm_clock_hertz",
    ),
    _gpu(
        "dlbench_gpu_memory_clock_hertz",
        "gauge",
        "hertz",
        "Current memory clock.",
        "nvmlDeviceGetClockInfo(NVML_CLOCK_MEM) (MHz * 1e6)",
        "memory_clock_hertz",
    ),
    _gpu(
        "dlbench_gpu_sm_clock_max_hertz",
        "gauge",
        "hertz",
        "Highest SM clock the GPU can run at.",
        "nvmlDeviceGetMaxClockInfo(NVML_CLOCK_SM) (MHz * 1e6)",
        "sm_clock_max_hertz",
    ),
    _gpu(
        "dlbench_gpu_memory_clock_max_hertz",
        "gauge",
        "hertz",
        "Highest memory clock the GPU can run at.",
        "nvmlDeviceGetMaxClockInfo(NVML_CLOCK_MEM) (MHz * 1e6)",
        "memory_clock_max_hertz",
    ),
    _gpu(
        "dlbench_gpu_clocks_event_active",
        "gauge",
        "",
        "1 while the named reason holds the clocks down (throttling), else 0. reason is one of: "
        + ", ".join(CLOCKS_EVENT_REASONS)
        + ".",
        "nvmlDeviceGetCurrentClocksEventReasons (nvmlDeviceGetCurrentClocksThrottleReasons on old bindings)",
        "clocks_event_active",
        labels=GPU_LABELS + ("reason",),
    ),
    _gpu(
        "dlbench_gpu_performance_state",
        "gauge",
        "",
        "Performance state, 0 (P0, fastest) to 15.",
        "nvmlDeviceGetPerformanceState",
        "performance_state",
    ),
    _gpu(
        "dlbench_gpu_pcie_link_generation",
        "gauge",
        "",
        "Current PCIe link generation.",
        "nvmlDeviceGetCurrPcieLinkGeneration",
        "pcie_link_generation",
    ),
    _gpu(
        "dlbench_gpu_pcie_link_width",
        "gauge",
        "",
        "Current PCIe link width (lanes).",
        "nvmlDeviceGetCurrPcieLinkWidth",
        "pcie_link_width",
    ),
    _gpu(
        "dlbench_gpu_pcie_replay_errors_total",
        "counter",
        "",
        "PCIe replays (retransmitted packets).",
        "nvmlDeviceGetPcieReplayCounter",
        "pcie_replay_errors",
    ),
    _gpu(
        "dlbench_gpu_ecc_errors_total",
        "counter",
        "",
        "ECC errors over the GPU's life (aggregate counter); type is corrected or uncorrected.",
        "nvmlDeviceGetTotalEccErrors(NVML_MEMORY_ERROR_TYPE_*, NVML_AGGREGATE_ECC)",
        "ecc_errors",
        labels=GPU_LABELS + ("type",),
        absent=SUPPORTED + " or ECC is disabled",
    ),
    _gpu(
        "dlbench_gpu_remapped_rows",
        "gauge",
        "",
        "Memory rows remapped; type is correctable or uncorrectable.",
        "nvmlDeviceGetRemappedRows",
        "remapped_rows",
        labels=GPU_LABELS + ("type",),
    ),
    _gpu(
        "dlbench_gpu_row_remap_pending",
        "gauge",
        "",
        "1 if a row remap waits for a GPU reset.",
        "nvmlDeviceGetRemappedRows",
        "row_remap_pending",
    ),
    _gpu(
        "dlbench_gpu_row_remap_failure",
        "gauge",
        "",
        "1 if a row remap failed (the GPU needs service).",
        "nvmlDeviceGetRemappedRows",
        "row_remap_failure",
    ),
    _gpu(
        "dlbench_gpu_xid_errors_total",
        "counter",
        "",
        "XID events seen since the exporter started, by XID code. xid_class is what NVIDIA's XID catalogue says to "
        "do (its Resolution Bucket, Immediate Action): critical (reset the GPU, reboot, or NVIDIA's ECC and NVLink "
        "workflows), application (restart the job), informational (nothing, or follow another XID) or warning.",
        "nvmlEventSetWait_v2 on nvmlEventTypeXidCriticalError events; class from dlbench/nvml/xid.py",
        "xid_errors",
        labels=GPU_LABELS + ("xid", "xid_class"),
        absent="absent until the first XID event of that code; no series at all where XID events are unsupported",
    ),
    _gpu(
        "dlbench_gpu_last_xid_timestamp_seconds",
        "gauge",
        "seconds",
        "Unix time the exporter last saw an XID event of this code (alert on changes, not on its value); xid_class "
        "as on dlbench_gpu_xid_errors_total.",
        "nvmlEventSetWait_v2 on nvmlEventTypeXidCriticalError events",
        "last_xid_timestamp_seconds",
        labels=GPU_LABELS + ("xid", "xid_class"),
        absent="absent until the first XID event of that code",
    ),
    # --- per GPU: health beyond XID (dlbench/nvml/health.py) ------------------------------------------------
    _gpu(
        "dlbench_gpu_recovery_action",
        "gauge",
        "",
        "What the driver asks an operator to do to recover the GPU: 0 nothing, 1 reset the GPU, 2 reboot the node, "
        "3 drain peer-to-peer traffic, 4 drain and reset, 5 recover the IMEX domain, 6 bus reset, 7 system reboot "
        "(NVML's nvmlDeviceGpuRecoveryAction_t; drivers may add codes).",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_GET_GPU_RECOVERY_ACTION)",
        "recovery_action",
        absent=SUPPORTED + " (older drivers lack the field)",
    ),
    _gpu(
        "dlbench_gpu_ecc_volatile_errors_total",
        "counter",
        "",
        "ECC errors since the driver was loaded or the GPU last reset (volatile counter); type is corrected or "
        "uncorrected.",
        "nvmlDeviceGetTotalEccErrors(NVML_MEMORY_ERROR_TYPE_*, NVML_VOLATILE_ECC)",
        "ecc_volatile_errors",
        labels=GPU_LABELS + ("type",),
        absent=SUPPORTED + " or ECC is disabled",
    ),
    _gpu(
        "dlbench_gpu_retired_pages",
        "gauge",
        "",
        "Memory pages retired (GPUs before Ampere; later ones remap rows instead, see dlbench_gpu_remapped_rows); "
        "cause is single_bit_ecc or double_bit_ecc.",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_RETIRED_SBE/DBE)",
        "retired_pages",
        labels=GPU_LABELS + ("cause",),
        absent=SUPPORTED + " (Ampere and newer)",
    ),
    _gpu(
        "dlbench_gpu_retired_pages_pending",
        "gauge",
        "",
        "1 if a page waits to be retired at the next driver reload or GPU reset (GPUs before Ampere).",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_RETIRED_PENDING)",
        "retired_pages_pending",
        absent=SUPPORTED + " (Ampere and newer)",
    ),
    _gpu(
        "dlbench_gpu_clocks_event_duration_seconds_total",
        "counter",
        "seconds",
        "Time the named reason has held the clocks down since the driver was loaded; rate() is the throttled "
        "fraction of the time. reason is one of: sw_power_cap, sync_boost, sw_thermal_slowdown, "
        "hw_thermal_slowdown, hw_power_brake_slowdown.",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_PERF_POLICY_POWER / _SYNC_BOOST, and the three slowdown fields at "
        "the ids of the running driver's generation: 251-253 for CUDA 12.9-13.0 drivers, 269-271 from 13.1) "
        "(ns / 1e9)",
        "clocks_event_duration_seconds",
        labels=GPU_LABELS + ("reason",),
        absent=SUPPORTED + ", per reason; the three slowdown reasons also on drivers before CUDA 12.9 (R575)",
    ),
    _gpu(
        "dlbench_gpu_fan_speed_ratio",
        "gauge",
        "ratio",
        "Intended fan speed as a fraction of the maximum (fan 0).",
        "nvmlDeviceGetFanSpeed / 100",
        "fan_speed_ratio",
        absent=SUPPORTED + " (passively cooled data-centre boards have no fan)",
    ),
    _gpu(
        "dlbench_gpu_encoder_utilization_ratio",
        "gauge",
        "ratio",
        "Fraction of time the video encoder was busy.",
        "nvmlDeviceGetEncoderUtilization()[0] / 100",
        "encoder_utilization_ratio",
    ),
    _gpu(
        "dlbench_gpu_decoder_utilization_ratio",
        "gauge",
        "ratio",
        "Fraction of time the video decoder was busy.",
        "nvmlDeviceGetDecoderUtilization()[0] / 100",
        "decoder_utilization_ratio",
    ),
    _gpu(
        "dlbench_gpu_power_default_limit_watts",
        "gauge",
        "watts",
        "Power limit the board ships with (read once per NVML start).",
        "nvmlDeviceGetPowerManagementDefaultLimit (mW / 1000)",
        "power_default_limit_watts",
    ),
    _gpu(
        "dlbench_gpu_power_min_limit_watts",
        "gauge",
        "watts",
        "Lowest power limit that can be set (read once per NVML start).",
        "nvmlDeviceGetPowerManagementLimitConstraints()[0] (mW / 1000)",
        "power_min_limit_watts",
    ),
    _gpu(
        "dlbench_gpu_power_max_limit_watts",
        "gauge",
        "watts",
        "Highest power limit that can be set (read once per NVML start).",
        "nvmlDeviceGetPowerManagementLimitConstraints()[1] (mW / 1000)",
        "power_max_limit_watts",
    ),
    # --- per GPU: interconnect (dlbench/nvml/interconnect.py) ----------------------------------------------
    _gpu(
        "dlbench_gpu_pcie_link_max_generation",
        "gauge",
        "",
        "Highest PCIe generation the GPU and its slot both support; below it, dlbench_gpu_pcie_link_generation "
        "shows a link trained down (GPUs also lower the generation when idle to save power).",
        "nvmlDeviceGetMaxPcieLinkGeneration",
        "pcie_link_max_generation",
    ),
    _gpu(
        "dlbench_gpu_pcie_link_max_width",
        "gauge",
        "",
        "Widest PCIe link (lanes) the GPU and its slot support; a current width below it is a degraded link.",
        "nvmlDeviceGetMaxPcieLinkWidth",
        "pcie_link_max_width",
    ),
    _gpu(
        "dlbench_gpu_pcie_throughput_bytes_per_second",
        "gauge",
        "bytes_per_second",
        "PCIe traffic over a 20 ms window the driver samples; direction is tx (from the GPU) or rx (to the GPU).",
        "nvmlDeviceGetPcieThroughput(NVML_PCIE_UTIL_TX_BYTES / NVML_PCIE_UTIL_RX_BYTES) (KB/s * 1024)",
        "pcie_throughput_bytes_per_second",
        labels=GPU_LABELS + ("direction",),
    ),
    _gpu(
        "dlbench_gpu_pcie_transmitted_bytes_total",
        "counter",
        "bytes",
        "Bytes the GPU sent over PCIe; rate() is the exact average throughput between scrapes.",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_PCIE_COUNT_TX_BYTES)",
        "pcie_transmitted_bytes",
    ),
    _gpu(
        "dlbench_gpu_pcie_received_bytes_total",
        "counter",
        "bytes",
        "Bytes the GPU received over PCIe.",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_PCIE_COUNT_RX_BYTES)",
        "pcie_received_bytes",
    ),
    # NVLink per GPU by default, as dcgm-exporter's default counters (etc/default-counters.csv in
    # github.com/NVIDIA/dcgm-exporter: DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL on, the per-link and error fields
    # commented out): per-link series are 6 x 18 links x GPUs, most of an 8-GPU exposition.
    _gpu(
        "dlbench_gpu_nvlink_links",
        "gauge",
        "",
        "NVLink links the GPU has (18 on an H100 SXM).",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_LINK_COUNT), once per NVML start",
        "nvlink_links",
        absent=NVLINK_ABSENT,
    ),
    _gpu(
        "dlbench_gpu_nvlink_links_active",
        "gauge",
        "",
        "NVLink links in the active state; below dlbench_gpu_nvlink_links is a link down or asleep.",
        "count of links with nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_GET_STATE, scope = link) = 1",
        "nvlink_links_active",
        absent=NVLINK_ABSENT,
    ),
    _gpu(
        "dlbench_gpu_nvlink_links_inactive",
        "gauge",
        "",
        "NVLink links in the inactive state: down, not merely asleep (a sleeping link is neither active nor "
        "inactive). More than before is a link lost (alert DlbenchGPUNVLinkDown).",
        "count of links with nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_GET_STATE, scope = link) = 0",
        "nvlink_links_inactive",
        absent=NVLINK_ABSENT,
    ),
    _gpu(
        "dlbench_gpu_nvlink_transmitted_bytes_total",
        "counter",
        "bytes",
        "Data bytes sent on all NVLink links.",
        "sum of each link's increases (a link reset does not lower it) of nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, scope = link) "
        "(KiB * 1024)",
        "nvlink_transmitted_bytes",
        absent=NVLINK_ABSENT,
    ),
    _gpu(
        "dlbench_gpu_nvlink_received_bytes_total",
        "counter",
        "bytes",
        "Data bytes received on all NVLink links.",
        "sum of each link's increases (a link reset does not lower it) of nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, scope = link) "
        "(KiB * 1024)",
        "nvlink_received_bytes",
        absent=NVLINK_ABSENT,
    ),
    _gpu(
        "dlbench_gpu_nvlink_replay_errors_total",
        "counter",
        "",
        "Data-link replays on all NVLink links.",
        "sum of each link's increases (a link reset does not lower it) of "
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_ERROR_DL_REPLAY, scope = link)",
        "nvlink_replay_errors",
        absent=NVLINK_ABSENT,
    ),
    _gpu(
        "dlbench_gpu_nvlink_recovery_errors_total",
        "counter",
        "",
        "Data-link recoveries on all NVLink links.",
        "sum of each link's increases (a link reset does not lower it) of "
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_ERROR_DL_RECOVERY, scope = link)",
        "nvlink_recovery_errors",
        absent=NVLINK_ABSENT,
    ),
    _gpu(
        "dlbench_gpu_nvlink_crc_errors_total",
        "counter",
        "",
        "Data-link CRC errors on all NVLink links.",
        "sum of each link's increases (a link reset does not lower it) of "
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_ERROR_DL_CRC, scope = link)",
        "nvlink_crc_errors",
        absent=NVLINK_ABSENT,
    ),
    # --- per NVLink link, only with --nvlink-per-link ------------------------------------------------------------
    _link(
        "dlbench_gpu_nvlink_link_state",
        "gauge",
        "",
        "State of each NVLink link: 0 inactive, 1 active, 2 sleeping (low power), 3 active with traffic disabled.",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_GET_STATE, scope = link)",
        "nvlink_link_state",
    ),
    _link(
        "dlbench_gpu_nvlink_link_transmitted_bytes_total",
        "counter",
        "bytes",
        "Data bytes sent on each NVLink link.",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, scope = link) (KiB * 1024)",
        "nvlink_link_transmitted_bytes",
    ),
    _link(
        "dlbench_gpu_nvlink_link_received_bytes_total",
        "counter",
        "bytes",
        "Data bytes received on each NVLink link.",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX, scope = link) (KiB * 1024)",
        "nvlink_link_received_bytes",
    ),
    _link(
        "dlbench_gpu_nvlink_link_replay_errors_total",
        "counter",
        "",
        "Data-link replays on each NVLink link.",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_ERROR_DL_REPLAY, scope = link)",
        "nvlink_link_replay_errors",
    ),
    _link(
        "dlbench_gpu_nvlink_link_recovery_errors_total",
        "counter",
        "",
        "Data-link recoveries on each NVLink link.",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_ERROR_DL_RECOVERY, scope = link)",
        "nvlink_link_recovery_errors",
    ),
    _link(
        "dlbench_gpu_nvlink_link_crc_errors_total",
        "counter",
        "",
        "Data-link CRC errors on each NVLink link.",
        "nvmlDeviceGetFieldValues(NVML_FI_DEV_NVLINK_ERROR_DL_CRC, scope = link)",
        "nvlink_link_crc_errors",
    ),
    # --- per GPU: profiling activity through NVML GPM (dlbench/nvml/gpm.py) ---------------------------------
    *_GPM_SPECS,
    # --- per process on a GPU (dlbench/nvml/processes.py) -----------------------------------------------------
    _gpu(
        "dlbench_gpu_processes",
        "gauge",
        "",
        "Compute processes running on the GPU (all of them, also those past the per-process limit).",
        "len(nvmlDeviceGetComputeRunningProcesses)",
        "process_count",
    ),
    MetricSpec(
        "dlbench_gpu_process_memory_used_bytes",
        "gauge",
        "bytes",
        f"GPU memory a process uses, for the {TOP_PROCESSES} processes using the most per GPU. slurm_job_id, or namespace "
        "and pod, name the Slurm job or Kubernetes pod the process belongs to (from its cgroup; empty "
        "otherwise).",
        "nvmlDeviceGetComputeRunningProcesses().usedGpuMemory; /proc/PID/cgroup",
        SUPPORTED + ", and where NVML cannot tell a process's memory",
        "process",
        "memory_used_bytes",
        PROCESS_LABELS,
    ),
    MetricSpec(
        "dlbench_gpu_process_sm_utilization_ratio",
        "gauge",
        "ratio",
        "Fraction of the time a kernel of this process ran on the GPU, from NVML's latest per-process sample "
        "(same processes and labels as dlbench_gpu_process_memory_used_bytes).",
        "nvmlDeviceGetProcessUtilization().smUtil / 100",
        SUPPORTED + ", and for a process with no utilisation sample since the previous read",
        "process",
        "sm_utilization_ratio",
        PROCESS_LABELS,
    ),
    # --- MIG instances (dlbench/nvml/mig.py) ------------------------------------------------------------------
    _gpu(
        "dlbench_gpu_mig_mode",
        "gauge",
        "",
        "1 if the GPU runs in MIG mode (split into instances), else 0.",
        "nvmlDeviceGetMigMode()[0] == NVML_DEVICE_MIG_ENABLE",
        "mig_mode",
        absent=SUPPORTED + " (no MIG)",
    ),
    MetricSpec(
        "dlbench_mig_memory_used_bytes",
        "gauge",
        "bytes",
        "Memory used in a MIG instance. gpu and uuid are the parent GPU's; profile is the instance's "
        "(e.g. 1g.10gb). Without what the driver reserves, as for whole GPUs.",
        "nvmlDeviceGetMemoryInfo(MIG device handle, nvmlMemory_v2).used (v1, which counts reserved memory as "
        "used, on drivers before R510)",
        "absent unless the GPU is in MIG mode with instances",
        "mig",
        "memory_used_bytes",
        MIG_LABELS,
    ),
    MetricSpec(
        "dlbench_mig_memory_free_bytes",
        "gauge",
        "bytes",
        "Memory free in a MIG instance.",
        "nvmlDeviceGetMemoryInfo(MIG device handle, nvmlMemory_v2).free",
        "absent unless the GPU is in MIG mode with instances",
        "mig",
        "memory_free_bytes",
        MIG_LABELS,
    ),
    MetricSpec(
        "dlbench_mig_memory_total_bytes",
        "gauge",
        "bytes",
        "Memory of a MIG instance in total.",
        "nvmlDeviceGetMemoryInfo(MIG device handle, nvmlMemory_v2).total",
        "absent unless the GPU is in MIG mode with instances",
        "mig",
        "memory_total_bytes",
        MIG_LABELS,
    ),
    MetricSpec(
        "dlbench_mig_processes",
        "gauge",
        "",
        "Compute processes running in a MIG instance (all of them).",
        "len(nvmlDeviceGetComputeRunningProcesses(MIG device handle))",
        MIG_ABSENT,
        "mig",
        "process_count",
        MIG_LABELS,
    ),
    *_mig_gpm_specs(),
    # --- processes per MIG instance -----------------------------------------------------------------------------
    MetricSpec(
        "dlbench_mig_process_memory_used_bytes",
        "gauge",
        "bytes",
        f"GPU memory a process uses in a MIG instance, for the {TOP_PROCESSES} processes using the most per "
        "instance; owner labels as dlbench_gpu_process_memory_used_bytes. NVML has no per-process "
        "utilisation in MIG mode.",
        "nvmlDeviceGetComputeRunningProcesses(MIG device handle).usedGpuMemory; /proc/PID/cgroup",
        MIG_ABSENT + ", and where NVML cannot tell a process's memory",
        "mig_process",
        "memory_used_bytes",
        MIG_LABELS + OWNER_LABELS,
    ),
    # --- host ---------------------------------------------------------------------------------------------------
    _host(
        "dlbench_host_cpu_utilization_ratio",
        "gauge",
        "ratio",
        "CPU busy fraction over all cores since the previous sample.",
        "psutil.cpu_percent() / 100",
        "cpu_utilization_ratio",
    ),
    _host(
        "dlbench_host_load_average",
        "gauge",
        "",
        "Load average; period is 1m, 5m or 15m.",
        "os.getloadavg",
        "load_average",
        labels=HOST_LABELS + ("period",),
    ),
    _host(
        "dlbench_host_memory_total_bytes",
        "gauge",
        "bytes",
        "Host memory in total.",
        "psutil.virtual_memory().total",
        "memory_total_bytes",
    ),
    _host(
        "dlbench_host_memory_available_bytes",
        "gauge",
        "bytes",
        "Host memory available to new work.",
        "psutil.virtual_memory().available",
        "memory_available_bytes",
    ),
    _host(
        "dlbench_host_memory_used_bytes",
        "gauge",
        "bytes",
        "Host memory in use (total - available).",
        "psutil.virtual_memory()",
        "memory_used_bytes",
    ),
    _host(
        "dlbench_host_disk_read_bytes_total",
        "counter",
        "bytes",
        "Bytes read from all disks.",
        "psutil.disk_io_counters().read_bytes",
        "disk_read_bytes",
    ),
    _host(
        "dlbench_host_disk_written_bytes_total",
        "counter",
        "bytes",
        "Bytes written to all disks.",
        "psutil.disk_io_counters().write_bytes",
        "disk_written_bytes",
    ),
    _host(
        "dlbench_host_network_received_bytes_total",
        "counter",
        "bytes",
        "Bytes received on all interfaces but loopback.",
        "psutil.net_io_counters(pernic=True)",
        "network_received_bytes",
    ),
    _host(
        "dlbench_host_network_transmitted_bytes_total",
        "counter",
        "bytes",
        "Bytes sent on all interfaces but loopback.",
        "psutil.net_io_counters(pernic=True)",
        "network_transmitted_bytes",
    ),
    # --- exporter self-health -----------------------------------------------------------------------------------
    MetricSpec(
        "dlbench_exporter_nvml_up",
        "gauge",
        "",
        "1 if NVML is initialised, 0 if not (host metrics only; initialisation is retried with backoff).",
        "nvmlInit",
        "never",
        "exporter",
        "nvml_up",
        labels=HOST_LABELS,
    ),
    MetricSpec(
        "dlbench_exporter_gpus",
        "gauge",
        "",
        "Number of GPUs NVML reported when it was last initialised.",
        "nvmlDeviceGetCount",
        "never (0 without NVML)",
        "exporter",
        "gpu_count",
        labels=HOST_LABELS,
    ),
    MetricSpec(
        "dlbench_exporter_collect_duration_seconds",
        "gauge",
        "seconds",
        "Time the last sample of every GPU and the host took.",
        "sampler",
        "absent before the first sample",
        "exporter",
        "collect_duration_seconds",
        labels=HOST_LABELS,
    ),
    MetricSpec(
        "dlbench_exporter_last_sample_timestamp_seconds",
        "gauge",
        "seconds",
        "Unix time the latest sample finished: /metrics serves that sample. Old means the sampler is stuck; "
        "GPU trouble shows in dlbench_gpu_up and dlbench_gpu_read_late instead.",
        "sampler",
        "absent before the first sample",
        "exporter",
        "last_sample_timestamp_seconds",
        labels=HOST_LABELS,
    ),
    MetricSpec(
        "dlbench_exporter_nvml_errors_total",
        "counter",
        "",
        "NVML calls that failed other than with NOT_SUPPORTED, by NVML function.",
        "sampler",
        "absent for a call that never failed",
        "exporter",
        "nvml_errors",
        labels=HOST_LABELS + ("call",),
    ),
    # --- live training (dlbench run --metrics-port) ------------------------------------------------------------
    MetricSpec(
        "dlbench_train_info",
        "gauge",
        "",
        "Identity of a live run; value is always 1.",
        "run hook",
        "never while the run is served",
        "train",
        "info",
        labels=("run_id", "workload", "hostname", "rank", "device", "precision", "batch_size"),
    ),
    MetricSpec(
        "dlbench_train_samples_per_second",
        "gauge",
        "",
        "Training throughput over the last 20 timed steps.",
        "run hook on_step",
        "absent before the first timed step",
        "train",
        "samples_per_second",
        labels=LIVE_LABELS,
    ),
    MetricSpec(
        "dlbench_train_step_seconds",
        "histogram",
        "seconds",
        "Duration of each timed training step.",
        "run hook on_step",
        "never while the run is served (empty before the first step)",
        "train",
        "step_seconds",
        labels=LIVE_LABELS,
    ),
    MetricSpec(
        "dlbench_train_mfu_ratio",
        "gauge",
        "ratio",
        "Model FLOPs utilisation over the last 20 steps: achieved FLOP/s over the device's dense peak.",
        "run hook on_step",
        "absent on CPU or when the GPU's peak is unknown",
        "train",
        "mfu_ratio",
        labels=LIVE_LABELS,
    ),
    MetricSpec(
        "dlbench_train_loss",
        "gauge",
        "",
        "Training loss, read at most once per second.",
        "run hook on_step",
        "absent before the first read",
        "train",
        "loss",
        labels=LIVE_LABELS,
    ),
    MetricSpec(
        "dlbench_train_steps_total",
        "counter",
        "",
        "Timed training steps done.",
        "run hook on_step",
        "never",
        "train",
        "steps",
        labels=LIVE_LABELS,
    ),
    # --- end-of-run summary (dlbench run --pushgateway) --------------------------------------------------------
    MetricSpec(
        "dlbench_run_info",
        "gauge",
        "",
        "Identity and outcome of a finished run; value is always 1.",
        "run hook on_finish",
        "never",
        "run",
        "info",
        labels=("run_id", "workload", "hostname", "device", "status"),
    ),
    MetricSpec(
        "dlbench_run_samples_per_second",
        "gauge",
        "",
        "Samples over timed seconds of the run (under torchrun: rank 0's own, comparable with one GPU).",
        "run hook on_timed_end",
        "absent if the run never reached its timed window",
        "run",
        "samples_per_second",
        labels=TRAIN_LABELS,
    ),
    # a torchrun job pushes once, from rank 0: what the whole job did, beside rank 0's own figure above
    MetricSpec(
        "dlbench_run_job_samples_per_second",
        "gauge",
        "",
        "Samples per second of the whole job: the sum of every rank's (the result's distributed.aggregate); "
        "the run's own for a single process.",
        "run hook on_finish",
        "absent if the ranks' figures could not be gathered",
        "run",
        "job_samples_per_second",
        labels=TRAIN_LABELS,
    ),
    MetricSpec(
        "dlbench_run_world_size",
        "gauge",
        "",
        "Processes that trained: the torchrun job's world size, or 1.",
        "run hook on_finish",
        "never",
        "run",
        "world_size",
        labels=TRAIN_LABELS,
    ),
    MetricSpec(
        "dlbench_run_timed_seconds",
        "gauge",
        "seconds",
        "Length of the timed window.",
        "run hook on_timed_end",
        "absent if the run never reached its timed window",
        "run",
        "timed_seconds",
        labels=TRAIN_LABELS,
    ),
    MetricSpec(
        "dlbench_run_mfu_ratio",
        "gauge",
        "ratio",
        "Model FLOPs utilisation over the timed window.",
        "run hook on_timed_end",
        "absent on CPU or when the GPU's peak is unknown",
        "run",
        "mfu_ratio",
        labels=TRAIN_LABELS,
    ),
    MetricSpec(
        "dlbench_run_energy_joules",
        "gauge",
        "joules",
        "GPU energy used in the timed window.",
        "telemetry summary (energy counter difference)",
        "absent without a GPU energy counter",
        "run",
        "energy_joules",
        labels=TRAIN_LABELS,
    ),
    MetricSpec(
        "dlbench_run_energy_per_sample_joules",
        "gauge",
        "joules",
        "GPU energy per training sample.",
        "telemetry summary",
        "absent without a GPU energy counter",
        "run",
        "energy_per_sample_joules",
        labels=TRAIN_LABELS,
    ),
    MetricSpec(
        "dlbench_run_gpu_utilization_mean_ratio",
        "gauge",
        "ratio",
        "Mean GPU utilisation in the window.",
        "telemetry summary",
        "absent without a GPU",
        "run",
        "utilization_mean",
        labels=TRAIN_LABELS,
    ),
    MetricSpec(
        "dlbench_run_power_mean_watts",
        "gauge",
        "watts",
        "Mean GPU power in the window.",
        "telemetry summary",
        "absent without a GPU power reading",
        "run",
        "power_mean_watts",
        labels=TRAIN_LABELS,
    ),
    MetricSpec(
        "dlbench_run_finished_timestamp_seconds",
        "gauge",
        "seconds",
        "Unix time the run finished.",
        "run hook on_finish",
        "never",
        "run",
        "finished_timestamp_seconds",
        labels=TRAIN_LABELS,
    ),
    # --- dcgm-exporter compatibility (--dcgm-compat): dcgm-exporter 4.8 default names and units -----------------
    _dcgm(
        "DCGM_FI_DEV_GPU_UTIL",
        "GPU utilization (in %).",
        "as dlbench_gpu_utilization_ratio",
        "utilization_ratio",
        100.0,
    ),
    _dcgm(
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "Memory utilization (in %).",
        "as dlbench_gpu_memory_copy_utilization_ratio",
        "memory_copy_utilization_ratio",
        100.0,
    ),
    _dcgm(
        "DCGM_FI_DEV_FB_USED",
        "Framebuffer memory used (in MiB).",
        "as dlbench_gpu_memory_used_bytes",
        "memory_used_bytes",
        1 / 2**20,
        integer="floor",
    ),
    _dcgm(
        "DCGM_FI_DEV_FB_FREE",
        "Framebuffer memory free (in MiB).",
        "as dlbench_gpu_memory_free_bytes",
        "memory_free_bytes",
        1 / 2**20,
        integer="floor",
    ),
    _dcgm(
        "DCGM_FI_DEV_FB_RESERVED",
        "Framebuffer memory reserved (in MiB).",
        "as dlbench_gpu_memory_reserved_bytes",
        "memory_reserved_bytes",
        1 / 2**20,
        integer="floor",
    ),
    _dcgm(
        "DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", "as dlbench_gpu_temperature_celsius", "temperature_celsius"
    ),
    _dcgm(
        "DCGM_FI_DEV_MEMORY_TEMP",
        "Memory temperature (in C).",
        "as dlbench_gpu_memory_temperature_celsius",
        "memory_temperature_celsius",
    ),
    _dcgm(
        "DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", "as dlbench_gpu_power_watts", "power_watts", integer=""
    ),  # a double in DCGM too
    _dcgm(
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "Total energy consumption since boot (in mJ).",
        "as dlbench_gpu_energy_joules_total",
        "energy_joules",
        1000.0,
    ),
    _dcgm(
        "DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", "as dlbench_gpu_sm_clock_hertz", "sm_clock_hertz", 1e-6
    ),
    _dcgm(
        "DCGM_FI_DEV_MEM_CLOCK",
        "Memory clock frequency (in MHz).",
        "as dlbench_gpu_memory_clock_hertz",
        "memory_clock_hertz",
        1e-6,
    ),
    _dcgm(
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
        "Total number of PCIe retries.",
        "as dlbench_gpu_pcie_replay_errors_total",
        "pcie_replay_errors",
    ),
    # err_code repeats the value as a label, as dcgm-exporter does since its PR #309 (2024), so a new code is a new
    # series, and err_msg is dcgm-exporter's text for the code (internal/pkg/collector/gpu_collector.go)
    MetricSpec(
        "DCGM_FI_DEV_XID_ERRORS",
        "gauge",
        "",
        "Value of the last XID error encountered (0: none since the exporter started); err_code is the same "
        "code as a label, err_msg dcgm-exporter's text for it.",
        "nvmlEventSetWait_v2",
        "absent where XID events are unsupported; only with --dcgm-compat",
        "dcgm",
        "last_xid",
        DCGM_LABELS + ("err_code", "err_msg"),
        integer="round",
    ),
    _dcgm(
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        "Number of remapped rows for uncorrectable errors.",
        "as dlbench_gpu_remapped_rows",
        "remapped_rows.uncorrectable",
    ),
    _dcgm(
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
        "Number of remapped rows for correctable errors.",
        "as dlbench_gpu_remapped_rows",
        "remapped_rows.correctable",
    ),
    # profiling names dashboards use (dcgm-exporter's dcp-metrics-included.csv, DCGM_FI_PROF_*: ratios 0..1),
    # from NVML GPM instead of DCGM's profiling module; GPM's tensor metric counts any tensor operation, DCGM's
    # PIPE_TENSOR_ACTIVE the HMMA pipe, so the two can differ on integer or FP64 tensor work
    _dcgm(
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "Ratio of time the graphics engine is active.",
        "as dlbench_gpu_graphics_engine_active_ratio",
        "gpm_graphics_engine_active_ratio",
        absent=GPM_ABSENT,
        integer="",
    ),
    _dcgm(
        "DCGM_FI_PROF_SM_ACTIVE",
        "The ratio of cycles an SM has at least 1 warp assigned.",
        "as dlbench_gpu_sm_active_ratio",
        "gpm_sm_active_ratio",
        absent=GPM_ABSENT,
        integer="",
    ),
    _dcgm(
        "DCGM_FI_PROF_SM_OCCUPANCY",
        "The ratio of number of warps resident on an SM.",
        "as dlbench_gpu_sm_occupancy_ratio",
        "gpm_sm_occupancy_ratio",
        absent=GPM_ABSENT,
        integer="",
    ),
    _dcgm(
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "Ratio of cycles the tensor (HMMA) pipe is active.",
        "as dlbench_gpu_tensor_active_ratio",
        "gpm_tensor_active_ratio",
        absent=GPM_ABSENT,
        integer="",
    ),
    _dcgm(
        "DCGM_FI_PROF_DRAM_ACTIVE",
        "Ratio of cycles the device memory interface is active sending or receiving data.",
        "as dlbench_gpu_dram_active_ratio",
        "gpm_dram_active_ratio",
        absent=GPM_ABSENT,
        integer="",
    ),
    _dcgm(
        "DCGM_FI_PROF_PIPE_FP64_ACTIVE",
        "Ratio of cycles the fp64 pipes are active.",
        'as dlbench_gpu_pipe_active_ratio{pipe="fp64"}',
        "gpm_pipe_active_ratio.fp64",
        absent=GPM_ABSENT,
        integer="",
    ),
    _dcgm(
        "DCGM_FI_PROF_PIPE_FP32_ACTIVE",
        "Ratio of cycles the fp32 pipes are active.",
        'as dlbench_gpu_pipe_active_ratio{pipe="fp32"}',
        "gpm_pipe_active_ratio.fp32",
        absent=GPM_ABSENT,
        integer="",
    ),
    _dcgm(
        "DCGM_FI_PROF_PIPE_FP16_ACTIVE",
        "Ratio of cycles the fp16 pipes are active.",
        'as dlbench_gpu_pipe_active_ratio{pipe="fp16"}',
        "gpm_pipe_active_ratio.fp16",
        absent=GPM_ABSENT,
        integer="",
    ),
    _dcgm(
        "DCGM_FI_DEV_ROW_REMAP_FAILURE",
        "Whether remapping of rows has failed.",
        "as dlbench_gpu_row_remap_failure",
        "row_remap_failure",
    ),
    # --- the newer families under DCGM's names (dcgmlib/dcgm_fields.h in github.com/NVIDIA/DCGM; the commented
    # lines of dcgm-exporter's etc/default-counters.csv and dcp-metrics-included.csv), in DCGM's units --------------
    # PCIe: DCGM_FI_PROF_PCIE_*_BYTES is a rate in bytes/s (dcp-metrics-included.csv: "The rate of data transmitted
    # over the PCIe bus - including both protocol headers and data payloads - in bytes per second"); DCGM measures it
    # with its profiling module, here it is NVML's 20 ms PCIe throughput sample, which NVML does not say includes
    # headers. DCGM_FI_DEV_PCIE_*_THROUGHPUT, deprecated in DCGM for the former, is NVML's figure in KB/s.
    _dcgm(
        "DCGM_FI_PROF_PCIE_TX_BYTES",
        "The rate of data transmitted over the PCIe bus in bytes per second.",
        'as dlbench_gpu_pcie_throughput_bytes_per_second{direction="tx"}',
        "pcie_throughput_bytes_per_second.tx",
    ),
    _dcgm(
        "DCGM_FI_PROF_PCIE_RX_BYTES",
        "The rate of data received over the PCIe bus in bytes per second.",
        'as dlbench_gpu_pcie_throughput_bytes_per_second{direction="rx"}',
        "pcie_throughput_bytes_per_second.rx",
    ),
    _dcgm(
        "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
        "PCIe TX throughput (in KB/s) via NVML.",
        "nvmlDeviceGetPcieThroughput(NVML_PCIE_UTIL_TX_BYTES)",
        "pcie_throughput_bytes_per_second.tx",
        1 / 1024,
    ),
    _dcgm(
        "DCGM_FI_DEV_PCIE_RX_THROUGHPUT",
        "PCIe RX throughput (in KB/s) via NVML.",
        "nvmlDeviceGetPcieThroughput(NVML_PCIE_UTIL_RX_BYTES)",
        "pcie_throughput_bytes_per_second.rx",
        1 / 1024,
    ),
    _dcgm(
        "DCGM_FI_DEV_PCIE_LINK_GEN",
        "PCIe current link generation.",
        "as dlbench_gpu_pcie_link_generation",
        "pcie_link_generation",
    ),
    _dcgm(
        "DCGM_FI_DEV_PCIE_LINK_WIDTH", "PCIe current link width.", "as dlbench_gpu_pcie_link_width", "pcie_link_width"
    ),
    _dcgm(
        "DCGM_FI_DEV_PCIE_MAX_LINK_GEN",
        "PCIe max link generation.",
        "as dlbench_gpu_pcie_link_max_generation",
        "pcie_link_max_generation",
    ),
    _dcgm(
        "DCGM_FI_DEV_PCIE_MAX_LINK_WIDTH",
        "PCIe max link width.",
        "as dlbench_gpu_pcie_link_max_width",
        "pcie_link_max_width",
    ),
    # NVLink errors summed over the GPU's links, as DCGM's *_TOTAL fields. Not mapped: the CRC counters (DCGM splits
    # FLIT and DATA CRC errors, NVML's NVML_FI_DEV_NVLINK_ERROR_DL_CRC is one counter) and
    # DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL (DCGM documents no unit for it); use the dlbench_gpu_nvlink_* series.
    _dcgm(
        "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
        "Total number of NVLink retries.",
        "as dlbench_gpu_nvlink_replay_errors_total",
        "nvlink_replay_errors",
        absent=NVLINK_ABSENT,
    ),
    _dcgm(
        "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
        "Total number of NVLink recovery errors.",
        "as dlbench_gpu_nvlink_recovery_errors_total",
        "nvlink_recovery_errors",
        absent=NVLINK_ABSENT,
    ),
    # ECC: DCGM's single-bit / double-bit names carry NVML's corrected / uncorrected counts
    _dcgm(
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        "Total number of single-bit volatile ECC errors.",
        'as dlbench_gpu_ecc_volatile_errors_total{type="corrected"}',
        "ecc_volatile_errors.corrected",
    ),
    _dcgm(
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "Total number of double-bit volatile ECC errors.",
        'as dlbench_gpu_ecc_volatile_errors_total{type="uncorrected"}',
        "ecc_volatile_errors.uncorrected",
    ),
    _dcgm(
        "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
        "Total number of single-bit persistent ECC errors.",
        'as dlbench_gpu_ecc_errors_total{type="corrected"}',
        "ecc_errors.corrected",
    ),
    _dcgm(
        "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
        "Total number of double-bit persistent ECC errors.",
        'as dlbench_gpu_ecc_errors_total{type="uncorrected"}',
        "ecc_errors.uncorrected",
    ),
    _dcgm(
        "DCGM_FI_DEV_RETIRED_SBE",
        "Total number of retired pages due to single-bit errors.",
        'as dlbench_gpu_retired_pages{cause="single_bit_ecc"}',
        "retired_pages.single_bit_ecc",
    ),
    _dcgm(
        "DCGM_FI_DEV_RETIRED_DBE",
        "Total number of retired pages due to double-bit errors.",
        'as dlbench_gpu_retired_pages{cause="double_bit_ecc"}',
        "retired_pages.double_bit_ecc",
    ),
    _dcgm(
        "DCGM_FI_DEV_RETIRED_PENDING",
        "Total number of pages pending retirement.",
        "as dlbench_gpu_retired_pages_pending",
        "retired_pages_pending",
    ),
    # Throttle durations in nanoseconds, as DCGM serves them: DCGM passes on nvmlDeviceGetViolationStatus(
    # NVML_PERF_POLICY_POWER / SYNC_BOOST).violationTime, "violationTime in Nanoseconds" (NVML API reference,
    # nvmlViolationTime_t; dcgm_fields.h: "Power Violation time in ns"). dcgm-exporter's counters file said "(in us)",
    # a documentation error fixed to ns in its PR #589; older dcgm_fields.h comments said usec too. The NVML clock-event
    # counters used here are ns as well and time the same reasons holding the clocks down. Thermal is not mapped: NVML
    # counts software and hardware thermal slowdown apart, DCGM_FI_DEV_THERMAL_VIOLATION is one figure from
    # nvmlDeviceGetViolationStatus(NVML_PERF_POLICY_THERMAL).
    _dcgm(
        "DCGM_FI_DEV_POWER_VIOLATION",
        "Throttling duration due to power constraints (in ns).",
        'as dlbench_gpu_clocks_event_duration_seconds_total{reason="sw_power_cap"} (s * 1e9)',
        "clocks_event_duration_seconds.sw_power_cap",
        1e9,
    ),
    _dcgm(
        "DCGM_FI_DEV_SYNC_BOOST_VIOLATION",
        "Throttling duration due to sync-boost constraints (in ns).",
        'as dlbench_gpu_clocks_event_duration_seconds_total{reason="sync_boost"} (s * 1e9)',
        "clocks_event_duration_seconds.sync_boost",
        1e9,
    ),
    _dcgm(
        "DCGM_FI_DEV_ENC_UTIL",
        "Encoder utilization (in %).",
        "as dlbench_gpu_encoder_utilization_ratio",
        "encoder_utilization_ratio",
        100.0,
    ),
    _dcgm(
        "DCGM_FI_DEV_DEC_UTIL",
        "Decoder utilization (in %).",
        "as dlbench_gpu_decoder_utilization_ratio",
        "decoder_utilization_ratio",
        100.0,
    ),
    _dcgm(
        "DCGM_FI_DEV_FAN_SPEED",
        "Fan speed for the device in percent 0-100.",
        "as dlbench_gpu_fan_speed_ratio",
        "fan_speed_ratio",
        100.0,
    ),
    _dcgm(
        "DCGM_FI_DEV_PSTATE",
        "Performance state (P-State) 0-15. 0=highest.",
        "as dlbench_gpu_performance_state",
        "performance_state",
    ),
    _dcgm(
        "DCGM_FI_DEV_ENFORCED_POWER_LIMIT",
        "Effective power limit that the driver enforces (in W).",
        "as dlbench_gpu_power_limit_watts",
        "power_limit_watts",
        integer="",
    ),
    _dcgm(
        "DCGM_FI_DEV_POWER_MGMT_LIMIT_DEF",
        "Default power management limit for the device (in W).",
        "as dlbench_gpu_power_default_limit_watts",
        "power_default_limit_watts",
        integer="",
    ),
    _dcgm(
        "DCGM_FI_DEV_POWER_MGMT_LIMIT_MIN",
        "Minimum power management limit for the device (in W).",
        "as dlbench_gpu_power_min_limit_watts",
        "power_min_limit_watts",
        integer="",
    ),
    _dcgm(
        "DCGM_FI_DEV_POWER_MGMT_LIMIT_MAX",
        "Maximum power management limit for the device (in W).",
        "as dlbench_gpu_power_max_limit_watts",
        "power_max_limit_watts",
        integer="",
    ),
)

BY_NAME = {spec.name: spec for spec in CATALOGUE}
# --dcgm-compat's names for each MIG GPU instance, as dcgm-exporter serves them (it watches every GPU instance entity:
# internal/pkg/devicemonitoring/device_monitoring.go): the same families, the instance's series labelled GPU_I_PROFILE
# and GPU_I_ID; profiling from the GPM stream of the GPU instance, framebuffer from its own memory (mig.py)
DCGM_MIG_FIELDS = ("memory_used_bytes", "memory_free_bytes")
DCGM_MIG_SPECS = tuple(
    replace(spec, labels=DCGM_MIG_LABELS)
    for spec in CATALOGUE
    if spec.group == "dcgm" and (spec.field.startswith("gpm_") or spec.field in DCGM_MIG_FIELDS)
)


def specs(group: str) -> tuple[MetricSpec, ...]:
    return tuple(spec for spec in CATALOGUE if spec.group == group)


_SECTIONS = (
    ("gpu", "Per GPU (`dlbench exporter`; also served by `dlbench run --metrics-port`)"),
    ("nvlink_link", "Per NVLink link (`dlbench exporter --nvlink-per-link`)"),
    ("process", f"Per process on a GPU (`dlbench exporter`; top {TOP_PROCESSES} processes by GPU memory per GPU)"),
    ("mig", "MIG instances (`dlbench exporter`)"),
    ("mig_process", f"Per process in a MIG instance (`dlbench exporter`; top {TOP_PROCESSES} per instance)"),
    ("host", "Host"),
    ("exporter", "Exporter self-health"),
    ("train", "Live training (`dlbench run --metrics-port PORT`)"),
    ("run", "End-of-run summary (`dlbench run --pushgateway URL`)"),
    ("dcgm", "dcgm-exporter compatibility (`dlbench exporter --dcgm-compat`)"),
)


def render_markdown() -> str:
    lines = [
        "# Metric catalogue",
        "",
        "<!-- Generated by `python -m dlbench.exporter.catalogue --markdown > docs/metrics.md`; do not edit. -->",
        "",
        "Every name `dlbench` exposes to Prometheus, generated from `dlbench/exporter/catalogue.py`, the table the",
        "collectors are built from. Units are base units (bytes, watts, joules, hertz, seconds, ratios 0..1) except in",
        "the dcgm-exporter section, which keeps dcgm-exporter's own units. A metric a GPU does not support is left",
        "out, never exported as zero. A GPU that stops answering keeps `dlbench_gpu_info` and reports",
        "`dlbench_gpu_up 0`; its other series disappear until it answers again.",
        "",
    ]
    for group, title in _SECTIONS:
        lines += [
            f"## {title}",
            "",
            "| name | type | unit | labels | meaning | source | absent when |",
            "|---|---|---|---|---|---|---|",
        ]
        for spec in specs(group):
            cells = (
                f"`{spec.name}`",
                spec.type,
                spec.unit or "–",
                ", ".join(f"`{label}`" for label in spec.labels),
                spec.help,
                spec.source,
                spec.absent_when,
            )
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    lines += [
        "## Notes",
        "",
        "- Every series also gets Prometheus's own `job` and `instance` labels; `up` covers the exporter process.",
        "- `dlbench exporter` also serves prometheus_client's `process_*` series (`process_start_time_seconds`,",
        "  `process_resident_memory_bytes`, ...) without a `hostname` label: restarts and leaks show there.",
        "- The dcgm-exporter names carry dcgm-exporter's types (its etc/default-counters.csv): the counters among",
        "  them lack `_total`, which OpenMetrics requires of counters, so with `--dcgm-compat` `/metrics` answers in",
        "  the Prometheus text format, as dcgm-exporter does (a `name[]`-filtered request shows them as gauges). Their",
        "  label names (`UUID`, `modelName`, `Hostname`) are not snake_case, so `promtool check metrics` comments on",
        "  them; the default output has nothing to comment on.",
        "- `DCGM_FI_PROF_*` come from NVML GPM, which Hopper and newer GPUs have: before Hopper they are absent",
        "  (dcgm-exporter reads them from DCGM's profiling module); `DCGM_FI_DEV_GPU_UTIL`,",
        "  `DCGM_FI_DEV_MEM_COPY_UTIL` and the other NVML-backed names are served on every GPU.",
        "- `dlbench run --metrics-port PORT` under torchrun serves each local rank on PORT + local rank; the live",
        "  `dlbench_train_*` series carry the torchrun `rank` (0 for a single-process run).",
        "- `dlbench_gpu_xid_errors_total` counts events seen since the exporter started; alert on its increase or on",
        "  a change of `dlbench_gpu_last_xid_timestamp_seconds`, not on `DCGM_FI_DEV_XID_ERRORS > 0`, which fires",
        "  forever after one event.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlbench.exporter.catalogue", description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print docs/metrics.md")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(render_markdown())
    else:
        for spec in CATALOGUE:
            print(f"{spec.name}\t{spec.type}\t{','.join(spec.labels)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

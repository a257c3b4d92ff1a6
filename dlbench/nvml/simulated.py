"""Simulated GPUs: an NVML with the `pynvml` interface, for machines without a GPU.

A product feature, the exporter's simulated mode: `DLBENCH_FAKE_NVML=h100-sxm*8 dlbench exporter` serves the metrics of
eight idle H100s, to try the exporter, Prometheus and the dashboards without a GPU. The tests drive real `dlbench
exporter` and `dlbench validate` processes with it, and script faults through a scenario file. Never set it on a GPU
host: the exporter then reports invented GPUs.

It replaces only the functions that would call into libnvidia-ml; constants, error classes and result structures
are the real ones from the installed nvidia-ml-py, so code above it runs exactly as against a real GPU.
Selected only by `dlbench.nvml.reader.load_pynvml()` when DLBENCH_FAKE_NVML is set:

    DLBENCH_FAKE_NVML=h100-sxm,a100,rtx4090     one GPU per preset, in index order
    DLBENCH_FAKE_NVML=h100-sxm*8                eight of a kind
    DLBENCH_FAKE_NVML=/path/scenario.json       presets plus scripted values and faults, re-read when the file
                                                changes so a test can lose a GPU in a running exporter

scenario.json: {"init_error": "LIBRARY_NOT_FOUND"} or
    {"driver_version": "535.54.03", "gpus": [{"preset": "h100-sxm", "values": {"utilization_gpu": 97, "power_mw": 650000, ...},
               "faults": {"nvmlDeviceGetPowerUsage": "TIMEOUT"}, "lost": false, "xid": [79]}]}
Fault values name an NVML_ERROR_* constant without the prefix, raised on every call of that function (of every
device function for the key "*"), or:
    "UNKNOWN*1"  raised on the next call only (a transient failure), then the call answers again;
    "HANG"       the call blocks until the fault is removed from the scenario (or HANG_LIMIT_SECONDS pass).
Each code in "xid" is delivered once as an event.

What each fault reproduces, and where NVML documents it (NVML API reference, nvmlReturn_t and the function pages,
https://docs.nvidia.com/deploy/nvml-api/):
- "init_error": "DRIVER_NOT_LOADED" then removed: nvmlInit fails with NVML_ERROR_DRIVER_NOT_LOADED until the
  kernel module is loaded (boot order, a driver upgrade), then succeeds.
- "UNKNOWN" on one query: NVML_ERROR_UNKNOWN, "An internal driver error occurred", returned by a single call.
- "NO_PERMISSION" on nvmlDeviceGetTotalEnergyConsumption: NVML_ERROR_NO_PERMISSION, "The current user does not
  have permission for operation" (energy and some counters need privileges in some configurations).
- "HANG": a call that does not return; on a GPU in a bad state the driver blocks NVML callers, nvidia-smi included
  (NVIDIA/gpu-monitoring-tools issue #46: dcgm-exporter stuck on a hung GPU, the process in 'D' state;
  microsoft/pai issue #842 and PR #848: nvidia-smi hanging indefinitely under heavy GPU use).
- "lost": every call answers NVML_ERROR_GPU_IS_LOST, "The GPU has fallen off the bus or has otherwise become
  inaccessible" (XID 79).
- "NOT_SUPPORTED" added then removed: a query that becomes supported again (MIG mode switched off).
- values "memory_reserved": nvmlMemory_v2_t.reserved, "Device memory reserved for system use (driver or
  firmware)"; v1 nvmlMemory_t.used is the "Sum of Reserved and Allocated device memory".
- values "power_limit_mw": nvmlDeviceGetEnforcedPowerLimit follows `nvidia-smi -pl` at once.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import threading
import time
import types
from dataclasses import dataclass, field

import pynvml as _real

PRESETS = {
    # name, memory total, power limit (mW), max SM / memory clock (MHz), PCIe gen and width, calls it lacks,
    # NVLink links (NVML_FI_DEV_NVLINK_LINK_COUNT), power limit bounds (min, max mW; default = power_limit_mw),
    # gpm: GPM profiling metrics (Hopper and newer; nvmlGpmQueryDeviceSupport answers isSupportedDevice = 0 before)
    # H100 SXM5: 18 NVLink 4 links to the NVSwitches of an HGX board (NVIDIA H100 datasheet: "NVLink: 900GB/s",
    # 18 links x 50 GB/s); passively cooled, so no fan reading; no retired pages (row remapping since Ampere).
    "h100-sxm": dict(
        name="NVIDIA H100 80GB HBM3",
        memory_total=81559 * 2**20,
        power_limit_mw=700_000,
        sm_max_mhz=1980,
        mem_max_mhz=2619,
        pcie_gen=5,
        pcie_width=16,
        nvlinks=18,
        power_bounds_mw=(200_000, 700_000),
        gpm=True,
        unsupported=("nvmlDeviceGetFanSpeed", "retired_pages"),
    ),
    # H200 SXM: the H100's board with 141 GB HBM3e (NVIDIA H200 datasheet: 141 GB, 4.8 TB/s, up to 700 W, NVLink
    # 900 GB/s = 18 links); NVML's name as torch.cuda.get_device_name reports it ("NVIDIA H200", gpu_peaks.json);
    # 143771 MiB total as nvidia-smi shows it on H200 SXM (assumed here from the 141 GB marketing size)
    "h200": dict(
        name="NVIDIA H200",
        memory_total=143771 * 2**20,
        power_limit_mw=700_000,
        sm_max_mhz=1980,
        mem_max_mhz=3201,
        pcie_gen=5,
        pcie_width=16,
        nvlinks=18,
        power_bounds_mw=(200_000, 700_000),
        gpm=True,
        unsupported=("nvmlDeviceGetFanSpeed", "retired_pages"),
    ),
    # A100 SXM4: 12 NVLink 3 links (NVIDIA A100 datasheet: 600 GB/s)
    "a100": dict(
        name="NVIDIA A100-SXM4-80GB",
        memory_total=81920 * 2**20,
        power_limit_mw=400_000,
        sm_max_mhz=1410,
        mem_max_mhz=1593,
        pcie_gen=4,
        pcie_width=16,
        nvlinks=12,
        power_bounds_mw=(100_000, 400_000),
        unsupported=("nvmlDeviceGetFanSpeed", "retired_pages"),
    ),
    # The same A100 in MIG mode with 3g.40gb + 2g.20gb + 1g.10gb x2 (7 of its 7 slices; instance memory sizes as in
    # NVIDIA's MIG user guide, A100-SXM4-80GB profile table, in MiB)
    "a100-mig": dict(
        name="NVIDIA A100-SXM4-80GB",
        memory_total=81920 * 2**20,
        power_limit_mw=400_000,
        sm_max_mhz=1410,
        mem_max_mhz=1593,
        pcie_gen=4,
        pcie_width=16,
        nvlinks=12,
        power_bounds_mw=(100_000, 400_000),
        mig=[("3g.40gb", 2, 40192), ("2g.20gb", 3, 19968), ("1g.10gb", 9, 9728), ("1g.10gb", 10, 9728)],
        unsupported=("nvmlDeviceGetFanSpeed", "retired_pages", "nvmlDeviceGetUtilizationRates"),
    ),
    # An H100 SXM in MIG mode with 3g.40gb + 2g.20gb + 1g.10gb x2: Hopper, so GPM answers per GPU instance
    # (nvmlGpmMigSampleGet); instance ids and memory follow the A100 layout above (nominal sizes, not measured)
    "h100-mig": dict(
        name="NVIDIA H100 80GB HBM3",
        memory_total=81559 * 2**20,
        power_limit_mw=700_000,
        sm_max_mhz=1980,
        mem_max_mhz=2619,
        pcie_gen=5,
        pcie_width=16,
        nvlinks=18,
        power_bounds_mw=(200_000, 700_000),
        gpm=True,
        mig=[("3g.40gb", 2, 40192), ("2g.20gb", 3, 19968), ("1g.10gb", 9, 9728), ("1g.10gb", 10, 9728)],
        unsupported=("nvmlDeviceGetFanSpeed", "retired_pages", "nvmlDeviceGetUtilizationRates"),
    ),
    # V100 SXM2 (Volta): 6 NVLink 2 links; pages are retired (no row remapping before Ampere); no PCIe byte
    # counter fields and no GPU recovery action field on this generation (assumed here, to exercise absence)
    "v100": dict(
        name="Tesla V100-SXM2-32GB",
        memory_total=32768 * 2**20,
        power_limit_mw=300_000,
        sm_max_mhz=1530,
        mem_max_mhz=877,
        pcie_gen=3,
        pcie_width=16,
        nvlinks=6,
        power_bounds_mw=(150_000, 300_000),
        unsupported=("nvmlDeviceGetFanSpeed", "nvmlDeviceGetRemappedRows", "pcie_byte_counters", "recovery_action"),
    ),
    # consumer card: no HBM sensor, no ECC, no row remapping, no NVLink (NVML answers NOT_SUPPORTED); has a fan
    "rtx4090": dict(
        name="NVIDIA GeForce RTX 4090",
        memory_total=24564 * 2**20,
        power_limit_mw=450_000,
        sm_max_mhz=3120,
        mem_max_mhz=10501,
        pcie_gen=4,
        pcie_width=16,
        nvlinks=0,
        power_bounds_mw=(150_000, 600_000),
        unsupported=("memory_temperature", "nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetRemappedRows", "retired_pages"),
    ),
    # workstation card (NVIDIA RTX 6000 Ada Generation datasheet: 48 GB GDDR6 with ECC, 300 W, PCIe Gen4 x16, no
    # NVLink, blower fan): has ECC but ships with it off (ecc_default 0: nvmlDeviceGetDefaultEccMode answers
    # DISABLED, and ECC stays off until `nvidia-smi -e 1` and a reset), no MIG, no HBM sensor; power bounds assumed
    "rtx6000-ada": dict(
        name="NVIDIA RTX 6000 Ada Generation",
        memory_total=49140 * 2**20,
        power_limit_mw=300_000,
        sm_max_mhz=2505,
        mem_max_mhz=10001,
        pcie_gen=4,
        pcie_width=16,
        nvlinks=0,
        power_bounds_mw=(100_000, 300_000),
        ecc_default=0,
        unsupported=("memory_temperature", "retired_pages", "nvmlDeviceGetMigMode"),
    ),
}

HANG_LIMIT_SECONDS = 120.0

DEFAULT_VALUES = dict(
    utilization_gpu=0,
    utilization_memory=0,
    memory_used=512 * 2**20,
    temperature=35,
    memory_temperature=40,
    power_mw=70_000,
    sm_mhz=345,
    mem_mhz=1593,
    clocks_event_reasons=0x1,
    pstate=0,
    pcie_replay=0,
    ecc_corrected=0,
    ecc_uncorrected=0,
    remapped=(0, 0, 0, 0),
    memory_reserved=0,
    ecc_volatile_corrected=0,
    ecc_volatile_uncorrected=0,
    recovery_action=0,
    retired_sbe=0,
    retired_dbe=0,
    retired_pending=0,
    clocks_event_ns={},
    fan_percent=30,
    power_smoothing={},  # power-smoothing field name (_POWER_SMOOTHING_FIELDS) -> value
    encoder_percent=0,
    decoder_percent=0,
    pcie_tx_kbps=0,
    pcie_rx_kbps=0,
    pcie_tx_bytes=0,
    pcie_rx_bytes=0,
    pcie_gen_now=None,
    pcie_width_now=None,
    nvlink={},
    mig_memory_used=[],  # MIG instance slot -> bytes used
    mig_memory_reserved=[],  # MIG instance slot -> bytes reserved (v1 counts them as used)
    mig_processes={},  # MIG instance slot (str) -> [[pid, GPU memory bytes], ...]
    mig_gpm={},  # GPU instance id (str) -> {GPM metric name: percent}, as "gpm"
    processes=[],  # [pid, GPU memory bytes or None, SM utilisation percent or None]
    gpm={},
)  # GPM metric name without NVML_GPM_METRIC_ (e.g. "SM_UTIL") -> percent


# an R580 production driver (NVIDIA Linux driver 580.95.05); a scenario's "driver_version" replaces it. R580 is the
# CUDA 13.0 driver (nvmlSystemGetCudaDriverVersion 13000); a scenario's "cuda_driver_version" replaces that, and with
# it the field numbering the simulated driver answers (_driver_fields)
DRIVER_VERSION = "580.95.05"
CUDA_DRIVER_VERSION = 13000

_HANDLE_BASE = 0x7E5700000000  # fake device addresses: real-typed handles (c_nvmlDevice_t) never dereferenced


def _handle(index: int):
    return ctypes.cast(ctypes.c_void_p(_HANDLE_BASE + 0x1000 * index), _real.c_nvmlDevice_t)


def _address(pointer) -> int:
    return ctypes.cast(pointer, ctypes.c_void_p).value


def _index_of(handle) -> int:
    return (ctypes.cast(handle, ctypes.c_void_p).value - _HANDLE_BASE) // 0x1000


def _error(name: str) -> Exception:
    return _real.NVMLError(getattr(_real, "NVML_ERROR_" + name))


@dataclass
class SimulatedGpu:
    index: int
    preset: str
    values: dict = field(default_factory=dict)
    faults: dict = field(default_factory=dict)  # NVML function -> NVML_ERROR_* name raised on every call
    lost: bool = False
    xid_queue: list = field(default_factory=list)  # events raised before anyone registered for them
    xid_delivered: int = 0  # scenario-file XIDs already delivered
    energy_mj: float = 1_000_000.0
    energy_clock: float = field(default_factory=time.monotonic)

    def __post_init__(self):
        self.spec = PRESETS[self.preset]
        self.values = {**DEFAULT_VALUES, "power_limit_mw": self.spec["power_limit_mw"], **self.values}
        self.uuid = f"GPU-fa4e{self.index:04d}-0000-4000-8000-{self.preset.encode().hex()[:12]:0<12}"
        # a scenario's "pci_bus_id" places the GPU where a recorded PCI bus has it (a Grace board's 0008:01:00.0)
        self.pci_bus_id = self.values.get("pci_bus_id") or f"00000000:{0x18 + self.index * 0x10:02X}:00.0"

    def check(self, call: str, refresh=lambda: None) -> None:
        if self.lost:
            raise _error("GPU_IS_LOST")
        if call in self.spec["unsupported"]:
            raise _error("NOT_SUPPORTED")
        fault = self.faults.get(call, self.faults.get("*"))
        if fault == "HANG":
            deadline = time.monotonic() + HANG_LIMIT_SECONDS
            while self.faults.get(call) == "HANG" and time.monotonic() < deadline:
                time.sleep(0.02)
                refresh()
            return
        if fault is not None:
            name, _, times = fault.partition("*")
            if times:
                left = int(times) - 1
                if left > 0:
                    self.faults[call] = f"{name}*{left}"
                else:
                    del self.faults[call]
            raise _error(name)

    def energy(self) -> int:
        # the counter integrates the scripted power, as the real one integrates the real draw
        now = time.monotonic()
        self.energy_mj += self.values["power_mw"] * (now - self.energy_clock)
        self.energy_clock = now
        return int(self.energy_mj)


class SimulatedNvml(types.ModuleType):
    """Module-shaped object: attribute lookups fall back to the real pynvml for constants, errors and structs."""

    def __init__(self, gpus: list[SimulatedGpu], init_error: str | None = None, scenario_path: str | None = None):
        super().__init__("pynvml")
        self.gpus = gpus
        self.init_error = init_error
        self.scenario_path = scenario_path
        self._scenario_mtime = None
        self._initialised = 0
        self._event_sets: list[list] = []
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self.calls = 0  # every device call, for tests that want to see work being done
        # sample address -> ((GPU index, GPU instance id or None), scripted values) once taken; None before
        self._gpm_samples: dict[int, tuple | None] = {}
        self.driver_version = DRIVER_VERSION
        self.cuda_driver_version = CUDA_DRIVER_VERSION

    def __getattr__(self, name):
        return getattr(_real, name)

    # --- scenario file --------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        if not self.scenario_path:
            return
        with self._refresh_lock:  # GPUs are read from several threads at once, as with the real library
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        try:
            mtime = os.stat(self.scenario_path).st_mtime_ns
        except OSError:
            return
        if mtime == self._scenario_mtime:
            return
        self._scenario_mtime = mtime
        try:
            scenario = json.loads(open(self.scenario_path, encoding="utf-8").read())
        except ValueError:
            return  # a half-written file; the next call sees the whole one
        self.init_error = scenario.get("init_error")
        self.driver_version = scenario.get("driver_version", DRIVER_VERSION)
        self.cuda_driver_version = int(scenario.get("cuda_driver_version", CUDA_DRIVER_VERSION))
        for index, entry in enumerate(scenario.get("gpus", [])):
            if index >= len(self.gpus):
                self.gpus.append(SimulatedGpu(index, entry["preset"]))
            gpu = self.gpus[index]
            gpu.values.update(entry.get("values", {}))
            gpu.faults = dict(entry.get("faults", {}))
            gpu.lost = bool(entry.get("lost", False))
            new = entry.get("xid", [])[gpu.xid_delivered :]
            gpu.xid_delivered += len(new)
            for code in new:
                self.inject_xid(index, int(code))

    def _gpu(self, handle, call: str) -> SimulatedGpu:
        if not self._initialised:
            raise _error("UNINITIALIZED")
        self._refresh()
        self.calls += 1
        gpu = self.gpus[_index_of(handle)]
        gpu.check(call, self._refresh)
        return gpu

    # --- system ---------------------------------------------------------------------------------------------
    def nvmlInit(self):
        self._refresh()
        if self.init_error:
            raise _error(self.init_error)
        self._initialised += 1

    def nvmlInitWithFlags(self, flags):
        self.nvmlInit()

    def nvmlShutdown(self):
        if not self._initialised:
            raise _error("UNINITIALIZED")
        self._initialised -= 1

    def nvmlSystemGetDriverVersion(self):
        return self.driver_version

    def nvmlSystemGetCudaDriverVersion(self):
        return self.cuda_driver_version

    def nvmlDeviceGetCount(self):
        if not self._initialised:
            raise _error("UNINITIALIZED")
        self._refresh()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):
        if not self._initialised:
            raise _error("UNINITIALIZED")
        if not 0 <= index < len(self.gpus):
            raise _error("INVALID_ARGUMENT")
        return _handle(index)

    def nvmlDeviceGetHandleByUUID(self, uuid):
        """NVML_ERROR_NOT_FOUND for a UUID no GPU has, as nvmlDeviceGetHandleByUUID documents."""
        if not self._initialised:
            raise _error("UNINITIALIZED")
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return _handle(gpu.index)
        raise _error("NOT_FOUND")

    def nvmlDeviceGetIndex(self, handle):
        return self._gpu(handle, "nvmlDeviceGetIndex").index

    # --- identity -------------------------------------------------------------------------------------------
    def nvmlDeviceGetName(self, handle):
        gpu, slot = self._gpu(handle, "nvmlDeviceGetName"), _address(handle) % 0x1000 // 0x10 - 1
        return gpu.spec["name"] + (f" MIG {gpu.spec['mig'][slot][0]}" if slot >= 0 else "")

    def nvmlDeviceGetUUID(self, handle):
        gpu, slot = self._gpu(handle, "nvmlDeviceGetUUID"), _address(handle) % 0x1000 // 0x10 - 1
        return gpu.uuid if slot < 0 else f"MIG-{gpu.uuid[4:-4]}{slot:04d}"

    def nvmlDeviceGetPciInfo(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetPciInfo")
        info = _real.nvmlPciInfo_t()
        info.busId = gpu.pci_bus_id.encode()
        return info

    # --- readings -------------------------------------------------------------------------------------------
    def nvmlDeviceGetUtilizationRates(self, handle):
        values = self._gpu(handle, "nvmlDeviceGetUtilizationRates").values
        return _real.c_nvmlUtilization_t(gpu=int(values["utilization_gpu"]), memory=int(values["utilization_memory"]))

    def nvmlDeviceGetMemoryInfo(self, handle, version=None):
        # "memory_used" is what processes allocated; v1 adds the reserved memory to it, v2 reports it apart
        gpu, slot = self._gpu(handle, "nvmlDeviceGetMemoryInfo"), _address(handle) % 0x1000 // 0x10 - 1
        if slot >= 0:  # a MIG instance: its own slice of the memory, with its own reserved part
            allocated = int(gpu.values["mig_memory_used"][slot]) if slot < len(gpu.values["mig_memory_used"]) else 0
            reserved = (
                int(gpu.values["mig_memory_reserved"][slot]) if slot < len(gpu.values["mig_memory_reserved"]) else 0
            )
            total = gpu.spec["mig"][slot][2] * 2**20
        else:
            total, allocated = gpu.spec["memory_total"], int(gpu.values["memory_used"])
            reserved = int(gpu.values["memory_reserved"])
        if not version:
            return _real.c_nvmlMemory_t(total=total, free=total - allocated - reserved, used=allocated + reserved)
        return _real.c_nvmlMemory_v2_t(
            version=version, total=total, reserved=reserved, free=total - allocated - reserved, used=allocated
        )

    def nvmlDeviceGetTemperature(self, handle, sensor):
        return int(self._gpu(handle, "nvmlDeviceGetTemperature").values["temperature"])

    def nvmlDeviceGetFieldValues(self, handle, field_ids):
        """Per-value return codes, as NVML: an unknown or unsupported field answers NOT_SUPPORTED on its own.

        Field ids may be plain ids or (field id, scope id) tuples, as pynvml.nvmlDeviceGetFieldValues accepts.
        """
        gpu = self._gpu(handle, "nvmlDeviceGetFieldValues")
        values = (_real.c_nvmlFieldValue_t * len(field_ids))()
        for slot, field_id in zip(values, field_ids):
            field_id, scope = field_id if isinstance(field_id, tuple) else (field_id, 0)
            slot.fieldId, slot.scopeId = field_id, scope
            value = _field(gpu, field_id, scope, self.cuda_driver_version)
            if value is None:
                slot.nvmlReturn = _real.NVML_ERROR_NOT_SUPPORTED
            else:
                slot.nvmlReturn = _real.NVML_SUCCESS
                slot.valueType = _real.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
                slot.value.ullVal = int(value)
        return values

    def nvmlDeviceGetPowerUsage(self, handle):
        return int(self._gpu(handle, "nvmlDeviceGetPowerUsage").values["power_mw"])

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return int(self._gpu(handle, "nvmlDeviceGetEnforcedPowerLimit").values["power_limit_mw"])

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return self._gpu(handle, "nvmlDeviceGetTotalEnergyConsumption").energy()

    def nvmlDeviceGetClockInfo(self, handle, clock_type):
        values = self._gpu(handle, "nvmlDeviceGetClockInfo").values
        return int(values["sm_mhz"] if clock_type == _real.NVML_CLOCK_SM else values["mem_mhz"])

    def nvmlDeviceGetMaxClockInfo(self, handle, clock_type):
        spec = self._gpu(handle, "nvmlDeviceGetMaxClockInfo").spec
        return spec["sm_max_mhz"] if clock_type == _real.NVML_CLOCK_SM else spec["mem_max_mhz"]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        return int(self._gpu(handle, "nvmlDeviceGetCurrentClocksEventReasons").values["clocks_event_reasons"])

    def nvmlDeviceGetPerformanceState(self, handle):
        return int(self._gpu(handle, "nvmlDeviceGetPerformanceState").values["pstate"])

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetCurrPcieLinkGeneration")
        return gpu.values["pcie_gen_now"] or gpu.spec["pcie_gen"]  # "pcie_gen_now": a link trained down

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetCurrPcieLinkWidth")
        return gpu.values["pcie_width_now"] or gpu.spec["pcie_width"]

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle):
        return self._gpu(handle, "nvmlDeviceGetMaxPcieLinkGeneration").spec["pcie_gen"]

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle):
        return self._gpu(handle, "nvmlDeviceGetMaxPcieLinkWidth").spec["pcie_width"]

    def nvmlDeviceGetPcieThroughput(self, device, counter):
        values = self._gpu(device, "nvmlDeviceGetPcieThroughput").values
        return int(values["pcie_tx_kbps" if counter == _real.NVML_PCIE_UTIL_TX_BYTES else "pcie_rx_kbps"])

    def nvmlDeviceGetPcieReplayCounter(self, handle):
        return int(self._gpu(handle, "nvmlDeviceGetPcieReplayCounter").values["pcie_replay"])

    def nvmlDeviceGetTotalEccErrors(self, handle, error_type, counter_type):
        gpu = self._gpu(handle, "nvmlDeviceGetTotalEccErrors")
        values = gpu.values
        # NVML API reference, nvmlDeviceGetTotalEccErrors: "Requires ECC Mode to be enabled"; with it off (a
        # workstation card as it ships, or "ecc_mode": [0, ...]) there are no counts to read
        if not values.get("ecc_mode", [gpu.spec.get("ecc_default", 1)])[0]:
            raise _error("NOT_SUPPORTED")
        prefix = "ecc_volatile_" if counter_type == _real.NVML_VOLATILE_ECC else "ecc_"
        return int(
            values[prefix + ("corrected" if error_type == _real.NVML_MEMORY_ERROR_TYPE_CORRECTED else "uncorrected")]
        )

    def nvmlDeviceGetFanSpeed(self, handle):
        return int(self._gpu(handle, "nvmlDeviceGetFanSpeed").values["fan_percent"])

    def nvmlDeviceGetEncoderUtilization(self, handle):
        return [int(self._gpu(handle, "nvmlDeviceGetEncoderUtilization").values["encoder_percent"]), 167000]

    def nvmlDeviceGetDecoderUtilization(self, handle):
        return [int(self._gpu(handle, "nvmlDeviceGetDecoderUtilization").values["decoder_percent"]), 167000]

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle):
        return self._gpu(handle, "nvmlDeviceGetPowerManagementDefaultLimit").spec["power_limit_mw"]

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle):
        return list(self._gpu(handle, "nvmlDeviceGetPowerManagementLimitConstraints").spec["power_bounds_mw"])

    def nvmlDeviceGetRemappedRows(self, handle):
        return tuple(int(v) for v in self._gpu(handle, "nvmlDeviceGetRemappedRows").values["remapped"])

    # --- MIG (pynvml.py: nvmlDeviceGetMigMode, nvmlDeviceGetMaxMigDeviceCount, nvmlDeviceGetMigDeviceHandleByIndex,
    # nvmlDeviceGetGpuInstanceId, nvmlDeviceGetComputeInstanceId); a MIG handle is its parent's address + 0x10 * slot
    def nvmlDeviceGetMigMode(self, device):
        gpu = self._gpu(device, "nvmlDeviceGetMigMode")
        if not gpu.preset.startswith("a100") and not gpu.preset.startswith("h100"):
            raise _error("NOT_SUPPORTED")
        mode = int("mig" in gpu.spec)
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, device):
        return 7 if "mig" in self._gpu(device, "nvmlDeviceGetMaxMigDeviceCount").spec else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, device, index):
        gpu = self._gpu(device, "nvmlDeviceGetMigDeviceHandleByIndex")
        if index >= len(gpu.spec.get("mig", ())):
            raise _error("NOT_FOUND")
        return ctypes.cast(ctypes.c_void_p(_address(device) + 0x10 * (index + 1)), _real.c_nvmlDevice_t)

    def nvmlDeviceGetGpuInstanceId(self, device):
        gpu, slot = self._mig(device, "nvmlDeviceGetGpuInstanceId")
        return gpu.spec["mig"][slot][1]

    def nvmlDeviceGetComputeInstanceId(self, device):
        self._mig(device, "nvmlDeviceGetComputeInstanceId")
        return 0  # one compute instance spanning each GPU instance, the default layout

    def _mig(self, handle, call: str) -> tuple[SimulatedGpu, int]:
        slot = _address(handle) % 0x1000 // 0x10 - 1
        if slot < 0:
            raise _error("INVALID_ARGUMENT")  # a whole-GPU handle where a MIG handle is needed
        return self._gpu(handle, call), slot

    # --- processes (pynvml.py: nvmlDeviceGetComputeRunningProcesses -> nvmlStructToFriendlyObject of
    # c_nvmlProcessInfo_v3_t, usedGpuMemory None when NVML answers NVML_VALUE_NOT_AVAILABLE; nvmlDeviceGetProcessUtilization
    # -> c_nvmlProcessUtilizationSample_t newer than the timestamp, NVML_ERROR_NOT_FOUND when there are none)
    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        """On a MIG device handle, only the processes in that instance (NVML: per-instance information comes from
        MIG device handles); on the parent, the scripted "processes"."""
        gpu, slot = self._gpu(handle, "nvmlDeviceGetComputeRunningProcesses"), _address(handle) % 0x1000 // 0x10 - 1
        scripted = (
            gpu.values["processes"]
            if slot < 0
            else [(pid, memory, None) for pid, memory in gpu.values["mig_processes"].get(str(slot), [])]
        )
        processes = []
        for pid, memory, _ in scripted:
            info = _real.nvmlStructToFriendlyObject(_real.c_nvmlProcessInfo_v3_t(pid=int(pid), usedGpuMemory=0))
            info.usedGpuMemory = None if memory is None else int(memory)
            processes.append(info)
        return processes

    def nvmlDeviceGetProcessUtilization(self, handle, time_stamp):
        gpu = self._gpu(handle, "nvmlDeviceGetProcessUtilization")
        now_us = int(time.time() * 1e6)
        samples = [
            _real.c_nvmlProcessUtilizationSample_t(pid=int(pid), timeStamp=now_us, smUtil=int(sm))
            for pid, _, sm in gpu.values["processes"]
            if sm is not None and now_us > time_stamp
        ]
        if not samples:
            raise _error("NOT_FOUND")
        return samples

    # --- GPM (pynvml.py: nvmlGpmQueryDeviceSupport, nvmlGpmSampleAlloc/Get/Free, nvmlGpmMetricsGet) ----------
    def nvmlGpmQueryDeviceSupport(self, device):
        gpu = self._gpu(device, "nvmlGpmQueryDeviceSupport")
        support = _real.c_nvmlGpmSupport_t()
        support.version = _real.NVML_GPM_SUPPORT_VERSION
        support.isSupportedDevice = int(gpu.spec.get("gpm", False))
        return support

    def nvmlGpmSampleAlloc(self):
        sample = _real.c_nvmlGpmSample_t(_real.struct_c_nvmlGpmSample_t())  # opaque in NVML; only its address matters
        self._gpm_samples[_address(sample)] = None
        return sample

    def nvmlGpmSampleFree(self, sample):
        if self._gpm_samples.pop(_address(sample), False) is False:
            # in C a double free is undefined behaviour, not an error code; the fake refuses it so a test sees it
            raise _error("INVALID_ARGUMENT")

    def nvmlGpmSampleGet(self, device, sample):
        gpu = self._gpu(device, "nvmlGpmSampleGet")
        if not gpu.spec.get("gpm"):
            raise _error("NOT_SUPPORTED")
        # a GPU in MIG mode is sampled per instance (nvmlGpmMigSampleGet); what its whole-GPU sample reports is not
        # documented, so unscripted metrics stay unsupported there rather than idle
        idle = None if "mig" in gpu.spec else 0.0
        self._take_gpm_sample(sample, (gpu.index, None), gpu.values["gpm"], idle)
        return sample

    def nvmlGpmMigSampleGet(self, device, gpuInstanceId, gpmSample):
        """A sample of one MIG GPU instance, asked of its parent GPU's handle ("device: Device to get samples for",
        "gpuInstanceId: MIG GPU Instance ID", NVML API reference, GPM Functions). Refusing a MIG device handle and an
        unknown instance id (INVALID_ARGUMENT, NOT_FOUND) is this fake's assumption: NVML does not document it."""
        gpu = self._gpu(device, "nvmlGpmMigSampleGet")
        if _address(device) % 0x1000:
            raise _error("INVALID_ARGUMENT")
        if not gpu.spec.get("gpm"):
            raise _error("NOT_SUPPORTED")
        if gpuInstanceId not in [entry[1] for entry in gpu.spec.get("mig", ())]:
            raise _error("NOT_FOUND")
        self._take_gpm_sample(gpmSample, (gpu.index, gpuInstanceId), gpu.values["mig_gpm"].get(str(gpuInstanceId), {}))
        return gpmSample

    def _take_gpm_sample(self, sample, owner: tuple, scripted: dict, idle: float | None = 0.0) -> None:
        """`idle`: what a metric the scenario does not script reads (None: NOT_SUPPORTED)."""
        if _address(sample) not in self._gpm_samples:
            raise _error("INVALID_ARGUMENT")  # a buffer never allocated, or already freed
        self._gpm_samples[_address(sample)] = (owner, dict(scripted), idle)

    def live_gpm_samples(self) -> int:
        """GPM sample buffers allocated and not yet freed (a leak grows this)."""
        return len(self._gpm_samples)

    def nvmlGpmMetricsGet(self, request):
        """Each metric is what the scripted "gpm" values say at the second sample (the activity in between).

        A metric the scenario does not script reads 0, as on an idle GPU: GPM metrics are rates of counters between
        two samples (NVML API reference, "GPM Functions"), and a GPU that did nothing in between counted nothing. A
        metric scripted as null answers NVML_ERROR_NOT_SUPPORTED (one the GPU does not offer), as do unscripted
        metrics of a whole GPU in MIG mode.
        """
        first, second = (self._gpm_samples.get(_address(s)) for s in (request.sample1, request.sample2))
        if request.version != _real.NVML_GPM_METRICS_GET_VERSION:
            raise _error("ARGUMENT_VERSION_MISMATCH")
        if first is None or second is None or first[0] != second[0]:
            raise _error("INVALID_ARGUMENT")  # two samples of one GPU, both taken, are required
        names = {
            getattr(_real, name): name[len("NVML_GPM_METRIC_") :]
            for name in dir(_real)
            if name.startswith("NVML_GPM_METRIC_") and isinstance(getattr(_real, name), int)
        }
        for slot in request.metrics[: request.numMetrics]:
            percent = second[1].get(names.get(slot.metricId, ""), second[2])
            slot.nvmlReturn = _real.NVML_SUCCESS if percent is not None else _real.NVML_ERROR_NOT_SUPPORTED
            slot.value = float(percent or 0.0)
        return request

    # --- XID events -----------------------------------------------------------------------------------------
    def nvmlEventSetCreate(self):
        event_set = _EventSet()
        self._event_sets.append(event_set)
        return event_set

    def nvmlDeviceRegisterEvents(self, handle, event_types, event_set):
        gpu = self._gpu(handle, "nvmlDeviceRegisterEvents")
        event_set.indices.add(gpu.index)
        event_set.extend((gpu.index, code) for code in gpu.xid_queue)
        gpu.xid_queue.clear()

    def nvmlEventSetWait_v2(self, event_set, timeout_ms):
        self._refresh()
        with self._lock:
            if not event_set:
                if timeout_ms:
                    time.sleep(timeout_ms / 1000)
                raise _error("TIMEOUT")
            index, code = event_set.pop(0)
        data = _real.c_nvmlEventData_t()
        data.device = _handle(index)
        data.eventType = _real.nvmlEventTypeXidCriticalError
        data.eventData = code
        return data

    def nvmlEventSetFree(self, event_set):
        if event_set in self._event_sets:
            self._event_sets.remove(event_set)

    # --- test helpers ---------------------------------------------------------------------------------------
    def inject_xid(self, index: int, code: int) -> None:
        """Deliver an XID event for GPU `index`, as the driver would after logging it."""
        registered = [event_set for event_set in self._event_sets if index in event_set.indices]
        for event_set in registered:
            event_set.append((index, code))
        if not registered:
            self.gpus[index].xid_queue.append(code)


class _EventSet(list):
    def __init__(self):
        super().__init__()
        self.indices: set[int] = set()


# The field numbering of the simulated driver, by the CUDA version it reports: the numbers the NVML header of that
# generation gives, as NVIDIA publishes it (NVIDIA/go-nvml gen/nvml/nvml.h, one commit per CUDA release; NVIDIA's own
# mock driver, NVIDIA/k8s-test-infra, pins the same ids for driver 580.65.06), independent of the installed binding:
# - CUDA 12.8 (R570): power smoothing at 251-268, no clock-event duration counters;
# - CUDA 12.9 and 13.0 (R575, R580): clock-event durations at 251-253, power sync 254-255, power smoothing 256-273;
# - CUDA 13.1 and later (R590 on): power smoothing back at 251-268, clock-event durations at 269-271.
# The SW power cap and sync boost counters are the older NVML_FI_DEV_PERF_POLICY_POWER / _SYNC_BOOST (74, 76) in all.
_POWER_SMOOTHING_FIELDS = (  # nvml.h "Power Smoothing" block, in order
    "enabled",
    "priv_lvl",
    "imm_ramp_down_enabled",
    "applied_tmp_ceil",
    "applied_tmp_floor",
    "max_percent_tmp_floor_setting",
    "min_percent_tmp_floor_setting",
    "hw_circuitry_percent_lifetime_remaining",
    "max_num_preset_profiles",
    "profile_percent_tmp_floor",
    "profile_ramp_up_rate",
    "profile_ramp_down_rate",
    "profile_ramp_down_hyst_val",
    "active_preset_profile",
    "admin_override_percent_tmp_floor",
    "admin_override_ramp_up_rate",
    "admin_override_ramp_down_rate",
    "admin_override_ramp_down_hyst_val",
)
_SLOWDOWN_REASONS = ("sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")


@functools.lru_cache(maxsize=None)
def _driver_fields(cuda_version: int) -> dict[int, tuple[str, str]]:
    """field id -> ("clocks_event_ns" or "power_smoothing", name) in the simulated driver's numbering."""
    fields = {74: ("clocks_event_ns", "sw_power_cap"), 76: ("clocks_event_ns", "sync_boost")}
    if cuda_version >= 13010:
        clocks, smoothing = 269, 251
    elif cuda_version >= 12090:
        clocks, smoothing = 251, 256
    elif cuda_version >= 12080:
        clocks, smoothing = None, 251
    else:
        clocks = smoothing = None
    if clocks is not None:
        fields.update({clocks + i: ("clocks_event_ns", name) for i, name in enumerate(_SLOWDOWN_REASONS)})
    if smoothing is not None:
        fields.update({smoothing + i: ("power_smoothing", name) for i, name in enumerate(_POWER_SMOOTHING_FIELDS)})
    return fields


_NVLINK_FIELDS = {  # per-link value name in values["nvlink"][link] (default: an active, quiet link)
    _real.NVML_FI_DEV_NVLINK_GET_STATE: ("state", _real.NVML_NVLINK_STATE_ACTIVE),
    _real.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX: ("tx_kib", 0),
    _real.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX: ("rx_kib", 0),
    _real.NVML_FI_DEV_NVLINK_ERROR_DL_REPLAY: ("replay", 0),
    _real.NVML_FI_DEV_NVLINK_ERROR_DL_RECOVERY: ("recovery", 0),
    _real.NVML_FI_DEV_NVLINK_ERROR_DL_CRC: ("crc", 0),
}
_RETIRED_FIELDS = {
    _real.NVML_FI_DEV_RETIRED_SBE: "retired_sbe",
    _real.NVML_FI_DEV_RETIRED_DBE: "retired_dbe",
    _real.NVML_FI_DEV_RETIRED_PENDING: "retired_pending",
}
_PCIE_FIELDS = {
    _real.NVML_FI_DEV_PCIE_COUNT_TX_BYTES: "pcie_tx_bytes",
    _real.NVML_FI_DEV_PCIE_COUNT_RX_BYTES: "pcie_rx_bytes",
}


def _field(gpu: SimulatedGpu, field_id: int, scope: int, cuda_version: int = CUDA_DRIVER_VERSION):
    """The value NVML would give for one field of this GPU, or None for NOT_SUPPORTED."""
    values, unsupported = gpu.values, gpu.spec["unsupported"]
    kind, name = _driver_fields(cuda_version).get(field_id, (None, None))
    if kind == "clocks_event_ns":
        return values["clocks_event_ns"].get(name, 0)
    if kind == "power_smoothing":  # a GPU with power smoothing (Blackwell): only what the scenario sets
        return values["power_smoothing"].get(name)
    if field_id == _real.NVML_FI_DEV_MEMORY_TEMP and "memory_temperature" not in unsupported:
        return values["memory_temperature"]
    if field_id == _real.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION and "recovery_action" not in unsupported:
        return values["recovery_action"]
    if field_id in _RETIRED_FIELDS and "retired_pages" not in unsupported:
        return values[_RETIRED_FIELDS[field_id]]
    if field_id in _PCIE_FIELDS and "pcie_byte_counters" not in unsupported:
        return values[_PCIE_FIELDS[field_id]]
    if field_id == _real.NVML_FI_DEV_NVLINK_LINK_COUNT:
        return gpu.spec["nvlinks"] or None
    # NVLink-C2C to a Grace CPU: the link count where the preset (or the scenario's "c2c_links") has one, each link's
    # status (1 active, 0 inactive) from values["c2c_status"][link]; NOT_SUPPORTED on GPUs without C2C
    c2c_links = values.get("c2c_links", gpu.spec.get("c2c_links"))
    if field_id == _real.NVML_FI_DEV_C2C_LINK_COUNT:
        return c2c_links
    if field_id == _real.NVML_FI_DEV_C2C_LINK_GET_STATUS and c2c_links and scope < c2c_links:
        return values.get("c2c_status", {}).get(str(scope), 1)
    if field_id in _NVLINK_FIELDS and scope < gpu.spec["nvlinks"]:
        name, default = _NVLINK_FIELDS[field_id]
        return values["nvlink"].get(str(scope), {}).get(name, default)
    return None


# --- the calls `dlbench validate` reads once per start -------------------------------------------------------
# The NVML calls `dlbench validate` reads on top of those the simulation above answers (SimulatedNvmlWithStatic).
#
# Scripted through the same scenario "values" as the simulation above (the module docstring), with these keys:
#   persistence (1/0), ecc_mode ([current, pending], 1 = enabled; default: both the preset's ecc_default, itself 1
#   unless the preset says otherwise), mig_mode ([current, pending]),
#   pcie_gen_current / pcie_width_current (the link as trained now; default the preset's maximum),
#   retired_pages ([single-bit-cause count, double-bit-cause count]), retired_pages_pending (1/0),
#   vbios (the VBIOS version string; default VBIOS below), fabric_state / fabric_status (nvmlGpuFabricState_t and
#   nvmlReturn_t of the fabric registration; default 3 COMPLETED / 0 SUCCESS on Hopper presets (h100*, h200), NOT_SUPPORTED on others).
# The NVLink links (state, CRC / replay / recovery counters) and the power limits are the telemetry simulation's
# ("nvlink" and "power_limit_mw" values; the default limit is the preset's).
# What each reproduces (pynvml from nvidia-ml-py, NVML API reference "Device Queries",
# https://docs.nvidia.com/deploy/nvml-api/group__nvmlDeviceQueries.html):
#   nvmlDeviceGetPersistenceMode -> NVML_FEATURE_ENABLED/DISABLED;
#   nvmlDeviceGetEccMode -> (current, pending), NOT_SUPPORTED on GeForce cards;
#   nvmlDeviceGetDefaultEccMode -> [the mode the card ships with]: enabled on data-centre cards, disabled on
#   workstation cards (RTX / Quadro), NOT_SUPPORTED without ECC;
#   nvmlDeviceGetMigMode -> (current, pending) NVML_DEVICE_MIG_ENABLE/DISABLE, NOT_SUPPORTED before Ampere A100/A30
#   and on GeForce;
#   nvmlDeviceGetMaxPcieLinkGeneration/Width -> the best link the GPU and the system can train (the preset's);
#   nvmlDeviceGetCurrPcieLinkGeneration/Width -> the link now (idle GPUs train down to save power);
#   nvmlDeviceGetRetiredPages(cause) -> list of page addresses; NOT_SUPPORTED on GPUs with row remapping only
#   (the simulation answers for every ECC card, with zero pages by default);
#   nvmlDeviceGetVbiosVersion -> text such as nvidia-smi prints under "VBIOS Version";
#   nvmlDeviceGetGpuFabricInfo(device, byref(c_nvmlGpuFabricInfo_t)) -> fills state and status; "For Hopper or
#   newer fully supported devices" (NVML API reference), NOT_SUPPORTED before.

# The VBIOS an HGX H100 fleet was held to in imbue-ai/cluster-health (health_checks/config.json: 96.00.99.00.01);
# the others are illustrative values in the same printed form.
VBIOS = {
    "h100-sxm": "96.00.99.00.01",
    "h100-mig": "96.00.99.00.01",
    "h200": "96.00.b3.00.01",
    "a100": "92.00.45.00.06",
    "a100-mig": "92.00.45.00.06",
    "v100": "88.00.43.00.01",
    "rtx4090": "95.02.18.80.5f",
    "rtx6000-ada": "95.02.5d.00.01",
}


class SimulatedNvmlWithStatic(SimulatedNvml):
    """The simulation plus the calls `dlbench validate` reads once per start (dlbench/nvml/static.py).

    A subclass chosen at construction (`from_spec(..., static_calls=True)`), not merged into SimulatedNvml: its
    PCIe-link and MIG-mode answers follow the validation scenario keys, which the exporter's simulated GPUs do not
    use (an a100-mig preset reports MIG mode from its instances there).
    """

    def _ecc_card(self, gpu) -> bool:
        return "nvmlDeviceGetTotalEccErrors" not in gpu.spec["unsupported"]

    def nvmlDeviceGetPersistenceMode(self, handle):
        return int(self._gpu(handle, "nvmlDeviceGetPersistenceMode").values.get("persistence", 1))

    def nvmlDeviceGetEccMode(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetEccMode")
        if not self._ecc_card(gpu):
            raise _error("NOT_SUPPORTED")
        default = gpu.spec.get("ecc_default", 1)
        return list(gpu.values.get("ecc_mode", [default, default]))

    def nvmlDeviceGetDefaultEccMode(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetDefaultEccMode")
        if not self._ecc_card(gpu):
            raise _error("NOT_SUPPORTED")
        return [gpu.spec.get("ecc_default", 1)]

    def nvmlDeviceGetMigMode(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetMigMode")  # NOT_SUPPORTED where the preset lists it (workstation cards)
        if not self._ecc_card(gpu):  # the GeForce preset: no MIG either
            raise _error("NOT_SUPPORTED")
        return list(gpu.values.get("mig_mode", [0, 0]))

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle):
        return self._gpu(handle, "nvmlDeviceGetMaxPcieLinkGeneration").spec["pcie_gen"]

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle):
        return self._gpu(handle, "nvmlDeviceGetMaxPcieLinkWidth").spec["pcie_width"]

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetCurrPcieLinkGeneration")
        return int(gpu.values.get("pcie_gen_current", gpu.spec["pcie_gen"]))

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetCurrPcieLinkWidth")
        return int(gpu.values.get("pcie_width_current", gpu.spec["pcie_width"]))

    def nvmlDeviceGetRetiredPages(self, handle, cause):
        gpu = self._gpu(handle, "nvmlDeviceGetRetiredPages")
        if not self._ecc_card(gpu):
            raise _error("NOT_SUPPORTED")
        single, double = gpu.values.get("retired_pages", [0, 0])
        count = single if cause == _real.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS else double
        return [0x1000 * (i + 1) for i in range(int(count))]

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetRetiredPagesPendingStatus")
        if not self._ecc_card(gpu):
            raise _error("NOT_SUPPORTED")
        return int(gpu.values.get("retired_pages_pending", 0))

    def nvmlDeviceGetVbiosVersion(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetVbiosVersion")
        return gpu.values.get("vbios", VBIOS[gpu.preset])

    def nvmlDeviceGetGpuFabricInfo(self, handle, info_pointer):
        gpu = self._gpu(handle, "nvmlDeviceGetGpuFabricInfo")
        if not gpu.preset.startswith(("h100", "h200")):
            raise _error("NOT_SUPPORTED")
        info = info_pointer._obj  # ctypes.byref(c_nvmlGpuFabricInfo_t()), as the real binding is called
        info.state = int(gpu.values.get("fabric_state", _real.NVML_GPU_FABRIC_STATE_COMPLETED))
        info.status = int(gpu.values.get("fabric_status", _real.NVML_SUCCESS))
        return _real.NVML_SUCCESS


def from_spec(spec: str, static_calls: bool = False) -> SimulatedNvml:
    """A SimulatedNvml from the DLBENCH_FAKE_NVML value (see the module docstring); `static_calls`: one that also
    answers what `dlbench validate` reads once per start (SimulatedNvmlWithStatic)."""
    kind = SimulatedNvmlWithStatic if static_calls else SimulatedNvml
    if spec.endswith(".json"):
        fake = kind([], scenario_path=spec)
        fake._refresh()
        return fake
    gpus: list[SimulatedGpu] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        preset, _, count = part.partition("*")
        if preset not in PRESETS:
            raise ValueError(f"DLBENCH_FAKE_NVML: unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        for _ in range(int(count or 1)):
            gpus.append(SimulatedGpu(len(gpus), preset))
    return kind(gpus)

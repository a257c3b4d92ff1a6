"""TEST-ONLY: a simulated NVML with the `pynvml` interface, for machines without a GPU.

It replaces only the functions that would call into libnvidia-ml; constants, error classes and result structures
are the real ones from the installed nvidia-ml-py, so code above it runs exactly as against a real GPU.
Selected only by `dlbench.telemetry.nvml.load_pynvml()` when DLBENCH_FAKE_NVML is set:

    DLBENCH_FAKE_NVML=h100-sxm,a100,rtx4090     one GPU per preset, in index order
    DLBENCH_FAKE_NVML=h100-sxm*8                eight of a kind
    DLBENCH_FAKE_NVML=/path/scenario.json       presets plus scripted values and faults, re-read when the file
                                                changes so a test can lose a GPU in a running exporter

scenario.json: {"init_error": "LIBRARY_NOT_FOUND"} or
    {"driver_version": "535.54.03", "gpus": [{"preset": "h100-sxm", "values": {"utilization_gpu": 97, "power_mw": 650000, ...},
               "faults": {"nvmlDeviceGetPowerUsage": "TIMEOUT"}, "lost": false, "xid": [79]}]}
Fault values name an NVML_ERROR_* constant without the prefix, raised on every call of that function, or:
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
import json
import os
import threading
import time
import types
from dataclasses import dataclass, field

import pynvml as _real

PRESETS = {
    # name, memory total, power limit (mW), max SM / memory clock (MHz), PCIe gen and width, calls it lacks
    "h100-sxm": dict(name="NVIDIA H100 80GB HBM3", memory_total=81559 * 2**20, power_limit_mw=700_000,
                     sm_max_mhz=1980, mem_max_mhz=2619, pcie_gen=5, pcie_width=16, unsupported=()),
    "a100": dict(name="NVIDIA A100-SXM4-80GB", memory_total=81920 * 2**20, power_limit_mw=400_000,
                 sm_max_mhz=1410, mem_max_mhz=1593, pcie_gen=4, pcie_width=16, unsupported=()),
    # consumer card: no HBM sensor, no ECC, no row remapping (NVML answers NOT_SUPPORTED)
    "rtx4090": dict(name="NVIDIA GeForce RTX 4090", memory_total=24564 * 2**20, power_limit_mw=450_000,
                    sm_max_mhz=3120, mem_max_mhz=10501, pcie_gen=4, pcie_width=16,
                    unsupported=("memory_temperature", "nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetRemappedRows")),
}

HANG_LIMIT_SECONDS = 120.0

DEFAULT_VALUES = dict(utilization_gpu=0, utilization_memory=0, memory_used=512 * 2**20, temperature=35,
                      memory_temperature=40, power_mw=70_000, sm_mhz=345, mem_mhz=1593,
                      clocks_event_reasons=0x1, pstate=0, pcie_replay=0, ecc_corrected=0, ecc_uncorrected=0,
                      remapped=(0, 0, 0, 0), memory_reserved=0)


# an R580 production driver (NVIDIA Linux driver 580.95.05); a scenario's "driver_version" replaces it
DRIVER_VERSION = "580.95.05"

_HANDLE_BASE = 0x7E5700000000  # fake device addresses: real-typed handles (c_nvmlDevice_t) never dereferenced


def _handle(index: int):
    return ctypes.cast(ctypes.c_void_p(_HANDLE_BASE + 0x1000 * index), _real.c_nvmlDevice_t)


def _index_of(handle) -> int:
    return (ctypes.cast(handle, ctypes.c_void_p).value - _HANDLE_BASE) // 0x1000


def _error(name: str) -> Exception:
    return _real.NVMLError(getattr(_real, "NVML_ERROR_" + name))


@dataclass
class FakeGpu:
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
        self.pci_bus_id = f"00000000:{0x18 + self.index * 0x10:02X}:00.0"

    def check(self, call: str, refresh=lambda: None) -> None:
        if self.lost:
            raise _error("GPU_IS_LOST")
        if call in self.spec["unsupported"]:
            raise _error("NOT_SUPPORTED")
        fault = self.faults.get(call)
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


class FakeNvml(types.ModuleType):
    """Module-shaped object: attribute lookups fall back to the real pynvml for constants, errors and structs."""

    def __init__(self, gpus: list[FakeGpu], init_error: str | None = None, scenario_path: str | None = None):
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
        self.driver_version = DRIVER_VERSION

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
        for index, entry in enumerate(scenario.get("gpus", [])):
            if index >= len(self.gpus):
                self.gpus.append(FakeGpu(index, entry["preset"]))
            gpu = self.gpus[index]
            gpu.values.update(entry.get("values", {}))
            gpu.faults = dict(entry.get("faults", {}))
            gpu.lost = bool(entry.get("lost", False))
            new = entry.get("xid", [])[gpu.xid_delivered:]
            gpu.xid_delivered += len(new)
            for code in new:
                self.inject_xid(index, int(code))

    def _gpu(self, handle, call: str) -> FakeGpu:
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
        return 13000

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
        return self._gpu(handle, "nvmlDeviceGetName").spec["name"]

    def nvmlDeviceGetUUID(self, handle):
        return self._gpu(handle, "nvmlDeviceGetUUID").uuid

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
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        total, allocated = gpu.spec["memory_total"], int(gpu.values["memory_used"])
        reserved = int(gpu.values["memory_reserved"])
        if not version:
            return _real.c_nvmlMemory_t(total=total, free=total - allocated - reserved, used=allocated + reserved)
        return _real.c_nvmlMemory_v2_t(version=version, total=total, reserved=reserved,
                                       free=total - allocated - reserved, used=allocated)

    def nvmlDeviceGetTemperature(self, handle, sensor):
        return int(self._gpu(handle, "nvmlDeviceGetTemperature").values["temperature"])

    def nvmlDeviceGetFieldValues(self, handle, field_ids):
        gpu = self._gpu(handle, "nvmlDeviceGetFieldValues")
        values = (_real.c_nvmlFieldValue_t * len(field_ids))()
        for slot, field_id in zip(values, field_ids):
            slot.fieldId = field_id
            if field_id == _real.NVML_FI_DEV_MEMORY_TEMP and "memory_temperature" not in gpu.spec["unsupported"]:
                slot.nvmlReturn = _real.NVML_SUCCESS
                slot.valueType = _real.NVML_VALUE_TYPE_UNSIGNED_INT
                slot.value.uiVal = int(gpu.values["memory_temperature"])
            else:
                slot.nvmlReturn = _real.NVML_ERROR_NOT_SUPPORTED
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
        return self._gpu(handle, "nvmlDeviceGetCurrPcieLinkGeneration").spec["pcie_gen"]

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle):
        return self._gpu(handle, "nvmlDeviceGetCurrPcieLinkWidth").spec["pcie_width"]

    def nvmlDeviceGetPcieReplayCounter(self, handle):
        return int(self._gpu(handle, "nvmlDeviceGetPcieReplayCounter").values["pcie_replay"])

    def nvmlDeviceGetTotalEccErrors(self, handle, error_type, counter_type):
        values = self._gpu(handle, "nvmlDeviceGetTotalEccErrors").values
        return int(values["ecc_corrected" if error_type == _real.NVML_MEMORY_ERROR_TYPE_CORRECTED
                          else "ecc_uncorrected"])

    def nvmlDeviceGetRemappedRows(self, handle):
        return tuple(int(v) for v in self._gpu(handle, "nvmlDeviceGetRemappedRows").values["remapped"])

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



def from_spec(spec: str) -> FakeNvml:
    """A FakeNvml from the DLBENCH_FAKE_NVML value (see the module docstring)."""
    if spec.endswith(".json"):
        fake = FakeNvml([], scenario_path=spec)
        fake._refresh()
        return fake
    gpus: list[FakeGpu] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        preset, _, count = part.partition("*")
        if preset not in PRESETS:
            raise ValueError(f"DLBENCH_FAKE_NVML: unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        for _ in range(int(count or 1)):
            gpus.append(FakeGpu(len(gpus), preset))
    return FakeNvml(gpus)

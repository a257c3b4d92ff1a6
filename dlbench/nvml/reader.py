"""A thin reader over NVML (`pynvml` from nvidia-ml-py): one dict of base-unit readings per GPU per call.

Rules the rest of the package relies on:
- a metric the GPU does not support (NVML_ERROR_NOT_SUPPORTED, or a function the driver lacks) is left out of the
  reading, and that call is not made again for that GPU for UNSUPPORTED_RETRY_SECONDS (calls.py; MIG mode or a driver
  update can make it supported);
- any other failing call is counted per NVML function and leaves that metric out of this reading only: the GPU
  stays up;
- only the errors NVML documents as "this GPU is gone" (GPU_LOST_ERRORS) report the GPU `up: 0`; it is tried again
  on the next read, so a GPU that comes back is reported up again;
- each reading says what share of the GPU's queries failed (`query_error_ratio`); a GPU that answered none of them,
  with errors NVML does not call "lost" (UNKNOWN, TIMEOUT, ...), is reported `up: 0` too: it gives no data;
- each GPU is read in its own thread with a deadline: a hung call holds up that GPU only, which is reported
  `up: 0, late: 1` until its read finishes;
- without NVML (no driver, no library) or when NVML itself fails (NVML_DOWN_ERRORS), the reader is down, reads
  nothing, and `retry_start()` initialises it again with exponential backoff.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from dlbench.nvml import calls
from dlbench.nvml.fields import read_fields
from dlbench.nvml.gpm import free_gpm_samples, read_gpm
from dlbench.nvml.health import read_health
from dlbench.nvml.interconnect import read_interconnect
from dlbench.nvml.mig import read_mig
from dlbench.nvml.processes import read_processes

FAKE_NVML_ENV = "DLBENCH_FAKE_NVML"

# nvmlReturn_t (NVML API reference, "Device Enums"; https://docs.nvidia.com/deploy/nvml-api/):
#   GPU_IS_LOST     "The GPU has fallen off the bus or has otherwise become inaccessible"
#   RESET_REQUIRED  "The GPU requires a reset before it can be used again"
# Everything else (UNKNOWN, TIMEOUT, NO_PERMISSION, ...) is about one query, not about the GPU.
GPU_LOST_ERRORS = ("NVML_ERROR_GPU_IS_LOST", "NVML_ERROR_RESET_REQUIRED")
# Errors about the library as a whole: the driver was unloaded or upgraded under us (same reference).
NVML_DOWN_ERRORS = (
    "NVML_ERROR_UNINITIALIZED",
    "NVML_ERROR_DRIVER_NOT_LOADED",
    "NVML_ERROR_LIB_RM_VERSION_MISMATCH",
    "NVML_ERROR_LIBRARY_NOT_FOUND",
)
# a read whose queries all failed marks the GPU down only if it asked at least this many (one failing query of a GPU
# that is asked little is not a GPU that answers nothing)
UNREADABLE_MIN_QUERIES = 3
INIT_BACKOFF_SECONDS = (1.0, 60.0)  # first retry after 1 s, doubling up to once a minute (nvmlInit failing is cheap)
# the reasons behind the clocks NVML reports, exported as the reason label of dlbench_gpu_clocks_event_active
CLOCKS_EVENT_REASONS = {
    # label value -> pynvml constant suffix (nvmlClocksEventReason<X>, or nvmlClocksThrottleReason<X> on old bindings)
    "gpu_idle": "GpuIdle",
    "applications_clocks_setting": "ApplicationsClocksSetting",
    "sw_power_cap": "SwPowerCap",
    "hw_slowdown": "HwSlowdown",
    "sync_boost": "SyncBoost",
    "sw_thermal_slowdown": "SwThermalSlowdown",
    "hw_thermal_slowdown": "HwThermalSlowdown",
    "hw_power_brake_slowdown": "HwPowerBrakeSlowdown",
    "display_clock_setting": "DisplayClockSetting",
}


def load_pynvml(static_calls: bool = False):
    """The NVML binding to use: the real `pynvml`, or None if it is not installed.

    SIMULATED MODE: when DLBENCH_FAKE_NVML is set (e.g. `h100-sxm*8`), simulated GPUs (dlbench/nvml/simulated.py)
    are returned instead: for trying the exporter and the dashboards without a GPU, and for tests on machines without
    one to drive a real `dlbench exporter` process. This is the only place that reads the variable. Never set it on a
    GPU host: the exporter then reports invented GPUs. `static_calls`: the simulation also answers what
    `dlbench validate` reads once per start (dlbench/nvml/static.py).
    """
    scenario = os.environ.get(FAKE_NVML_ENV)
    if scenario:
        from dlbench.nvml import simulated

        return simulated.from_spec(scenario, static_calls=static_calls)
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


@dataclass(frozen=True)
class GpuIdentity:
    index: int
    name: str
    uuid: str
    pci_bus_id: str


class _GpuDown(Exception):
    """Raised inside one GPU's read when the GPU is gone; ends that GPU's read, not the sample."""


class _NvmlDown(Exception):
    """Raised inside a read when NVML itself stopped working (driver unloaded); the reader starts over."""


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _address(handle: Any) -> int | None:
    """A device handle's identity: NVML hands out one fixed pointer per device."""
    return ctypes.cast(handle, ctypes.c_void_p).value


def _cuda_version_text(version: int) -> str:
    # NVML encodes CUDA 12.4 as 12040
    return f"{version // 1000}.{version % 1000 // 10}"


class _GpuWorker:
    """Runs one GPU's reads in its own daemon thread, so that a hung NVML call holds up that GPU only.

    A daemon thread, not a thread pool: a call that never returns must not keep the process from exiting.
    """

    def __init__(self, index: int, read: Callable[[], dict]):
        self._read = read
        self._wake = threading.Event()
        self._done = threading.Event()
        self._done.set()
        self._closed = False
        self.result: dict | None = None
        self._thread = threading.Thread(target=self._run, name=f"dlbench-nvml-gpu{index}", daemon=True)
        self._thread.start()

    def submit(self) -> bool:
        """Start a read; False while the previous one has not finished (the GPU is still hung)."""
        if not self._done.is_set():
            return False
        self.result = None
        self._done.clear()
        self._wake.set()
        return True

    def wait(self, timeout: float) -> dict | None:
        return self.result if self._done.wait(max(0.0, timeout)) else None

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    @property
    def busy(self) -> bool:
        """A read is in progress (possibly hung in an NVML call)."""
        return not self._done.is_set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            try:
                self.result = self._read()
            except Exception as error:  # noqa: BLE001 - a reader bug must not leave the GPU "late" forever
                self.result = {"up": 0, "error": repr(error)}
            self._done.set()


class NvmlReader:
    """Reads every GPU NVML reports (or only `indices`). Thread-safe; each GPU is read in its own thread."""

    def __init__(self, nvml: Any = None, indices: list[int] | None = None, watch_xid: bool = True):
        self.nvml = nvml if nvml is not None else load_pynvml()
        self.wanted = indices
        self.watch_xid = watch_xid
        self.up = False
        self.problem: str | None = None
        self.gpus: list[GpuIdentity] = []
        self.driver_version = ""
        self.cuda_driver_version = ""
        self.errors: Counter[str] = Counter()  # NVML function -> failed calls (NOT_SUPPORTED not counted)
        self.xid_supported: set[int] = set()  # GPU indices registered for XID events
        self.init_attempts = 0
        self._start_requested = False
        self._next_init = 0.0
        self.handles: dict[int, Any] = {}
        self.unsupported: dict[tuple[int, str], float] = {}  # (index, call) -> monotonic time to try again
        self.static: dict[int, dict] = {}  # readings that cannot change while the driver is loaded
        # counters the exporter keeps itself, across NVML restarts (interconnect.LinkTotal: NVLink totals over links)
        self.counter_totals: dict = {}
        self._workers: dict[int, _GpuWorker] = {}
        self._event_set = None
        self._address_to_index: dict[int, int] = {}
        self._lock = threading.RLock()  # life cycle (start, close, reset) and the shared counters
        self._event_lock = threading.Lock()
        self._read_tally = threading.local()  # [queries, failed] of the GPU read running in this thread

    # --- life cycle ---------------------------------------------------------------------------------------------
    def start(self) -> "NvmlReader":
        with self._lock:
            self._start_requested = True  # a reader never started (a CPU run) is not retried either
            self._start()
        return self

    def retry_start(self, now: float | None = None) -> bool:
        """Initialise NVML again if it is down and the backoff allows; True when it is (now) up."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self.up or self.nvml is None or not self._start_requested:
                return self.up
            if now < self._next_init:
                return False
            self._start()
            return self.up

    def _start(self) -> None:
        nvml = self.nvml
        self.init_attempts += 1
        if nvml is None:
            self.problem = "nvidia-ml-py is not installed"
            return
        low, high = INIT_BACKOFF_SECONDS
        self._next_init = time.monotonic() + min(high, low * 2 ** min(self.init_attempts - 1, 20))
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as error:
            self.problem = f"NVML unavailable ({error})"
            return
        try:
            self.driver_version = _text(nvml.nvmlSystemGetDriverVersion())
            try:
                self.cuda_driver_version = _cuda_version_text(int(nvml.nvmlSystemGetCudaDriverVersion()))
            except nvml.NVMLError:
                self.cuda_driver_version = ""
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as error:
            # NVML answered nvmlInit but cannot enumerate: treat as unavailable rather than half-working
            self.problem = f"NVML error while listing GPUs ({error})"
            self._shutdown_quietly()
            return
        self.gpus, self.handles, self._address_to_index = [], {}, {}
        self.unsupported, self.static = {}, {}
        for index in range(count):
            if self.wanted is None or index in self.wanted:
                self._enumerate(index)
        # a GPU's worker outlives an NVML restart: one whose call is hung for good is reused (it refuses new reads
        # until that call returns) instead of joined by one more hung thread per restart
        kept = self._workers
        self._workers = {
            index: kept.pop(index, None) or _GpuWorker(index, lambda i=index: self._read_one(i))
            for index in self.handles
        }
        self._close_workers(kept)
        self.up, self.problem, self.init_attempts = True, None, 0
        if self.watch_xid:
            self._register_xid_events()

    def _enumerate(self, index: int) -> None:
        """Identity of one GPU. A GPU already lost at start is still listed (reported down), with what is known."""
        nvml = self.nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except nvml.NVMLError:
            self.errors["nvmlDeviceGetHandleByIndex"] += 1
            self.gpus.append(GpuIdentity(index, "", "", ""))
            return
        fields = []
        for call in ("nvmlDeviceGetName", "nvmlDeviceGetUUID", "nvmlDeviceGetPciInfo"):
            try:
                value = getattr(nvml, call)(handle)
                fields.append(_text(value.busId if call == "nvmlDeviceGetPciInfo" else value))
            except nvml.NVMLError:
                self.errors[call] += 1
                fields.append("")
        self.handles[index] = handle
        self._address_to_index[_address(handle)] = index
        self.gpus.append(GpuIdentity(index, *fields))

    def close(self) -> None:
        with self._lock:
            self._stop(problem=None)
            self._close_workers(self._workers)

    @staticmethod
    def _close_workers(workers: dict[int, "_GpuWorker"]) -> None:
        for worker in workers.values():
            worker.close()  # a hung one ends when its call returns
        workers.clear()

    def _stop(self, problem: str | None) -> None:
        """Release NVML; the GPU list (so the exporter still names the GPUs) and their threads are kept."""
        if not self.up:
            return
        if self._event_set is not None:
            try:
                self.nvml.nvmlEventSetFree(self._event_set)
            except self.nvml.NVMLError:
                pass
            self._event_set = None
        self.xid_supported = set()
        # before nvmlShutdown: the buffers are NVML's; a GPU whose read is still running keeps its own
        free_gpm_samples(self, busy={index for index, worker in self._workers.items() if worker.busy})
        self._shutdown_quietly()
        self.up, self.problem = False, problem
        self._next_init = time.monotonic()  # the first retry after losing NVML is due at once

    def _shutdown_quietly(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError:
            pass

    def _register_xid_events(self) -> None:
        nvml = self.nvml
        try:
            self._event_set = nvml.nvmlEventSetCreate()
        except nvml.NVMLError as error:
            self._count_unless_unsupported("nvmlEventSetCreate", error)
            return
        for index, handle in self.handles.items():
            try:
                nvml.nvmlDeviceRegisterEvents(handle, nvml.nvmlEventTypeXidCriticalError, self._event_set)
                self.xid_supported.add(index)
            except nvml.NVMLError as error:
                self._count_unless_unsupported("nvmlDeviceRegisterEvents", error)

    def _count_unless_unsupported(self, call: str, error: Exception) -> None:
        if not isinstance(error, (self.nvml.NVMLError_NotSupported, self.nvml.NVMLError_FunctionNotFound)):
            self.count_error(call)

    def count_error(self, call: str) -> None:
        with self._lock:
            self.errors[call] += 1

    def _error_is(self, error: Exception, names: tuple[str, ...]) -> bool:
        value = getattr(error, "value", None)
        return any(value == getattr(self.nvml, name, object()) for name in names)

    # --- reading ------------------------------------------------------------------------------------------------
    def call(self, index: int, call: str, *args, variant: str = ""):
        """One NVML call for one GPU: its value, or None when unsupported or failed (failure counted).

        `variant` tells apart the unsupported-cache entries of one function called in two forms (memory v1/v2).
        """
        key = (index, call + variant)
        retry_at = self.unsupported.get(key)
        if retry_at is not None:
            if time.monotonic() < retry_at:
                return None
            # pop, not del: the run's thread (read_energy_joules) and the GPU's thread may both get here
            self.unsupported.pop(key, None)
        nvml = self.nvml
        tally = getattr(self._read_tally, "counts", None)
        if tally is not None:
            tally[0] += 1
        try:
            return getattr(nvml, call)(self.handles[index], *args)
        except (nvml.NVMLError_NotSupported, nvml.NVMLError_FunctionNotFound, AttributeError):
            # AttributeError: a binding too old to have the function at all
            self.unsupported[key] = time.monotonic() + calls.UNSUPPORTED_RETRY_SECONDS
            if tally is not None:
                tally[0] -= 1  # not a query this GPU can answer: neither asked nor failed
            return None
        except nvml.NVMLError as error:
            if tally is not None:
                tally[1] += 1
            self.count_error(call)
            if self._error_is(error, GPU_LOST_ERRORS):
                raise _GpuDown(str(error)) from error
            if self._error_is(error, NVML_DOWN_ERRORS):
                raise _NvmlDown(str(error)) from error
            return None

    def read_all(self, timeout: float = 10.0) -> dict[int, dict]:
        """A reading per GPU, each GPU read in parallel; a GPU not done within `timeout` is `late`."""
        with self._lock:
            if not self.up:
                return {}
            workers, gpus = dict(self._workers), list(self.gpus)
        started = {index: worker.submit() for index, worker in workers.items()}
        deadline = time.monotonic() + timeout
        readings: dict[int, dict] = {}
        for gpu in gpus:
            worker = workers.get(gpu.index)
            if worker is None:
                readings[gpu.index] = {"up": 0}
                continue
            result = worker.wait(deadline - time.monotonic()) if started[gpu.index] else None
            readings[gpu.index] = result if result is not None else {"up": 0, "late": 1}
        if any(r.get("nvml_down") for r in readings.values()):
            with self._lock:
                self._stop(problem="NVML stopped answering; initialising it again")
            return {}
        return readings

    def read_energy_joules(self, index: int) -> float | None:
        """The GPU's total energy counter now, for measuring exactly a window (None if unsupported or down)."""
        with self._lock:
            if not self.up or index not in self.handles:
                return None
        try:
            millijoules = self.call(index, "nvmlDeviceGetTotalEnergyConsumption")
        except (_GpuDown, _NvmlDown):
            return None
        return None if millijoules is None else millijoules / 1000.0

    def _read_one(self, index: int) -> dict:
        reading: dict[str, Any] = {"up": 1, "late": 0}
        self._read_tally.counts = tally = [0, 0]  # this thread reads this GPU only
        try:
            self._read_into(index, reading)
        except _GpuDown:
            return {"up": 0, "late": 0}
        except _NvmlDown:
            return {"up": 0, "late": 0, "nvml_down": 1}
        finally:
            self._read_tally.counts = None
        queries, failed = tally
        reading["query_error_ratio"] = failed / queries if queries else 0.0
        if queries >= UNREADABLE_MIN_QUERIES and failed == queries:
            # every query failed with errors NVML does not call "GPU lost": no data, so not up either; only the ratio
            # is kept (1), which tells this case apart from a lost GPU
            return {"up": 0, "late": 0, "query_error_ratio": 1.0}
        return reading

    def _read_into(self, index: int, r: dict) -> None:
        nvml, call = self.nvml, self.call
        utilization = call(index, "nvmlDeviceGetUtilizationRates")
        if utilization is not None:
            r["utilization_ratio"] = utilization.gpu / 100.0
            r["memory_copy_utilization_ratio"] = utilization.memory / 100.0
        self._read_memory(index, r)
        temperature = call(index, "nvmlDeviceGetTemperature", nvml.NVML_TEMPERATURE_GPU)
        if temperature is not None:
            r["temperature_celsius"] = float(temperature)
        memory_temperature = self._field_value(index, nvml.NVML_FI_DEV_MEMORY_TEMP)
        if memory_temperature is not None:
            r["memory_temperature_celsius"] = float(memory_temperature)
        power = call(index, "nvmlDeviceGetPowerUsage")
        if power is not None:
            r["power_watts"] = power / 1000.0
        # read every sample: `nvidia-smi -pl` and dynamic power capping change it while the driver stays loaded
        limit = call(index, "nvmlDeviceGetEnforcedPowerLimit")
        if limit is not None:
            r["power_limit_watts"] = limit / 1000.0
        energy = call(index, "nvmlDeviceGetTotalEnergyConsumption")
        if energy is not None:
            r["energy_joules"] = energy / 1000.0
        for key, clock in (("sm_clock_hertz", nvml.NVML_CLOCK_SM), ("memory_clock_hertz", nvml.NVML_CLOCK_MEM)):
            mhz = call(index, "nvmlDeviceGetClockInfo", clock)
            if mhz is not None:
                r[key] = mhz * 1e6
        r.update(self._static_readings(index))
        reasons = self._clocks_event_reasons(index)
        if reasons is not None:
            r["clocks_event_active"] = reasons
        pstate = call(index, "nvmlDeviceGetPerformanceState")
        if pstate is not None:
            r["performance_state"] = int(pstate)
        generation = call(index, "nvmlDeviceGetCurrPcieLinkGeneration")
        if generation is not None:
            r["pcie_link_generation"] = int(generation)
        width = call(index, "nvmlDeviceGetCurrPcieLinkWidth")
        if width is not None:
            r["pcie_link_width"] = int(width)
        replays = call(index, "nvmlDeviceGetPcieReplayCounter")
        if replays is not None:
            r["pcie_replay_errors"] = int(replays)
        ecc = {}
        for kind, error_type in (
            ("corrected", nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED),
            ("uncorrected", nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED),
        ):
            count = call(index, "nvmlDeviceGetTotalEccErrors", error_type, nvml.NVML_AGGREGATE_ECC)
            if count is not None:
                ecc[kind] = int(count)
        if ecc:
            r["ecc_errors"] = ecc
        rows = call(index, "nvmlDeviceGetRemappedRows")
        if rows is not None:
            correctable, uncorrectable, pending, failure = rows
            r["remapped_rows"] = {"correctable": int(correctable), "uncorrectable": int(uncorrectable)}
            r["row_remap_pending"], r["row_remap_failure"] = int(bool(pending)), int(bool(failure))
        read_health(self, index, r)
        read_interconnect(self, index, r)
        read_gpm(self, index, r)
        read_processes(self, index, r)
        read_mig(self, index, r)

    def _read_memory(self, index: int, r: dict) -> None:
        """Memory through nvmlDeviceGetMemoryInfo_v2, which reports driver-reserved memory apart from `used`.

        NVML API reference: nvmlMemory_t.used is the "Sum of Reserved and Allocated device memory", so the v1 call
        shows an idle GPU as using 0.5-1 GB; nvmlMemory_v2_t splits off `reserved` ("reserved for system use
        (driver or firmware)"). Drivers older than R510 lack v2: fall back to v1 without a reserved figure.
        """
        nvml = self.nvml
        memory = None
        if hasattr(nvml, "nvmlMemory_v2"):
            memory = self.call(index, "nvmlDeviceGetMemoryInfo", nvml.nvmlMemory_v2, variant="_v2")
        if memory is not None:
            r["memory_reserved_bytes"] = int(memory.reserved)
        elif not hasattr(nvml, "nvmlMemory_v2") or (index, "nvmlDeviceGetMemoryInfo_v2") in self.unsupported:
            memory = self.call(index, "nvmlDeviceGetMemoryInfo")
        if memory is not None:
            r["memory_used_bytes"], r["memory_free_bytes"] = int(memory.used), int(memory.free)
            r["memory_total_bytes"] = int(memory.total)

    def _static_readings(self, index: int) -> dict:
        """Maximum clocks: read once per NVML initialisation (they are properties of the board and its VBIOS).

        Kept only once both are read: a failed or unsupported read is asked again (unsupported after
        calls.UNSUPPORTED_RETRY_SECONDS), not left out until the next NVML restart.
        """
        if index in self.static:
            return self.static[index]
        nvml, call, static = self.nvml, self.call, {}
        for key, clock in (("sm_clock_max_hertz", nvml.NVML_CLOCK_SM), ("memory_clock_max_hertz", nvml.NVML_CLOCK_MEM)):
            mhz = call(index, "nvmlDeviceGetMaxClockInfo", clock)
            if mhz is not None:
                static[key] = mhz * 1e6
        if len(static) == 2:
            self.static[index] = static
        return static

    def _clocks_event_reasons(self, index: int) -> dict[str, int] | None:
        nvml = self.nvml
        if hasattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons"):
            mask = self.call(index, "nvmlDeviceGetCurrentClocksEventReasons")
            prefix = "nvmlClocksEventReason"
        else:  # bindings older than 12.535 only have the deprecated name
            mask = self.call(index, "nvmlDeviceGetCurrentClocksThrottleReasons")
            prefix = "nvmlClocksThrottleReason"
        if mask is None:
            return None
        return {
            label: int(bool(mask & getattr(nvml, prefix + suffix)))
            for label, suffix in CLOCKS_EVENT_REASONS.items()
            if hasattr(nvml, prefix + suffix)
        }

    def _field_value(self, index: int, field_id: int) -> float | None:
        """A single NVML field value; the per-value return code says whether this GPU has the field at all."""
        return read_fields(self, index, [(field_id, 0)]).get((field_id, 0))

    # --- XID events ---------------------------------------------------------------------------------------------
    def poll_xid_events(self, limit: int = 256) -> list[tuple[int, int, float]]:
        """(gpu index, XID code, unix time) of each XID event waiting; never blocks (timeout 0)."""
        events: list[tuple[int, int, float]] = []
        with self._lock:
            if not self.up or self._event_set is None:
                return events
            nvml = self.nvml
            for _ in range(limit):
                try:
                    data = nvml.nvmlEventSetWait_v2(self._event_set, 0)
                except nvml.NVMLError_Timeout:
                    break
                except nvml.NVMLError:
                    self.errors["nvmlEventSetWait_v2"] += 1
                    break
                if not data.eventType & nvml.nvmlEventTypeXidCriticalError:
                    continue
                # matched by handle, not by asking the device: after XID 79 the device answers nothing
                index = self._address_to_index.get(_address(data.device))
                if index is not None:
                    events.append((index, int(data.eventData), time.time()))
        return events

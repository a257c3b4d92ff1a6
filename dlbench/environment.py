"""What a result was measured on: host, CPU, memory, torch, CUDA, cuDNN, driver and GPUs.

Collected without importing torch (its version file and the cuDNN wheel's metadata are read instead) and with
NVML for the GPUs, so `dlbench env` answers in a fraction of a second on any machine.
"""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

import psutil

from dlbench import installed_torch


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus_from_nvml() -> tuple[str | None, list[dict], str | None]:
    """(driver version, GPUs, reason NVML is unavailable)."""
    try:
        import pynvml
    except ImportError:
        return None, [], "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return None, [], f"NVML unavailable ({error})"
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                {
                    "index": index,
                    "name": pynvml.nvmlDeviceGetName(handle),
                    "uuid": pynvml.nvmlDeviceGetUUID(handle),
                    "memory_total_bytes": int(memory.total),
                }
            )
        return driver, gpus, None
    except pynvml.NVMLError as error:
        return None, [], f"NVML error ({error})"
    finally:
        pynvml.nvmlShutdown()


def collect() -> dict:
    driver, gpus, nvml_problem = _gpus_from_nvml()
    memory = psutil.virtual_memory()
    return {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": {
            "model": _cpu_model(),
            "logical_cores": psutil.cpu_count(),
            "physical_cores": psutil.cpu_count(logical=False),
        },
        "memory_total_bytes": int(memory.total),
        "torch": installed_torch.collect(),
        "driver_version": driver,
        "gpus": gpus,
        "nvml": "ok" if nvml_problem is None else nvml_problem,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }

"""What a result was measured on: host, CPU, memory, torch, CUDA, cuDNN, driver and GPUs.

Collected without importing torch (its version file and the cuDNN wheel's metadata are read instead) and with
NVML for the GPUs, so `dlbench env` answers in a fraction of a second on any machine.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import socket
from pathlib import Path

import psutil


def collect_torch() -> dict:
    """torch's version, CUDA build and the cuDNN wheel's version, without importing torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return {"version": None, "cuda": None, "cudnn": None}
    namespace: dict = {}
    version_file = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        # torch/version.py is a generated file of plain assignments; executing it does not import torch.
        exec(compile(version_file.read_text(), str(version_file), "exec"), namespace)
    except (OSError, SyntaxError):
        pass
    return {"version": namespace.get("__version__"), "cuda": namespace.get("cuda"), "cudnn": _cudnn_wheel_version()}


def _cudnn_wheel_version() -> str | None:
    for distribution in ("nvidia-cudnn-cu13", "nvidia-cudnn-cu12", "nvidia-cudnn-cu11"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


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
            gpus.append({
                "index": index,
                "name": pynvml.nvmlDeviceGetName(handle),
                "uuid": pynvml.nvmlDeviceGetUUID(handle),
                "memory_total_bytes": int(memory.total),
            })
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
        "cpu": {"model": _cpu_model(), "logical_cores": psutil.cpu_count(), "physical_cores": psutil.cpu_count(logical=False)},
        "memory_total_bytes": int(memory.total),
        "torch": collect_torch(),
        "driver_version": driver,
        "gpus": gpus,
        "nvml": "ok" if nvml_problem is None else nvml_problem,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }

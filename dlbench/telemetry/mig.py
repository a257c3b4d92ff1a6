"""MIG: each instance of a GPU in MIG mode as a device of its own, with its memory, labelled by parent GPU, GPU and
compute instance and profile.

Names and signatures are nvidia-ml-py's (pynvml.py 13.x): nvmlDeviceGetMigMode(device) -> [current, pending]
(NVML_DEVICE_MIG_ENABLE = 1), nvmlDeviceGetMaxMigDeviceCount(device), nvmlDeviceGetMigDeviceHandleByIndex(device,
index) (NVML_ERROR_NOT_FOUND for an index with no instance), and on the MIG device handle nvmlDeviceGetUUID
("MIG-..." UUIDs), nvmlDeviceGetName ("NVIDIA A100-SXM4-80GB MIG 1g.10gb": the profile is the last word),
nvmlDeviceGetGpuInstanceId, nvmlDeviceGetComputeInstanceId and nvmlDeviceGetMemoryInfo (the instance's own memory).
Whole-GPU utilisation is not available per instance in NVML (NOT_SUPPORTED in MIG mode); GPM per instance is left
for later.
"""

from __future__ import annotations

from typing import Any


def read_mig(reader: Any, index: int, r: dict) -> None:
    nvml = reader.nvml
    mode = reader._call(index, "nvmlDeviceGetMigMode")
    if mode is None:
        return  # a GPU without MIG
    r["mig_mode"] = int(mode[0] == nvml.NVML_DEVICE_MIG_ENABLE)
    if not r["mig_mode"]:
        return
    count = reader._call(index, "nvmlDeviceGetMaxMigDeviceCount") or 0
    instances = []
    for slot in range(int(count)):
        try:
            handle = nvml.nvmlDeviceGetMigDeviceHandleByIndex(reader._handles[index], slot)
        except nvml.NVMLError_NotFound:
            continue  # no instance in this slot
        except nvml.NVMLError:
            reader._count_error("nvmlDeviceGetMigDeviceHandleByIndex")
            continue
        instances.append(_instance(reader, handle))
    r["mig_devices"] = instances


def _instance(reader: Any, handle: Any) -> dict:
    nvml = reader.nvml

    def ask(call: str):
        try:
            return getattr(nvml, call)(handle)
        except (nvml.NVMLError_NotSupported, nvml.NVMLError_FunctionNotFound):
            return None
        except nvml.NVMLError:
            reader._count_error(call)
            return None

    uuid, name = ask("nvmlDeviceGetUUID"), ask("nvmlDeviceGetName")
    name = name.decode() if isinstance(name, bytes) else (name or "")
    instance = {
        "mig_uuid": uuid.decode() if isinstance(uuid, bytes) else (uuid or ""),
        "gpu_instance_id": ask("nvmlDeviceGetGpuInstanceId"),
        "compute_instance_id": ask("nvmlDeviceGetComputeInstanceId"),
        "profile": name.rsplit(" MIG ", 1)[1] if " MIG " in name else "",
    }
    memory = ask("nvmlDeviceGetMemoryInfo")
    if memory is not None:
        instance["memory_used_bytes"], instance["memory_total_bytes"] = int(memory.used), int(memory.total)
    return {key: ("" if value is None else value) for key, value in instance.items()}

"""MIG: each instance of a GPU in MIG mode as a device of its own, with its memory, labelled by parent GPU, GPU and
compute instance and profile.

Names and signatures are nvidia-ml-py's (pynvml.py 13.x): nvmlDeviceGetMigMode(device) -> [current, pending]
(NVML_DEVICE_MIG_ENABLE = 1), nvmlDeviceGetMaxMigDeviceCount(device), nvmlDeviceGetMigDeviceHandleByIndex(device,
index) (NVML_ERROR_NOT_FOUND for an index with no instance), and on the MIG device handle nvmlDeviceGetUUID
("MIG-..." UUIDs), nvmlDeviceGetName ("NVIDIA A100-SXM4-80GB MIG 1g.10gb": the profile is the last word),
nvmlDeviceGetGpuInstanceId, nvmlDeviceGetComputeInstanceId, nvmlDeviceGetMemoryInfo (the instance's own memory)
and nvmlDeviceGetComputeRunningProcesses (the processes in that instance: "Per-instance information can be queried
by using specific MIG device handles", NVML API reference). Activity per instance comes from GPM on Hopper and newer,
sampled through the parent GPU with nvmlGpmMigSampleGet(parent, gpuInstanceId, sample) (dlbench/telemetry/gpm.py).
Whole-GPU utilisation, and so per-process utilisation, is not available per instance in NVML (NOT_SUPPORTED in MIG
mode): an instance's processes carry their memory only.
"""

from __future__ import annotations

from typing import Any

from dlbench.telemetry.gpm import read_mig_gpm
from dlbench.telemetry.processes import ProcessOwners, top_processes


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
        instances.append(_instance(reader, index, handle))
    # GPM counts per GPU instance: one sample per instance per read, shared by the compute instances inside it
    activity: dict[int, dict] = {}
    for instance in instances:
        gpu_instance_id = instance["gpu_instance_id"]
        if gpu_instance_id == "":
            continue
        if gpu_instance_id not in activity:
            activity[gpu_instance_id] = {}
            read_mig_gpm(reader, index, int(gpu_instance_id), activity[gpu_instance_id])
        instance.update(activity[gpu_instance_id])
    r["mig_devices"] = instances


def _instance(reader: Any, index: int, handle: Any) -> dict:
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
    instance = {key: ("" if value is None else value) for key, value in instance.items()}
    if memory is not None:
        instance["memory_used_bytes"], instance["memory_total_bytes"] = int(memory.used), int(memory.total)
    running = ask("nvmlDeviceGetComputeRunningProcesses")
    if running is not None:
        owners = reader._static.setdefault((index, "process_owners", instance["mig_uuid"]), ProcessOwners())
        instance["process_count"], instance["processes"] = top_processes(running, owners, {})
    return instance

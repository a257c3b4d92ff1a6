"""MIG: each instance of a GPU in MIG mode as a device of its own, with its memory, labelled by parent GPU, GPU and
compute instance and profile.

Names and signatures are nvidia-ml-py's (pynvml.py 13.x): nvmlDeviceGetMigMode(device) -> [current, pending]
(NVML_DEVICE_MIG_ENABLE = 1), nvmlDeviceGetMaxMigDeviceCount(device), nvmlDeviceGetMigDeviceHandleByIndex(device,
index) (NVML_ERROR_NOT_FOUND for an index with no instance), and on the MIG device handle nvmlDeviceGetUUID
("MIG-..." UUIDs), nvmlDeviceGetName ("NVIDIA A100-SXM4-80GB MIG 1g.10gb": the profile is the last word),
nvmlDeviceGetGpuInstanceId, nvmlDeviceGetComputeInstanceId, nvmlDeviceGetMemoryInfo (the instance's own memory,
v2 as for whole GPUs)
and nvmlDeviceGetComputeRunningProcesses (the processes in that instance: "Per-instance information can be queried
by using specific MIG device handles", NVML API reference). Activity per instance comes from GPM on Hopper and newer,
sampled through the parent GPU with nvmlGpmMigSampleGet(parent, gpuInstanceId, sample) (dlbench/nvml/gpm.py).
Whole-GPU utilisation, and so per-process utilisation, is not available per instance in NVML (NOT_SUPPORTED in MIG
mode): an instance's processes carry their memory only.
"""

from __future__ import annotations

from typing import Any

from dlbench.nvml.calls import GpuCalls

from dlbench.nvml.gpm import free_gone_mig_gpm, read_mig_gpm
from dlbench.nvml.processes import ProcessOwners, top_processes

_OWNERS = "process_owners"  # reader.static key part of an instance's process owners: (index, _OWNERS, mig_uuid)


def read_mig(reader: GpuCalls, index: int, r: dict) -> None:
    nvml = reader.nvml
    mode = reader.call(index, "nvmlDeviceGetMigMode")
    if mode is None:
        return  # a GPU without MIG
    r["mig_mode"] = int(mode[0] == nvml.NVML_DEVICE_MIG_ENABLE)
    if not r["mig_mode"]:
        _forget_instances_gone(reader, index, [], set())  # MIG switched off: every instance is gone
        return
    count = reader.call(index, "nvmlDeviceGetMaxMigDeviceCount") or 0
    instances = []
    for slot in range(int(count)):
        try:
            handle = nvml.nvmlDeviceGetMigDeviceHandleByIndex(reader.handles[index], slot)
        except nvml.NVMLError_NotFound:
            continue  # no instance in this slot
        except nvml.NVMLError:
            reader.count_error("nvmlDeviceGetMigDeviceHandleByIndex")
            continue
        instances.append(_instance(reader, index, handle))
    # GPM counts per GPU instance: one sample per instance per read, shared by the compute instances inside it
    activity: dict[tuple[int, str], dict] = {}
    for instance in instances:
        if instance["gpu_instance_id"] == "":
            continue
        gpu_instance = (int(instance["gpu_instance_id"]), instance["profile"])
        if gpu_instance not in activity:
            activity[gpu_instance] = {}
            read_mig_gpm(reader, index, *gpu_instance, activity[gpu_instance])
        instance.update(activity[gpu_instance])
    _forget_instances_gone(reader, index, instances, set(activity))
    r["mig_devices"] = instances


def _forget_instances_gone(
    reader: GpuCalls, index: int, instances: list[dict], gpu_instances: set[tuple[int, str]]
) -> None:
    """Drop what the reader keeps per instance (GPM buffers, process owners) for instances destroyed since the last
    read: a MIG layout can change any number of times while NVML stays up."""
    free_gone_mig_gpm(reader, index, gpu_instances)
    present = {instance["mig_uuid"] for instance in instances}
    for key in [
        key
        for key in list(reader.static)
        if isinstance(key, tuple) and len(key) == 3 and key[:2] == (index, _OWNERS) and key[2] not in present
    ]:
        reader.static.pop(key, None)


def _instance(reader: GpuCalls, index: int, handle: Any) -> dict:
    nvml = reader.nvml

    def ask(call: str, *args):
        try:
            return getattr(nvml, call)(handle, *args)
        except (nvml.NVMLError_NotSupported, nvml.NVMLError_FunctionNotFound):
            return None
        except nvml.NVMLError:
            reader.count_error(call)
            return None

    uuid, name = ask("nvmlDeviceGetUUID"), ask("nvmlDeviceGetName")
    name = name.decode() if isinstance(name, bytes) else (name or "")
    instance = {
        "mig_uuid": uuid.decode() if isinstance(uuid, bytes) else (uuid or ""),
        "gpu_instance_id": ask("nvmlDeviceGetGpuInstanceId"),
        "compute_instance_id": ask("nvmlDeviceGetComputeInstanceId"),
        "profile": name.rsplit(" MIG ", 1)[1] if " MIG " in name else "",
    }
    instance = {key: ("" if value is None else value) for key, value in instance.items()}
    # v2, as for whole GPUs (NvmlReader._read_memory): v1's `used` is the "Sum of Reserved and Allocated device
    # memory" (NVML API reference, nvmlMemory_t), so an idle instance looked partly used; v1 on drivers before R510
    memory = ask("nvmlDeviceGetMemoryInfo", nvml.nvmlMemory_v2) if hasattr(nvml, "nvmlMemory_v2") else None
    if memory is None:
        memory = ask("nvmlDeviceGetMemoryInfo")
    if memory is not None:
        instance["memory_used_bytes"], instance["memory_total_bytes"] = int(memory.used), int(memory.total)
        instance["memory_free_bytes"] = int(memory.free)
    running = ask("nvmlDeviceGetComputeRunningProcesses")
    if running is not None:
        owners = reader.static.setdefault((index, _OWNERS, instance["mig_uuid"]), ProcessOwners())
        instance["process_count"], instance["processes"] = top_processes(running, owners, {})
    return instance

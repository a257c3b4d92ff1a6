"""Who uses a GPU: per-process GPU memory and SM utilisation, labelled with the process's Slurm job or Kubernetes pod.

NVML (nvidia-ml-py's pynvml.py 13.x): nvmlDeviceGetComputeRunningProcesses(handle) lists c_nvmlProcessInfo_v3_t
(pid, usedGpuMemory in bytes, None when NVML cannot tell, e.g. under Windows WDDM or without permission);
nvmlDeviceGetProcessUtilization(handle, lastSeenTimeStamp) gives c_nvmlProcessUtilizationSample_t (pid, timeStamp in
microseconds, smUtil, memUtil, encUtil, decUtil in percent) for samples newer than the timestamp, and raises
NVMLError_NotFound when there are none.

Who a process belongs to comes from /proc/PID/cgroup ("hierarchy-ID:controllers:path", man 7 cgroups; cgroup v2 has
one line "0::path"):
- Slurm puts each job under a job_<id> directory: cgroup v1 /slurm/uid_<uid>/job_<id>/step_<step>/task_<n>, cgroup v2
  /system.slice/slurmstepd.scope/job_<id>/step_<step>/user/task_<n> (Slurm's cgroup.conf and cgroup v2 plugin docs).
- The kubelet puts each pod under pod<uid>: cgroupfs driver /kubepods/<qos>/pod<uid>/<container>, systemd driver
  /kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid with _ for ->.slice/cri-containerd-<id>.scope.
  The pod's namespace and name come from the kubelet's pod log directories, /var/log/pods/<namespace>_<name>_<uid>
  (Kubernetes "Logging Architecture"), mounted read-only by the DaemonSet; without them only pod_uid is known.

Cardinality: only the TOP_PROCESSES processes using the most GPU memory are labelled per GPU; the count of all of
them is dlbench_gpu_processes, so a truncated list shows.
"""

from __future__ import annotations

import os
import re

from dlbench.nvml.calls import GpuCalls

TOP_PROCESSES = 10
PROC_ROOT = "/proc"
POD_LOG_ROOT = "/var/log/pods"

_SLURM_JOB = re.compile(r"/job_(\d+)(?=/|$)")
_POD_UID = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")


def owner_from_cgroup(text: str) -> dict[str, str]:
    """slurm_job_id or pod_uid from the contents of /proc/PID/cgroup ({} for a process of neither)."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        job = _SLURM_JOB.search(path)
        if job:
            return {"slurm_job_id": job.group(1)}
        pod = _POD_UID.search(path)
        if pod:
            return {"pod_uid": pod.group(1).replace("_", "-")}
    return {}


class ProcessOwners:
    """pid -> owner labels, read once per process (a pid seen again keeps its cgroup) and forgotten when it ends."""

    def __init__(self, proc_root: str | None = None, pod_log_root: str | None = None):
        self.proc_root = proc_root or PROC_ROOT
        self.pod_log_root = pod_log_root or POD_LOG_ROOT
        self._owners: dict[int, dict[str, str]] = {}
        self._pods: dict[str, tuple[str, str]] = {}  # pod uid -> (namespace, name)

    def labels(self, pid: int) -> dict[str, str]:
        if pid not in self._owners:
            try:
                with open(os.path.join(self.proc_root, str(pid), "cgroup"), encoding="utf-8") as handle:
                    owner = owner_from_cgroup(handle.read())
            except OSError:  # the process ended, or another PID namespace without hostPID
                owner = {}
            if "pod_uid" in owner:
                namespace, name = self._pod(owner["pod_uid"])
                owner.update(namespace=namespace, pod=name)
            self._owners[pid] = owner
        return self._owners[pid]

    def forget_all_but(self, pids: set[int]) -> None:
        for pid in set(self._owners) - pids:
            del self._owners[pid]

    def _pod(self, uid: str) -> tuple[str, str]:
        if uid not in self._pods:
            try:
                entries = os.listdir(self.pod_log_root)
            except OSError:
                entries = []
            for entry in entries:
                namespace, _, rest = entry.partition("_")
                name, _, entry_uid = rest.rpartition("_")  # namespaces and pod names cannot hold "_"
                if entry_uid and name:
                    self._pods[entry_uid] = (namespace, name)
        return self._pods.get(uid, ("", ""))


def read_processes(reader: GpuCalls, index: int, r: dict) -> None:
    nvml = reader.nvml
    running = reader.call(index, "nvmlDeviceGetComputeRunningProcesses")
    if running is None:
        return
    owners: ProcessOwners = reader.static.setdefault((index, "process_owners"), ProcessOwners())
    state = reader.static.setdefault((index, "process_utilization"), {"since": 0})
    utilization: dict[int, float] = {}
    try:
        for sample in nvml.nvmlDeviceGetProcessUtilization(reader.handles[index], state["since"]):
            utilization[int(sample.pid)] = sample.smUtil / 100.0
            state["since"] = max(state["since"], int(sample.timeStamp))
    except (nvml.NVMLError_NotFound, nvml.NVMLError_NotSupported, nvml.NVMLError_FunctionNotFound):
        pass  # no sample since the last read, or no per-process utilisation on this GPU
    except nvml.NVMLError:
        reader.count_error("nvmlDeviceGetProcessUtilization")
    r["process_count"], r["processes"] = top_processes(running, owners, utilization)


def top_processes(running: list, owners: ProcessOwners, utilization: dict[int, float]) -> tuple[int, list[dict]]:
    """(how many processes run, the TOP_PROCESSES using the most memory with their owner labels and readings)."""
    processes = sorted(running, key=lambda p: -(p.usedGpuMemory or 0))
    listed = []
    for process in processes[:TOP_PROCESSES]:
        pid = int(process.pid)
        entry = {"pid": str(pid), **{key: "" for key in ("slurm_job_id", "namespace", "pod")}}
        entry.update({k: v for k, v in owners.labels(pid).items() if k in entry})
        if process.usedGpuMemory is not None:
            entry["memory_used_bytes"] = int(process.usedGpuMemory)
        if pid in utilization:
            entry["sm_utilization_ratio"] = utilization[pid]
        listed.append(entry)
    owners.forget_all_but({int(p.pid) for p in processes})
    return len(processes), listed

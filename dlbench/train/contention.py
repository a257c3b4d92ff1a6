"""Was the machine busy with something else while the run was timed?

On a shared CPU host the same run swings by 2x or more with other load, and nothing in the throughput says so.
Over the timed window this measures the CPU time spent on the cores this process may run on (its affinity set),
minus the CPU time of this process and its children (DataLoader workers): what is left is other processes' load,
in cores. psutil's per-CPU times include `steal`, the time a hypervisor gave to other guests, which competes too.

Under torchrun the job's other ranks on this host, and torchrun's agent that started them, are the run itself, not
competition: a 2-rank CPU job would otherwise always call itself distorted. Their CPU time is counted as the job's.
Only the part they can have spent on this rank's CPUs is: ranks bound apart (torchrun --numa-binding,
https://pytorch.org/docs/stable/elastic/run.html, "NUMA Binding") load CPUs this rank does not measure.
"""

from __future__ import annotations

import os
import time

import psutil

# share of the usable cores other processes may take before the result is called distorted: on a CPU run every
# core counts; a GPU run needs the host for its Python loop and input pipeline only
DISTORTING_SHARE = {"cpu": 0.10, "cuda": 0.50}


def _usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return list(range(psutil.cpu_count() or 1))


def _busy_seconds(cpus: list[int]) -> float:
    per_cpu = psutil.cpu_times(percpu=True)
    busy = 0.0
    for cpu in cpus:
        if cpu < len(per_cpu):
            times = per_cpu[cpu]
            busy += times.user + times.system + sum(getattr(times, f, 0.0) for f in ("nice", "irq", "softirq", "steal"))
    return busy


def _share_on(process: psutil.Process, cpus: frozenset[int] | None) -> float:
    """The part of `process`'s CPU time that can have been spent on `cpus`: all of it when it may run on no others,
    none when it may run on none of them (`torchrun --numa-binding` binds each rank to its GPU's NUMA node), else
    the part of its own affinity set they are (an estimate: the kernel keeps no per-CPU account of a process)."""
    if cpus is None:
        return 1.0
    try:
        allowed = set(process.cpu_affinity())
    except (psutil.Error, AttributeError):  # gone, or no affinity to read (macOS): count it whole, as before
        return 1.0
    return len(allowed & cpus) / len(allowed) if allowed else 1.0


def _tree_seconds(process: psutil.Process, cpus: frozenset[int] | None = None) -> float:
    """CPU time of this process, its finished children, and its live descendants; with `cpus`, only the part each
    can have spent on those CPUs (finished children: as their parent's affinity allows)."""
    times = process.cpu_times()
    total = (times.user + times.system + times.children_user + times.children_system) * _share_on(process, cpus)
    for child in process.children(recursive=True):
        try:
            child_times = child.cpu_times()
            total += (child_times.user + child_times.system) * _share_on(child, cpus)
        except psutil.Error:  # gone in between: its time is in children_* once reaped
            pass
    return total


def job_root(local_ranks: int) -> psutil.Process | None:
    """The process whose tree is this host's part of a multi-process job: the parent that started its ranks
    (torchrun's agent, or Slurm's step daemon under srun), or None for a single process."""
    if local_ranks <= 1:
        return None
    try:
        return psutil.Process().parent()
    except psutil.Error:
        return None


class CpuContention:
    def __init__(self, device_type: str, job: psutil.Process | None = None):
        self.device_type = device_type
        self.cpus = _usable_cpus()
        self.process = psutil.Process()
        self.job = job  # the job's root on this host (see job_root): its whole tree is the run's own load
        self._start: tuple[float, float, float, float] | None = None

    def _job_seconds(self) -> float:
        try:
            return _tree_seconds(self.job, frozenset(self.cpus))  # only what it spent on the CPUs measured here
        except psutil.Error:  # the launcher is gone: the job is ending; count this process alone
            self.job = None
            return _tree_seconds(self.process)

    def _read(self) -> tuple[float, float, float, float]:
        """(time, busy CPU seconds of our CPUs, this process tree's CPU seconds, the job's on this host)."""
        own = _tree_seconds(self.process)
        return time.monotonic(), _busy_seconds(self.cpus), own, self._job_seconds() if self.job else own

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> dict | None:
        if self._start is None:
            return None
        (t0, busy0, own0, job0), (t1, busy1, own1, job1) = self._start, self._read()
        wall = t1 - t0
        if wall <= 0:
            return None
        own = max(0.0, own1 - own0) / wall
        job = max(own, (job1 - job0) / wall)
        other = max(0.0, (busy1 - busy0) / wall - job)
        cores = len(self.cpus)
        share = other / cores
        limit = DISTORTING_SHARE.get(self.device_type, DISTORTING_SHARE["cpu"])
        return {
            "window_seconds": round(wall, 3),
            "cores_available": cores,
            "this_process_cores_mean": round(own, 3),
            "job_processes_cores_mean": round(job, 3),
            "other_processes_cores_mean": round(other, 3),
            "other_processes_share": round(share, 4),
            "distorting_share": limit,
            "distorted": share >= limit,
        }


def warning(summary: dict | None) -> str | None:
    if not summary or not summary["distorted"]:
        return None
    return (
        f"other processes kept {summary['other_processes_cores_mean']:.1f} of the {summary['cores_available']} "
        f"usable CPU cores busy ({summary['other_processes_share']:.0%}) during the timed window: this result is "
        "likely lower than the machine delivers when idle; rerun on a quiet machine to compare"
    )

"""Per-process GPU memory and utilisation, labelled with the Slurm job or Kubernetes pod from the process's cgroup.

Faked: NVML (dlbench.nvml.simulated lists the processes) and the /proc and /var/log/pods trees, written under
tmp_path with the exact line formats the kernel, Slurm and the kubelet produce (sources in
dlbench/nvml/processes.py); the exposition and promtool are real.
"""

import pytest

from dlbench.nvml import processes
from dlbench.nvml.processes import owner_from_cgroup
from promtool_metrics import promtool_remarks
from tests.test_telemetry_exposition import exposition, find, samples

POD_UID = "0f3c2a5e-8b1d-4c7e-9a2b-3d4e5f6a7b8c"
CGROUPS = {
    # Slurm, cgroup v1 (several hierarchies, the job in each)
    "slurm-v1": (
        "12:memory:/slurm/uid_1000/job_4242/step_0/task_0\n11:devices:/slurm/uid_1000/job_4242/step_0\n"
        "1:name=systemd:/system.slice/slurmd.service\n",
        {"slurm_job_id": "4242"},
    ),
    # Slurm, cgroup v2
    "slurm-v2": ("0::/system.slice/slurmstepd.scope/job_977/step_batch/user/task_0\n", {"slurm_job_id": "977"}),
    # kubelet, cgroupfs driver, cgroup v1
    "k8s-cgroupfs": (f"10:memory:/kubepods/burstable/pod{POD_UID}/6b1e0c8a9d\n", {"pod_uid": POD_UID}),
    # kubelet, systemd driver, cgroup v2 (the pod uid's dashes become underscores)
    "k8s-systemd": (
        "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
        f"{POD_UID.replace('-', '_')}.slice/cri-containerd-6b1e0c8a9d.scope\n",
        {"pod_uid": POD_UID},
    ),
    # a login session: neither
    "session": ("0::/user.slice/user-1000.slice/session-3.scope\n", {}),
}


@pytest.mark.parametrize("kind", sorted(CGROUPS))
def test_owner_from_each_cgroup_layout(kind):
    text, expected = CGROUPS[kind]
    assert owner_from_cgroup(text) == expected


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A /proc with 200 GPU processes: pids 1000-1199, even ones in Slurm jobs, odd ones in two Kubernetes pods."""
    proc, pod_logs = tmp_path / "proc", tmp_path / "pods"
    pods = {"ml-team": ("trainer-0", POD_UID), "infer": ("server-7f9c", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")}
    for namespace, (name, uid) in pods.items():
        (pod_logs / f"{namespace}_{name}_{uid}" / "main").mkdir(parents=True)
    for pid in range(1000, 1200):
        (proc / str(pid)).mkdir(parents=True)
        if pid % 2 == 0:
            line = f"0::/system.slice/slurmstepd.scope/job_{pid // 10}/step_0/user/task_0\n"
        else:
            uid = pods["ml-team" if pid % 4 == 1 else "infer"][1]
            line = f"0::/kubepods.slice/kubepods-pod{uid.replace('-', '_')}.slice/cri-containerd-abc.scope\n"
        (proc / str(pid) / "cgroup").write_text(line)
    monkeypatch.setattr(processes, "PROC_ROOT", str(proc))
    monkeypatch.setattr(processes, "POD_LOG_ROOT", str(pod_logs))
    # process 1000 + i uses (i + 1) MiB and i % 100 percent of the SMs
    return [[1000 + i, (i + 1) * 2**20, i % 100] for i in range(200)]


def test_two_hundred_processes_are_bounded_to_the_top_ones_with_their_owners(host):
    text, _, _ = exposition("h100-sxm,a100", prepare=lambda fake: fake.gpus[0].values.update(processes=host))
    parsed = samples(text)
    memory = find(parsed, "dlbench_gpu_process_memory_used_bytes", gpu="0")
    assert len(memory) == processes.TOP_PROCESSES
    assert sorted(memory, reverse=True) == [(200 - i) * 2**20 for i in range(processes.TOP_PROCESSES)]
    assert find(parsed, "dlbench_gpu_processes", gpu="0") == [200]
    assert find(parsed, "dlbench_gpu_processes", gpu="1") == [0]
    assert find(parsed, "dlbench_gpu_process_memory_used_bytes", gpu="1") == []
    # pid 1199 (odd, 1199 % 4 == 3): the "infer" pod; pid 1198: Slurm job 119
    assert find(
        parsed,
        "dlbench_gpu_process_memory_used_bytes",
        pid="1199",
        namespace="infer",
        pod="server-7f9c",
        slurm_job_id="",
    ) == [200 * 2**20]
    assert find(
        parsed, "dlbench_gpu_process_memory_used_bytes", pid="1198", slurm_job_id="119", namespace="", pod=""
    ) == [199 * 2**20]
    assert find(parsed, "dlbench_gpu_process_sm_utilization_ratio", pid="1197") == [0.97]
    assert find(parsed, "dlbench_gpu_process_memory_used_bytes", pid="1000") == []  # past the limit


@pytest.mark.integration
def test_promtool_finds_nothing_to_say_about_process_series(host):
    text, _, _ = exposition("h100-sxm", prepare=lambda fake: fake.gpus[0].values.update(processes=host))
    assert promtool_remarks(text) == ""


def test_cgroup_read_once_per_process_and_forgotten_when_it_ends(host, tmp_path):
    from dlbench.nvml import simulated
    from dlbench.nvml.reader import NvmlReader

    fake = simulated.from_spec("h100-sxm")
    fake.gpus[0].values["processes"] = [[1002, 2**30, 5]]
    reader = NvmlReader(fake).start()
    assert reader.read_all()[0]["processes"][0]["slurm_job_id"] == "100"
    (tmp_path / "proc" / "1002" / "cgroup").unlink()  # not read again while the process runs
    assert reader.read_all()[0]["processes"][0]["slurm_job_id"] == "100"
    fake.gpus[0].values["processes"] = []
    assert reader.read_all()[0]["processes"] == []
    fake.gpus[0].values["processes"] = [[1002, 2**30, 5]]  # a new process reusing the pid is looked up afresh
    assert reader.read_all()[0]["processes"][0]["slurm_job_id"] == ""


def test_a_process_whose_memory_nvml_cannot_tell_is_listed_without_it(host):
    text, _, _ = exposition(
        "h100-sxm", prepare=lambda fake: fake.gpus[0].values.update(processes=[[1001, None, None], [1002, 2**30, None]])
    )
    parsed = samples(text)
    assert find(parsed, "dlbench_gpu_process_memory_used_bytes", pid="1001") == []
    assert find(parsed, "dlbench_gpu_process_memory_used_bytes", pid="1002") == [2**30]
    assert find(parsed, "dlbench_gpu_processes") == [2]

"""How long a run warms up and is timed, what it waits for, and whether other load on the machine distorted it."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from dlbench.train import contention, data, window
from dlbench.train.runner import RunConfig
from run_support import execute


def run(**overrides):
    return execute(RunConfig(**{"workload": "mnist-mlp", "device": "cpu", **overrides}))


def test_default_windows_are_time_based():
    assert window.timed_window(None, None, on_gpu=True) == window.TimedWindow(None, 30.0)
    assert window.timed_window(None, None, on_gpu=False) == window.TimedWindow(10, 3.0)
    assert window.timed_window(5, None, on_gpu=True) == window.TimedWindow(5, None)  # what was asked, exactly
    both = window.TimedWindow(5, 2.0)
    assert not both.done(5, 1.0) and not both.done(4, 2.5) and both.done(5, 2.0)


def test_a_job_plans_its_window_from_the_settled_warm_up_step_time():
    assert window.settled_step_seconds([9.0, 1.0, 0.2, 0.1, 0.1, 0.1, 0.3]) == 0.1  # the last 5 steps' median
    assert window.settled_step_seconds([]) is None  # --warmup 0
    assert window.planned_steps(window.TimedWindow(10, 3.0), 0.01) == 300  # 3 s of 10 ms steps
    assert window.planned_steps(window.TimedWindow(10, 3.0), 1.0) == 10  # the step count, when it is more
    assert window.planned_steps(window.TimedWindow(None, 30.0), None) == 1  # no estimate: one step, then measure
    assert window.planned_steps(window.TimedWindow(7, None), 0.01) == 7


def test_a_job_extends_its_window_at_the_rate_measured_until_both_limits_are_reached():
    both = window.TimedWindow(10, 3.0)
    assert window.more_steps(both, 300, 3.2) == 0
    assert window.more_steps(both, 300, 2.0) == 150  # 1 s more at 150 steps a second
    assert window.more_steps(both, 4, 3.5) == 6  # the duration is over, the step count is not
    assert window.more_steps(window.TimedWindow(None, 30.0), 1, 40.0) == 0  # one slow first step filled it
    assert window.more_steps(window.TimedWindow(None, 30.0), 1, 1e-9) >= 1


def test_one_process_decides_its_window_alone_and_says_so():
    result = run(steps=3, warmup=1)
    section = result["window"]
    assert (section["decided_by"], section["ranks"], section["planned_steps"], section["extensions"]) == (
        "this process",
        1,
        None,
        [],
    )
    assert section["warmup_step_seconds"] > 0 and result["metrics"]["steps_timed"] == 3


def test_a_smoke_workload_on_the_cpu_times_long_enough_to_mean_something():
    # mnist-mlp's 10 default steps took 0.01 s: timer and scheduler noise
    result = run(batch_size=8)
    metrics = result["metrics"]
    assert metrics["timed_seconds"] >= 3.0 and metrics["steps_timed"] >= 10
    assert result["config"]["duration"] == 3.0 and result["requested"]["duration"] is None
    assert not any("timed window lasted" in w for w in result["warnings"])


def test_a_short_window_is_named_in_the_warnings():
    result = run(steps=1, warmup=0, batch_size=8)
    assert any("timed window lasted" in w for w in result["warnings"])


@pytest.mark.parametrize(
    "times,expected",
    [
        ([9.0, 1.0, 1.02, 0.99, 1.01, 1.0, 1.0], True),  # compilation in step 1, then flat
        ([9.0, 1.0, 0.9, 0.8, 0.7, 0.6], False),  # still getting faster (autotuning, allocator growth)
        ([5.0] + [1.0, 1.3, 0.9, 1.4, 1.0] * 2, True),  # noisy, but the median stopped moving
        ([5.0, 1.0, 1.0], False),  # too few steps to tell
    ],
)
def test_warm_up_ends_when_step_time_settles(times, expected):
    done, settled = window.warmup_for(None, "cuda").finished(times, seconds_after_first=1.0)
    assert (done, settled) == (expected, expected)


def test_warm_up_stops_at_its_time_cap_unsettled_and_says_so():
    cap = window.MAX_WARMUP_SECONDS["cuda"]
    still_faster = [9.0, 1.0, 0.9, 0.8, 0.7, 0.6]
    assert window.warmup_for(None, "cuda").finished(still_faster, cap) == (True, False)
    assert window.warmup_for(4, "cuda").finished([9.0, 1.0, 0.5], cap) == (False, None)  # --warmup N is N


def test_warm_up_cap_waits_until_the_rule_has_seen_its_steps():
    # CPU resnet18: about 3.4 s a step, so the 10 s cap came after two steps, before the rule could be tried.
    cap = window.MAX_WARMUP_SECONDS["cpu"]
    assert window.warmup_for(None, "cpu").finished([9.0, 3.4, 3.5], cap) == (False, False)
    assert window.warmup_for(None, "cpu").finished([9.0, 3.4, 3.5, 3.3, 3.4, 3.4], cap) == (True, True)


def test_default_warm_up_runs_until_settled_and_is_recorded():
    result = run(steps=2, batch_size=8)
    warmup = result["warmup"]
    assert warmup["steps"] >= window.MIN_WARMUP_STEPS and warmup["settled"] in (True, False)
    assert result["requested"]["warmup"] is None and warmup["rule"].startswith("until the last 5 step times agree")


def test_input_wait_is_reported_beside_compute(monkeypatch, tmp_path):
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(4):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / label / f"{i}.png")
    original = data.ImageFolder.__getitem__

    def slow(self, index):
        time.sleep(0.02)  # a loader slower than the model: 2 samples x 20 ms per step
        return original(self, index)

    monkeypatch.setattr(data.ImageFolder, "__getitem__", slow)
    result = run(data=str(tmp_path), workers=0, batch_size=2, steps=5, warmup=0)
    metrics = result["metrics"]
    assert metrics["input_wait_seconds"] >= 5 * 2 * 0.02
    assert metrics["input_wait_measured_on"] == "host"  # a CPU step is synchronous: the host's wait is the device's
    # The share is the wait over the timed window; how large it is depends on how busy the CPU is, so compare it
    # with the run's own figures rather than a fixed bound.
    assert metrics["input_wait_share"] == round(metrics["input_wait_seconds"] / metrics["timed_seconds"], 4)
    assert 0 < metrics["input_wait_share"] < 1
    throughput = metrics["throughput"]
    assert throughput["compute_samples_per_second"] > throughput["samples_per_second"]


def test_real_batches_are_channels_last_when_asked(tmp_path):
    from dlbench.workloads import get_workload

    dataset = torch.utils.data.TensorDataset(torch.rand(4, 3, 32, 32), torch.zeros(4, dtype=torch.long))
    batches = data.RealBatches(dataset, get_workload("cifar-cnn"), 2, torch.device("cpu"), 0, 0, channels_last=True)
    inputs, _ = batches.next()
    assert inputs.is_contiguous(memory_format=torch.channels_last)  # was NCHW while the result said channels-last


def test_default_workers_come_from_the_cores_and_gpus(monkeypatch):
    monkeypatch.setattr(data.os, "sched_getaffinity", lambda pid: set(range(64)))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    assert data.default_workers(torch.device("cuda", 0)) == 7  # 64 cores / 8 GPUs, one left for the loop
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert data.default_workers(torch.device("cuda", 0)) == 16  # capped
    monkeypatch.setattr(data.os, "sched_getaffinity", lambda pid: {0, 1})
    assert data.default_workers(torch.device("cuda", 0)) == 1
    assert data.default_workers(torch.device("cpu")) == 1


def test_contention_is_other_processes_busy_time_on_our_cpus(monkeypatch):
    # scripted /proc readings: in 2 s, the 4 usable CPUs were busy 5 CPU-seconds, 3 of them ours
    readings = iter([(100.0, 1000.0, 50.0, 50.0), (102.0, 1005.0, 53.0, 53.0)])
    load = contention.CpuContention("cpu")
    load.cpus = [0, 1, 2, 3]
    monkeypatch.setattr(load, "_read", lambda: next(readings))
    load.start()
    summary = load.stop()
    assert summary["this_process_cores_mean"] == 1.5 and summary["other_processes_cores_mean"] == 1.0
    assert summary["other_processes_share"] == 0.25 and summary["distorted"]
    assert "1.0 of the 4 usable CPU cores" in contention.warning(summary)


def test_the_jobs_other_ranks_count_as_the_job_not_as_competition(monkeypatch):
    # scripted: in 2 s, the 2 usable CPUs were busy 4 CPU-seconds: 1.5 this rank's, 2.5 the job's (its sibling rank
    # and torchrun's agent included), so 1.5 from outside the job
    readings = iter([(100.0, 1000.0, 50.0, 80.0), (102.0, 1004.0, 51.5, 82.5)])
    load = contention.CpuContention("cpu", job=object())
    load.cpus = [0, 1]
    monkeypatch.setattr(load, "_read", lambda: next(readings))
    load.start()
    summary = load.stop()
    assert summary["this_process_cores_mean"] == 0.75 and summary["job_processes_cores_mean"] == 1.25
    assert summary["other_processes_cores_mean"] == 0.75 and summary["other_processes_share"] == 0.375


# One "rank" of a job whose launcher also starts a sibling that burns 0.3 s of CPU time while the rank measures: what
# torchrun's agent and two local ranks look like from inside one of them (psutil reads the real process tree). CPU
# time, not wall time: on a loaded machine a sibling that spins for a wall-clock second may get little of a core.
RANK = """
import json, sys
from dlbench.train import contention
load = contention.CpuContention("cpu", contention.job_root(2))
load.start()
print("measuring", flush=True)
sys.stdin.readline()
print(json.dumps(load.stop()), flush=True)
"""
BURN = "import time\nwhile time.process_time() < 0.3: pass"
LAUNCHER = f"""
import subprocess, sys
rank = subprocess.Popen([sys.executable, "-c", {RANK!r}], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
rank.stdout.readline()
subprocess.run([sys.executable, "-c", {BURN!r}], check=True)  # reaped: its time is in the launcher's children
rank.stdin.write("stop\\n")
rank.stdin.flush()
print(rank.stdout.readline(), end="")
rank.wait()
"""


def test_a_sibling_rank_under_the_same_launcher_counts_as_the_job():
    done = subprocess.run([sys.executable, "-c", LAUNCHER], capture_output=True, text=True, timeout=120, check=True)
    summary = json.loads(done.stdout)
    sibling_cpu_seconds = (summary["job_processes_cores_mean"] - summary["this_process_cores_mean"]) * summary[
        "window_seconds"
    ]
    assert sibling_cpu_seconds >= 0.25  # the sibling's 0.3 s (and the launcher's own), less rounding
    assert contention.job_root(1) is None  # one process: its own tree is the job


# The same, with the rank and its sibling bound to different CPUs, as `torchrun --numa-binding=node` binds each rank
# to its GPU's NUMA node (through numactl): the sibling's CPU time was spent on CPUs this rank does not measure, so
# subtracting it from this rank's CPUs' busy time would hide that much other load there.
PINNED_RANK = "import os\nos.sched_setaffinity(0, {0})\n" + RANK
PINNED_SIBLING = """
import os, sys, time
os.sched_setaffinity(0, {1})
while time.process_time() < 0.3: pass
print("burnt", flush=True)
time.sleep(600)
"""
PINNED_LAUNCHER = f"""
import subprocess, sys
rank = subprocess.Popen([sys.executable, "-c", {PINNED_RANK!r}], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        text=True)
rank.stdout.readline()
sibling = subprocess.Popen([sys.executable, "-c", {PINNED_SIBLING!r}], stdout=subprocess.PIPE, text=True)
sibling.stdout.readline()  # alive, its 0.3 s spent on CPU 1
rank.stdin.write("stop\\n")
rank.stdin.flush()
print(rank.stdout.readline(), end="")
rank.wait()
sibling.kill()
sibling.wait()
"""


@pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity") else True,
    reason="needs two usable CPUs to bind the ranks apart",
)
def test_a_sibling_rank_bound_to_other_cpus_is_not_subtracted_from_ours():
    done = subprocess.run(
        [sys.executable, "-c", PINNED_LAUNCHER], capture_output=True, text=True, timeout=120, check=True
    )
    summary = json.loads(done.stdout)
    assert summary["cores_available"] == 1
    sibling_cpu_seconds = (summary["job_processes_cores_mean"] - summary["this_process_cores_mean"]) * summary[
        "window_seconds"
    ]
    assert sibling_cpu_seconds < 0.1  # at most half the launcher's own (it may run on either CPU), not the 0.3 s


def test_our_own_children_count_as_ours_not_as_competition():
    load = contention.CpuContention("cpu")
    load.start()
    # a DataLoader worker does its work in a child like this one: one CPU second of it, however long a loaded
    # machine takes to give it that
    burner = subprocess.Popen([sys.executable, "-c", "import time\nwhile time.process_time() < 1.0: pass"])
    burner.wait(timeout=60)
    summary = load.stop()
    # the child's CPU second is counted as this process's (cores used over the window, times the window)
    assert summary["this_process_cores_mean"] * summary["window_seconds"] >= 0.9


# --- metrics.step_times_seconds: the series `dlbench compare` reads --------------------------------------------
def test_every_timed_step_time_is_listed_in_order():
    metrics = execute(RunConfig("mnist-mlp", device="cpu", steps=7, warmup=1))["metrics"]
    series = metrics["step_times_seconds"]
    assert len(series) == metrics["steps_timed"] == 7 and metrics["step_times_group_size"] == 1
    assert min(series) == metrics["step_time_seconds"]["min"] and max(series) == metrics["step_time_seconds"]["max"]
    assert sum(series) <= metrics["timed_seconds"]


def test_the_series_comes_from_the_step_clock_in_measured_order(monkeypatch):
    # On a GPU the clock's times are CUDA event intervals, not the host times observers see; scripted here.
    from dlbench.train.timing import StepClock

    monkeypatch.setattr(StepClock, "step_seconds", lambda self: [0.012, 0.010, 0.011])
    metrics = execute(RunConfig("mnist-mlp", device="cpu", steps=3, warmup=0))["metrics"]
    assert metrics["step_times_seconds"] == [0.012, 0.010, 0.011]  # not sorted: order is what compare needs


def test_a_long_window_lists_means_of_consecutive_steps_within_the_bound(monkeypatch):
    from dlbench.train.timing import StepClock

    monkeypatch.setattr(StepClock, "step_seconds", lambda self: [0.001, 0.002, 0.003] * 8000 + [0.005])
    metrics = execute(RunConfig("mnist-mlp", device="cpu", steps=3, warmup=0))["metrics"]  # schema-validated
    assert metrics["step_times_group_size"] == 3  # 24,001 steps over 10,000 entries
    assert len(metrics["step_times_seconds"]) == 8001
    assert metrics["step_times_seconds"][0] == pytest.approx(0.002) and metrics["step_times_seconds"][-1] == 0.005


def test_step_time_series_groups_only_past_its_limit():
    from dlbench.train.timing import step_time_series

    assert step_time_series([3.0, 1.0, 2.0], limit=3) == ([3.0, 1.0, 2.0], 1)
    assert step_time_series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], limit=3) == ([2.0, 5.0, 7.0], 3)
    assert step_time_series([], limit=3) == ([], 1)


def test_the_test_step_delay_hook_is_named_in_the_result(monkeypatch):
    # DLBENCH_TEST_STEP_DELAY exists for the tests; set by mistake elsewhere it would slow a run (or one rank, and with
    # it the whole job) with no trace in the result, whose figures would then be read as the hardware's
    monkeypatch.setenv("DLBENCH_TEST_STEP_DELAY", "0:0.001")
    assert any("rank 0 slept 0.001 s before every step" in warning for warning in run(steps=3, warmup=1)["warnings"])
    monkeypatch.setenv("DLBENCH_TEST_STEP_DELAY", "1:0.001")  # another rank slowed: the job's result says so too
    assert any("rank 1 slept 0.001 s before every step" in warning for warning in run(steps=3, warmup=1)["warnings"])

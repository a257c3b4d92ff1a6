"""Data-parallel runs on the CPU: real torchrun, real gloo process groups, real DDP, several processes.

What a GPU adds (NCCL, one GPU per local rank) cannot run here; everything above the backend choice is the same code.
Kept small: a few timed steps of the two smallest workloads, since CI has two cores for the whole suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dlbench.train import launch
from doc_commands_run_elsewhere import FSDP_ON_THE_CPU, SCALING_ON_THE_CPU
from run_support import validate

RUN_TIMEOUT = 240  # seconds for a whole torchrun job: start-up of N Python processes importing torch, on 2 cores


def dlbench(*argv: str, timeout: float = RUN_TIMEOUT, env: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))  # N ranks on 2 cores: one thread each, as torchrun sets
    return subprocess.run(
        [sys.executable, "-m", "dlbench", *argv], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def load(path) -> dict:
    with open(path, encoding="utf-8") as handle:
        result = json.load(handle)
    validate(result)
    return result


def check_job(result: dict, world_size: int) -> dict:
    assert result["status"] == "completed", result["error"]
    job = result["distributed"]
    assert job["backend"] == "gloo" and job["world_size"] == world_size and job["nodes"] == 1
    assert job["processes_per_node"] == world_size
    ranks = job["ranks"]
    assert [rank["rank"] for rank in ranks] == list(range(world_size))
    assert job["global_batch_size"] == world_size * result["config"]["batch_size"]
    assert job["global_batch_tokens"] is None  # images: a batch is counted in samples only
    # the aggregate is the sum of what each rank measured, and rank 0's own figure is its entry
    assert job["aggregate"]["samples_per_second"] == pytest.approx(sum(rank["samples_per_second"] for rank in ranks))
    assert ranks[0]["samples_per_second"] == pytest.approx(result["metrics"]["throughput"]["samples_per_second"])
    slowest = min(ranks, key=lambda rank: rank["samples_per_second"])
    assert job["slowest_rank"]["rank"] == slowest["rank"]
    # gradients stayed in sync: every replica holds the same parameters, bit for bit, after the timed steps
    digests = {rank["parameters_sha256"] for rank in ranks}
    assert len(digests) == 1 and job["parameters_in_sync"] is True
    communication = job["communication"]
    assert communication["synced_pass_seconds"] > 0 and communication["unsynced_pass_seconds"] > 0
    assert 0.0 <= communication["share"] <= 1.0
    # the probe never outlasts the window it explains: five passes each way, fewer after a short window
    steps = result["metrics"]["steps_timed"]
    assert communication["passes"] == (5 if steps >= 10 else max(1, steps // 2))
    return job


# --- default settings: every rank must run as many steps as the others ------------------------------------------
# The ranks used to end warm-up (the settle rule) and the timed window (steps and seconds) each on its own clock;
# under DDP and FSDP every step is a collective, so the rank that stopped first waited in its next collective until
# the timeout failed the job. These runs use the defaults a user gets (no --steps, no --warmup), skewed the way a
# loaded machine skews them: rank 1 sleeps before each step (the runner's test hook) and a CPU hog runs beside the
# job. The subprocess timeout is a liveness bound, not a timed assertion; --dist-timeout turns a hang into a failure
# well inside it.
SKEW = {"DLBENCH_TEST_STEP_DELAY": "1:0.003"}
# At the lowest priority (nice 19): it takes the cycles the job leaves idle (between steps, in collectives, in rank
# 1's delay) and makes the job's wake-ups contend for a core, but steals next to nothing from the rest of the test
# suite running in parallel processes (tests/conftest.py), where a full-priority hog cost a core for minutes.
HOG = "import os, time\nos.nice(19)\nend = time.time() + 600\nwhile time.time() < end: pass"


@contextlib.contextmanager
def cpu_hog():
    """A busy process beside the job while the block runs (one core's worth of whatever is idle)."""
    hog = subprocess.Popen([sys.executable, "-c", HOG])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def check_ranks_agreed(result: dict, world_size: int) -> None:
    assert result["status"] == "completed", result["error"]
    window = result["window"]
    assert window["decided_by"] == "all ranks" and window["ranks"] == world_size
    ranks = result["distributed"]["ranks"]
    steps = {rank["steps_timed"] for rank in ranks}
    assert len(steps) == 1, ranks  # one decision for the job: the same number of timed steps on every rank
    assert steps == {window["planned_steps"] + sum(window["extensions"])}
    # the CPU defaults were reached on every rank: at least 10 steps and 3 s
    assert min(steps) >= 10 and all(rank["timed_seconds"] >= 3.0 for rank in ranks)
    # the sibling ranks on this host and torchrun's agent are the job, not other load on the machine
    load = result["metrics"]["cpu_contention"]
    if result["distributed"]["processes_per_node"] > 1:
        assert load["job_processes_cores_mean"] > load["this_process_cores_mean"]
    else:
        assert load["job_processes_cores_mean"] == load["this_process_cores_mean"]


def _skewed_run_with_default_settings(out, argv, timeout=RUN_TIMEOUT):
    """`dlbench ARGV` with the defaults a user gets, rank 1 skewed and a CPU hog beside the job."""
    with cpu_hog():
        done = dlbench(*argv, "--dist-timeout", "60", "--output", str(out), env=SKEW, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return load(out)


@pytest.fixture(scope="module")
def ddp_run_with_default_settings(tmp_path_factory):
    """One two-rank DDP job (mnist-mlp) at the default settings, skewed: the tests of the agreed window and of the
    job's DDP result each check their part of it (a torchrun job costs three torch start-ups on two cores)."""
    out = tmp_path_factory.mktemp("ddp-defaults") / "defaults.json"
    argv = ["run", "mnist-mlp", "--nproc", "2", "--device", "cpu", "--no-telemetry"]
    return out, _skewed_run_with_default_settings(out, argv)


# Two tests rather than one parametrized over the strategy with request.getfixturevalue: a fixture asked for that way
# is not in the test's fixturenames, so tests/conftest.py could not send the DDP test to this module's process, and the
# shared DDP job would be run again wherever it landed (tests/test_parallel_groups.py checks for that).
def test_default_settings_end_on_every_rank_with_one_rank_skewed_under_ddp(ddp_run_with_default_settings):
    _, result = ddp_run_with_default_settings
    check_default_settings_ended(result)


@pytest.mark.slow  # the docs' FSDP command at gpt2-tiny's CPU size: about a minute of two loaded cores
def test_default_settings_end_on_every_rank_with_one_rank_skewed_under_fsdp(tmp_path):
    # docs/distributed.md's FSDP command for the CPU, as written (tests/doc_commands_run_elsewhere.py)
    # (gpt2-tiny at its CPU size, 8 x 128 tokens: about 80 s on two loaded cores, so a liveness bound of twice the
    # default)
    argv = shlex.split(FSDP_ON_THE_CPU)[1:]
    result = _skewed_run_with_default_settings(tmp_path / "defaults.json", argv, timeout=2 * RUN_TIMEOUT)
    check_default_settings_ended(result)


def check_default_settings_ended(result: dict) -> None:
    check_ranks_agreed(result, 2)
    assert result["requested"]["steps"] is None and result["requested"]["warmup"] is None
    assert result["warmup"]["rule"].startswith("until the last 5 step times agree")


@pytest.fixture(scope="module")
def scaling_with_default_settings():
    """docs/distributed.md's scaling study on the CPU, as written (tests/doc_commands_run_elsewhere.py: size 2, the
    one-process baseline added) at the default settings, rank 1 skewed beside a CPU hog: the test that every
    size ends agreed and the test of the study's efficiencies each check their part of it. Without --output, as
    shown: the study comes from --json, and each size's result from the temporary folder the study names."""
    with cpu_hog():
        done = dlbench(
            *shlex.split(SCALING_ON_THE_CPU)[1:],
            "--dist-timeout",
            "60",
            "--json",
            env=SKEW,
            timeout=2 * RUN_TIMEOUT,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    study = json.loads(done.stdout)
    runs = {Path(size["result"]).parent for size in study["sizes"]}
    assert len(runs) == 1 and next(iter(runs)).name.startswith("dlbench-scaling-"), study["sizes"]
    yield study
    shutil.rmtree(runs.pop())  # the study's temporary folder, which a user keeps or deletes: the tests read it first


def test_scaling_with_default_settings_ends_at_every_size_with_one_rank_skewed(scaling_with_default_settings):
    for size in scaling_with_default_settings["sizes"]:  # the baseline too: a one-rank torchrun job
        check_ranks_agreed(load(size["result"]), size["processes"])


def test_the_multinode_command_form_with_default_settings(tmp_path):
    """playbooks/benchmark_multinode.yml's (and examples/slurm's) form: one torchrun per node with a static
    rendezvous, --nnodes 2 --node-rank N, here two "nodes" on this machine over gloo, with the playbook's defaults."""
    from prometheus_server import free_port

    out, port = tmp_path / "multinode.json", free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", **SKEW)
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                f"--node-rank={node}",
                "--nproc-per-node=1",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                "-m",
                "dlbench",
                "run",
                "mnist-mlp",
                "--output",
                str(out),
                "--device",
                "cpu",
                "--no-telemetry",
                "--dist-timeout",
                "60",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for node in (0, 1)
    ]
    try:
        ended = [node.communicate(timeout=RUN_TIMEOUT) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
                node.communicate()
    assert [node.returncode for node in nodes] == [0, 0], ended[0][1][-3000:] + ended[1][1][-3000:]
    result = load(out)
    check_ranks_agreed(result, 2)
    assert result["distributed"]["nodes"] == 2


def test_two_ranks_train_in_sync_and_rank_zero_writes_one_result(ddp_run_with_default_settings):
    out, result = ddp_run_with_default_settings
    check_job(result, 2)
    assert list(out.parent.iterdir()) == [out]  # one result for the job, not one per rank


@pytest.mark.slow  # four ranks on two cores: the two-rank runs' code at twice their cost; it proves world sizes above 2
def test_four_ranks_of_cifar_cnn(tmp_path):
    out = tmp_path / "cnn.json"
    done = dlbench(
        "run",
        "cifar-cnn",
        "--nproc",
        "4",
        "--device",
        "cpu",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--batch-size",
        "4",
        "--no-telemetry",
        "--json",
        "--output",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    job = check_job(load(out), 4)
    assert json.loads(done.stdout)["distributed"]["world_size"] == 4  # only rank 0 prints, so stdout is one document
    assert len({rank["device"] for rank in job["ranks"]}) == 1


def test_fsdp_shards_a_transformer_across_two_ranks_in_bf16(tmp_path):
    """FSDP2 over gloo on the CPU, on the transformer smoke test: each rank holds half the parameters, the loss is
    finite, and the result claims no replica sync check where there are no replicas."""
    import math

    out = tmp_path / "fsdp.json"
    done = dlbench(
        "run",
        "gpt2-tiny",
        "--nproc",
        "2",
        "--device",
        "cpu",
        "--fsdp",
        "--precision",
        "bf16",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--batch-size",
        "2",
        "--seq-len",
        "32",
        "--no-telemetry",
        "--output",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = load(out)
    assert result["status"] == "completed", result["error"]
    job = result["distributed"]
    assert job["strategy"] == "fsdp" and job["backend"] == "gloo" and job["world_size"] == 2
    assert job["global_batch_size"] == 2 * 2 and job["global_batch_tokens"] == 2 * 2 * 32  # ranks x batch x seq-len
    # one group per transformer block (2) plus the root; bf16 compute and all-gathers, fp32 gradient reduction
    assert job["sharding"] == {
        "api": "torch.distributed.fsdp.fully_shard",
        "unit": "transformer block",
        "groups": 3,
        "param_dtype": "bfloat16",
        "reduce_dtype": "float32",
    }
    loss = result["metrics"]["loss"]
    assert math.isfinite(loss["first"]) and math.isfinite(loss["last"])
    ranks = job["ranks"]
    total = result["workload"]["parameters"]
    # sharded, not replicated: the shards add up to the model, and each rank holds about half of it
    assert sum(rank["parameters_held"] for rank in ranks) == total
    assert all(0.4 * total < rank["parameters_held"] < 0.6 * total for rank in ranks)
    # every rank's own peak memory (on the CPU: its resident set), rank 0's the same as its metrics say
    assert all(rank["peak_device_memory_bytes"] is None and rank["peak_host_memory_bytes"] > 0 for rank in ranks)
    assert ranks[0]["peak_host_memory_bytes"] == result["metrics"]["peak_host_memory_bytes"]
    # no replicas to compare: not `true`, which the digests of one all-gathered whole would always give
    assert job["parameters_in_sync"] is None
    assert job["communication"] is None  # no FSDP pass runs without communication to compare against
    assert job["aggregate"]["tokens_per_second"] == pytest.approx(sum(rank["tokens_per_second"] for rank in ranks))


def test_fsdp_trains_the_same_parameters_as_ddp_in_fp32(tmp_path):
    """Sharding changes where the parameters live, not the training: in fp32, two ranks with FSDP end with the very
    parameters two ranks with DDP end with (equal SHA-256; the sum of two ranks' gradients is exact either way)."""
    digests = {}
    for strategy in ("ddp", "fsdp"):
        out = tmp_path / f"{strategy}.json"
        argv = ["run", "gpt2-tiny", "--nproc", "2", "--device", "cpu", "--precision", "fp32", "--steps", "2"]
        argv += ["--warmup", "1", "--batch-size", "2", "--seq-len", "32", "--no-telemetry", "--output", str(out)]
        done = dlbench(*argv, *(["--fsdp"] if strategy == "fsdp" else []))
        assert done.returncode == 0, done.stderr[-3000:]
        job = load(out)["distributed"]
        assert job["strategy"] == strategy and job["parameters_in_sync"] is {"ddp": True, "fsdp": None}[strategy]
        digests[strategy] = job["ranks"][0]["parameters_sha256"]
    assert digests["fsdp"] == digests["ddp"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (("cifar-cnn", "--nproc", "2", "--device", "cpu"), "cifar-cnn is not one: drop --fsdp"),
        (("gpt2-tiny", "--device", "cpu"), "--fsdp shards the model across processes: add --nproc N"),
    ],
)
def test_fsdp_is_refused_in_one_line_before_torchrun_starts(argv, message):
    done = dlbench("run", *argv, "--fsdp", "--steps", "1", timeout=60)
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr[-3000:]


def test_fsdp_with_fp16_is_refused_under_torchrun(monkeypatch):
    """A rank started by an external torchrun (RANK set) checks again, fp16 included, before it joins the group."""
    from dlbench.errors import UserError
    from dlbench.train.runner import Run, RunConfig

    for name, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0"), ("LOCAL_WORLD_SIZE", "2")):
        monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match="--fsdp with --precision fp16: use --precision bf16"):
        Run(RunConfig("gpt2-tiny", device="cpu", precision="fp16", fsdp=True))
    with pytest.raises(UserError, match="resnet18 is not one"):
        Run(RunConfig("resnet18", device="cpu", fsdp=True))


def test_a_single_process_run_refused_on_bad_input_imports_neither_dtensor_nor_fsdp():
    """They cost one to two seconds of start-up, which a run that stops on bad input need not pay: only a
    multi-process run imports them (dlbench.train.distributed), or torch itself once the fit check builds the model on
    the meta device (which loads torch._dynamo, and FSDP with it) or a step runs."""
    probe = (
        "import sys\n"
        "from dlbench.errors import UserError\n"
        "from dlbench.train.runner import Run, RunConfig\n"
        "try:\n"
        "    Run(RunConfig('gpt2-tiny', device='cpu', seq_len=1_000_000))\n"
        "except UserError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('the bad --seq-len was accepted')\n"
        "print(' '.join(m for m in ('torch.distributed.tensor', 'torch.distributed.fsdp', 'dlbench.train.sharding')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == ""


# One rank of a job in which rank 1 reaches Run.close() seconds after rank 0 has closed and exited: what a loaded
# machine did when gloo ranks hung at exit after writing their result (dlbench/train/runner.py, Run.close). Each rank
# then counts the DDP wrappers still alive: one left holds its reducer, and through it the gloo group, into the
# interpreter's teardown, where that hang happened.
SLOW_CLOSE_RANK = """
import gc, os, sys, time
import torch
import torch.distributed as dist
from dlbench.train.runner import Run, RunConfig

rank = int(os.environ["RANK"])
run = Run(RunConfig("mnist-mlp", device="cpu", steps=2, warmup=1, batch_size=8, output=sys.argv[1]))
try:
    run.execute()
finally:
    if rank == 1:
        time.sleep(3)
    run.close()
gc.collect()
left = sum(isinstance(o, torch.nn.parallel.DistributedDataParallel) for o in gc.get_objects())
print(f"rank {rank} closed: group destroyed {not dist.is_initialized()}, DDP wrappers left {left}", flush=True)
print(f"rank {rank} run id {run.run_id}", flush=True)
"""


def test_a_rank_that_closes_late_still_exits_with_nothing_left_holding_the_group(tmp_path):
    """Regression test for the gloo hang at exit: Run.close must free DDP (its reducer holds the process group) and
    then destroy the group, and a job whose rank 1 closes 3 s after rank 0 must end well inside a short timeout."""
    script = tmp_path / "slow_close.py"
    script.write_text(SLOW_CLOSE_RANK)
    out = tmp_path / "slow.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(script)]
    # a hang at exit would run into this timeout: half the budget of a whole job, since this one trains 3 steps
    done = subprocess.run([*command, str(out)], capture_output=True, text=True, timeout=RUN_TIMEOUT // 2, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):
        assert f"rank {rank} closed: group destroyed True, DDP wrappers left 0" in done.stdout, done.stdout
    result = load(out)
    check_job(result, 2)
    # the same job, the same run id on every rank (what their live series carry): rank 0's, the result's. Each rank
    # drawing its own made the dashboards list a 2-rank job as two runs of one rank each.
    run_ids = {line.split()[-1] for line in done.stdout.splitlines() if " run id " in line}
    assert run_ids == {result["run_id"]}, done.stdout


def test_replicas_differ_without_ddp(tmp_path):
    """The sync check can fail: two single-process runs on the ranks' different data end with different digests."""
    import torch

    from dlbench.train import distributed

    first, second = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)
    second.load_state_dict(first.state_dict())
    assert distributed.parameters_digest(first) == distributed.parameters_digest(second)
    with torch.no_grad():
        second.weight[0, 0] += 1e-6
    assert distributed.parameters_digest(first) != distributed.parameters_digest(second)


def _free_port_pair() -> int:
    """A port P with P+1 also free (the ranks' --metrics-port base + local rank)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            base = first.getsockname()[1]
            if base >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", base + 1))
                except OSError:
                    continue
            return base
    raise RuntimeError("no two consecutive free ports")


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
        return [int(child) for child in handle.read().split()]


def _rank_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            variables = dict(item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item)
    except OSError:
        return None
    return int(variables[b"RANK"]) if b"RANK" in variables else None


def _scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def test_each_rank_serves_its_own_port_and_a_killed_rank_ends_the_job(tmp_path):
    base = _free_port_pair()
    out = tmp_path / "killed.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    job = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dlbench",
            "run",
            "mnist-mlp",
            "--nproc",
            "2",
            "--device",
            "cpu",
            "--steps",
            "1000000",
            "--warmup",
            "1",
            "--batch-size",
            "8",
            "--no-telemetry",
            "--dist-timeout",
            "30",
            "--metrics-port",
            str(base),
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # `dlbench run --nproc` became torchrun (exec: same pid); its children are the ranks
        deadline, pages = time.monotonic() + RUN_TIMEOUT, {}
        while time.monotonic() < deadline and len(pages) < 2:
            assert job.poll() is None, job.communicate()[1][-3000:]
            for port in (base, base + 1):
                page = _scrape(port)
                if page and "dlbench_train_steps_total{" in page:
                    pages[port] = page
            time.sleep(0.5)
        assert set(pages) == {base, base + 1}
        for port, rank in ((base, "0"), (base + 1, "1")):
            assert f'rank="{rank}"' in pages[port] and f'rank="{1 - int(rank)}"' not in pages[port]

        ranks = {_rank_of(child): child for child in _children(job.pid)}
        assert set(ranks) == {0, 1}
        killed_at = time.monotonic()
        os.kill(ranks[1], signal.SIGKILL)
        _, stderr = job.communicate(timeout=90)
        ended_after = time.monotonic() - killed_at
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert job.returncode != 0
    assert ended_after < 60  # well within the 30 s collective timeout plus torchrun's teardown
    # torchrun names the failed rank, its host and the signal; rank 0 left a result saying why it stopped
    root_cause = stderr.split("Root Cause", 1)[-1]
    assert "rank      : 1 (local_rank: 1)" in root_cause and "SIGKILL" in root_cause, stderr[-3000:]
    assert "host      :" in root_cause
    assert out.exists(), stderr[-3000:]
    result = load(out)
    assert result["status"] in ("failed", "interrupted")
    assert result["error"]
    assert result["distributed"]["world_size"] == 2


def test_a_hung_rank_fails_the_others_after_the_timeout(tmp_path):
    """A rank that stops answering (SIGSTOP: alive, sockets open, silent) must not leave rank 0 waiting: its
    collective times out after --dist-timeout, and it writes a `failed` result naming itself and its host."""
    out = tmp_path / "hung.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    job = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dlbench",
            "run",
            "mnist-mlp",
            "--nproc",
            "2",
            "--device",
            "cpu",
            "--steps",
            "1000000",
            "--warmup",
            "1",
            "--batch-size",
            "8",
            "--no-telemetry",
            "--dist-timeout",
            "5",
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    stopped = None
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline and stopped is None:
            assert job.poll() is None, job.communicate()[1][-3000:]
            ranks = {_rank_of(child): child for child in _children(job.pid)}
            if set(ranks) == {0, 1} and _cpu_seconds(ranks[1]) > 3.0:  # past start-up, into training
                stopped = ranks[1]
                os.kill(stopped, signal.SIGSTOP)
            time.sleep(0.5)
        assert stopped is not None
        stopped_at = time.monotonic()
        while not out.exists() and time.monotonic() - stopped_at < 60:
            time.sleep(0.2)
        failed_after = time.monotonic() - stopped_at
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)  # let torchrun's SIGTERM reach it rather than wait for its SIGKILL
        _, stderr = job.communicate(timeout=90)
    assert failed_after < 30  # the 5 s timeout, not forever
    assert job.returncode != 0
    result = load(out)
    assert result["status"] == "failed"
    assert f"rank 0 on {socket.gethostname()}" in result["error"] and "collective failed" in result["error"]
    assert result["error"] in stderr


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_scaling_writes_an_efficiency_per_size(scaling_with_default_settings):
    study = scaling_with_default_settings
    assert [entry["processes"] for entry in study["sizes"]] == [1, 2]  # the one-process baseline is added
    one = study["sizes"][0]
    assert one["efficiency"] == pytest.approx(1.0)
    for entry in study["sizes"][1:]:
        expected = entry["samples_per_second"] / (entry["processes"] * one["samples_per_second"])
        assert entry["efficiency"] == pytest.approx(expected)
    assert study["baseline_samples_per_second"] == one["samples_per_second"]
    for entry in study["sizes"]:
        result = load(entry["result"])
        assert result["distributed"]["world_size"] == entry["processes"]
        assert entry["samples_per_second"] == result["distributed"]["aggregate"]["samples_per_second"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--gpus", "2", "--device", "cpu"), "use --nproc N for N processes on the CPU"),
        (("--gpus", "2", "--nproc", "2"), "give one"),
    ],
)
def test_process_count_errors_are_one_line(argv, message):
    done = dlbench("run", "mnist-mlp", *argv, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"dlbench: error: {done.stderr.split('error: ', 1)[1].strip()}"]
    assert message in done.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--nproc", "2", "--seed", str(2**64 - 1)), "--seed 18446744073709551615 with 2 processes"),
        (("--nproc", "0"), "argument --nproc: must be a positive whole number, got 0"),
        (("--gpus", "64"), "--gpus 64: this host has"),
    ],
    ids=["seed-beyond-64-bits", "nproc-0", "gpus-beyond-host"],
)
def test_bad_process_input_is_refused_in_one_line_and_writes_nothing(tmp_path, argv, message):
    out = tmp_path / "r.json"
    done = dlbench("run", "mnist-mlp", "--device", "auto", *argv, "--output", str(out), timeout=60)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert message in lines[0] and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert lines[1:] in ([], ["(see 'dlbench run --help')"])  # argparse's errors add where to read the options
    assert list(tmp_path.iterdir()) == []


def test_a_rank_of_an_external_torchrun_refuses_a_seed_its_rank_overflows(monkeypatch):
    from dlbench.errors import UserError
    from dlbench.train.runner import Run, RunConfig

    for name, value in (("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1"), ("LOCAL_WORLD_SIZE", "2")):
        monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match="use a seed of at most 18446744073709551614"):
        Run(RunConfig("mnist-mlp", device="cpu", seed=2**64 - 1))


def test_gpus_beyond_the_host_are_refused(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # what Slurm sets for a one-GPU allocation
    from dlbench.errors import UserError

    with pytest.raises(UserError, match="--gpus 2: this host has 1 usable NVIDIA GPU"):
        launch.processes(2, None, "auto")
    assert launch.processes(1, None, "auto") == 1


def test_each_rank_runs_the_command_without_the_launch_options():
    argv = ["run", "gpt2", "--gpus", "8", "--steps", "5", "--nproc=2", "--output", "r.json"]
    command = launch.torchrun_command(8, argv)
    assert command[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=8"]
    assert command[5:] == ["-m", "dlbench", "run", "gpt2", "--steps", "5", "--output", "r.json"]


def test_scaling_passes_fsdp_to_every_size_and_refuses_it_for_a_cnn():
    import argparse

    from dlbench.commands import scaling

    parser = argparse.ArgumentParser()
    scaling.add_arguments(parser)
    args = parser.parse_args(["gpt2", "--gpus", "1,2", "--fsdp", "--precision", "bf16"])
    options = scaling._passed_on(args)
    assert options == ["--precision", "bf16", "--fsdp"]
    refused = dlbench("scaling", "resnet50", "--nproc", "1,2", "--fsdp", timeout=60)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "resnet50 is not one: drop --fsdp" in refused.stderr


# A command of docs/benchmarks.md that trains: two torchrun jobs (the tutorial loop, then dlbench), about 40 s on two
# cores. What dlbench does in such a job is proved in the fast tier above; this proves the benchmark script, like the
# other doc commands that train (tests/test_doc_commands.py).
@pytest.mark.slow
def test_the_harness_overhead_benchmark_compares_a_two_rank_job(tmp_path):
    """benchmarks/harness_overhead.py --ranks 2 as docs/benchmarks.md shows it, cut to one short round: the DDP
    tutorial loop and `dlbench run --nproc 2` (agreed window) each as a torchrun job, rank 0's figures compared."""
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "harness_overhead.py"
    out = tmp_path / "overhead.json"
    argv = ["--ranks", "2", "--workload", "mnist-mlp", "--batch-size", "16", "--steps", "20", "--duration", "1"]
    done = subprocess.run(
        [sys.executable, str(script), *argv, "--rounds", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=2 * RUN_TIMEOUT,
        check=False,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["ranks"] == 2 and report["dlbench_window"] == "default warm-up, --duration 1"
    assert report["plain_samples_per_second"][0] > 0 and report["dlbench_samples_per_second"][0] > 0
    assert "ratio dlbench/plain" in done.stdout


# -- the Llama workloads' defaults: FSDP2 over all ranks, per-op selective checkpointing, AdamW (tests/test_llama.py
# holds the model to torchtitan's; here the smoke size trains with no option but the process count)

LLAMA_TINY_FLOPS_PER_TOKEN = 6 * (229_696 - 1024 * 64) + 6 * 2 * 4 * (2 * 16) * 128  # torchtitan's formula


def _check_llama_job(result: dict, strategy: str) -> dict:
    assert result["status"] == "completed", result["error"]
    config, job, llm = result["config"], result["distributed"], result["llm"]
    assert (config["optimizer"], config["activation_checkpointing"], config["fsdp"]) == (
        "adamw",
        "selective",
        strategy == "fsdp",
    )
    assert (config["batch_size"], config["seq_len"], job["strategy"], job["world_size"]) == (4, 128, strategy, 2)
    # warm-up and window agreed across ranks: every rank timed the same steps
    assert result["window"]["decided_by"] == "all ranks"
    assert len({rank["steps_timed"] for rank in job["ranks"]}) == 1
    loss = result["metrics"]["loss"]
    assert loss["last"] < loss["first"]
    assert llm["tokens_per_second_per_gpu"] == pytest.approx(job["aggregate"]["tokens_per_second"] / 2)
    assert llm["flops_per_token"] == LLAMA_TINY_FLOPS_PER_TOKEN and llm["anchor"] is None
    return job


def test_llama_tiny_trains_with_fsdp_across_two_ranks_by_default(tmp_path):
    out = tmp_path / "fsdp.json"
    done = dlbench("run", "llama-tiny", "--nproc", "2", "--device", "cpu", "--no-telemetry", "--output", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    job = _check_llama_job(load(out), "fsdp")
    assert job["sharding"]["groups"] == 3 and job["parameters_in_sync"] is None
    total = 229_696
    assert sum(rank["parameters_held"] for rank in job["ranks"]) == total
    assert all(0.45 * total < rank["parameters_held"] < 0.55 * total for rank in job["ranks"])


@pytest.mark.slow  # DDP is proven by the two-rank mnist jobs and Llama across ranks by its FSDP job: this joins the two
def test_llama_tiny_trains_with_ddp_across_two_ranks_on_request(tmp_path):
    out = tmp_path / "ddp.json"
    done = dlbench(
        "run", "llama-tiny", "--nproc", "2", "--device", "cpu", "--no-fsdp", "--no-telemetry", "--output", str(out)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    job = _check_llama_job(load(out), "ddp")
    assert job["parameters_in_sync"] is True
    assert all(rank["parameters_held"] == 229_696 for rank in job["ranks"])


# --- the decisions are the job's: a peer rank that disagrees changes what this rank does ----------------------------
# The subprocess tests above catch per-rank decisions only when the skew happens to make two ranks disagree. Here the
# disagreement is certain: a real one-rank gloo group in this process, whose every agreement (ProcessGroup.agreed_max,
# the all-reduce MAX) also folds in a scripted second rank's value: that rank settles its warm-up 40 steps later, needs
# 7 more steps than this one to fill the duration, and asks for 5 more at the first check. A rank that decided alone
# would stop earlier at each of the three points.
PEER_WARMUP_STEPS_NOT_READY = 40


def test_every_decision_waits_for_the_slower_peer(monkeypatch):
    from prometheus_server import free_port

    from dlbench.train import distributed
    from dlbench.train.runner import Run, RunConfig

    for name, value in (
        ("RANK", "0"),
        ("WORLD_SIZE", "1"),
        ("LOCAL_RANK", "0"),
        ("LOCAL_WORLD_SIZE", "1"),
        ("MASTER_ADDR", "127.0.0.1"),
        ("MASTER_PORT", str(free_port())),
    ):
        monkeypatch.setenv(name, value)
    run = Run(RunConfig("mnist-mlp", device="cpu", batch_size=8, duration=0.3))
    calls = {"warm-up": 0, "plan": [], "extend": []}
    all_reduce_max = distributed.ProcessGroup.agreed_max

    def with_a_slower_peer(group, value):
        mine = all_reduce_max(group, value)  # the real collective, over the real (one-rank) group
        if "window" not in run.result:  # warm-up: 1.0 while a rank's settle rule is not met yet
            calls["warm-up"] += 1
            return max(mine, 1.0 if calls["warm-up"] <= PEER_WARMUP_STEPS_NOT_READY else 0.0)
        if not calls["plan"]:
            calls["plan"].append(mine)
            return mine + 7
        calls["extend"].append(mine)
        return max(mine, 5.0) if len(calls["extend"]) == 1 else mine

    monkeypatch.setattr(distributed.ProcessGroup, "agreed_max", with_a_slower_peer)
    try:
        result = run.execute()
    finally:
        run.close()
    validate(result)
    assert result["status"] == "completed", result["error"]
    assert result["warmup"]["steps"] == calls["warm-up"] > PEER_WARMUP_STEPS_NOT_READY
    window = result["window"]
    assert window["planned_steps"] == calls["plan"][0] + 7
    assert window["extensions"][0] == max(calls["extend"][0], 5)
    assert result["metrics"]["steps_timed"] == window["planned_steps"] + sum(window["extensions"])

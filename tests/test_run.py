"""`dlbench run` end to end on the CPU: results, timing arithmetic, interruption and failure handling."""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from dlbench.errors import RunFailed, UserError
from dlbench.train.observers import RunObserver
from dlbench.train.runner import Run, RunConfig
from prometheus_server import free_port, http_get, wait_for
from run_support import execute, validate


def run_in_process(**overrides):
    return execute(RunConfig(**{"workload": "mnist-mlp", "device": "cpu", "steps": 4, "warmup": 1, **overrides}))


def test_cli_run_writes_a_complete_result(cli_run):
    result = cli_run.result()  # tests/conftest.py: cifar-cnn, 3 steps of 8 after 1 warm-up, --output, telemetry
    validate(result)
    assert result["schema_version"] == 2
    assert result["status"] == "completed" and result["error"] is None
    assert result["workload"]["parameters"] == 545_098
    assert result["config"]["batch_size"] == 8 and result["config"]["precision"] == "fp32"
    metrics = result["metrics"]
    assert metrics["steps_timed"] == 3 and metrics["samples_timed"] == 24
    # throughput is total samples over total timed wall time, not a mean of per-step rates
    assert metrics["throughput"]["samples_per_second"] == pytest.approx(24 / metrics["timed_seconds"])
    assert metrics["step_time_seconds"]["p50"] <= metrics["step_time_seconds"]["p99"]
    assert metrics["mfu"] is None  # no MFU on a CPU
    assert metrics["peak_host_memory_bytes"] > 0
    assert result["environment"]["torch"]["version"] == torch.__version__
    assert "cifar-cnn: completed" in cli_run.process.stdout
    assert [p.name for p in cli_run.output.parent.iterdir()] == ["result.json"]  # no temporary file left behind


def test_json_flag_prints_the_result(dlbench_cli):
    proc = dlbench_cli("run", "mnist-mlp", "--device", "cpu", "--steps", 2, "--warmup", 0, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["metrics"]["steps_timed"] == 2


def test_duration_mode_times_for_the_requested_seconds():
    result = run_in_process(steps=None, duration=0.5)
    metrics = result["metrics"]
    assert metrics["timed_seconds"] >= 0.5
    assert metrics["steps_timed"] >= 1


def test_language_model_reports_tokens_per_second():
    result = run_in_process(workload="gpt2-tiny", batch_size=1, seq_len=16, steps=2)  # the causal-lm smoke test
    throughput = result["metrics"]["throughput"]
    assert throughput["tokens_per_second"] == pytest.approx(throughput["samples_per_second"] * 16)
    assert result["workload"]["tokens_per_sample"] == 16


def test_masked_lm_trains_and_loss_is_finite():
    result = run_in_process(workload="bert-tiny", batch_size=2, seq_len=16, steps=2)  # the masked-lm smoke test
    assert result["status"] == "completed"
    assert all(map(torch.isfinite, map(torch.tensor, result["metrics"]["loss"].values())))


def test_loss_goes_down_on_a_fixed_batch():
    result = run_in_process(steps=30, optimizer="adamw")
    assert result["metrics"]["loss"]["last"] < result["metrics"]["loss"]["first"]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_autocast_precisions_run_on_cpu_and_say_when_the_cpu_only_emulates_them(precision):
    result = run_in_process(workload="cifar-cnn", precision=precision, batch_size=4, steps=2)
    assert result["config"]["precision"] == precision
    # oneDNN's own answer for this CPU (an AVX2 one has neither): the warning follows it
    native = getattr(torch.ops.mkldnn, f"_is_mkldnn_{precision}_supported")()
    emulated = [w for w in result["warnings"] if "PyTorch emulates it" in w]
    assert len(emulated) == (0 if native else 1), result["warnings"]


@pytest.mark.parametrize("native", [True, False])
def test_the_emulation_warning_follows_onednn_and_never_applies_to_gpus_or_fp32(monkeypatch, native):
    from dlbench.train.device import cpu_emulation_warning

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    said = cpu_emulation_warning("bf16", torch.device("cpu"))
    assert (said is None) == native
    if said:
        assert said.startswith("--precision bf16 on a CPU without bf16 instructions")
    assert cpu_emulation_warning("fp32", torch.device("cpu")) is None
    assert cpu_emulation_warning("bf16", torch.device("cuda", 0)) is None


def test_an_emulated_precision_is_said_on_stderr_before_training_starts(tmp_path):
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU runs bf16 natively: nothing to warn of")
    done = subprocess.run(
        [sys.executable, "-m", "dlbench", "run", "mnist-mlp", "--device", "cpu", "--precision", "bf16"]
        + ["--steps", "2", "--warmup", "1", "--json", "--no-telemetry"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if "PyTorch emulates it" in line]
    assert len(lines) == 1 and lines[0].startswith("dlbench: warning: --precision bf16"), done.stderr
    assert done.stderr.splitlines()[0] == lines[0]  # first, not with the warnings a finished run adds
    assert json.loads(done.stdout)["warnings"][0] == lines[0].removeprefix("dlbench: warning: ")  # said once


def test_channels_last_and_compile_run():
    result = run_in_process(workload="cifar-cnn", channels_last=True, compile=True, batch_size=4, steps=2)
    assert result["status"] == "completed"


class InterruptAt(RunObserver):
    def __init__(self, step):
        self.step = step

    def on_step(self, step, step_seconds, samples, loss):
        if step == self.step:
            raise KeyboardInterrupt


def test_ctrl_c_during_timed_steps_keeps_the_steps_done(tmp_path):
    out = tmp_path / "r.json"
    run = Run(RunConfig("mnist-mlp", device="cpu", steps=100, warmup=1, output=str(out)), [InterruptAt(3)])
    result = run.execute()
    assert result["status"] == "interrupted"
    assert result["metrics"]["steps_timed"] == 3
    assert json.loads(out.read_text())["status"] == "interrupted"


def test_sigint_to_the_cli_writes_an_interrupted_result(tmp_path):
    out, port = tmp_path / "r.json", free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dlbench",
            "run",
            "mnist-mlp",
            "--device",
            "cpu",
            "--duration",
            "120",
            "--output",
            str(out),
            "--metrics-port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # signal once the run is timing: its /health counts the timed steps (a fixed sleep raced start-up under load)
    wait_for(lambda: json.loads(http_get(f"http://127.0.0.1:{port}/health")[1])["steps"] >= 1, 240, "timed steps")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    result = json.loads(out.read_text())
    assert result["status"] == "interrupted"
    assert "interrupted" in stderr


def test_out_of_memory_names_the_batch_size_and_records_failure(tmp_path, monkeypatch):
    # A real OOM needs a GPU; the allocator's exception is raised at the training step instead.
    def out_of_memory(self):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Run, "_train_step", out_of_memory)
    out = tmp_path / "r.json"
    with pytest.raises(RunFailed, match=r"out of memory on cpu at batch size 32; try --batch-size 16"):
        run_in_process(output=str(out))
    result = json.loads(out.read_text())
    assert result["status"] == "failed" and "batch size 32" in result["error"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--batch-size", "0"], "must be a positive whole number"),
        (["--steps", "-3"], "must be a positive whole number"),
        (["--duration", "0"], "must be positive"),
        (["--duration", "-1"], "must be positive"),
        (["--device", "cuda"], "no CUDA GPU is available"),
        (["--device", "tpu"], "unknown device"),
        (["--precision", "tf32", "--device", "cpu"], "tf32 needs an NVIDIA GPU"),
        (["--output", "/nonexistent-dir/r.json"], "does not exist"),
        (["--data", "/nonexistent/data"], "no such file or directory"),
        (["--data", ""], "--data must not be empty"),  # was the current directory
        (["--output", ""], "--output must not be empty"),  # trained, then crashed and lost the result
        (["--seed", str(2**64)], "seed must be 0 to 2**64-1"),
        (["--seed", "-1"], "seed must be 0 to 2**64-1"),
        (["--duration", "inf"], "must be a finite number of seconds"),
        (["--duration", "nan"], "must be positive"),
        (["--pad-vocab"], "--pad-vocab applies to GPT-2 workloads"),
        (["--seq-len", "64"], None),  # accepted but meaningless for images: not an error
    ],
)
def test_bad_input_is_one_line_and_non_zero(dlbench_cli, args, message):
    if torch.cuda.is_available() and "cuda" in args:
        pytest.skip("a GPU is present")
    length = [] if {"--steps", "--duration"} & set(args) else ["--steps", "1"]
    proc = dlbench_cli("run", "mnist-mlp", "--warmup", 0, *length, *args)
    if message is None:
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize("where", ["/proc/dlbench-result.json", "locked-dir"])
def test_unwritable_output_fails_before_training(dlbench_cli, tmp_path, where):
    if where == "locked-dir":
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        if os.geteuid() == 0:
            pytest.skip("root ignores permission bits; the /proc case covers root")
        where = locked / "r.json"
    proc = dlbench_cli("run", "mnist-mlp", "--steps", 1, "--output", where)
    assert proc.returncode == 2, proc.stderr
    assert "not writable" in proc.stderr and "Traceback" not in proc.stderr


def test_a_corrupt_image_in_an_image_folder_is_one_line_and_exit_2(dlbench_cli, tmp_path):
    from PIL import Image

    data = tmp_path / "images"
    for label in ("cat", "dog"):
        (data / label).mkdir(parents=True)
        Image.new("RGB", (40, 40), (10, 200, 30)).save(data / label / "good.png")
    (data / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    out = tmp_path / "r.json"
    # workers: the error is raised in a DataLoader worker process and must still arrive as one line
    proc = dlbench_cli(
        "run",
        "cifar-cnn",
        "--device",
        "cpu",
        "--data",
        data,
        "--workers",
        2,
        "--batch-size",
        1,
        "--steps",
        10,
        "--warmup",
        0,
        "--output",
        out,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "DataLoader worker" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"dlbench: error: --data: {data / 'dog' / 'broken.jpg'} is not a readable image (")
    result = json.loads(out.read_text())
    assert result["status"] == "failed" and "broken.jpg" in result["error"]


def test_an_empty_token_file_is_one_line_and_exit_2(dlbench_cli, tmp_path):
    empty = tmp_path / "train.bin"
    empty.touch()
    proc = dlbench_cli("run", "gpt2", "--device", "cpu", "--data", empty, "--steps", 1, "--seq-len", 8)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"dlbench: error: --data {empty}: the file is empty; expected uint16 token ids (nanoGPT's train.bin)"
    ]


def test_seq_len_beyond_context_is_refused():
    with pytest.raises(UserError, match="context of 1024"):
        Run(RunConfig("gpt2", device="cpu", seq_len=2048))


class RecordSteps(RunObserver):
    def __init__(self):
        self.calls = []

    def on_step(self, step, step_seconds, samples, loss):
        self.calls.append((step, step_seconds, samples))


def test_observers_get_per_step_seconds_that_add_up_to_the_timed_window():
    recorder = RecordSteps()
    run = Run(RunConfig("mnist-mlp", device="cpu", steps=5, warmup=1, batch_size=8), [recorder])
    result = run.execute()
    assert [c[0] for c in recorder.calls] == [1, 2, 3, 4, 5]
    assert all(c[2] == 8 and c[1] > 0 for c in recorder.calls)
    assert sum(c[1] for c in recorder.calls) == pytest.approx(result["metrics"]["timed_seconds"], rel=0.2)


def test_run_result_carries_the_telemetry_window(cli_run):
    telemetry = cli_run.result()["telemetry"]
    assert telemetry["gpu"] is None  # no GPU in use: no GPU section rather than zeros
    assert 0 <= telemetry["host"]["cpu_utilization_mean_ratio"] <= 1
    assert telemetry["samples"] >= 2  # the window's start and end are always sampled

"""benchmarks/micro runs under pytest-benchmark as a user runs it (small sizes on the CPU), and its JSON is read by
the converter, `dlbench compare` and pytest-benchmark's own compare."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dlbench.results import pytest_benchmark

ROOT = Path(__file__).resolve().parents[1]


def _pytest(*args, timeout=600):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "benchmarks/micro",
            "--benchmark-only",
            "-p",
            "no:cacheprovider",
            "-rs",
            *map(str, args),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    storage = tmp_path_factory.mktemp("benchmarks")
    out = _pytest("--benchmark-autosave", "--benchmark-save-data", f"--benchmark-storage=file://{storage}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    files = sorted(storage.rglob("0001_*.json"))
    assert len(files) == 1
    return storage, files[0], out.stdout


@pytest.mark.integration
def test_suite_saves_every_benchmark_with_its_work_and_skips_gpu_cases_with_a_reason(saved):
    _, path, output = saved
    document = json.loads(path.read_text())
    names = {b["name"] for b in document["benchmarks"]}
    assert {
        "test_matmul[fp32]",
        "test_matmul[bf16]",
        "test_conv2d",
        "test_scaled_dot_product_attention",
        "test_device_copy",
        "test_training_step[mnist-mlp]",
    } <= names
    for bench in document["benchmarks"]:
        extra = bench["extra_info"]
        assert (extra.get("flops") or 0) > 0 or (extra.get("bytes") or 0) > 0, bench["name"]
        assert extra["device"] == "cpu" and len(bench["stats"]["data"]) == bench["stats"]["rounds"]
    assert "host<->device copies need a CUDA device" in output
    assert "an all-reduce needs 2 or more CUDA devices" in output
    assert "TFLOP/s" in output and "GB/s" in output  # the achieved rates beside the times


@pytest.mark.integration
def test_the_test_documents_have_the_shape_of_a_real_file(saved):
    """The hand-made pytest-benchmark documents other tests use carry the keys a real autosave has."""
    from results_support import pytest_benchmark_document

    real, made = json.loads(saved[1].read_text()), pytest_benchmark_document()
    assert set(made) == set(real)
    assert set(made["benchmarks"][0]) == set(real["benchmarks"][0])
    assert set(made["benchmarks"][0]["stats"]) == set(real["benchmarks"][0]["stats"])
    assert set(made["benchmarks"][0]["options"]) == set(real["benchmarks"][0]["options"])


@pytest.mark.integration
def test_saved_json_round_trips_through_the_converter(saved):
    document = json.loads(saved[1].read_text())
    results = pytest_benchmark.to_results(json.loads(json.dumps(document)), str(saved[1]))
    assert len(results) == len(document["benchmarks"])
    back, left_out = pytest_benchmark.from_results(json.loads(json.dumps(results)))
    assert back == document and left_out == []


@pytest.mark.integration
def test_dlbench_compare_reads_the_saved_file(saved, dlbench_cli, tmp_path):
    copy = tmp_path / "copy.json"  # the file itself on both sides is refused: a copy holds the same rounds
    copy.write_text(saved[1].read_text())
    out = dlbench_cli("compare", saved[1], copy, "--json")
    assert out.returncode == 0, out.stderr
    pairs = json.loads(out.stdout)["pairs"]
    assert len(pairs) == len(json.loads(saved[1].read_text())["benchmarks"])
    # the same rounds: no difference at all; a shared CPU may still scatter enough to be called noisy
    assert all(p["decision"]["p_value"] == 1.0 and p["verdict"] in ("same", "noisy") for p in pairs)


@pytest.mark.integration
def test_benchmark_compare_fail_gates_on_the_saved_baseline(saved):
    """`--benchmark-compare --benchmark-compare-fail=mean:5%` as the README shows it: against a baseline made 100x
    faster it must fail; against the real one with a tolerance no shared machine exceeds it must pass."""
    storage, path, _ = saved
    document = json.loads(path.read_text())
    fast = json.loads(json.dumps(document))
    for bench in fast["benchmarks"]:
        for key in ("min", "max", "mean", "median", "stddev", "q1", "q3", "iqr"):
            bench["stats"][key] /= 100
    fast_path = path.with_name(path.name.replace("0001_", "0002_"))
    fast_path.write_text(json.dumps(fast))
    common = (f"--benchmark-storage=file://{storage}", "-k", "device_copy")
    out = _pytest(*common, "--benchmark-compare=0002", "--benchmark-compare-fail=mean:5%")
    assert out.returncode != 0 and "Performance has regressed" in out.stdout + out.stderr
    out = _pytest(*common, "--benchmark-compare=0001", "--benchmark-compare-fail=mean:1000%")
    assert out.returncode == 0, out.stdout[-3000:]


def test_the_gpu_timer_waits_for_every_gpu_before_reading_the_clock(monkeypatch):
    """torch.cuda replaced at its narrowest boundary (device count, synchronize): no GPU here."""
    import time

    import torch

    sys.path.insert(0, str(ROOT / "benchmarks" / "micro"))
    try:
        import micro_device
    finally:
        sys.path.remove(str(ROOT / "benchmarks" / "micro"))
    calls = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(("synchronize", device)))
    real_clock = time.perf_counter
    monkeypatch.setattr(micro_device.time, "perf_counter", lambda: calls.append(("clock", None)) or real_clock())
    micro_device.synchronized_perf_counter()
    assert calls == [("synchronize", 0), ("synchronize", 1), ("clock", None)]


def test_the_convolution_is_timed_with_cudnn_autotuning_and_leaves_the_setting_as_it_was():
    """pytest-benchmark's fixture replaced by a recorder of the setting in force while the convolution is timed."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks" / "micro"))
    try:
        import test_compute
    finally:
        sys.path.remove(str(ROOT / "benchmarks" / "micro"))
    seen = []
    before = torch.backends.cudnn.benchmark
    test_compute.test_conv2d(lambda fn, **info: seen.append(torch.backends.cudnn.benchmark))
    assert seen == [True] and torch.backends.cudnn.benchmark == before


@pytest.mark.integration
def test_a_converted_run_has_the_shape_of_a_real_benchmark(saved):
    from results_support import make_result

    real = json.loads(saved[1].read_text())["benchmarks"][0]
    converted = pytest_benchmark.from_results([make_result()])[0]["benchmarks"][0]
    assert set(converted) == set(real) and set(converted["options"]) == set(real["options"])
    assert set(converted["stats"]) == set(real["stats"])

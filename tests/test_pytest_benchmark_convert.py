"""pytest-benchmark's JSON to dlbench results and back; `compare` reads pytest-benchmark files."""

import copy
import json

import pytest

from dlbench.results import pytest_benchmark
from dlbench.results.compare import compare
from dlbench.results.load import load_file
from results_support import make_result, pytest_benchmark_document, pytest_benchmark_entry, step_times, write


def test_round_trip_gives_pytest_benchmark_back_what_it_wrote():
    document = pytest_benchmark_document()
    results = pytest_benchmark.to_results(copy.deepcopy(document), "x.json")
    assert len(results) == 1
    result = results[0]
    assert result["workload"]["name"] == "benchmarks/micro/test_compute.py::test_matmul[bf16]"
    assert result["metrics"]["achieved_flops_per_second"] == pytest.approx(
        1e12 / document["benchmarks"][0]["stats"]["median"]
    )
    assert result["metrics"]["step_times_seconds"] == document["benchmarks"][0]["stats"]["data"]
    back, left_out = pytest_benchmark.from_results(json.loads(json.dumps(results)))
    assert back == document and left_out == []


def test_a_dlbench_run_becomes_a_benchmark_pytest_benchmark_can_compare():
    run = make_result(times=step_times(100, 0.02, count=30, seed=1))
    document, left_out = pytest_benchmark.from_results([run, make_result(keep_samples=False)])
    assert len(left_out) == 1  # a run without its step times cannot become rounds
    stats = document["benchmarks"][0]["stats"]
    assert stats["rounds"] == 30 and stats["data"] == run["metrics"]["step_times_seconds"]
    assert stats["median"] == pytest.approx(run["metrics"]["step_time_seconds"]["p50"])
    assert stats["min"] <= stats["q1"] <= stats["median"] <= stats["q3"] <= stats["max"]
    # and back: the converted benchmark is the same distribution, matched as the same workload
    again = pytest_benchmark.to_results(document)[0]
    assert again["metrics"]["step_times_seconds"] == run["metrics"]["step_times_seconds"]
    assert compare([run], [again]).pairs[0].verdict == "same"


def test_two_converted_runs_of_one_workload_match_each_other_and_not_other_settings():
    """pytest-benchmark pairs by fullname, dlbench compare by workload and settings: both must see one workload."""
    first, _ = pytest_benchmark.from_results([make_result(times=step_times(100, 0.01, seed=1))])
    later = make_result(times=step_times(100, 0.01, seed=2), started_at="2026-11-30T02:00:00+00:00")
    second, _ = pytest_benchmark.from_results([later])
    assert first["benchmarks"][0]["fullname"] == second["benchmarks"][0]["fullname"]
    pairs = compare(pytest_benchmark.to_results(first), pytest_benchmark.to_results(second)).pairs
    assert [p.verdict for p in pairs] == ["same"]
    fp32, _ = pytest_benchmark.from_results([make_result(precision="fp32")])
    assert fp32["benchmarks"][0]["fullname"] != first["benchmarks"][0]["fullname"]


def test_compare_reads_pytest_benchmark_files_with_and_without_saved_data(dlbench_cli, tmp_path):
    # rounds saved: the median is tested on them (rank test) beside the mean; without them the mean alone (Welch)
    tested = {True: {"throughput", "mean step time", "median step time"}, False: {"throughput", "mean step time"}}
    for save_data in (True, False):
        a = write(tmp_path / "0001_base.json", pytest_benchmark_document(4.0, seed=1, save_data=save_data))
        b = write(tmp_path / "0002_new.json", pytest_benchmark_document(4.6, seed=2, save_data=save_data))
        out = dlbench_cli("compare", a, b, "--json")
        assert out.returncode == 1, out.stderr
        pair = json.loads(out.stdout)["pairs"][0]
        assert pair["verdict"] == "regression"
        assert {f["statistic"] for f in pair["decision"]["findings"]} == tested[save_data]
        throughput = next(f for f in pair["decision"]["findings"] if f["statistic"] == "throughput")
        assert throughput["unit"] == "steps/s"  # a benchmark's OPS: rounds per second
        tflops = next(m for m in pair["metrics"] if m["unit"] == "TFLOP/s")
        assert tflops["baseline"] == pytest.approx(250, rel=0.02) and tflops["change"] < -0.1


def test_benchmarks_on_different_gpus_are_not_matched():
    a, b = pytest_benchmark_document(), pytest_benchmark_document()
    b["benchmarks"][0]["extra_info"]["device_name"] = "NVIDIA A100-SXM4-80GB"
    with pytest.raises(Exception, match="device_model"):
        compare(pytest_benchmark.to_results(a), pytest_benchmark.to_results(b))


def test_convert_command_round_trips_a_pytest_benchmark_file(dlbench_cli, tmp_path):
    document = pytest_benchmark_document()
    document["benchmarks"].append(
        pytest_benchmark_entry("benchmarks/micro/test_compute.py::test_matmul[fp16]", step_times(4, 0.01, 20))
    )
    original = write(tmp_path / "0001_micro.json", document)
    results = tmp_path / "results"
    results.mkdir()
    out = dlbench_cli("convert", original, "--to", "dlbench", "--output", results)
    assert out.returncode == 0, out.stderr
    files = sorted(results.glob("*.json"))
    assert len(files) == 2 and all(load_file(f)[0]["workload"]["task"] == "micro-benchmark" for f in files)
    back = tmp_path / "0002_back.json"
    out = dlbench_cli("convert", results, "--to", "pytest-benchmark", "--output", back)
    assert out.returncode == 0, out.stderr
    again = json.loads(back.read_text())
    assert sorted(again["benchmarks"], key=lambda b: b["fullname"]) == sorted(
        document["benchmarks"], key=lambda b: b["fullname"]
    )


def test_convert_refuses_what_it_cannot_do(dlbench_cli, tmp_path):
    run = write(tmp_path / "run.json", make_result(keep_samples=False))
    out = dlbench_cli("convert", run, "--to", "pytest-benchmark", "--output", tmp_path / "b.json")
    assert out.returncode == 2 and "no result kept its step-time samples" in out.stderr
    assert not (tmp_path / "b.json").exists()
    out = dlbench_cli("convert", run, "--to", "dlbench", "--output", tmp_path / "missing")
    assert out.returncode == 2 and "not a directory" in out.stderr

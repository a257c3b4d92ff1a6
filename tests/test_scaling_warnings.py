"""`dlbench scaling`: an efficiency above 100 % is called superlinear, with the cause the runs' results show."""

import json
import re

import pytest

from dlbench.commands import scaling
from dlbench.results import scaling as scaling_study
from results_support import make_result, step_times, write


def _size(tmp_path, processes: int, step_ms: float, threads: int, **changes) -> dict:
    """One size of a study as `scaling` reads it: the entry and rank 0's result beside it (batch 32 a rank)."""
    result = make_result(
        "cifar-cnn",
        times=step_times(step_ms, 0.01, count=300, seed=processes),
        batch_size=32,
        precision="fp32",
        device="cpu",
    )
    result["environment"]["torch_threads"] = threads
    result.update(changes)
    path = write(tmp_path / f"cifar-cnn-{processes}.json", result)
    rate = processes * result["metrics"]["throughput"]["samples_per_second"]
    return {
        "processes": processes,
        "status": "completed",
        "result": str(path),
        "samples_per_second": rate,
        "efficiency": None,
        "slowest_rank": None,
        "communication_share": None,
    }


def test_the_review_case_names_the_thread_counts_and_the_slow_baseline(tmp_path):
    """The review's 259 %: a 2-thread single process against two 1-thread ranks on a loaded 2-core machine."""
    study = scaling_study.study([_size(tmp_path, 1, 26.0, threads=2), _size(tmp_path, 2, 10.0, threads=1)])
    assert study["sizes"][1]["efficiency"] == pytest.approx(2.6, rel=0.03)
    [warning] = study["warnings"]
    assert re.match(r"2 processes: 2[56]\d% efficiency is superlinear", warning)
    assert "the 1-process baseline ran 2 intra-op threads, each of the 2 ranks 1" in warning
    took = r"rank 0 of 2 took (9\.9\d|10\.?\d*) ms a step \(median\), the single process 2[56]\.?\d* ms"
    assert re.search(took, warning)


def test_a_contended_baseline_is_named(tmp_path):
    contended = {
        "distorted": True,
        "other_processes_cores_mean": 1.2,
        "cores_available": 2,
        "other_processes_share": 0.6,
    }
    base = _size(tmp_path, 1, 14.0, threads=1)
    with open(base["result"], encoding="utf-8") as handle:
        result = json.load(handle)
    result["metrics"]["cpu_contention"] = contended
    write(tmp_path / "cifar-cnn-1.json", result)
    study = scaling_study.study([base, _size(tmp_path, 2, 10.0, threads=1)])
    [warning] = study["warnings"]
    assert "the 1-process baseline is suspect: other processes kept 1.2 of its 2 CPU cores busy (60%)" in warning
    assert "threads" not in warning


def test_no_slow_baseline_in_the_results_names_caches(tmp_path):
    study = scaling_study.study([_size(tmp_path, 1, 10.5, threads=1), _size(tmp_path, 4, 10.0, threads=1)])
    [warning] = study["warnings"]
    assert "4 processes: 10" in warning and "fits a cache better" in warning


def test_linear_and_sublinear_sizes_say_nothing(tmp_path, capsys):
    study = scaling_study.study([_size(tmp_path, 1, 10.0, threads=1), _size(tmp_path, 2, 12.0, threads=1)])
    assert study["sizes"][1]["efficiency"] < 1.0 and study["warnings"] == []
    superlinear = scaling_study.study([_size(tmp_path, 1, 20.0, threads=2), _size(tmp_path, 2, 10.0, threads=1)])
    scaling._print_table({"workload": "cifar-cnn", **superlinear})
    out = capsys.readouterr().out
    assert "warning: 2 processes: 20" in " ".join(out.split())

"""`dlbench compare`: verdicts on result pairs with known answers, matching, and bad input."""

import json
import os
import random

import pytest

from dlbench.results import stats
from dlbench.results.compare import compare
from results_support import make_result, step_times, write


def _compare_files(dlbench_cli, tmp_path, baseline, candidate, *extra):
    a = write(tmp_path / "before.json", baseline)
    b = write(tmp_path / "after.json", candidate)
    return dlbench_cli("compare", a, b, "--json", *extra)


def _verdict(process):
    assert "Traceback" not in process.stderr
    return json.loads(process.stdout)["pairs"][0]["verdict"]


def test_same_distribution_is_same_and_exits_0(dlbench_cli, tmp_path):
    out = _compare_files(
        dlbench_cli,
        tmp_path,
        make_result(times=step_times(100, 0.02, seed=1)),
        make_result(times=step_times(100, 0.02, seed=2)),
    )
    assert (_verdict(out), out.returncode) == ("same", 0)


def test_clear_ten_percent_regression_exits_1_and_says_so(dlbench_cli, tmp_path):
    out = _compare_files(
        dlbench_cli,
        tmp_path,
        make_result(times=step_times(100, 0.02, seed=1)),
        make_result(times=step_times(110, 0.02, seed=2)),
    )
    assert (_verdict(out), out.returncode) == ("regression", 1)
    pair = json.loads(out.stdout)["pairs"][0]
    findings = {f["statistic"]: f for f in pair["decision"]["findings"]}
    assert findings["median step time"]["test"] == "mann-whitney-u"
    assert findings["median step time"]["change"] == pytest.approx(0.10, abs=0.02)
    assert findings["throughput"]["change"] == pytest.approx(-0.09, abs=0.02)
    assert pair["decision"]["statistic"] == "throughput"  # what the verdict names first: what users gate on
    throughput = next(m for m in pair["metrics"] if m["unit"] == "samples/s")
    assert throughput["change"] == pytest.approx(-0.09, abs=0.02)


def test_improvement_is_better_and_exits_0(dlbench_cli, tmp_path):
    out = _compare_files(
        dlbench_cli,
        tmp_path,
        make_result(times=step_times(100, 0.02, seed=1)),
        make_result(times=step_times(85, 0.02, seed=2)),
    )
    assert (_verdict(out), out.returncode) == ("better", 0)


def test_noisy_but_equal_is_noisy_not_same_and_not_a_regression(dlbench_cli, tmp_path):
    out = _compare_files(
        dlbench_cli,
        tmp_path,
        make_result(times=step_times(100, 0.3, count=20, seed=1)),
        make_result(times=step_times(100, 0.3, count=20, seed=2)),
    )
    assert (_verdict(out), out.returncode) == ("noisy", 0)


def test_small_change_below_the_threshold_is_same_even_when_significant():
    a = make_result(times=step_times(100, 0.005, count=400, seed=1))
    b = make_result(times=step_times(102, 0.005, count=400, seed=2))
    pair = compare([a], [b]).pairs[0]
    assert pair.decision.finding("median step time").p_value < 1e-6  # 2 % is real at 0.5 % jitter ...
    assert pair.verdict == "same"  # ... but below the 5 % threshold
    assert compare([a], [b], threshold=0.01).pairs[0].verdict == "regression"


def test_results_without_samples_are_tested_on_their_summary(dlbench_cli, tmp_path):
    slow = make_result(times=step_times(110, 0.02, seed=2), keep_samples=False)
    out = _compare_files(
        dlbench_cli, tmp_path, make_result(times=step_times(100, 0.02, seed=1), keep_samples=False), slow
    )
    pair = json.loads(out.stdout)["pairs"][0]
    assert (pair["verdict"], pair["decision"]["method"], out.returncode) == ("regression", "welch-t", 1)
    assert [f["statistic"] for f in pair["decision"]["findings"]] == ["throughput", "mean step time"]
    assert any("median not tested" in note for note in pair["notes"])


def test_a_summary_without_its_deviation_is_not_decided_on_two_means():
    a = make_result(times=step_times(100, 0.02, seed=1), keep_samples=False)
    b = make_result(times=step_times(110, 0.02, seed=2), keep_samples=False)
    del b["metrics"]["step_time_seconds"]["stdev"]
    pair = compare([a], [b]).pairs[0]
    assert pair.verdict == "could not compare" and "deviation" in pair.reason


def test_same_distribution_rarely_called_a_regression():
    """The false-alarm rate of the whole decision stays near alpha even with a threshold of 0."""
    alarms = sum(
        compare(
            [make_result(times=step_times(100, 0.05, count=30, seed=2 * i))],
            [make_result(times=step_times(100, 0.05, count=30, seed=2 * i + 1))],
            threshold=1e-9,
            noise=0.5,
        )
        .pairs[0]
        .verdict
        in ("regression", "better")  # with no threshold, a difference the test cannot confirm is "noisy"
        for i in range(200)
    )
    assert alarms <= 8  # alpha 0.01 two-sided: about 2 expected out of 200; 8 is beyond p < 0.001 by the binomial


def test_different_configs_are_refused_naming_each_field(dlbench_cli, tmp_path):
    out = _compare_files(
        dlbench_cli,
        tmp_path,
        make_result(precision="bf16", batch_size=256),
        make_result(precision="fp32", batch_size=128),
    )
    assert out.returncode == 2 and out.stdout == ""
    line = out.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "precision ('bf16' vs 'fp32')" in line and "batch_size (256 vs 128)" in line
    assert "--ignore precision --ignore batch_size" in line


def test_ignore_lets_differing_runs_be_compared(dlbench_cli, tmp_path):
    out = _compare_files(
        dlbench_cli,
        tmp_path,
        make_result(precision="bf16", times=step_times(100, 0.01, seed=1)),
        make_result(precision="tf32", times=step_times(200, 0.01, seed=2)),
        "--ignore",
        "precision",
    )
    assert (_verdict(out), out.returncode) == ("regression", 1)


def test_device_model_matters_and_environment_changes_are_reported(dlbench_cli, tmp_path):
    newer = make_result()
    newer["environment"].update(device_name="NVIDIA H200", driver_version="590.44.01")
    out = _compare_files(dlbench_cli, tmp_path, make_result(), newer)
    assert out.returncode == 2 and "device_model ('NVIDIA H100 80GB HBM3' vs 'NVIDIA H200')" in out.stderr
    driver_only = make_result()
    driver_only["environment"]["driver_version"] = "590.44.01"
    out = _compare_files(dlbench_cli, tmp_path, make_result(), driver_only)
    assert out.returncode == 0
    assert json.loads(out.stdout)["pairs"][0]["environment_changes"]["driver"] == ["580.95.05", "590.44.01"]


def test_channels_last_on_a_language_model_is_no_difference():
    assert compare([make_result("gpt2")], [make_result("gpt2", channels_last=True)]).pairs[0].verdict == "same"


def test_resolved_settings_of_a_newer_result_win_over_the_requested_ones():
    """A result that keeps 'auto' in config and the resolved value beside it is matched on the resolved value."""
    a, b = make_result(), make_result()
    a["config"]["precision"] = b["config"]["precision"] = "auto"
    a["resolved"], b["resolved"] = {"precision": "bf16"}, {"precision": "fp32"}
    with pytest.raises(Exception, match="precision"):
        compare([a], [b])


def test_directories_pair_every_matching_workload_and_list_the_rest(dlbench_cli, tmp_path):
    for side, slower in (("hostA", 1.0), ("hostB", 1.1)):
        write(tmp_path / side / "resnet50.json", make_result("resnet50", times=step_times(100 * slower, 0.01, seed=3)))
        write(tmp_path / side / "gpt2.json", make_result("gpt2", times=step_times(50, 0.01, seed=4)))
    write(tmp_path / "hostA" / "bert.json", make_result("bert-base"))
    # an older gpt2 run on B: the newest of two with the same settings is compared
    # an older gpt2 run on B with the same settings: B's two runs are tested against A's one across runs
    write(
        tmp_path / "hostB" / "old" / "gpt2.json",
        make_result("gpt2", times=step_times(50.2, 0.01, seed=5), started_at="2026-11-01T00:00:00+00:00"),
    )
    out = dlbench_cli("compare", tmp_path / "hostA", tmp_path / "hostB", "--json")
    report = json.loads(out.stdout)
    verdicts = {p["workload"]: p["verdict"] for p in report["pairs"]}
    assert verdicts == {"resnet50": "regression", "gpt2": "same"}
    gpt2 = next(p for p in report["pairs"] if p["workload"] == "gpt2")
    assert (gpt2["decision"]["level"], gpt2["decision"]["count_b"]) == ("runs", 2)
    assert gpt2["decision"]["method"] == "student-t-pooled"  # one baseline run: the candidate's spread stands for both
    assert [r["started_at"][:10] for r in gpt2["runs"]["candidate"]] == ["2026-11-01", "2026-11-30"]
    assert [r["workload"] for r in report["only_in_baseline"]] == ["bert-base"]
    assert any("run-to-run" in note for note in report["notes"])
    assert out.returncode == 1


def test_table_output_names_the_verdict_and_metrics(dlbench_cli, tmp_path):
    a = write(tmp_path / "a.json", make_result(times=step_times(100, 0.01, seed=1)))
    b = write(tmp_path / "b.json", make_result(times=step_times(120, 0.01, seed=2)))
    out = dlbench_cli("compare", a, b)
    assert out.returncode == 1
    assert "regression" in out.stdout and "throughput (samples/s)" in out.stdout and "MFU (%)" in out.stdout


def test_a_failed_run_cannot_be_compared(dlbench_cli, tmp_path):
    failed = make_result(status="failed")
    failed["error"] = "out of memory on cuda:0 at batch size 256; try --batch-size 128"
    out = _compare_files(dlbench_cli, tmp_path, make_result(), failed)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("dlbench: could not compare resnet50: the candidate")
    assert json.loads(out.stdout)["pairs"][0]["reason"].startswith("the candidate run failed: out of memory")


def test_too_few_samples_cannot_be_compared():
    pair = compare([make_result(times=step_times(100, 0.01, count=3))], [make_result()]).pairs[0]
    assert pair.verdict == "could not compare" and "too few" in pair.reason


# --- what a median alone, significance before noise, and unmatched settings got wrong ------------------------------
def _slow_tail(times: list[float], share: float, factor: float, seed: int) -> list[float]:
    """`times` with a random `share` of the steps `factor` times as long: a data-loader stall, an NCCL hiccup."""
    rng = random.Random(seed)
    return [t * factor if rng.random() < share else t for t in times]


def test_ten_percent_of_steps_twice_as_slow_is_a_regression_though_the_median_holds():
    """The median of such a candidate does not move, its throughput drops 9 %: a regression in every trial."""
    verdicts = []
    for trial in range(20):
        a = make_result(times=step_times(100, 0.01, count=1500, seed=2 * trial))
        b = make_result(times=_slow_tail(step_times(100, 0.01, count=1500, seed=2 * trial + 1), 0.10, 2.0, trial))
        pair = compare([a], [b]).pairs[0]
        assert abs(pair.decision.finding("median step time").change) < 0.01
        assert pair.decision.finding("throughput").change == pytest.approx(-0.09, abs=0.02)
        verdicts.append(pair.verdict)
    assert verdicts == ["regression"] * 20


def _contended(result: dict, share: float = 0.55) -> dict:
    """The flag `dlbench run` records when other processes were busy on its cores (dlbench/train/contention.py)."""
    result["metrics"]["cpu_contention"] = {
        "window_seconds": 6.0,
        "cores_available": 2,
        "this_process_cores_mean": 0.9,
        "other_processes_cores_mean": 2 * share,
        "other_processes_share": share,
        "distorting_share": 0.1,
        "distorted": True,
    }
    return result


def test_contended_runs_are_noisy_with_the_reason_before_any_test(dlbench_cli, tmp_path):
    """Identical settings on a loaded machine: the step times differ by 80 %, each run flagged by `dlbench run` as
    contended. Before, that was a "regression" with p < 1e-8; now the flag decides first."""
    a = _contended(make_result(times=step_times(100, 0.02, seed=1)), 0.53)
    b = _contended(make_result(times=step_times(181, 0.02, seed=2)), 0.67)
    out = _compare_files(dlbench_cli, tmp_path, a, b)
    assert (_verdict(out), out.returncode) == ("noisy", 0)
    reason = json.loads(out.stdout)["pairs"][0]["reason"]
    assert "the baseline run: other processes kept 1.1 of its 2 CPU cores busy (53%)" in reason
    assert "the candidate run: other processes kept 1.3 of its 2 CPU cores busy (67%)" in reason
    assert "throughput -44.2%" in reason  # what was seen stays in the reason
    # the same two runs without the flag: a regression, so it is the flag that made them noisy
    for result in (a, b):
        result["metrics"]["cpu_contention"]["distorted"] = False
    assert compare([a], [b]).pairs[0].verdict == "regression"


def test_identical_contended_runs_are_noisy_and_unsettled_warm_up_too():
    a, b = make_result(times=step_times(100, 0.02, seed=1)), make_result(times=step_times(100, 0.02, seed=2))
    assert compare([a], [b]).pairs[0].verdict == "same"
    assert compare([_contended(a)], [b]).pairs[0].verdict == "noisy"
    a["metrics"].pop("cpu_contention")
    b["warmup"] = {"steps": 120, "settled": False}
    pair = compare([a], [b]).pairs[0]
    assert pair.verdict == "noisy" and "the candidate run: its step time had not settled" in pair.reason


def test_a_scattered_run_is_noisy_even_where_the_test_is_significant():
    """Noise before significance: step times scattering by 40 % cannot carry a 12 % verdict either way."""
    a = make_result(times=step_times(100, 0.3, count=2000, seed=1))
    b = make_result(times=step_times(112, 0.3, count=2000, seed=2))
    pair = compare([a], [b]).pairs[0]
    assert pair.decision.finding("throughput").p_value < 1e-6
    assert pair.verdict == "noisy" and "scatter by" in pair.reason


def _distributed(result: dict, strategy: str) -> dict:
    result["config"].update(world_size=2, fsdp=strategy == "fsdp")
    result["distributed"] = {"world_size": 2, "strategy": strategy}
    return result


def test_ddp_and_fsdp_are_not_compared_unless_asked(dlbench_cli, tmp_path):
    ddp = _distributed(make_result("gpt2", precision="bf16"), "ddp")
    fsdp = _distributed(make_result("gpt2", precision="bf16", times=step_times(154, 0.01)), "fsdp")
    out = _compare_files(dlbench_cli, tmp_path, ddp, fsdp)
    assert out.returncode == 2 and out.stdout == "" and out.stderr.count("\n") == 1
    assert "strategy ('ddp' vs 'fsdp')" in out.stderr and "--ignore strategy" in out.stderr
    out = _compare_files(dlbench_cli, tmp_path, ddp, fsdp, "--ignore", "strategy")
    assert (_verdict(out), out.returncode) == ("regression", 1)


def test_padded_and_unpadded_vocabularies_are_not_compared():
    with pytest.raises(Exception, match=r"pad_vocab \(False vs True\)"):
        compare([make_result("gpt2")], [make_result("gpt2", pad_vocab=True)])
    with pytest.raises(Exception, match=r"world_size \(1 vs 2\)"):
        compare([make_result("gpt2")], [make_result("gpt2", world_size=2)])


def test_a_run_against_itself_is_refused_in_one_line(dlbench_cli, tmp_path):
    path = write(tmp_path / "runs" / "a.json", make_result())
    for baseline, candidate in ((path, path), (tmp_path / "runs", tmp_path / "runs"), (tmp_path / "runs", path)):
        out = dlbench_cli("compare", baseline, candidate)
        assert out.returncode == 2 and out.stdout == "" and "Traceback" not in out.stderr
        assert out.stderr.count("\n") == 1 and "a.json is on both sides" in out.stderr


def _runs(directory, median_ms: float, run_sd: float, count: int, seed: int) -> list[dict]:
    """`count` runs of one setting whose medians scatter run to run by `run_sd` (a fraction), as separate files."""
    rng = random.Random(seed)
    results = []
    for i in range(count):
        result = make_result(
            times=step_times(median_ms * rng.gauss(1.0, run_sd), 0.01, seed=seed * 100 + i),
            started_at=f"2026-11-30T0{i}:00:00+00:00",
        )
        results.append(result)
        if directory is not None:
            write(directory / f"run{i}.json", result)
    return results


def test_several_runs_a_side_are_tested_across_runs(dlbench_cli, tmp_path):
    """Five runs a side, 2 % apart from run to run, the candidate's 12 % slower. (At three a side Welch's t has
    about 4 degrees of freedom and needs t > 4.6 for p < 0.01: it tells apart changes of about four run-to-run
    standard deviations, and "noisy" says so below that.)"""
    _runs(tmp_path / "before", 100, 0.02, 5, seed=1)
    _runs(tmp_path / "after", 112, 0.02, 5, seed=2)
    out = dlbench_cli("compare", tmp_path / "before", tmp_path / "after", "--json")
    pair = json.loads(out.stdout)["pairs"][0]
    assert (pair["verdict"], out.returncode) == ("regression", 1)
    assert (pair["decision"]["level"], pair["decision"]["method"]) == ("runs", "welch-t")
    assert (pair["decision"]["count_a"], pair["decision"]["count_b"]) == (5, 5)
    assert len(pair["runs"]["baseline"]) == 5 and pair["baseline"]["started_at"].startswith("2026-11-30T04")
    out = dlbench_cli("compare", tmp_path / "before", tmp_path / "after")  # the table, one row for five runs
    assert "5/5" in out.stdout and "regression" in out.stdout


def test_run_to_run_variation_that_fooled_single_runs_is_seen_across_runs():
    """No real change, runs scattering by 3 % from run to run (a new process, another clock): one run a side is
    called a regression or better far more often than alpha; three runs a side almost never."""
    single = three = 0
    for trial in range(100):
        a, b = _runs(None, 100, 0.03, 3, seed=2 * trial + 1), _runs(None, 100, 0.03, 3, seed=2 * trial + 2)
        single += compare([a[0]], [b[0]]).pairs[0].verdict in ("regression", "better")
        three += compare(a, b).pairs[0].verdict in ("regression", "better")
    assert single >= 10  # the steps of one run cannot see the 3 % between runs
    assert three <= 2


def test_a_regression_between_runs_that_hides_inside_the_noise_is_noisy_not_same():
    a, b = _runs(None, 100, 0.10, 3, seed=7), _runs(None, 108, 0.10, 3, seed=8)
    pair = compare(a, b).pairs[0]
    assert pair.verdict == "noisy" and "run throughputs" in pair.reason


def test_student_t_pooled_matches_reference_values():
    # t = 2.776445 at 4 degrees of freedom is the two-sided 5 % point of Student's t (any t table)
    a = stats.Summary(1, 10.0, 10.0, 0.0)
    b = stats.Summary(5, 10.0 + 2.776445105197793 * (1.0 + 1 / 5) ** 0.5, 0.0, 1.0)
    assert stats.pooled_t(a, b) == pytest.approx(0.05, rel=1e-6)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ("", "empty file"),
        ('{"schema_version": 1, "workload": {"na', "truncated JSON"),
        ("<html>", "not valid JSON"),
        ('{"schema_version": 99, "workload": {"name": "x"}}', "unknown result schema_version 99"),
        ('{"hello": 1}', "neither a dlbench result"),
        ('{"machine_info": {}, "benchmarks": []}', "no benchmarks"),
        ("dir", "holds no .json results"),
        ('{"machine_info": {}, "benchmarks": [1]}', "benchmarks[0] is not a pytest-benchmark entry"),
        ('{"machine_info": {}, "benchmarks": [{"name": "x", "stats": "fast"}]}', "benchmarks[0].stats is not an"),
        ('{"machine_info": {}, "benchmarks": [{"name": "x", "stats": {"mean": "1"}}]}', "stats.mean is not a number"),
        ('{"schema_version": 1, "workload": {"name": "x"}, "metrics": []}', "metrics is not an object"),
        (
            '{"schema_version": 1, "workload": {"name": "x"}, "metrics": {"step_time_seconds": {"mean": "slow"}}}',
            "metrics.step_time_seconds.mean is not a number",
        ),
        # Python's json writes NaN and Infinity and reads them back: a NaN step time made a traceback, a NaN mean
        # a verdict of "same" (no test rejects NaN)
        (
            '{"schema_version": 1, "workload": {"name": "x"}, "metrics": {"step_times_seconds": [0.1, NaN, 0.1]}}',
            "metrics.step_times_seconds holds nan, not a step time",
        ),
        (
            '{"schema_version": 1, "workload": {"name": "x"}, "metrics": {"step_time_seconds": {"mean": Infinity}}}',
            "metrics.step_time_seconds.mean is not a number (inf)",
        ),
        ('{"schema_version": 1, "workload": {"name": "x"}, "metrics": {"timed_seconds": NaN}}', "timed_seconds is not"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(dlbench_cli, tmp_path, content, message):
    good = write(tmp_path / "good.json", make_result())
    bad = tmp_path / "bad.json"
    if content == "dir":
        bad = tmp_path / "empty"
        bad.mkdir()
    elif content is not None:
        bad.write_text(content)
    out = dlbench_cli("compare", good, bad)
    assert out.returncode == 2, out.stdout
    assert out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and message in out.stderr


def test_mixed_workloads_are_refused(dlbench_cli, tmp_path):
    out = _compare_files(dlbench_cli, tmp_path, make_result("resnet50"), make_result("gpt2"))
    assert out.returncode == 2 and "different workloads (resnet50 vs gpt2)" in out.stderr


def test_bad_threshold_is_a_usage_error(dlbench_cli, tmp_path):
    a = write(tmp_path / "a.json", make_result())
    out = dlbench_cli("compare", a, a, "--threshold", "150%")
    assert out.returncode == 2 and "between 0 and 100 percent" in out.stderr


# --- the rank test against an independent implementation -------------------------------------------------------
def test_mann_whitney_matches_scipy_reference_values():
    # reference values from scipy 1.17.1:
    # scipy.stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
    y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
    u, p = stats.mann_whitney_u(x, y)
    assert u == 58.0
    assert p == pytest.approx(0.13291945818531892, rel=1e-6)
    tied = [1, 2, 2, 3, 3, 3, 4, 5]
    other = [3, 3, 4, 4, 5, 5, 6, 6, 7]
    u, p = stats.mann_whitney_u(tied, other)
    assert u == 11.0
    assert p == pytest.approx(0.01630200829707017, rel=1e-6)


def test_welch_uses_students_t_not_a_normal_tail():
    # reference values from scipy 1.17.1: scipy.stats.ttest_ind_from_stats(mean_b, sd_b, n_b, mean_a, sd_a, n_a,
    # equal_var=False).pvalue; a normal tail gives 0.0073 for the first, a "significant" 12 % regression
    a, b = stats.Summary(10, 0.100, 0.100, 0.010), stats.Summary(10, 0.112, 0.112, 0.010)
    assert stats.welch_t(a, b) == pytest.approx(0.01518079132244308, rel=1e-9)
    assert stats.decide(a, b).verdict != "regression"
    a, b = stats.Summary(5, 0.100, 0.100, 0.002), stats.Summary(7, 0.104, 0.104, 0.003)
    assert stats.welch_t(a, b) == pytest.approx(0.019817129698685845, rel=1e-9)
    assert stats.welch_t(stats.Summary(400, 1.0, 1.0, 0.1), stats.Summary(300, 1.01, 1.01, 0.12)) == pytest.approx(
        0.24232049677936676, rel=1e-9
    )


def test_a_clear_change_on_too_few_steps_is_never_same():
    """Five steps a side, every candidate step 20 % slower: the rank test cannot reach p < 0.01 at that size (its
    smallest p is 0.012), but the t-test on the means can, so the throughput's regression is found."""
    # in no particular order: a steady climb would be a drift, worth fewer than five independent steps
    a = make_result(times=[0.302, 0.300, 0.304, 0.301, 0.303])
    b = make_result(times=[0.362, 0.360, 0.364, 0.361, 0.363])
    pair = compare([a], [b]).pairs[0]
    assert pair.decision.finding("median step time").p_value > 0.01
    assert pair.verdict == "regression" and pair.decision.finding("throughput").p_value < 1e-6
    # one slow step in five moves the mean by 11 %, with too few steps for any test to confirm it: not "same"
    b = make_result(times=[0.300, 0.301, 0.302, 0.303, 0.480])
    pair = compare([a], [b]).pairs[0]
    assert pair.verdict == "noisy" and "too few steps" in pair.reason and "mean step time +11.7%" in pair.reason


def test_spread_of_a_summary_without_quartiles_is_on_the_same_scale_as_iqr_over_median():
    # a normal distribution with sigma 8 % of the mean has IQR/median 10.8 %: beyond the default 10 % noise limit
    assert stats.Summary(20, 1.0, 1.0, 0.08).relative_spread == pytest.approx(0.1079, abs=1e-4)
    samples = stats.Summary.of_samples([random.Random(4).gauss(1.0, 0.08) for _ in range(20_000)])
    assert samples.relative_spread == pytest.approx(
        stats.Summary(20, 1.0, 1.0, samples.stdev).relative_spread, rel=0.03
    )


def test_identical_samples_are_no_evidence():
    assert stats.mann_whitney_u([1.0] * 10, [1.0] * 10)[1] == 1.0


def test_help_lists_the_new_commands_and_they_do_not_import_torch(dlbench_cli, tmp_path):
    out = dlbench_cli("--help")
    assert all(command in out.stdout for command in ("compare", "report", "convert"))
    a, b = write(tmp_path / "a.json", make_result()), write(tmp_path / "b.json", make_result())
    code = (
        "import sys, contextlib, io\n"
        "from dlbench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['compare', {str(a)!r}, {str(b)!r}])\n"
        f"    main(['report', {str(a)!r}, '--markdown', '-'])\n"
        "print('torch' in sys.modules)\n"
    )
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"  # answers in a second on a machine where torch takes many to import


@pytest.mark.integration
def test_real_runs_of_today_compare_and_report(dlbench_cli, tmp_path):
    """Two real `dlbench run` results, as this dlbench writes them, go through compare and report."""
    paths = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.json"
        out = dlbench_cli(
            "run", "mnist-mlp", "--device", "cpu", "--steps", "8", "--warmup", "1", "--no-telemetry", "--output", path
        )
        assert out.returncode == 0, out.stderr
        paths.append(path)
    out = dlbench_cli("compare", *paths, "--json", "--noise", "99")
    assert out.returncode in (0, 1), out.stderr  # a shared CPU may really be slower the second time
    pair = json.loads(out.stdout)["pairs"][0]
    # 8 steps on a shared CPU: a change the test cannot confirm is "noisy"; what matters is that it was decided
    assert pair["verdict"] in ("same", "better", "regression", "noisy")
    assert pair["settings"]["device_model"] and pair["settings"]["precision"] == "fp32"
    # `dlbench run` keeps every step time (metrics.step_times_seconds), so the median is tested on the samples
    tests = {f["statistic"]: f["test"] for f in pair["decision"]["findings"]}
    assert tests == {"throughput": "welch-t", "mean step time": "welch-t", "median step time": "mann-whitney-u"}
    # 8 steps of mnist-mlp last well under a second: the run warns, and compare will not call the pair "same"
    assert pair["verdict"] == "noisy" and "its timed window lasted" in pair["reason"]
    out = dlbench_cli("report", *paths, "--markdown", "-")
    assert out.returncode == 0 and out.stdout.count("| mnist-mlp |") == 2


def _drifting_steps(median_ms: float, spread: float, count: int, persistence: float, seed: int) -> list[float]:
    """Step times in seconds whose deviations follow an AR(1) process (x_t = persistence x_{t-1} + noise) with a
    marginal standard deviation of `spread` x the median: a clock that drifts with temperature, a neighbour's job
    that comes and goes. Consecutive steps move together; the process itself never changes."""
    rng = random.Random(seed)
    innovation = spread * (1 - persistence**2) ** 0.5
    deviation, out = rng.gauss(0, spread), []
    for _ in range(count):
        deviation = persistence * deviation + rng.gauss(0, innovation)
        out.append(median_ms * (1 + deviation) / 1e3)
    return out


def test_steps_that_drift_together_are_not_counted_as_independent_proofs():
    """Identical processes whose steps drift together (lag-1 autocorrelation 0.95): the means of two 300-step windows
    differ by about 2 % by chance, which testing 300 steps as 300 independent draws calls significant. With a 1 %
    threshold the steps were called a regression or better in most of 60 trials; counted as the handful of
    independent values they are worth, about as often as alpha says."""
    alarms = 0
    for trial in range(60):
        a = make_result(times=_drifting_steps(100, 0.04, 300, 0.95, seed=2 * trial))
        b = make_result(times=_drifting_steps(100, 0.04, 300, 0.95, seed=2 * trial + 1))
        alarms += compare([a], [b], threshold=0.01).pairs[0].verdict in ("regression", "better")
    assert alarms <= 3  # alpha 0.01: under one expected; the AR(1) estimate of the worth is slightly optimistic


def test_independent_steps_keep_their_full_worth():
    times = step_times(100, 0.02, count=200, seed=3)
    assert stats.effective_count(times) == pytest.approx(200, rel=0.25)
    assert stats.effective_count(_drifting_steps(100, 0.04, 300, 0.95, seed=1)) < 30


def test_a_short_run_against_a_long_runs_grouped_step_times_is_not_a_change():
    """A long run keeps 5-step means, a short one every step (timing.step_time_series). The same process, with a
    fifth of its steps twice as slow: the median of 5-step means sits about 20 % above the median step, which the
    rank test called a significant regression of the median. Averaged to 5-step means on both sides, it is not."""
    rng = random.Random(5)

    def steps(count):
        return [(0.2 if rng.random() < 0.2 else 0.1) * rng.gauss(1, 0.005) for _ in range(count)]

    short = make_result(times=steps(2000), started_at="2026-11-30T01:00:00+00:00")
    long_steps = steps(10_000)
    long = make_result(times=long_steps, started_at="2026-11-30T02:00:00+00:00")
    long["metrics"]["step_times_seconds"] = [sum(long_steps[i : i + 5]) / 5 for i in range(0, 10_000, 5)]
    long["metrics"]["step_times_group_size"] = 5
    pair = compare([short], [long], noise=0.5).pairs[0]
    assert pair.verdict == "same", pair.reason
    assert pair.decision.finding("median step time").change == pytest.approx(0, abs=0.02)


def test_holm_adjustment_matches_reference_values():
    """statsmodels.stats.multitest.multipletests([0.01, 0.04, 0.03], method="holm")[1] is [0.03, 0.06, 0.06]; a
    p shared by two findings (throughput and mean: one test) counts once."""
    findings = [
        stats.Finding("throughput", "samples/s", 1, 1, 0.01, "welch-t", True, tested="mean"),
        stats.Finding("mean step time", "s", 1, 1, 0.01, "welch-t", tested="mean"),
        stats.Finding("median step time", "s", 1, 1, 0.04, "mann-whitney-u"),
        stats.Finding("other", "s", 1, 1, 0.03, "welch-t"),
    ]
    stats.holm_adjust(findings)
    assert [f.p_value for f in findings] == pytest.approx([0.03, 0.03, 0.06, 0.06])
    assert [f.p_raw for f in findings] == [0.01, 0.01, 0.04, 0.03]


def test_two_tests_each_just_below_alpha_are_not_a_regression_on_their_own():
    """The mean (Welch) and the median (rank test) are two tests: calling a regression when either passes alpha on
    its own raises the false-alarm rate towards 2 alpha. A pair whose two p-values both lie between alpha / 2 and
    alpha was a regression; after Holm's adjustment neither passes, and the change is unconfirmed: noisy."""
    alpha, limits = 0.05, stats.Limits(alpha=0.05, threshold=0.01, noise=0.5)
    for seed in range(400):
        a = step_times(100, 0.05, count=40, seed=10_000 + seed)
        b = [t * 1.03 for t in step_times(100, 0.05, count=40, seed=20_000 + seed)]
        decision = stats.decide(stats.Summary.of_samples(a), stats.Summary.of_samples(b), limits=limits)
        tests = {f.test: getattr(f, "p_raw", None) or f.p_value for f in decision.findings}  # each test's own p
        if all(alpha / 2 < p < alpha for p in tests.values()):
            break
    else:
        pytest.fail("no pair with both p-values between alpha / 2 and alpha among 400 seeds")
    assert decision.verdict == "noisy", decision.reason
    assert all(alpha <= f.p_value for f in decision.findings)


def test_several_runs_a_side_show_throughput_as_total_samples_over_total_seconds():
    """A 10-step run and a 1000-step run of the same code, one stalled for a while: the side's throughput is all its
    samples over all its seconds, not the mean of two rates that weighs the short run as much as the long one."""
    short = make_result(times=[0.2] * 10, started_at="2026-11-30T01:00:00+00:00")
    long = make_result(times=[0.1] * 1000, started_at="2026-11-30T02:00:00+00:00")
    others = [make_result(times=[0.1] * 500, started_at=f"2026-11-30T0{h}:00:00+00:00") for h in (3, 4)]
    rate = compare([short, long], others).pairs[0].decision.finding("throughput")
    assert rate.baseline == pytest.approx(1010 * 256 / (10 * 0.2 + 1000 * 0.1))  # 2,535 samples/s, not 1,920
    assert rate.candidate == pytest.approx(2560)


def test_the_table_in_a_ci_log_keeps_its_figures_and_verdict_whole(dlbench_cli, tmp_path):
    """Without a terminal (a pipe, a CI log) rich drew 80 columns and cut the row to 'resne… -16.… regre…'."""
    out = _compare_files(
        dlbench_cli,
        tmp_path,
        make_result(times=step_times(100, 0.01, seed=1)),
        make_result(times=step_times(120, 0.01, seed=2), started_at="2026-11-30T02:00:00+00:00"),
        "--threshold",
        "5",
    )
    plain = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # as a CI job runs it: no terminal, no COLUMNS
    table = dlbench_cli("compare", tmp_path / "before.json", tmp_path / "after.json", env=plain).stdout
    row = next(line for line in table.splitlines() if " 1/1 " in line)
    assert "…" not in row and "regression" in row and "-16.3%*" in row and "bf16, batch 256" in row
    assert out.returncode == 1

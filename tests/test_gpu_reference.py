"""benchmarks/gpu_reference.sh cannot run here (no GPU): its commands are checked in its dry-run mode, and the
ratio it reports against torchtitan is computed from a log in torchtitan's own line format."""

import json
import os
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_reference.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))

import torchtitan_ratio  # noqa: E402


def dry_run(tmp_path, **env) -> list[str]:
    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, DRY_RUN="1", **env),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    py_compile.compile(str(ROOT / "benchmarks" / "torchtitan_llama.py"), doraise=True)


def test_one_hopper_gpu_runs_the_three_rungs_of_the_1b_with_default_settings(tmp_path):
    lines = dry_run(tmp_path, NGPU="1", CAPABILITY_MAJOR="9")
    llama = [line for line in lines if "llama" in line and line.startswith("== dlbench run")]
    assert llama == [
        "== dlbench run llama3-1b --precision bf16",
        "== dlbench run llama3-1b --precision bf16 --compile",
        "== dlbench run llama3-1b --precision fp8 --compile",
    ]
    assert any("torchtitan side by side skipped" in line for line in lines)
    assert not (tmp_path / "out" / "env.json").exists()  # a dry run runs nothing


def test_eight_ampere_gpus_run_the_8b_on_all_of_them_without_the_float8_rung(tmp_path):
    lines = dry_run(tmp_path, NGPU="8", CAPABILITY_MAJOR="8")
    llama = [line for line in lines if "llama" in line and line.startswith("== dlbench run")]
    assert llama == [
        "== dlbench run llama3-8b --precision bf16 --gpus 8",
        "== dlbench run llama3-8b --precision bf16 --compile --gpus 8",
    ]
    assert "== skip the Float8 rung: compute capability 8 (Float8 linears need Hopper, 9.0, or newer)" in lines


def test_torchtitan_runs_beside_each_rung_where_it_imports(tmp_path):
    # the script asks only whether `import torchtitan.train` works: an empty module answers that here
    (tmp_path / "site" / "torchtitan").mkdir(parents=True)
    (tmp_path / "site" / "torchtitan" / "__init__.py").write_text("")
    (tmp_path / "site" / "torchtitan" / "train.py").write_text("")
    lines = dry_run(
        tmp_path,
        NGPU="8",
        CAPABILITY_MAJOR="9",
        TORCHTITAN_DIR=str(tmp_path),
        PYTHONPATH=str(tmp_path / "site"),
        PYTHON=sys.executable,
    )
    titan = [line for line in lines if line.startswith("== torchtitan --module")]
    assert titan == [
        f"== torchtitan --module benchmarks.torchtitan_llama --config llama3_8b_{rung} on 8 GPU(s)"
        for rung in ("bf16", "bf16_compiled", "fp8_compiled")
    ]


# torchtitan/components/metrics.py, MetricsProcessor.log: the f-string of its step line, colours included
# (torchtitan/tools/utils.py, Color: blue "\033[34m", reset "\033[39m", ...)
def _torchtitan_line(step: int, tps: float) -> str:
    return (
        f"\033[31mstep: {step:2}  \033[32mloss: {7.5:8.5f}  \033[33mgrad_norm: {1.0:7.4f}  "
        f"\033[36mmemory: {61.2:5.2f}GiB({77.4:.2f}%)  \033[34mtps: {round(tps):,}  "
        f"\033[36mtflops: {333.6:,.2f}  \033[35mmfu: {33.72:.2f}%\033[39m"
    )


def test_the_ratio_is_dlbench_over_torchtitans_median_after_warm_up(tmp_path, capsys):
    log = tmp_path / "titan.log"
    lines = [_torchtitan_line(10, 1_000.0)] + [
        _torchtitan_line(step, tps) for step, tps in ((20, 5_700.0), (30, 5_762.0), (40, 5_800.0))
    ]
    log.write_text("[rank0]: some start-up line\n" + "\n".join(lines) + "\n")
    result = tmp_path / "result.json"
    result.write_text(
        json.dumps(
            {
                "status": "completed",
                "workload": {"name": "llama3-8b"},
                "config": {"precision": "bf16", "compile": False},
                "llm": {"tokens_per_second_per_gpu": 5_473.9},
            }
        )
    )
    assert torchtitan_ratio.main([str(result), str(log)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["torchtitan_tokens_per_second_per_gpu"] == 5_762.0 and report["torchtitan_steps"] == 3
    assert report["ratio"] == pytest.approx(0.95)


def test_a_log_without_step_lines_is_one_line_and_exit_2(tmp_path, capsys):
    log = tmp_path / "titan.log"
    log.write_text("ModuleNotFoundError: No module named 'triton'\n")
    result = tmp_path / "result.json"
    result.write_text(json.dumps({"llm": {"tokens_per_second_per_gpu": 1.0}}))
    assert torchtitan_ratio.main([str(result), str(log)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no torchtitan step line at step 20 or later" in err

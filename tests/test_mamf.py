"""`dlbench run --mamf-from REPORT.json`: MFU against the bf16 matmul rate `dlbench validate` measured on the host,
beside MFU against the datasheet peak.

The reports are written by validate's own code (dlbench.validate.runner.validate, writers.write_json) over the
simulated NVML; only what cannot exist here is scripted, as tests/test_validate_benchmarks.py does: torch's view of
two H100s and the rate each measures."""

import json

import jsonschema
import pytest
import torch

from dlbench import cli
from dlbench.train import anchors, mamf
from dlbench.train.report import summary_table
from dlbench.train.runner import RunConfig, mamf_for_run
from dlbench.validate import compute, runner as validate_runner, writers
from dlbench.workloads import get_workload
from run_support import execute
from validate_support import context

H100_NAME = "NVIDIA H100 80GB HBM3"  # CUDA's and NVML's name of the simulated NVML's h100-sxm preset


def _write_report(path, monkeypatch, rates=None) -> dict:
    """A `dlbench validate --json` report of the compute checks over two simulated H100s; `rates`: the bf16 TFLOP/s
    each GPU measures (None: measured for real, on the CPU, as validate does without a GPU)."""
    ctx = context({"preset": "h100-sxm"}, {"preset": "h100-sxm"})
    with monkeypatch.context() as patch:
        patch.setattr(validate_runner, "families", lambda ctx_: [("compute", compute.run)])
        if rates is not None:
            patch.setattr(torch.cuda, "get_device_name", lambda device=None: H100_NAME)
            patch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
            patch.setattr(type(ctx), "compute_devices", lambda self: [torch.device("cuda", i) for i in (0, 1)])
            patch.setattr(
                compute,
                "best_matmul_tflops",
                lambda torch_, device, precision, sweep: (rates[device.index], (8192,) * 3, {}),
            )
        writers.write_json(validate_runner.validate(ctx), path)
    report = json.loads(path.read_text())
    jsonschema.Draft202012Validator(writers.json_schema()).validate(report)
    return report


@pytest.fixture
def h100_report(tmp_path, monkeypatch):
    path = tmp_path / "validate.json"
    _write_report(path, monkeypatch, rates=[760.0, 700.0])
    return path


def _finished_run(tokens_per_gpu: float) -> dict:
    """What the `llm` section reads of a finished one-GPU run on an H100, as the runner writes it."""
    return {
        "config": {},
        "metrics": {"throughput": {"tokens_per_second": tokens_per_gpu}},
        "environment": {"device": "cuda:0", "device_name": H100_NAME},
    }


def test_mfu_against_the_slowest_gpus_measured_mamf_beside_the_datasheet_peak(h100_report, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: H100_NAME)
    workload = get_workload("llama3-8b")
    found = mamf_for_run(str(h100_report), workload, torch.device("cuda", 0))
    assert found["tflops"] == 700.0 and found["gpu_name"] == H100_NAME and found["applies"]
    assert found["gpu"] == "slowest of 2 GPU(s): index 1 of the validate run"
    assert found["report"] == str(h100_report.resolve())
    flops_per_token = anchors.torchtitan_flops_per_token(workload, 8192)
    llm = anchors.section(_finished_run(5762.0), workload, "bf16", False, flops_per_token, found)
    # torchtitan's 5,762 tok/s/GPU is 33% of 989.4 TFLOP/s; against 700 measured it is 989.4 / 700 times that
    assert int(100 * llm["mfu"]) == 33
    assert llm["mfu_vs_mamf"] == pytest.approx(5762.0 * flops_per_token / 700e12)
    assert llm["mfu_vs_mamf"] / llm["mfu"] == pytest.approx(989.4 / 700.0)
    rows = dict(zip(*(col._cells for col in summary_table(_with_table_fields(llm)).columns)))
    assert rows["MFU (torchtitan, bf16 peak)"] == f"{llm['mfu']:.1%} of 989.4 TFLOP/s"
    assert rows["MFU vs measured MAMF"] == f"{llm['mfu_vs_mamf']:.1%} of 700.0 TFLOP/s"


def _with_table_fields(llm: dict) -> dict:
    return {
        "workload": {"name": "llama3-8b"},
        "status": "completed",
        "config": {"device": "cuda"},
        "metrics": {},
        "llm": llm,
    }


def test_a_cpu_run_keeps_the_figure_and_says_why_it_gives_no_mfu(h100_report):
    result = execute(RunConfig("llama-tiny", device="cpu", mamf_from=str(h100_report)))  # schema-checked
    llm = result["llm"]
    assert llm["mfu"] is None and llm["mfu_vs_mamf"] is None
    assert llm["mamf"]["tflops"] == 700.0 and not llm["mamf"]["applies"]
    assert llm["mamf"]["reason"] == f"the run trained on the CPU, the MAMF was measured on {H100_NAME}"
    rows = dict(zip(*(col._cells for col in summary_table(result).columns)))
    assert rows["MFU vs measured MAMF"] == f"n/a ({llm['mamf']['reason']})"


def test_without_the_option_the_section_has_no_mamf():
    llm = anchors.section(_finished_run(5762.0), get_workload("llama3-8b"), "bf16", False, 10**9)
    assert llm["mamf"] is None and llm["mfu_vs_mamf"] is None and llm["mfu"] is not None


def _bad_reports(tmp_path, monkeypatch) -> dict[str, str]:
    cpu_report = tmp_path / "cpu.json"
    _write_report(cpu_report, monkeypatch)  # validate without a GPU: the matmul measured on the CPU
    report = json.loads(cpu_report.read_text())
    no_check = tmp_path / "no-check.json"
    no_check.write_text(json.dumps(report | {"checks": [c for c in report["checks"] if c["id"] != mamf.CHECK_ID]}))
    skipped = tmp_path / "skipped.json"
    skipped.write_text(
        json.dumps(
            report
            | {
                "checks": [
                    c | {"verdict": "SKIP", "measured": None, "detail": "bf16 needs an Ampere or newer GPU"}
                    if c["id"] == mamf.CHECK_ID
                    else c
                    for c in report["checks"]
                ]
            }
        )
    )
    result = tmp_path / "run.json"
    result.write_text(json.dumps({"schema_version": 2, "llm": {}}))
    (tmp_path / "broken.json").write_text("{not json")
    return {
        "missing": str(tmp_path / "none.json"),
        "cpu": str(cpu_report),
        "no_check": str(no_check),
        "skipped": str(skipped),
        "result": str(result),
        "broken": str(tmp_path / "broken.json"),
    }


@pytest.mark.parametrize(
    "which,extra,message",
    [
        ("missing", [], "no such file"),
        ("broken", [], "not a readable JSON file (JSONDecodeError)"),
        ("result", [], "not a `dlbench validate --json` report"),
        ("no_check", [], "no bf16 matmul measurement (it has no such check)"),
        ("skipped", [], "no bf16 matmul measurement (compute.matmul_bf16 is SKIP: bf16 needs an Ampere or newer GPU)"),
        ("cpu", [], "its bf16 matmul was measured on the CPU, not a GPU"),
        ("missing", ["--nproc", "2"], "no such file"),  # once, before torchrun starts
    ],
)
def test_bad_reports_are_refused_in_one_line_before_training(which, extra, message, tmp_path, monkeypatch, capsys):
    path = _bad_reports(tmp_path, monkeypatch)[which]
    output = tmp_path / "r.json"
    code = cli.main(
        ["run", "llama-tiny", "--device", "cpu", "--no-telemetry", "--mamf-from", path, *extra, "--output", str(output)]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"--mamf-from {path}: {message}" in err
    assert not output.exists()


def test_a_report_of_another_gpu_model_is_refused(h100_report, monkeypatch, capsys):
    name = "NVIDIA GeForce RTX 4090"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    code = cli.main(["run", "llama-tiny", "--device", "cuda", "--no-telemetry", "--mamf-from", str(h100_report)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"measured on {H100_NAME}, but this run trains on {name}" in err


def test_workloads_without_an_llm_section_refuse_the_option(h100_report, capsys):
    code = cli.main(["run", "mnist-mlp", "--device", "cpu", "--no-telemetry", "--mamf-from", str(h100_report)])
    err = capsys.readouterr().err
    assert code == 2 and "--mamf-from reports MFU in the Llama workloads' `llm` section; mnist-mlp has none" in err

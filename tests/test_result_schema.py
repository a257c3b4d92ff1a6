"""Every result validates against the schema shipped in the package, and docs/results.md describes every field."""

import json
import re
import time
from pathlib import Path

import jsonschema
import pytest
import torch

from dlbench.errors import RunFailed
from dlbench.nvml import simulated
from dlbench.telemetry.observers import TelemetryObserver
from dlbench.train import results
from dlbench.train.observers import RunInfo
from dlbench.train.runner import Run, RunConfig
from run_support import execute, validate

DOCS = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def run(**overrides):
    config = RunConfig(**{"workload": "mnist-mlp", "device": "cpu", "steps": 2, "warmup": 0, **overrides})
    return execute(config, command_line=["dlbench", "run", config.workload])


def test_the_schema_is_shipped_as_package_data_and_is_itself_valid():
    jsonschema.Draft202012Validator.check_schema(results.schema())
    assert results.schema()["properties"]["schema_version"]["const"] == results.SCHEMA_VERSION


def test_a_cli_result_with_telemetry_validates(cli_run):
    result = cli_run.result()  # tests/conftest.py: a CLI run with --output and telemetry
    validate(result)
    assert result["command_line"][:3] == ["dlbench", "run", "cifar-cnn"]
    assert result["requested"]["precision"] == "auto" and result["config"]["precision"] == "fp32"
    assert result["requested"]["batch_size"] == 8 and result["requested"]["warmup"] == 1


@pytest.mark.parametrize(
    "workload,extra",
    [
        ("gpt2-tiny", {"batch_size": 1, "seq_len": 16, "pad_vocab": True}),
        ("bert-tiny", {"batch_size": 2, "seq_len": 16}),
        ("mnist-mlp", {"steps": None, "warmup": None}),
    ],
)
def test_results_of_every_kind_of_workload_validate(workload, extra):
    validate(run(workload=workload, **extra))


def test_a_failed_result_validates(tmp_path, monkeypatch):
    def out_of_memory(self):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Run, "_train_step", out_of_memory)
    out = tmp_path / "r.json"
    with pytest.raises(RunFailed):
        run(output=str(out))
    result = json.loads(out.read_text())
    validate(result)
    assert result["status"] == "failed" and result["metrics"] is None


def test_gpu_telemetry_validates():
    # a simulated H100 through NVML (dlbench/nvml/simulated.py); the section is what a GPU run stores
    telemetry = TelemetryObserver(interval=0.02, nvml=simulated.from_spec("h100-sxm"))
    try:
        telemetry.on_start(RunInfo("r", "resnet50", "cuda:0", 0, 64, "images", 1e9, 989.4e12))
        telemetry.on_timed_start()
        time.sleep(0.1)
        telemetry.on_timed_end(0.1, 640)
    finally:
        telemetry.close()
    result = run()
    result["telemetry"] = telemetry.contribute()
    validate(result)
    assert result["telemetry"]["gpu"]["sample_counts"]["power_watts"] >= 2


def _paths(node: dict, prefix: str = ""):
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield path
        yield from _paths(child, path + ".")


def test_docs_describe_every_field():
    documented = set(re.findall(r"`([a-z_][a-z0-9_.]*)`", DOCS.read_text()))
    # requested and config share one table, under config's names
    missing = [path for path in _paths(results.schema()) if re.sub(r"^requested\.", "config.", path) not in documented]
    assert not missing, f"fields without a description in docs/results.md: {missing}"

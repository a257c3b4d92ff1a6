"""Every result validates against the schema shipped in the package; the schemas describe every field, and\ndocs/results.md and docs/validate-report.md are what they render."""

import json
import time
from pathlib import Path

import jsonschema
import pytest
import torch

from dlbench.errors import RunFailed
from dlbench.nvml import simulated
from dlbench.results import schema_doc
from dlbench.telemetry.observers import TelemetryObserver
from dlbench.train import results
from dlbench.train.observers import RunInfo
from dlbench.train.runner import Run, RunConfig
from run_support import execute, validate

REPO = Path(__file__).resolve().parents[1]


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


@pytest.mark.parametrize("document", sorted(schema_doc.PAGES))
def test_every_field_of_the_schema_has_a_description(document):
    missing = schema_doc.undescribed(schema_doc.load(schema_doc.PAGES[document]))
    assert not missing, f"fields of {schema_doc.PAGES[document].schema} without a description: {missing}"


def test_a_field_without_a_description_is_found_at_any_depth():
    # through an array's items and a $ref, as the validate report's checks are reached
    schema = {
        "properties": {
            "a": {"description": "a", "type": "array", "items": {"$ref": "#/$defs/item"}},
            "b": {"description": "b", "properties": {"c": {"type": "integer"}}},
        },
        "$defs": {"item": {"properties": {"d": {"description": "d"}, "e": {"type": "string"}}}},
    }
    assert schema_doc.undescribed(schema) == ["a[].e", "b.c"]


@pytest.mark.parametrize("document", sorted(schema_doc.PAGES))
def test_the_committed_page_is_what_its_schema_renders(document):
    page = schema_doc.PAGES[document]
    committed = (REPO / page.output).read_text()
    assert committed == schema_doc.render(page), (
        f"{page.output} is stale: run `python -m dlbench.results.schema_doc {document} > {page.output}`"
    )


def test_the_page_lists_every_field_with_its_type():
    text = (REPO / "docs" / "results.md").read_text()
    assert "| `telemetry.gpu.series.power_watts` | array of (number or null) | power draw |" in text
    assert "| `distributed.ranks[].rank` | integer |" in text
    assert "| `telemetry.gpu.clocks_event_fraction` | object: name → number |" in text

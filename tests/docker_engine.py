"""A real Docker Engine for the container check, and a small image with Python and torch to run in it.

The engine is Debian's `docker.io` (scripts/install-test-deps.sh). When none answers already, the tests start their
own dockerd as root on a private socket and data root, with no bridge and no iptables rules (the containers run
with network_mode none), and stop it afterwards.

The image stands in for the images/ CPU variant (whose real build is tests/test_images_build.py, about ten
minutes): a Debian 12 root filesystem from debootstrap with python3 (cached under .cache/, like the playbook test
host), plus torch and its dependencies copied from this virtual environment, with the labels images/Dockerfile sets.
It needs this interpreter to be Debian 12's Python 3.11, as in CI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("DLBENCH_TEST_CACHE", REPO / ".cache"))
MIRROR = os.environ.get("DLBENCH_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# torch and what `import torch` and the probe load (numpy for torch's tensor interop)
SITE_PACKAGES = ("torch", "torchgen", "functorch", "numpy", "numpy.libs", "typing_extensions.py", "sympy", "mpmath",
                 "networkx", "filelock", "jinja2", "markupsafe", "fsspec")
IMAGE = "localhost/dlbench-validate-standin:torch-cpu"


def start_engine(workdir: Path):
    """(client, process) of a dockerd of our own; (client, None) when one already answers."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
        return client, None
    except Exception:  # noqa: BLE001 - no engine answers here (no socket, refused): start one
        pass
    if os.geteuid() != 0 or not shutil.which("dockerd"):
        pytest.fail("the container check's test needs root and dockerd (Debian's docker.io; "
                    "see scripts/install-test-deps.sh)")
    socket = workdir / "docker.sock"
    log = open(workdir / "dockerd.log", "wb")
    process = subprocess.Popen(["dockerd", "--host", f"unix://{socket}", "--data-root", str(workdir / "data"),
                                "--exec-root", str(workdir / "exec"), "--pidfile", str(workdir / "docker.pid"),
                                "--iptables=false", "--ip6tables=false", "--bridge=none"],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if socket.exists():
            client = docker.DockerClient(base_url=f"unix://{socket}", timeout=120)
            try:
                client.ping()
                return client, process
            except Exception:  # noqa: BLE001 - the socket exists before the API answers
                client.close()
        time.sleep(0.5)
    stop_engine(process)
    pytest.fail(f"dockerd did not start: {(workdir / 'dockerd.log').read_text()[-2000:]}")


def stop_engine(process) -> None:
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def python_rootfs() -> Path:
    """Debian 12 minbase with python3, built once and cached."""
    key = hashlib.sha256(f"bookworm minbase python3 {MIRROR}".encode()).hexdigest()[:16]
    root = CACHE / "validate-image" / key / "root"
    if (root.parent / "complete").exists():
        return root
    shutil.rmtree(root.parent, ignore_errors=True)
    root.parent.mkdir(parents=True)
    subprocess.run(["debootstrap", "--variant=minbase", "--include=python3", "bookworm", str(root), MIRROR],
                   check=True, capture_output=True)
    (root.parent / "complete").touch()
    return root


def build_image(client, labels: dict[str, str], with_torch: bool = True) -> str:
    """The stand-in image (with_torch False: Debian 12 and python3 only); returns its name."""
    image = IMAGE if with_torch else IMAGE.rsplit(":", 1)[0] + ":python-only"
    if with_torch and sys.version_info[:2] != (3, 11):
        pytest.fail("the stand-in image copies this venv's torch into Debian 12 (Python 3.11); run with Python 3.11")
    import site

    packages = Path(next(p for p in site.getsitepackages() if p.endswith("site-packages")))
    root = python_rootfs()
    with tempfile.TemporaryDirectory() as workdir:
        archive = Path(workdir) / "rootfs.tar"
        with tarfile.open(archive, mode="w") as tar:
            tar.add(root, arcname=".")
            for name in SITE_PACKAGES if with_torch else ():
                if (packages / name).exists():
                    tar.add(packages / name, arcname=f"usr/local/lib/python3.11/dist-packages/{name}")
        changes = [f'LABEL {key}="{value}"' for key, value in labels.items()]
        repository, tag = image.rsplit(":", 1)
        client.api.import_image(src=str(archive), repository=repository, tag=tag, changes=changes)
    return image

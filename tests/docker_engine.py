"""A real Docker Engine for the container check, and the images/ CPU variant loaded into it.

The engine is Debian's `docker.io` (scripts/install-test-deps.sh). When none answers already, the tests start their
own dockerd as root on a private socket and data root, with no bridge and no iptables rules (the containers run
with network_mode none), and stop it afterwards.

The images are the session's one buildah build of images/ (tests/images_support.py, also what
tests/test_images_build.py tests), handed to the engine as `docker load` takes them: `buildah push IMAGE
docker-archive:FILE:IMAGE` writes the archive, the engine's image-load API reads it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def start_engine(workdir: Path):
    """(client, process, DOCKER_HOST) of a dockerd of our own; (client, None, DOCKER_HOST) when one already answers."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
        return client, None, os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    except Exception:  # noqa: BLE001 - no engine answers here (no socket, refused): start one
        pass
    if os.geteuid() != 0 or not shutil.which("dockerd"):
        pytest.fail(
            "the container check's test needs root and dockerd (Debian's docker.io; see scripts/install-test-deps.sh)"
        )
    socket = workdir / "docker.sock"
    log = open(workdir / "dockerd.log", "wb")
    process = subprocess.Popen(
        [
            "dockerd",
            "--host",
            f"unix://{socket}",
            "--data-root",
            str(workdir / "data"),
            "--exec-root",
            str(workdir / "exec"),
            "--pidfile",
            str(workdir / "docker.pid"),
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if socket.exists():
            client = docker.DockerClient(base_url=f"unix://{socket}", timeout=120)
            try:
                client.ping()
                return client, process, f"unix://{socket}"
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


def load_image(client, built, image: str) -> str:
    """`image` from buildah's storage (a tests/images_support.py Built) into the engine; returns its name."""
    with tempfile.TemporaryDirectory() as workdir:
        archive = Path(workdir) / "image.tar"
        built.sh("push", "--quiet", image, f"docker-archive:{archive}:{image}", timeout=900)
        with open(archive, "rb") as data:
            client.api.load_image(data)
    client.images.get(image)  # raises ImageNotFound if the engine did not take it under that name
    return image


def remove_in_background(path: Path) -> None:
    """Delete an engine's data root. That is disk-bound and takes a minute or two that nothing waits for: a detached,
    idle-priority rm does it while the suite goes on."""
    subprocess.Popen(
        ["ionice", "-c3", "rm", "-rf", str(path)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

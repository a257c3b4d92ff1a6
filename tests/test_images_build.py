"""A real build of both images with buildah, then dlbench and JupyterLab run inside them as the non-root user.

The build (tests/images_support.py: what `make -C images build ENGINE=buildah VARIANT=cpu` does for a user, on a
debootstrapped Debian 12 base, with the CPU torch wheel) is made once per session and shared with the container
check's test. The full CUDA image (`make -C images build`) needs Docker Hub and is not built here.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import shlex
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest
from images_support import BASE_IMAGE, PYTHON, ROOT, SPEC, TORCH_VERSION, UID, VARIANT

pytestmark = pytest.mark.integration
TOKEN = "test-token-not-a-secret"


@pytest.fixture(scope="module")
def built(cpu_images):
    """The session's one build of both images (tests/conftest.py: cpu_images), which the container check's test
    also runs in a Docker Engine."""
    return cpu_images


@pytest.fixture(scope="module")
def pytorch_container(built):
    return built.container(built.pytorch)


@pytest.fixture(scope="module")
def jupyter_container(built):
    return built.container(built.jupyterlab)


# --- metadata ---------------------------------------------------------------------------------------------------


def test_pytorch_image_carries_oci_and_stack_labels(built):
    config = built.config(built.pytorch)
    labels = config["OCIv1"]["config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == "dlbench/pytorch"
    assert labels["org.opencontainers.image.version"] == built.pytorch.rsplit(":", 1)[1]
    assert labels["org.opencontainers.image.created"].endswith("Z")
    assert labels["org.opencontainers.image.revision"] not in ("", "unknown")
    assert labels["org.opencontainers.image.base.name"] == BASE_IMAGE
    assert labels["io.dlbench.stack.torch"] == TORCH_VERSION
    assert labels["io.dlbench.stack.torch-variant"] == VARIANT
    assert labels["io.dlbench.stack.python"] == PYTHON
    assert labels["io.dlbench.stack.dlbench"] == SPEC["stack_dlbench_version"]
    assert labels["io.dlbench.driver-floor"] == ""  # the CPU variant needs no driver; cu130's is checked offline
    assert config["OCIv1"]["config"]["User"] == f"{UID}:{UID}"
    assert config["OCIv1"]["config"]["Entrypoint"] == ["/usr/bin/tini", "--"]


def test_jupyterlab_image_has_a_health_check_and_its_own_labels(built):
    config = built.config(built.jupyterlab)
    labels = config["OCIv1"]["config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == "dlbench/jupyterlab"
    assert labels["io.dlbench.stack.jupyterlab"] == SPEC["stack_jupyterlab_version"]
    assert labels["io.dlbench.stack.torch"] == TORCH_VERSION  # inherited from the pytorch image
    assert config["Docker"]["config"]["Healthcheck"]["Test"] == ["CMD", "jupyter-healthcheck"]
    assert config["OCIv1"]["config"]["User"] == f"{UID}:{UID}"


def test_no_caches_or_build_leftovers_in_the_image(built, pytorch_container):
    mount = Path(built.sh("mount", pytorch_container).stdout.strip())
    try:
        leftovers = [
            path
            for path in ("root/.cache", "home/dlbench/.cache", "tmp/dlbench-src", "run/secrets/ca-bundle")
            if (mount / path).exists()
        ]
        leftovers += [str(path) for path in (mount / "var/lib/apt/lists").glob("*_Packages*")]
        leftovers += [str(path) for path in (mount / "var/cache/apt/archives").glob("*.deb")]
        assert not leftovers
    finally:
        built.sh("umount", pytorch_container)


# --- dlbench inside the pytorch image -----------------------------------------------------------------------------


def test_runs_as_the_fixed_non_root_uid_and_cannot_change_the_stack(built, pytorch_container):
    identity = built.run(pytorch_container, "id", "-u")
    assert identity.stdout.strip() == str(UID)
    write = built.run(pytorch_container, "touch", "/opt/venv/lib/tampered")
    assert write.returncode != 0


def test_dlbench_env_reports_the_locked_torch(built, pytorch_container):
    result = built.run(pytorch_container, "dlbench", "env", "--json")
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)
    assert env["torch"]["version"] == f"{TORCH_VERSION}+cpu"
    assert env["python"].startswith(PYTHON + ".")
    assert env["gpus"] == []


def test_dlbench_list_names_the_smoke_test_workload(built, pytorch_container):
    result = built.run(pytorch_container, "dlbench", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert "mnist-mlp" in {row["name"] for row in json.loads(result.stdout)}


def test_mnist_mlp_trains_inside_the_image_as_non_root(built, pytorch_container):
    result = built.run(
        pytorch_container,
        "dlbench",
        "run",
        "mnist-mlp",
        "--device",
        "cpu",
        "--steps",
        "3",
        "--warmup",
        "1",
        "--json",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["metrics"]["steps_timed"] == 3


def test_compile_works_inside_the_image_as_non_root(built, pytorch_container):
    # TorchInductor generates C++ for the CPU and builds it with g++ against Python.h: both must be in the image,
    # and its cache must be writable by uid 1000 (it lives under /tmp).
    result = built.run(
        pytorch_container,
        "dlbench",
        "run",
        "mnist-mlp",
        "--device",
        "cpu",
        "--compile",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--json",
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout)
    assert outcome["status"] == "completed" and outcome["config"]["compile"] is True
    assert outcome["metrics"]["steps_timed"] == 2


# --- JupyterLab ---------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_INSECURE = ssl._create_unverified_context()  # the test's self-signed certificate


def _opener(cookies: http.cookiejar.CookieJar | None = None) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar() if cookies is None else cookies
    return urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=_INSECURE), urllib.request.HTTPCookieProcessor(jar)
    )


def _get(url: str, token: str | None = None, opener=None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"} if token else {})
    try:
        with (opener or _opener()).open(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@contextlib.contextmanager
def _serve(built, container: str, env: dict[str, str], volumes=(), scheme="http"):
    """The image's entrypoint and command; on 127.0.0.1 because chroot isolation shares the host's network (in a
    container's own network namespace the image listens on 0.0.0.0)."""
    port = _free_port()
    config = built.config(built.jupyterlab)["OCIv1"]["config"]
    command = [*config["Entrypoint"], *config["Cmd"], "--ServerApp.ip=127.0.0.1"]
    settings = [f"{key}={value}" for key, value in {**env, "JUPYTER_PORT": str(port)}.items()]
    mounts = [argument for volume in volumes for argument in ("--volume", volume)]
    server = subprocess.Popen(
        [*built.buildah, "run", "--isolation", "chroot", *mounts, container, "--", "env", *settings, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"{scheme}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if _get(f"{base}/api")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, f"jupyter exited: {server.stdout.read()[-3000:]}"
            assert time.monotonic() < deadline, "jupyter did not answer within 120 s"
            time.sleep(1)
        yield base, port
    finally:
        # buildah's chroot runner puts the server in a process group of its own that outlives buildah: stop every
        # process this test started, by pid, children first.
        started = [*psutil.Process(server.pid).children(recursive=True), psutil.Process(server.pid)]
        for process in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.terminate()
        _, alive = psutil.wait_procs(started, timeout=30)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def jupyter_server(built, jupyter_container):
    with _serve(built, jupyter_container, {"JUPYTER_TOKEN": TOKEN}) as (base, port):
        yield base, port, None


def test_jupyter_refuses_unauthenticated_access_and_accepts_the_token(jupyter_server):
    base, _, _ = jupyter_server
    assert _get(f"{base}/api/contents")[0] == 403
    assert _get(f"{base}/api/contents", token="wrong")[0] == 403
    status, body = _get(f"{base}/api/contents", token=TOKEN)
    assert status == 200 and json.loads(body)["type"] == "directory"


def test_jupyter_server_runs_as_the_non_root_uid(jupyter_server):
    _, port, _ = jupyter_server
    listeners = [
        conn.pid
        for conn in psutil.net_connections("tcp")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
    ]
    assert listeners and all(psutil.Process(pid).uids().real == UID for pid in listeners if pid)


def test_health_check_answers_inside_the_container(built, jupyter_container, jupyter_server):
    _, port, _ = jupyter_server
    result = built.run(jupyter_container, "env", f"JUPYTER_PORT={port}", "jupyter-healthcheck", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "healthy: jupyter_server" in result.stdout


def test_health_check_fails_when_no_server_answers(built, jupyter_container):
    result = built.run(jupyter_container, "env", f"JUPYTER_PORT={_free_port()}", "jupyter-healthcheck", timeout=60)
    assert result.returncode == 1
    assert "unhealthy" in result.stderr


def test_jupyter_will_not_start_with_authentication_turned_off(built, jupyter_container):
    result = built.run(
        jupyter_container,
        "env",
        "JUPYTER_TOKEN=",
        f"JUPYTER_PORT={_free_port()}",
        "jupyter",
        "lab",
        "--ServerApp.ip=127.0.0.1",
        timeout=120,
    )
    assert result.returncode != 0
    assert "will not run without authentication" in result.stderr
    assert "Traceback" not in result.stderr


def test_jupyter_with_tls_and_a_hashed_password(built, jupyter_container, tmp_path):
    tls = tmp_path / "tls"
    tls.mkdir()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(tls / "key.pem"),
            "-out",
            str(tls / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    for path in (tmp_path, tls, tls / "key.pem", tls / "cert.pem"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the server reads them as uid 1000
    hashed = built.run(
        jupyter_container, "python", "-c", "from jupyter_server.auth import passwd; print(passwd('correct horse'))"
    ).stdout.strip()
    assert hashed.startswith("argon2:")
    env = {"JUPYTER_PASSWORD_HASH": hashed, "JUPYTER_CERTFILE": "/tls/cert.pem", "JUPYTER_KEYFILE": "/tls/key.pem"}
    with _serve(built, jupyter_container, env, volumes=[f"{tls}:/tls:ro"], scheme="https") as (base, port):
        assert _get(f"{base}/api/contents")[0] == 403
        cookies = http.cookiejar.CookieJar()
        browser = _opener(cookies)
        assert _get(f"{base}/login", opener=browser)[0] == 200
        xsrf = next(cookie.value for cookie in cookies if cookie.name == "_xsrf")
        for password, expected in (("wrong", 401), ("correct horse", 200)):
            form = urllib.parse.urlencode({"password": password, "_xsrf": xsrf}).encode()
            try:
                status = browser.open(urllib.request.Request(f"{base}/login", data=form), timeout=10).status
            except urllib.error.HTTPError as error:
                status = error.code
            assert status == expected, password
        assert _get(f"{base}/api/contents", opener=browser)[0] == 200
        health = built.run(
            jupyter_container,
            "env",
            f"JUPYTER_PORT={port}",
            "JUPYTER_CERTFILE=/tls/cert.pem",
            "jupyter-healthcheck",
            timeout=60,
        )
        assert health.returncode == 0 and f"https://127.0.0.1:{port}/api" in health.stdout, health.stderr


# --- on a machine without this one's local wheels -----------------------------------------------------------------


def _local_wheel_dirs() -> list[Path]:
    """The local directories the user's pip configuration (files and PIP_* environment) takes wheels from."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        if key.endswith(("find-links", "find_links")):
            for location in shlex.split(value.strip("'\"")):
                path = Path(location.removeprefix("file://"))
                if path.is_dir() and path not in found:
                    found.append(path)
    return found


# A test of how the image tests behave on another machine, not of the images: the slow tier only. With the layer
# cache (tests/images_support.py) its nested build reuses this session's layers where it finds the same wheels.
@pytest.mark.slow
def test_image_build_passes_or_skips_with_the_local_wheel_directories_hidden(tmp_path):
    """The image tests as a fresh machine runs them: every local wheel directory of this machine's pip
    configuration is hidden behind an empty one in a private mount namespace, and the build fixture must then
    either build from what pip still reaches (PyTorch's CPU index) and pass, or skip with its reason; never error."""
    if os.geteuid() != 0:
        pytest.skip("a private mount namespace needs root (CI runs as root)")
    hidden = [path for path in _local_wheel_dirs() if list(path.glob("torch-*.whl"))]
    if not hidden:
        pytest.skip(
            "no local wheel directory provides torch here: the image tests above already ran as on a fresh machine"
        )
    empty = tmp_path / "empty"
    empty.mkdir()
    mounts = " && ".join(f"mount --bind {shlex.quote(str(empty))} {shlex.quote(str(path))}" for path in hidden)
    pytest_run = shlex.join(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            f"{Path(__file__)}::test_dlbench_env_reports_the_locked_torch",
        ]
    )
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", f"{mounts} && {pytest_run}"],
        capture_output=True,
        text=True,
        timeout=3600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    outcome = re.fullmatch(r"1 (passed|skipped) in [\d.]+s", summary)
    assert outcome, summary
    if outcome.group(1) == "skipped":  # with the reason that tells the user how to enable it
        assert "set PIP_FIND_LINKS=DIR" in result.stdout, result.stdout[-2000:]

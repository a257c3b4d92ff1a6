"""scripts/torch-build.sh: which torch build `make run` and `make test` install, and where the CPU build comes from.

Stand-ins, only where the real thing cannot be here:
- a GPU: a PCI device tree in sysfs layout (HOST_ROOT), with the values a real machine shows, e.g. an H100 SXM5
  as vendor 0x10de, device 0x2330, class 0x030200 (3D controller; https://pci-ids.ucw.cz/read/PC/10de/2330), an
  NVSwitch as class 0x068000 and a BMC's ASPEED VGA as 1a03:2000, class 0x030000; the driver's
  /proc/driver/nvidia/gpus/<bus id>/ directories; and an nvidia-smi that prints `nvidia-smi -L`'s format
  ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)");
- PyPI and PyTorch's CPU index (https://download.pytorch.org/whl/cpu): real HTTP servers on 127.0.0.1 serving
  PEP 503 simple pages, the CPU index with a small wheel named as PyTorch names its CPU builds
  (torch-VERSION+cpu-...whl), and where a test asks, PyPI's default Linux build, named without a local label
  (torch-VERSION-...whl; for torch 2.13.0 it is the CUDA 13 build: https://pypi.org/project/torch/2.13.0/, whose
  nvidia-*-cu13 dependencies images/locks/pytorch-cu130-py3.12.txt lists); pip itself is real and runs with no
  configuration but the test's.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "torch-build.sh"
TORCH_VERSION = re.search(r"^torch==(\S+)", (ROOT / "constraints.txt").read_text(), re.MULTILINE).group(1)
CPU_WHEEL = f"torch-{TORCH_VERSION}+cpu-py3-none-any.whl"
NO_CPU_WHEEL = 3


def _pci_device(host_root: Path, bus_id: str, vendor: str, device: str, pci_class: str) -> None:
    path = host_root / "sys/bus/pci/devices" / bus_id
    path.mkdir(parents=True)
    for name, value in (("vendor", vendor), ("device", device), ("class", pci_class)):
        (path / name).write_text(value + "\n")


def _script(*args: str, host_root: Path, env: dict[str, str] | None = None, timeout: float = 120):
    # No nvidia-smi unless a test brings one: the machine's own (on a GPU runner) must not decide.
    environment = {
        "NVIDIA_SMI": str(host_root / "no-nvidia-smi"),
        **(os.environ if env is None else env),
        "HOST_ROOT": str(host_root),
    }
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=environment, timeout=timeout)


# --- which build -------------------------------------------------------------------------------------------------


def test_a_machine_without_an_nvidia_gpu_gets_the_cpu_build(tmp_path):
    _pci_device(tmp_path, "0000:00:02.0", "0x1a03", "0x2000", "0x030000")  # a BMC's VGA, not NVIDIA's
    result = _script("choose", host_root=tmp_path)
    assert result.returncode == 0, result.stderr
    build, why = result.stdout.strip().split("\t")
    assert build == "cpu" and why.startswith("no NVIDIA GPU found")


def test_an_nvidia_gpu_on_the_pci_bus_without_a_driver_gets_the_cuda_build(tmp_path):
    _pci_device(tmp_path, "0000:17:00.0", "0x10de", "0x2330", "0x030200")
    build, why = _script("choose", host_root=tmp_path).stdout.strip().split("\t")
    assert build == "cuda"
    assert "0000:17:00.0" in why and "0x2330" in why and "driver not loaded" in why


def test_an_nvswitch_alone_is_not_a_gpu(tmp_path):
    _pci_device(tmp_path, "0000:05:00.0", "0x10de", "0x22a3", "0x068000")
    assert _script("choose", host_root=tmp_path).stdout.startswith("cpu\t")


def test_the_loaded_driver_and_nvidia_smi_count_the_gpus(tmp_path):
    for bus_id in ("0000:17:00.0", "0000:3d:00.0"):
        (tmp_path / "proc/driver/nvidia/gpus" / bus_id).mkdir(parents=True)
    build, why = _script("choose", host_root=tmp_path).stdout.strip().split("\t")
    assert (build, why) == ("cuda", "the NVIDIA driver reports 2 GPU(s) in /proc/driver/nvidia/gpus")
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\n"
        + "".join(
            f'echo "GPU {index}: NVIDIA H100 80GB HBM3 (UUID: GPU-0000000{index}-1111-2222-3333-444444444444)"\n'
            for index in range(8)
        )
    )
    smi.chmod(0o755)
    result = _script("choose", host_root=tmp_path, env={**os.environ, "NVIDIA_SMI": str(smi)})
    assert result.stdout.strip() == "cuda\tnvidia-smi lists 8 NVIDIA GPU(s)"


def test_torch_build_overrides_the_detection_both_ways(tmp_path):
    assert _script("choose", "cuda", host_root=tmp_path).stdout.startswith("cuda\tTORCH_BUILD=cuda")
    _pci_device(tmp_path, "0000:17:00.0", "0x10de", "0x2330", "0x030200")
    assert _script("choose", "cpu", host_root=tmp_path).stdout.startswith("cpu\tTORCH_BUILD=cpu")


def test_a_wrong_torch_build_is_one_line_and_exit_2(tmp_path):
    result = _script("choose", "gpu", host_root=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "torch-build: error: TORCH_BUILD must be auto, cpu or cuda, not 'gpu'\n"


# --- where the CPU build comes from ------------------------------------------------------------------------------


def _wheel(path: Path, version: str) -> None:
    dist_info = f"torch-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("torch/__init__.py", f'__version__ = "{version}"\n')
        wheel.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n")
        wheel.writestr(
            f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(
            f"{dist_info}/RECORD",
            f"torch/__init__.py,,\n{dist_info}/METADATA,,\n{dist_info}/WHEEL,,\n{dist_info}/RECORD,,\n",
        )


class _Index:
    """A PEP 503 simple index on 127.0.0.1 that counts the requests it answered."""

    def __init__(self, root: Path, with_torch: bool, with_pypi_build: bool = False):
        (root / "simple").mkdir(parents=True)
        versions = [f"{TORCH_VERSION}+cpu"] * with_torch + [TORCH_VERSION] * with_pypi_build
        if versions:
            (root / "files").mkdir()
            links = ""
            for version in versions:
                name = f"torch-{version}-py3-none-any.whl"
                _wheel(root / "files" / name, version)
                links += f'<a href="../../files/{name}">{name}</a>'
            (root / "simple" / "torch").mkdir()
            (root / "simple" / "torch" / "index.html").write_text(f"<!DOCTYPE html><html><body>{links}</body></html>\n")
        self.requests = 0
        index = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def send_head(self):
                index.requests += 1
                return super().send_head()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def _silent_server():
    """Accepts TCP connections and never answers: how a firewall that drops replies looks to pip."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/whl/cpu"
    finally:
        listener.close()


@pytest.fixture
def indexes(tmp_path):
    made = []

    def make(name: str, with_torch: bool, with_pypi_build: bool = False) -> _Index:
        made.append(_Index(tmp_path / name, with_torch, with_pypi_build))
        return made[-1]

    yield make
    for index in made:
        index.close()


def _pip_env(user_index: str, cpu_index: str) -> dict[str, str]:
    """Only the test's pip configuration: the user's index, no config files, no local wheel directories."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    return {
        **env,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": user_index,
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "TORCH_CPU_INDEX": cpu_index,
        "TORCH_INDEX_TIMEOUT": "2",
    }


_DOWNLOAD = ("3.11", "2.36")


@pytest.mark.parametrize("users_index_has_it", [True, False], ids=["users-configuration", "pytorch-cpu-index"])
def test_the_cpu_wheel_comes_from_the_users_pip_configuration_first_then_pytorchs_index(
    tmp_path, indexes, users_index_has_it
):
    user, pytorch = indexes("user", with_torch=users_index_has_it), indexes("pytorch", with_torch=True)
    result = _script(
        "download-cpu",
        sys.executable,
        str(tmp_path / "out"),
        *_DOWNLOAD,
        host_root=tmp_path,
        env=_pip_env(user.url, pytorch.url),
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / CPU_WHEEL).is_file()
    if users_index_has_it:
        assert "from your pip configuration" in result.stdout
        assert pytorch.requests == 0
    else:
        assert f"from {pytorch.url}" in result.stdout


def test_an_unanswering_cpu_index_gives_up_in_seconds_and_says_what_to_do(tmp_path, indexes):
    user = indexes("user", with_torch=False)
    with _silent_server() as silent:
        # pip's own defaults (15 s read timeout, or 180 s where configured, 5 retries) would outlast this timeout.
        result = _script(
            "download-cpu",
            sys.executable,
            str(tmp_path / "out"),
            *_DOWNLOAD,
            host_root=tmp_path,
            env=_pip_env(user.url, silent),
            timeout=60,
        )
    assert result.returncode == NO_CPU_WHEEL
    assert "no torch" in result.stderr and silent in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    return venv / "bin" / "python"


def test_install_puts_the_cpu_build_in_and_keeps_it_the_second_time(tmp_path, indexes, bare_venv):
    user, pytorch = indexes("user", with_torch=False), indexes("pytorch", with_torch=True)
    env = _pip_env(user.url, pytorch.url)
    first = _script("install", str(bare_venv), host_root=tmp_path, env=env, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.startswith(f"torch-build: the cpu build of torch {TORCH_VERSION}: no NVIDIA GPU found")
    version = subprocess.run(
        [str(bare_venv), "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert version == f"{TORCH_VERSION}+cpu"
    served = (user.requests, pytorch.requests)
    second = _script("install", str(bare_venv), host_root=tmp_path, env=env)
    assert second.returncode == 0
    assert f"torch {TORCH_VERSION}+cpu is installed" in second.stdout
    assert (user.requests, pytorch.requests) == served  # nothing asked of any index


def test_install_without_any_cpu_build_stops_before_fetching_the_cuda_build(tmp_path, indexes, bare_venv):
    user, pytorch = indexes("user", with_torch=False), indexes("pytorch", with_torch=False)
    subprocess.run([str(bare_venv), "-m", "pip", "uninstall", "-y", "-q", "torch"], capture_output=True)
    result = _script("install", str(bare_venv), "cpu", host_root=tmp_path, env=_pip_env(user.url, pytorch.url))
    assert result.returncode == 2
    assert "cannot install the CPU build" in result.stderr and "TORCH_BUILD=auto" in result.stderr
    # pip's own reason, not a resolver "conflict": the versions the index does have
    assert "Could not find a version that satisfies the requirement" in result.stderr
    assert "conflicting dependencies" not in result.stderr
    assert "Traceback" not in result.stderr


def _make(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """`make -C ROOT ARGS...` as a user types it: nothing of an outer make's (`make test TORCH_BUILD=cuda` exports
    TORCH_BUILD and passes it on in MAKEFLAGS) reaches this one."""
    outer = ("TORCH_BUILD", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    clean = {key: value for key, value in env.items() if key not in outer}
    return subprocess.run(
        ["make", "-C", str(ROOT), "--no-print-directory", *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=timeout,
    )


def test_make_runs_the_choice_before_installing_dlbench_and_says_it(tmp_path, indexes):
    user, pytorch = indexes("user", with_torch=False), indexes("pytorch", with_torch=True)
    env = {
        **_pip_env(user.url, pytorch.url),
        "HOST_ROOT": str(tmp_path),
        "NVIDIA_SMI": str(tmp_path / "none"),
        "TORCH_BUILD": "cuda",
        "MAKEFLAGS": "-- TORCH_BUILD=cuda",
    }  # what an outer `make test TORCH_BUILD=cuda` sets
    venv = _venv(tmp_path / "venv").parents[1]
    result = _make("torch", f"VENV={venv}", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == (
        f"torch-build: the cpu build of torch {TORCH_VERSION}: no NVIDIA GPU found "
        "(no nvidia-smi listing, no /proc/driver/nvidia/gpus, no NVIDIA display or "
        "3D controller on the PCI bus)"
    )
    wrong = _make("torch", f"VENV={venv}", "TORCH_BUILD=gpu", env=env, timeout=60)
    assert wrong.returncode == 2 and "TORCH_BUILD must be auto, cpu or cuda" in wrong.stderr


def test_where_only_pypi_answers_make_takes_pypis_wheel_says_so_and_keeps_it(tmp_path, indexes):
    # PyPI as pip sees it: torch 2.13.0 without a local label, no +cpu build; PyTorch's CPU index does not answer.
    # The stand-in wheel carries PyPI's name and version (what pip chooses by), not its nvidia-* dependencies.
    pypi = indexes("pypi", with_torch=False, with_pypi_build=True)
    venv = _venv(tmp_path / "venv").parents[1]
    python = venv / "bin" / "python"
    with _silent_server() as silent:
        env = {**_pip_env(pypi.url, silent), "HOST_ROOT": str(tmp_path), "NVIDIA_SMI": str(tmp_path / "none")}
        first = _make("torch", f"VENV={venv}", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith(f"torch-build: the cpu build of torch {TORCH_VERSION}: no NVIDIA GPU found")
    assert f"your pip configuration has no torch {TORCH_VERSION}+cpu (PyPI has none" in lines[1]
    assert lines[-1].startswith(f"torch-build: taking PyPI's torch {TORCH_VERSION} instead, which runs on the CPU")
    assert "2.7 GB" in lines[-1]
    assert silent in first.stderr  # why the CPU index gave nothing: it did not answer
    assert "conflicting dependencies" not in first.stdout + first.stderr
    assert _torch_version(python) == TORCH_VERSION
    assert (venv / "torch-build").read_text() == "pypi\n"

    # the next plain make keeps it and asks no index anything, although the machine would choose the CPU build
    served = pypi.requests
    again = _make("torch", f"VENV={venv}", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines() == [
        f"torch-build: the pypi build of torch {TORCH_VERSION}: recorded in {venv}/torch-build "
        "(TORCH_BUILD=auto, cpu or cuda chooses again)",
        f"torch-build: torch {TORCH_VERSION} is installed",
    ]
    assert pypi.requests == served

    # until TORCH_BUILD says otherwise: the CPU build, now that an index has it
    cpu_index = indexes("pytorch", with_torch=True)
    switched = _make("torch", f"VENV={venv}", "TORCH_BUILD=cpu", env={**env, "TORCH_CPU_INDEX": cpu_index.url})
    assert switched.returncode == 0, switched.stdout + switched.stderr
    assert _torch_version(python) == f"{TORCH_VERSION}+cpu"
    assert (venv / "torch-build").read_text() == "cpu\n"


def test_a_plain_make_keeps_a_working_torch_it_has_no_record_of(tmp_path, indexes):
    # a .venv made before the record, or where the user installed PyPI's wheel by hand: nothing is fetched
    pypi = indexes("pypi", with_torch=False, with_pypi_build=True)
    python = _venv(tmp_path / "venv")
    env = {**_pip_env(pypi.url, pypi.url), "HOST_ROOT": str(tmp_path), "NVIDIA_SMI": str(tmp_path / "none")}
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"torch=={TORCH_VERSION}"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    served = pypi.requests
    kept = _make("torch", f"VENV={python.parents[1]}", env=env)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert kept.stdout.splitlines()[0] == (
        f"torch-build: the pypi build of torch {TORCH_VERSION}: the one this environment has "
        "(TORCH_BUILD=auto, cpu or cuda chooses again)"
    )
    assert pypi.requests == served and _torch_version(python) == TORCH_VERSION


@pytest.mark.parametrize(
    ("python_version", "glibc", "message"),
    [("3", "2.36", "PYTHON_VERSION must look like 3.11"), ("3.11", "236", "GLIBC_VERSION must look like 2.36")],
)
def test_download_cpu_rejects_a_malformed_target_with_one_line(tmp_path, python_version, glibc, message):
    result = _script("download-cpu", sys.executable, str(tmp_path), python_version, glibc, host_root=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"torch-build: error: {message}") and result.stderr.count("\n") == 1


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True, timeout=300)
    return path / "bin" / "python"


def _torch_version(python: Path) -> str:
    return subprocess.run(
        [str(python), "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.parametrize("venv_has_the_cpu_build", [False, True], ids=["fresh-venv", "over-the-cpu-build"])
def test_the_cuda_build_is_never_a_cpu_wheel_that_pip_prefers(tmp_path, indexes, venv_has_the_cpu_build):
    # PEP 440: `==2.13.0` matches 2.13.0+cpu, and 2.13.0+cpu sorts above 2.13.0. So where a mirror or wheel
    # directory holds both builds, a plain `pip install torch==2.13.0` takes the CPU wheel on a GPU host, and over a
    # venv that has the CPU build it keeps that build ("already satisfied"): TORCH_BUILD=cuda must still switch.
    mirror = indexes("mirror", with_torch=True, with_pypi_build=True)
    env = _pip_env(mirror.url, mirror.url)
    python = _venv(tmp_path / "venv")
    if venv_has_the_cpu_build:
        assert _script("install", str(python), "cpu", host_root=tmp_path, env=env, timeout=300).returncode == 0
        assert _torch_version(python) == f"{TORCH_VERSION}+cpu"
    result = _script("install", str(python), "cuda", host_root=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _torch_version(python) == TORCH_VERSION


def test_the_cuda_build_where_only_the_cpu_build_can_be_had_stops_with_one_clear_error(tmp_path, indexes):
    mirror = indexes("mirror", with_torch=True)
    python = _venv(tmp_path / "venv")
    result = _script("install", str(python), "cuda", host_root=tmp_path, env=_pip_env(mirror.url, mirror.url))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot install the CUDA build" in result.stderr and "TORCH_BUILD=cpu" in result.stderr
    assert f"(from versions: {TORCH_VERSION}+cpu)" in result.stderr  # pip's reason: only the CPU build was there
    assert "Traceback" not in result.stderr
    assert subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode != 0

"""Fixtures for the playbook tests: stand-in download servers on 127.0.0.1 and debootstrapped Debian 12 hosts."""

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ansible_env import ansible_environment
from cache_dir import cache_root, checkout_build, locked
from prometheus_server import free_port

from . import pci_bus, standins
from .testhost import Host, remove_with_its_mounts

REPO = Path(__file__).resolve().parents[2]
# The debootstrapped tree (about 1.2 GB) and the torch wheels, outside the clone (tests/cache_dir.py), so that they
# are built once per machine instead of once per clone.
CACHE = cache_root()
ANSIBLE_BIN = Path(sys.executable).parent
# the stack's torch (stack.yml, which constraints.txt and the conda role follow): the wheels the index stand-in serves
TORCH_REQUIREMENT = f"torch=={standins.TORCH_VERSION}"
JUPYTER_PASSWORD = "correct horse battery staple"
ADMIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDlbenchTestKeyOnlyForTheChrootHost0000000 ops@test"


_PYTEST_CONFIG = None
_STARTED = time.monotonic()


def pytest_configure(config):
    global _PYTEST_CONFIG
    _PYTEST_CONFIG = config


def phase(message):
    """Print a timestamped progress line on the terminal even while pytest captures output: the integration test
    runs for minutes, and a silent terminal looks hung."""
    line = f"[ansible test {time.strftime('%H:%M:%S')} +{time.monotonic() - _STARTED:4.0f}s] {message}"
    capture = _PYTEST_CONFIG.pluginmanager.getplugin("capturemanager") if _PYTEST_CONFIG else None
    if capture is None:
        print(line, file=sys.stderr, flush=True)
        return
    with capture.global_and_fixture_disabled():
        print("\n" + line, file=sys.stderr, flush=True)


class SiteVariables(dict):
    """The playbook variables that point at the stand-ins, and the stand-ins' base URL."""

    base_url = ""


def integration_prerequisites():
    missing = [tool for tool in ("debootstrap", "gpg", "dpkg-deb", "chroot", "mount") if not shutil.which(tool)]
    if os.geteuid() != 0:
        missing.append("root")
    return missing


def session_shared_dir(tmp_path_factory, config):
    """The directory every process of this test session shares: pytest-xdist gives each worker its base temporary
    directory (popen-gw0, popen-gw1...) inside the controller's, which pytest makes anew for each session
    (xdist/workermanage.py); without xdist it is the session's own. A worker is told from the session's config, as
    xdist's worker_id fixture tells it, not from PYTEST_XDIST_WORKER: a pytest that a test starts inherits that
    variable, and would take /tmp/pytest-of-USER, the parent of every session's directory, for its own."""
    base = tmp_path_factory.getbasetemp()
    worker = getattr(config, "workerinput", {}).get("workerid")
    return base.parent if worker and base.name == f"popen-{worker}" else base


def once_per_session(tmp_path_factory, config, name, build):
    """NAME's directory in the session's shared directory, filled by BUILD(directory) in the first process that asks,
    under a lock: the others wait for it, then use what it built (pytest-xdist's documented way to make a session
    fixture's work happen once across its processes)."""
    return build_once(session_shared_dir(tmp_path_factory, config) / name, build)


def build_once(directory, build):
    """DIRECTORY filled by BUILD once, under its lock; a process that failed or was killed while building it left no
    `complete`, and the next one to ask builds it again."""
    with locked(directory.with_suffix(".lock")):
        if not (directory / "complete").exists():
            remove_unfinished(directory)
            directory.mkdir(parents=True)
            build(directory)
            (directory / "complete").touch()
    return directory


def remove_unfinished(directory):
    """Remove what a build of DIRECTORY that did not finish left. A process killed during the first provisioning run
    (SIGKILL, a crashed xdist worker, the OOM killer) leaves its host mounted, the overlay and the /proc inside it."""
    if directory.exists():
        remove_with_its_mounts(directory)


@pytest.fixture(scope="session")
def site(tmp_path_factory, pytestconfig):
    """Serve the stand-in repositories, installer and wheel index from 127.0.0.1; yield the playbook variables.

    Built once per session (one signing key, one port) and served on that port by every process that uses it
    (SO_REUSEPORT): a host provisioned in one process keeps apt sources that a test in another process updates from,
    and a rerun elsewhere finds the same URLs, so it changes nothing."""
    missing = integration_prerequisites()
    if missing:
        pytest.fail("the playbook integration test needs " + ", ".join(missing) + " (see scripts/install-test-deps.sh)")
    shared = once_per_session(tmp_path_factory, pytestconfig, "site", build_site)
    www, variables = shared / "www", json.loads((shared / "variables.json").read_text())
    handler = functools.partial(QuietHandler, directory=str(www))
    server = SharedPortServer(("127.0.0.1", variables["port"]), handler)
    site_variables = SiteVariables(variables["playbook"])
    site_variables.base_url = variables["base_url"]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site_variables
    server.shutdown()
    server.server_close()


def build_site(directory):
    www, port = directory / "www", free_port()
    base_url = f"http://127.0.0.1:{port}"
    signer = standins.Signer(directory / "gnupg")
    phase("building the stand-in apt repositories, installer and wheel index")
    try:
        variables = standins.build_site(www, base_url, signer)
    finally:
        signer.close()
    standins.simple_index(www / "pytorch" / "whl" / "cpu", torch_wheels())
    variables["conda_torch_index_url"] = f"{base_url}/pytorch/whl/cpu/"
    (directory / "variables.json").write_text(json.dumps({"port": port, "base_url": base_url, "playbook": variables}))


class SharedPortServer(http.server.ThreadingHTTPServer):
    allow_reuse_port = True  # each process serves the same files on the session's one port


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def torch_wheels():
    """The real torch CPU wheel and its dependencies, downloaded once into the test cache (a PyTorch index
    stand-in)."""
    key = hashlib.sha256(f"{TORCH_REQUIREMENT} {sys.version_info[:2]}".encode()).hexdigest()[:16]
    target = CACHE / "ansible-wheels" / key
    with locked(target.with_suffix(".lock")):
        if not (target / "complete").exists():
            phase(f"downloading {TORCH_REQUIREMENT} and its dependencies into {target} (once)")
            shutil.rmtree(target, ignore_errors=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--only-binary=:all:",
                    "-d",
                    str(target),
                    TORCH_REQUIREMENT,
                ],
                check=True,
            )
            (target / "complete").touch()
    return sorted(target.glob("*.whl"))


@pytest.fixture(scope="session")
def dlbench_wheel(tmp_path_factory, pytestconfig):
    """The wheel of this checkout, built once per session: every process's playbook copies the same file, so a
    rerun in another process than the first run finds it unchanged."""

    def build(out):
        # pip builds the checkout in place, and other tests build it too (pip install, make dist): one at a time
        with checkout_build(REPO):
            subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(REPO)], check=True
            )

    return next(once_per_session(tmp_path_factory, pytestconfig, "dlbench-wheel", build).glob("dlbench-*.whl"))


def extra_ca_certificates(root, out_dir):
    """CA certificates this machine trusts and a stock Debian does not (e.g. an egress proxy's), as one PEM file."""
    pem = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
    host = pem.findall(Path("/etc/ssl/certs/ca-certificates.crt").read_text())
    stock = set(pem.findall((root / "etc/ssl/certs/ca-certificates.crt").read_text()))
    extra = [cert for cert in host if cert not in stock]
    if not extra:
        return []
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(out_dir) / "extra-ca.crt"
    path.write_text("\n".join(extra) + "\n")
    return [str(path)]


class Playbook:
    """ansible-playbook run against one chroot host through community.general.chroot."""

    def __init__(self, host, workdir, variables):
        self.host = host
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        inventory = self.workdir / "inventory.ini"
        inventory.write_text(
            "[gpu_hosts]\n"
            f"testgpu ansible_host={host.root} ansible_connection=community.general.chroot "
            "ansible_python_interpreter=/usr/bin/python3 ansible_become=false\n"
            "[monitoring]\ntestgpu\n"
        )
        (self.workdir / "vars.json").write_text(json.dumps(variables))
        password_file = self.workdir / "vault-password"
        password_file.write_text("test-vault-password\n")
        vault = self.workdir / "vault.yml"
        vault.write_text(
            f'vault_jupyterlab_password: "{JUPYTER_PASSWORD}"\nvault_grafana_admin_password: "grafana-test-password"\n'
        )
        subprocess.run(
            [str(ANSIBLE_BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password_file), str(vault)],
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=REPO,
        )
        self.args = [
            "-i",
            str(inventory),
            "-e",
            f"@{self.workdir / 'vars.json'}",
            "-e",
            f"@{vault}",
            "--vault-password-file",
            str(password_file),
        ]

    def run(self, *extra, playbook="playbooks/setup_gpu.yml"):
        phase(f"ansible-playbook {playbook} {' '.join(extra)} on {self.host.root}")
        return self.start(*extra, playbook=playbook).wait()

    def start(self, *extra, playbook="playbooks/setup_gpu.yml"):
        """Start ansible-playbook in the background; .wait() returns its PlaybookResult."""
        env = ansible_environment(
            ANSIBLE_LOCAL_TEMP=str(self.workdir / "ansible-tmp"), ANSIBLE_STDOUT_CALLBACK="default"
        )
        log = self.workdir / f"run-{len(list(self.workdir.glob('run-*.log')))}.log"
        # stdin: a fresh /dev/null; see tests/conftest.py nonblocking_stdin
        with open(log, "w") as out:
            process = subprocess.Popen(
                # -u: its log line by line, as far as a run killed midway got (the hosts' Python stays buffered)
                [sys.executable, "-u", str(ANSIBLE_BIN / "ansible-playbook"), *self.args, *extra, playbook],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env=env,
            )
        return RunningPlaybook(process, log)


class RunningPlaybook:
    def __init__(self, process, log):
        self.process, self.log = process, log

    def wait(self):
        returncode = self.process.wait()
        return PlaybookResult(returncode, self.log.read_text())


class PlaybookResult:
    def __init__(self, returncode, output):
        self.rc = returncode
        self.output = output
        recap = re.search(r"testgpu\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", self.output)
        self.ok, self.changed, self.unreachable, self.failed = (int(n) for n in recap.groups()) if recap else (0,) * 4
        self.has_recap = recap is not None

    def changed_tasks(self):
        task, changed = None, []
        for line in self.output.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                task = line.split("[", 1)[1].rsplit("]", 1)[0]
            elif line.startswith("changed:"):
                changed.append(task)
        return changed

    def tail(self, lines=80):
        return "\n".join(self.output.splitlines()[-lines:])


# An HGX H100 as the test host's PCI bus shows it (one GPU and one NVSwitch of the eight and four; pci_bus.py).
HGX_H100 = ("h100_sxm", "h100_nvswitch")


def simulate_pci(host, devices):
    """Give HOST a PCI bus with DEVICES (names in pci_bus.DEVICES); return the dump's path inside the host."""
    dump = host.path("/var/lib/dlbench-test/lspci.dump")
    dump.parent.mkdir(parents=True, exist_ok=True)
    dump.write_text(pci_bus.lspci_dump(devices))
    return "/var/lib/dlbench-test/lspci.dump"


def debian_kernel_release(host):
    """The Debian 12 kernel whose headers the test host has (the machine's own kernel is not a Debian one)."""
    releases = [p.name[len("linux-headers-") :] for p in host.path("/usr/src").glob("linux-headers-*-amd64")]
    return sorted(release for release in releases if "-cloud-" not in release)[-1]


def base_variables(site, host, workdir, dlbench_wheel=None, pci=HGX_H100):
    variables = dict(site)
    variables.update(
        {
            # The stand-in conda makes environments with the chroot's own Python (Debian 12: 3.11).
            "conda_python_version": "3.11",
            # No GPU here: lspci reads a simulated bus, and the stand-in nvidia-smi answers for the GPU on it.
            "nvidia_driver_pci_dump": simulate_pci(host, pci),
            "nvidia_driver_kernel_release": debian_kernel_release(host),
            "common_admin_user": "ops",
            "common_admin_ssh_keys": [ADMIN_KEY],
            "common_ca_certificates": extra_ca_certificates(host.root, workdir),
        }
    )
    if dlbench_wheel:
        # dlbench is not on PyPI: the conda role installs this wheel (with the `train` extra) into the `dl`
        # environment, and the monitoring role takes the same one by default for the exporter's environment.
        variables["conda_dlbench_wheel"] = str(dlbench_wheel)
    return variables


def provisioned_variables(site, host, workdir, dlbench_wheel=None):
    """The variables setup_gpu.yml provisions the test host with: a Debian cloud image's kernel, whose headers and the
    cloud flavour's metapackage come from Debian's archive."""
    variables = base_variables(site, host, workdir, dlbench_wheel)
    variables["nvidia_driver_kernel_release"] = variables["nvidia_driver_kernel_release"].replace(
        "-amd64", "-cloud-amd64"
    )
    return variables


@pytest.fixture
def fresh_host(tmp_path):
    with Host(CACHE / "ansible-testhost", tmp_path / "host", phase) as host:
        yield host


def cpu_benchmark_variables(tmp_path):
    """playbooks/benchmark_multinode.yml settings for a job of a few seconds on the CPU: mnist-mlp, one process per
    host over gloo, the rendezvous on 127.0.0.1 (local hosts and the chroot host all share this machine's network;
    a chroot's ansible_host is its root directory, not an address), the result fetched into TMP_PATH/fetched."""
    return {
        "workload": "mnist-mlp",
        "benchmark_multinode_nproc_per_node": 1,
        "benchmark_multinode_rdzv_address": "127.0.0.1",
        "benchmark_multinode_rdzv_port": free_port(),
        "benchmark_multinode_run_args": [
            "--device",
            "cpu",
            "--steps",
            "3",
            "--warmup",
            "1",
            "--batch-size",
            "8",
            "--no-telemetry",
            "--dist-timeout",
            "60",
        ],
        "benchmark_multinode_fetch_dir": str(tmp_path / "fetched"),
        "benchmark_multinode_timeout": 300,
    }


# Session-scoped and here rather than in test_setup_gpu.py: provisioning takes minutes, and every module's tests of
# a provisioned host (validate.yml, benchmark_multinode.yml, update_driver.yml...) share this one run of it.
@pytest.fixture(scope="session")
def first_provisioning(site, dlbench_wheel, tmp_path_factory, pytestconfig):
    """setup_gpu.yml's first run on a fresh test host, once per session whichever process asks first: its result and
    the host it left, frozen as overlay layers (its upper directory over the cached tree) that nothing changes again.
    The tests that need a provisioned host but not the rerun each take a writable copy of it (provisioned_copy), so
    that they run in another process while `provisioned` reruns the playbook on a copy of its own."""
    shared = once_per_session(
        tmp_path_factory, pytestconfig, "first-provisioning", functools.partial(provision_first, site, dlbench_wheel)
    )
    return FirstProvisioning(json.loads((shared / "result.json").read_text()))


def provision_first(site, dlbench_wheel, workdir):
    host = Host(CACHE / "ansible-testhost", workdir / "host", phase)
    with host.mounted():
        # An operator's existing Docker setting that the container role must keep.
        host.path("/etc/docker").mkdir(parents=True, exist_ok=True)
        host.path("/etc/docker/daemon.json").write_text(json.dumps({"data-root": "/srv/docker"}))
        variables = provisioned_variables(site, host, workdir, dlbench_wheel)
        phase("first run: setup_gpu.yml provisions the host")
        started = time.monotonic()
        first = Playbook(host, workdir / "ansible", variables).run()
        phase(f"first run done in {time.monotonic() - started:.0f} s (rc {first.rc})")
    result = {
        "rc": first.rc,
        "output": first.output,
        "layers": [str(layer) for layer in host.layers()],
        "host_specs": str(workdir / "ansible" / "host-specs"),  # fetched to the control node (host_spec role)
    }
    (workdir / "result.json").write_text(json.dumps(result))


class FirstProvisioning:
    def __init__(self, result):
        self.run = PlaybookResult(result["rc"], result["output"])
        self.layers = [Path(layer) for layer in result["layers"]]
        self.host_specs = Path(result["host_specs"])

    def copy(self, workdir):
        """A writable copy of the provisioned host (an overlay over its layers), for one test to change freely."""
        return Host(CACHE / "ansible-testhost", workdir, phase, lower=self.layers)


@pytest.fixture
def provisioned_copy(first_provisioning, tmp_path):
    """A writable copy of the host setup_gpu.yml provisioned, or a clear failure when it could not provision it."""
    first = first_provisioning.run
    assert first.rc == 0, "setup_gpu.yml did not provision the test host (test_setup_gpu.py): " + first.tail(20)
    with first_provisioning.copy(tmp_path / "copy") as host:
        yield host


@pytest.fixture(scope="session")
def provisioned(request, site, dlbench_wheel, tmp_path_factory):
    """The first run (first_provisioning), then a second run on a copy of the host it left, which must change nothing;
    --check on a second, fresh host meanwhile (the first run mostly waits on downloads), so first_provisioning is asked
    for only once that has started."""
    workdir = tmp_path_factory.mktemp("provisioned")
    with Host(CACHE / "ansible-testhost", workdir / "check-host", phase) as check_host:
        check_playbook = Playbook(
            check_host,
            workdir / "check-ansible",
            base_variables(site, check_host, workdir / "check-ansible", dlbench_wheel),
        )
        phase("check run: setup_gpu.yml --check on a fresh host, in the background")
        check_running = check_playbook.start("--check")
        first_provisioning = request.getfixturevalue("first_provisioning")  # made here, or where asked first
        first = first_provisioning.run
        check = check_running.wait()
        phase(f"check run rc {check.rc}")
        with first_provisioning.copy(workdir / "host") as host:
            second = None
            if first.rc == 0:
                phase("second run: setup_gpu.yml again, which must change nothing")
                # on the same control node: with the host's spec that the first run fetched next to its inventory
                shutil.copytree(first_provisioning.host_specs, workdir / "ansible" / "host-specs")
                started = time.monotonic()
                second = Playbook(
                    host, workdir / "ansible", provisioned_variables(site, host, workdir, dlbench_wheel)
                ).run()
                phase(f"second run done in {time.monotonic() - started:.0f} s; verifying the host")
            yield Provisioned(host, first, second, check_host, check)


class Provisioned:
    def __init__(self, host, first, second, check_host, check):
        self.host, self.first, self.second, self.check_host, self.check = host, first, second, check_host, check

    def __iter__(self):
        return iter((self.host, self.first, self.second))

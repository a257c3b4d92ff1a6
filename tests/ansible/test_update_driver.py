"""playbooks/update_driver.yml on a fresh host with one held driver package: refused while processes run on the GPUs,
through the proxy behind which the mirror sits, and held again when the upgrade fails.

The holds are released for the in-branch upgrade; left released after a failure, the next unattended upgrade moves the
driver (and not the loaded kernel module) to a new version, and NVML fails with "Driver/library version mismatch".
The upgrade that works, the fabric manager re-pinned and the drain hooks run on a copy of the provisioned host
(test_setup_gpu.py).
"""

import shutil

import pytest

from . import proxy, standins
from .conftest import HGX_H100, Playbook, debian_kernel_release, simulate_pci

pytestmark = pytest.mark.integration

# A training job holding a CUDA context, as NVML reports it (standins.GPU_PROCESSES: PID NAME USED_MIB).
TRAINING_JOB = "4242 /opt/miniforge3/envs/dl/bin/python 30512\n"


def selection(host, package):
    return host.run("dpkg", "--get-selections", package).stdout.split()[-1]


def version(host, package):
    return host.run("dpkg-query", "-W", "-f", "${Version}", package).stdout


def hooks(tmp_path):
    """Drain and undrain commands that record themselves on the control node, where they run, with any proxy they
    are given."""
    log = tmp_path / "hooks.log"
    # Each records the proxy variables it sees after the host's name: none (the play's proxy is for the host's downloads).
    seen = "${http_proxy}${https_proxy}${HTTP_PROXY}${HTTPS_PROXY}"
    return log, {
        "update_driver_drain_command": f'echo "drain {{{{ inventory_hostname }}}}{seen}" >> {log}',
        "update_driver_undrain_command": f'echo "undrain {{{{ inventory_hostname }}}}{seen}" >> {log}',
    }


def host_with_a_held_driver(host, tmp_path):
    """A held driver package that carries the stand-in nvidia-smi; the branch's next release, damaged in transit, on a
    mirror that only the proxy reaches. Return the mirror's directory (on the control node) and the variables."""
    # A package named as NVIDIA's Debian packaging names the driver's CUDA library (libcuda1, 580.95.05-1; the
    # unversioned libnvidia-compute exists only on Ubuntu from 590 on);
    # what matters is that apt and dpkg see an installed, held driver package and that nvidia-smi answers.
    deb = standins.build_deb(
        tmp_path, "libcuda1", "580.95.05-1", {"/usr/bin/nvidia-smi": (standins.nvidia_smi("580.95.05"), 0o755)}
    )
    shutil.copy(deb, host.path("/tmp"))
    host.run("dpkg", "-i", f"/tmp/{deb.name}")
    host.run("apt-mark", "hold", "libcuda1")
    # The download arrives damaged ("Hash Sum mismatch", as behind a broken mirror or proxy): the cache refreshes, the
    # upgrade itself fails. (An unreachable mirror fails too, but only after the apt module's five cache-refresh
    # retries with back-off, half a minute of sleeping.)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    newer = standins.build_deb(mirror, "libcuda1", "580.105.08-1")
    standins.flat_repo(mirror, [newer], signer=None)
    damaged = newer.read_bytes()  # the same size, other bytes: apt checks the size first, then the hashes
    newer.write_bytes(damaged[:-18] + b"damaged in transit")
    host.path("/etc/apt/sources.list").write_text(f"deb [trusted=yes] http://{proxy.MIRROR_HOST}/ /\n")
    return mirror, {
        "nvidia_driver_pci_dump": simulate_pci(host, HGX_H100),
        "nvidia_driver_kernel_release": debian_kernel_release(host),
    }


def busy(host):
    path = host.path(standins.GPU_PROCESSES)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TRAINING_JOB)


@pytest.mark.parametrize("gpus", ["idle", "busy-allowed"])
def test_failed_upgrade_holds_the_driver_again_behind_a_proxy(fresh_host, tmp_path, gpus):
    mirror, variables = host_with_a_held_driver(fresh_host, tmp_path)
    if gpus == "busy-allowed":
        busy(fresh_host)
        variables["update_driver_allow_busy_gpus"] = True
    with proxy.serving(mirror) as behind:
        variables["setup_proxy_env"] = behind.environment()
        result = Playbook(fresh_host, tmp_path / "ansible", variables).run(playbook="playbooks/update_driver.yml")
    assert result.rc != 0 and "Upgrade the driver packages inside the pinned branch" in result.output, result.tail()
    # apt reached the mirror through the proxy (its name resolves nowhere) and the upgrade itself failed there.
    assert "Hash Sum mismatch" in result.output, result.tail()
    assert any(request.endswith("/Packages") or "/Packages." in request for request in behind.requests), behind.requests
    assert any(request.endswith("libcuda1_580.105.08-1_all.deb") for request in behind.requests)
    assert selection(fresh_host, "libcuda1") == "hold", result.tail()


def test_busy_gpus_refuse_the_update_and_the_host_stays_drained(fresh_host, tmp_path):
    mirror, variables = host_with_a_held_driver(fresh_host, tmp_path)
    busy(fresh_host)
    log, commands = hooks(tmp_path)
    variables.update(commands)
    with proxy.serving(mirror) as behind:
        variables["setup_proxy_env"] = behind.environment()
        result = Playbook(fresh_host, tmp_path / "ansible", variables).run(playbook="playbooks/update_driver.yml")
    said = " ".join(result.output.split())
    assert result.rc != 0 and result.failed == 1, result.tail()
    # The process, in nvidia-smi's own CSV, and the ways on; the drain ran first and nothing else changed.
    assert "Processes run on the GPUs of testgpu (pid, name): 4242, /opt/miniforge3/envs/dl/bin/python." in said, said
    assert "update_driver_allow_busy_gpus=true" in said and "Nothing was changed (the host stays drained)." in said
    assert log.read_text() == "drain testgpu\n"
    assert result.changed == 1 and behind.requests == [], result.tail()  # the drain; no apt, no cache refresh
    assert version(fresh_host, "libcuda1") == "580.95.05-1"
    assert selection(fresh_host, "libcuda1") == "hold"


def test_no_nvidia_smi_answer_refuses_the_update(fresh_host, tmp_path):
    """A driver whose nvidia-smi fails (no module loaded, a version mismatch) cannot say whether jobs run: refused."""
    mirror, variables = host_with_a_held_driver(fresh_host, tmp_path)
    fresh_host.path("/usr/bin/nvidia-smi").write_text(
        "#!/bin/sh\necho 'Failed to initialize NVML: Driver/library version mismatch'\nexit 18\n"
    )
    result = Playbook(fresh_host, tmp_path / "ansible", variables).run(playbook="playbooks/update_driver.yml")
    said = " ".join(result.output.split())
    assert result.rc != 0 and result.failed == 1 and result.changed == 0, result.tail()
    assert (
        "nvidia-smi could not list the GPU processes of testgpu (Failed to initialize NVML: Driver/library version"
        " mismatch)."
    ) in said, said
    assert "Nothing was changed." in said

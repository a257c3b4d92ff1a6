"""playbooks/update_driver.yml when the upgrade fails: the driver packages must be held again.

The holds are released for the in-branch upgrade; left released after a failure, the next unattended upgrade moves the
driver (and not the loaded kernel module) to a new version, and NVML fails with "Driver/library version mismatch".
"""

import shutil

import pytest

from . import standins
from .conftest import HGX_H100, Playbook, debian_kernel_release, simulate_pci

pytestmark = pytest.mark.integration


def selection(host, package):
    return host.run("dpkg", "--get-selections", package).stdout.split()[-1]


def test_failed_upgrade_holds_the_driver_again(fresh_host, tmp_path):
    # A held package named as NVIDIA's Debian packaging names the driver's CUDA library (libcuda1, 580.95.05-1; the
    # unversioned libnvidia-compute exists only on Ubuntu from 590 on); its content does not matter here, only that
    # apt and dpkg see an installed, held driver package.
    deb = standins.build_deb(tmp_path, "libcuda1", "580.95.05-1")
    shutil.copy(deb, fresh_host.path("/tmp"))
    fresh_host.run("dpkg", "-i", f"/tmp/{deb.name}")
    fresh_host.run("apt-mark", "hold", "libcuda1")
    # The repository offers the branch's next release, but its download arrives damaged ("Hash Sum mismatch", as
    # behind a broken mirror or proxy): the cache refreshes, the upgrade itself fails. (An unreachable mirror fails
    # too, but only after the apt module's five cache-refresh retries with back-off, half a minute of sleeping.)
    repo = fresh_host.path("/var/lib/dlbench-test/driver-update")
    repo.mkdir(parents=True)
    newer = standins.build_deb(repo, "libcuda1", "580.105.08-1")
    standins.flat_repo(repo, [newer], signer=None)
    with open(newer, "ab") as damaged:
        damaged.write(b"damaged in transit")
    fresh_host.path("/etc/apt/sources.list").write_text("deb [trusted=yes] file:/var/lib/dlbench-test/driver-update /\n")
    variables = {
        "nvidia_driver_pci_dump": simulate_pci(fresh_host, HGX_H100),
        "nvidia_driver_kernel_release": debian_kernel_release(fresh_host),
    }
    result = Playbook(fresh_host, tmp_path / "ansible", variables).run(playbook="playbooks/update_driver.yml")
    assert result.rc != 0 and "Upgrade the driver packages inside the pinned branch" in result.output, result.tail()
    assert "Hash Sum mismatch" in result.output, result.tail()  # the upgrade itself failed, not anything before it
    assert selection(fresh_host, "libcuda1") == "hold", result.tail()

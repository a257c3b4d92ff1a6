"""The nvidia_driver role's reading of `dkms status -m nvidia` (filter_plugins/nvidia_dkms.py), without Ansible.

The lines are dkms's own formats (do_status in /usr/sbin/dkms, github.com/dell/dkms): "nvidia/<version>, <kernel>,
<arch>: <state>" from dkms 3.x (Debian 12's 3.0.10, Ubuntu 24.04's 3.0.11) and "nvidia, <version>, <kernel>, <arch>:
<state>" from dkms 2.x (Ubuntu 22.04's 2.8.7); the states "added", "built" and "installed", the last sometimes with a
note after it. The provisioned-host tests read the real dkms 3.0.10 of the test host; these cover what it cannot
print there (2.x, a stale older version).
"""

import importlib.util

import pytest

from .conftest import REPO
from .test_kernel_flavour import render

ROLE = REPO / "playbooks" / "roles" / "nvidia_driver"
_spec = importlib.util.spec_from_file_location("nvidia_dkms", ROLE / "filter_plugins" / "nvidia_dkms.py")
nvidia_dkms = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nvidia_dkms)
installed = nvidia_dkms.nvidia_dkms_installed_kernels


@pytest.mark.parametrize(
    "line, kernel",
    [
        ("nvidia/580.95.05, 6.1.0-26-cloud-amd64, x86_64: installed", "6.1.0-26-cloud-amd64"),  # dkms 3.x
        ("nvidia, 580.95.05, 5.15.0-122-generic, x86_64: installed", "5.15.0-122-generic"),  # dkms 2.x
        ("nvidia/580.95.05, 6.8.0-45-generic, aarch64: installed", "6.8.0-45-generic"),
        # Installed; dkms notes that the .ko in /lib/modules differs from its build tree's, or shadows an in-tree one.
        (
            "nvidia/580.95.05, 6.8.0-45-generic, x86_64: installed (WARNING! Diff between built and installed module!)",
            "6.8.0-45-generic",
        ),
        ("nvidia, 580.95.05, 5.15.0-122-generic, x86_64: installed (original_module exists)", "5.15.0-122-generic"),
    ],
)
def test_an_installed_module_counts_in_either_dkms_format(line, kernel):
    assert installed([line], "580.95.05") == [kernel]


@pytest.mark.parametrize(
    "line",
    [
        "nvidia/580.95.05, 6.12.9+bpo-amd64, x86_64: built",  # compiled, not in /lib/modules: no driver at boot
        "nvidia, 580.95.05, 6.5.0-45-generic, x86_64: built",
        "nvidia/580.95.05: added",  # registered, built for no kernel
        "nvidia-fs/2.26.6, 6.8.0-45-generic, x86_64: installed",  # another module that depends on nvidia
        "nvidia-current-open/580.95.05, 6.1.0-26-amd64, x86_64: installed",  # Debian's own packaging, another name
        "",
        "Error! Could not locate dkms.conf file.",
    ],
)
def test_nothing_else_counts(line):
    assert installed([line], "580.95.05") == []


def test_an_older_version_left_installed_does_not_stand_in_for_the_drivers():
    """After an in-branch update the new version was built for the running kernel but only built for the other one,
    where the old version is still installed: that kernel would boot the old module against the new NVML."""
    status = [
        "nvidia/580.82.07, 6.1.0-25-amd64, x86_64: installed",
        "nvidia/580.95.05, 6.1.0-25-amd64, x86_64: built",
        "nvidia/580.95.05, 6.1.0-26-amd64, x86_64: installed",
    ]
    assert installed(status, "580.95.05") == ["6.1.0-26-amd64"]
    assert installed(status) == ["6.1.0-25-amd64", "6.1.0-26-amd64"]  # any version, each kernel once


@pytest.mark.parametrize(
    "distribution, modules, package",
    [("Debian", "open", "nvidia-kernel-open-dkms"), ("Debian", "proprietary", "nvidia-kernel-dkms"),
     ("Ubuntu", "open", "nvidia-dkms-580-open"), ("Ubuntu", "proprietary", "nvidia-dkms-580")],
)
def test_the_role_asks_for_the_version_of_its_own_module_package(distribution, modules, package):
    """The version the check wants is that of the package whose postinst has DKMS build the modules."""
    (rendered,) = render(["{{ __nvidia_driver_dkms_package }}"], "6.8.0-45-generic", "noble", "24.04", distribution,
                         modules)
    assert rendered == package


@pytest.mark.parametrize(
    "releases, newest",
    [
        (["6.1.0-26-cloud-amd64", "6.1.0-112-cloud-amd64", "6.1.0-9-cloud-amd64"], "6.1.0-112-cloud-amd64"),
        (["5.15.0-122-generic", "6.8.0-45-generic"], "6.8.0-45-generic"),  # jammy GA and HWE
        (["6.8.0-45-generic", "6.8.0-100-generic", "6.8.0-1015-aws"], "6.8.0-1015-aws"),
        (["6.12.12+bpo-amd64", "6.1.0-26-amd64"], "6.12.12+bpo-amd64"),
        ([], ""),
    ],
)
def test_the_kernel_the_next_boot_picks_is_the_newest_in_version_order(releases, newest):
    """As GRUB's generated menu orders them (sort -V): not by text, where 6.1.0-9 would beat 6.1.0-112."""
    assert nvidia_dkms.newest_kernel(releases) == newest

"""The nvidia_driver role's choice of kernels and module package for tasks/module-check.yml, without a host.

The check itself asks the test host's real modinfo (kmod) for each kernel's module version (test_setup_gpu.py and
test_scenarios.py, against stand-in modules that carry a real .modinfo section); these cover the kernel order GRUB
boots by and the DKMS package named in its message.
"""

import importlib.util

import pytest

from .conftest import REPO
from .test_kernel_flavour import render

ROLE = REPO / "playbooks" / "roles" / "nvidia_driver"
_spec = importlib.util.spec_from_file_location("nvidia_kernels", ROLE / "filter_plugins" / "nvidia_kernels.py")
nvidia_kernels = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nvidia_kernels)


@pytest.mark.parametrize(
    "distribution, modules, package",
    [
        ("Debian", "open", "nvidia-kernel-open-dkms"),
        ("Debian", "proprietary", "nvidia-kernel-dkms"),
        ("Ubuntu", "open", "nvidia-dkms-580-open"),
        ("Ubuntu", "proprietary", "nvidia-dkms-580"),
    ],
)
def test_the_role_asks_for_the_version_of_its_own_module_package(distribution, modules, package):
    """The version the check wants is that of the package whose postinst has DKMS build the modules."""
    (rendered,) = render(
        ["{{ __nvidia_driver_dkms_package }}"], "6.8.0-45-generic", "noble", "24.04", distribution, modules
    )
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
    assert nvidia_kernels.newest_kernel(releases) == newest

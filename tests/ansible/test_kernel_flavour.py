"""The Ubuntu kernel flavour the nvidia_driver role derives its headers and signed-module metapackages from, rendered
by Ansible's own templating from the role's defaults, vars/main.yml, vars/Ubuntu.yml and preflight.yml (no host).

Kernel releases are real ones: 5.15.0-122-generic (jammy GA), 6.8.0-45-generic (noble GA, jammy HWE),
6.14.0-29-generic (noble HWE), 6.8.0-1015-aws, 6.8.0-1017-nvidia-64k (packages.ubuntu.com, linux-image-* packages).
"""

import json
import subprocess
import sys

import pytest
import yaml

from .conftest import REPO

ROLE = REPO / "playbooks" / "roles" / "nvidia_driver"
# Run in a separate interpreter: in pytest's, the name `ansible` is this test package (tests/ansible).
TEMPLATE = """
import json, sys
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
def trusted(value):  # Ansible 2.19 renders only strings marked as coming from playbook files
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [trusted(item) for item in value]
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    return value
variables, flavour, expressions = trusted(json.load(sys.stdin))
variables["nvidia_driver_kernel_flavour"] = Templar(DataLoader(), variables=variables).template(flavour)
templar = Templar(DataLoader(), variables=variables)
print(json.dumps([templar.template(expression).strip() for expression in expressions]))
"""


def render(
    expressions, kernel_release, release, version, distribution="Ubuntu", modules="open", branch="580", extra=None
):
    variables = {}
    for path in (ROLE / "defaults" / "main.yml", ROLE / "vars" / "main.yml", ROLE / "vars" / f"{distribution}.yml"):
        variables.update(yaml.safe_load(path.read_text()))
    variables.update(
        ansible_facts={
            "distribution": distribution,
            "distribution_release": release,
            "distribution_version": version,
            "kernel": kernel_release,
        },
        stack_driver_branch=branch,
        stack_cuda_version="13.0",
        nvidia_driver_modules_flavour=modules,  # preflight.yml's set_fact, from the GPU generation
        stack_torch_cuda_variant="cu130",
    )
    variables.update(extra or {})  # what tasks register (the role's vars are lazily templated, as in a play)
    (record,) = [
        task["ansible.builtin.set_fact"]
        for task in yaml.safe_load((ROLE / "tasks" / "preflight.yml").read_text())
        if "nvidia_driver_kernel_flavour" in task.get("ansible.builtin.set_fact", {})
    ]
    out = subprocess.run(
        [sys.executable, "-c", TEMPLATE],
        input=json.dumps([variables, record["nvidia_driver_kernel_flavour"], expressions]),
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    "kernel_release, release, version, flavour",
    [
        ("5.15.0-122-generic", "jammy", "22.04", "generic"),
        ("6.8.0-45-generic", "jammy", "22.04", "generic-hwe-22.04"),
        ("6.8.0-45-generic", "noble", "24.04", "generic"),
        # Before the fix: "generic", whose metapackages track 6.8, so the next HWE kernel booted without headers/module.
        ("6.14.0-29-generic", "noble", "24.04", "generic-hwe-24.04"),
        ("6.14.0-29-generic-64k", "noble", "24.04", "generic-64k-hwe-24.04"),
        ("6.8.0-1015-aws", "noble", "24.04", "aws"),
        ("6.8.0-1017-nvidia-64k", "noble", "24.04", "nvidia-64k"),
        # GH200/GB200 on Grace's HWE kernels (packages.ubuntu.com linux-headers-nvidia-64k-hwe-24.04,
        # linux-headers-nvidia-hwe-24.04). Before the fix: nvidia-64k / nvidia, the GA 6.8 track.
        ("6.14.0-1011-nvidia-64k", "noble", "24.04", "nvidia-64k-hwe-24.04"),
        ("6.11.0-1010-nvidia", "noble", "24.04", "nvidia-hwe-24.04"),
    ],
)
def test_ubuntu_headers_and_modules_follow_the_kernel_track(kernel_release, release, version, flavour):
    rendered, headers = render(
        ["{{ __nvidia_driver_ubuntu_flavour }}", "{{ __nvidia_driver_kernel_headers_packages | join(' ') }}"],
        kernel_release,
        release,
        version,
    )
    assert rendered == flavour
    assert headers == f"dkms linux-headers-{kernel_release} linux-headers-{flavour}"


@pytest.mark.parametrize(
    "distribution, branch, packages",
    [
        # NVIDIA Driver Installation Guide, compute-only system: Debian "apt -V install nvidia-driver-cuda
        # nvidia-kernel-open-dkms". Ubuntu: Canonical's names, with the branch up to 580 and nvidia-smi and the
        # persistence daemon in their own packages (test_apt_resolution.py has apt resolve them); the unversioned
        # names from 590 on. Before the fix Ubuntu got the 590 names on 580, which pulled a 590 driver.
        ("Debian", "580", "nvidia-driver-cuda nvidia-kernel-open-dkms nvidia-kernel-open-dkms"),
        (
            "Ubuntu",
            "580",
            "libnvidia-compute-580 nvidia-compute-utils-580 nvidia-utils-580 nvidia-dkms-580-open nvidia-dkms-580-open",
        ),
        ("Ubuntu", "590", "libnvidia-compute nvidia-compute-utils nvidia-utils nvidia-dkms-open nvidia-dkms-open"),
    ],
)
def test_compute_only_driver_packages_have_each_distributions_names(distribution, branch, packages):
    release, version = ("noble", "24.04") if distribution == "Ubuntu" else ("bookworm", "12")
    (rendered,) = render(
        ["{{ (__nvidia_driver_cuda_repo_packages.compute.open + [__nvidia_driver_dkms_package]) | join(' ') }}"],
        "6.8.0-45-generic",
        release,
        version,
        distribution,
        branch=branch,
    )
    assert rendered == packages


def test_the_holds_cover_debian_packagings_driver_libraries_and_firmware():
    """Debian-style packaging's libcuda1, libcudadebugger1 and firmware-nvidia-gsp carry the driver's version too;
    the container toolkit is held by its own role, other packages not at all."""
    installed = [
        "libcuda1",
        "libcudadebugger1",
        "firmware-nvidia-gsp",
        "nvidia-driver-cuda",
        "libnvidia-ml1",
        "nvidia-container-toolkit",
        "libnvidia-container1",
        "libcudart12",
        "firmware-misc-nonfree",
        "dkms",
    ]
    facts = {
        "distribution": "Debian",
        "distribution_release": "bookworm",
        "distribution_version": "12",
        "kernel": "6.1.0-26-amd64",
        "packages": {name: [{}] for name in installed},
    }
    (rendered,) = render(
        ["{{ __nvidia_driver_installed_packages | join(' ') }}"],
        "6.1.0-26-amd64",
        "bookworm",
        "12",
        "Debian",
        extra={"ansible_facts": facts},
    )
    assert rendered.split() == [
        "firmware-nvidia-gsp",
        "libcuda1",
        "libcudadebugger1",
        "libnvidia-ml1",
        "nvidia-driver-cuda",
    ]


def test_the_ubuntu_archive_source_holds_the_kernel_with_its_module_metapackage():
    """Held alone, linux-modules-nvidia-580-server-open-aws would let linux-aws bring a kernel ABI it has no module
    for; held together they move together (update_driver.yml). Other kernels' metapackages stay free."""
    installed = [
        "linux-aws",
        "linux-image-aws",
        "linux-headers-aws",
        "linux-modules-nvidia-580-server-open-aws",
        "linux-modules-nvidia-580-server-open-6.8.0-1015-aws",
        "linux-image-6.8.0-1015-aws",
        "linux-generic",
        "linux-image-generic",
        "nvidia-utils-580-server",
        "nvidia-container-toolkit",
    ]
    facts = {
        "distribution": "Ubuntu",
        "distribution_release": "noble",
        "distribution_version": "24.04",
        "kernel": "6.8.0-1015-aws",
        "packages": {name: [{}] for name in installed},
    }
    (rendered,) = render(
        ["{{ __nvidia_driver_installed_packages | join(' ') }}"],
        "6.8.0-1015-aws",
        "noble",
        "24.04",
        extra={"ansible_facts": facts},
    )
    assert rendered.split() == [
        "linux-aws",
        "linux-headers-aws",
        "linux-image-aws",
        "linux-modules-nvidia-580-server-open-6.8.0-1015-aws",
        "linux-modules-nvidia-580-server-open-aws",
        "nvidia-utils-580-server",
    ]


@pytest.mark.parametrize(
    "distribution, kernel_release, release, version, packages",
    [
        # Debian keeps only the current ABIs' headers (bookworm today: 6.1.0-47 and -50 cloud-amd64): an older image's
        # kernel gets the flavour's newest kernel with its headers instead. Before the fix: "Unable to locate package".
        ("Debian", "6.1.0-28-cloud-amd64", "bookworm", "12", "dkms linux-image-cloud-amd64 linux-headers-cloud-amd64"),
        ("Ubuntu", "6.8.0-1015-aws", "noble", "24.04", "dkms linux-image-aws linux-headers-aws"),
    ],
)
def test_a_kernel_whose_headers_left_the_archive_gets_the_flavours_newest_kernel(
    distribution, kernel_release, release, version, packages
):
    (rendered,) = render(
        ["{{ __nvidia_driver_kernel_headers_packages | join(' ') }}"],
        kernel_release,
        release,
        version,
        distribution,
        extra={"__nvidia_driver_release_headers": {"rc": 100}},
    )
    assert rendered == packages


@pytest.mark.parametrize(
    "kernel_release, suite",
    [
        ("6.12.12+bpo-cloud-amd64", "bookworm-backports"),  # before the fix: bookworm's 6.1-track metapackage
        ("6.1.0-26-cloud-amd64", ""),
    ],
)
def test_a_backports_kernel_takes_its_headers_from_backports(kernel_release, suite):
    (rendered,) = render(["{{ __nvidia_driver_kernel_headers_release }}"], kernel_release, "bookworm", "12", "Debian")
    assert rendered == suite

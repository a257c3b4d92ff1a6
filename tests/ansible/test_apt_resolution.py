"""apt itself resolves the driver package sets the nvidia_driver role asks for, against Packages indexes built from
the packagers' metadata (ubuntu_packaging.py: Canonical's debian/control, as committed in packaging/ubuntu_nvidia.yml)
with the branch-pinning package's preferences and the role's origin pin in force. No host and no download:
`apt-get install -s` over a temporary apt tree (-o Dir::...), so a wrong name, a missing dependency, a jump from the
580 branch to 590 or a package taken from the wrong origin fails here in seconds.

The indexes: NVIDIA's CUDA repository for Ubuntu 24.04 (Origin NVIDIA) with the 580 release the tests install and the
first 590 release under its unversioned names; the Ubuntu archive's restricted component (Origin Ubuntu) with a newer
580 release of the same names (nvidia-graphics-drivers-580) and the -server series.
"""

import fnmatch
import re
import shutil
import subprocess

import pytest

from . import standins, ubuntu_packaging
from .conftest import REPO
from .test_kernel_flavour import render

pytestmark = pytest.mark.skipif(not shutil.which("apt-get"), reason="needs apt-get")

ROLE = REPO / "playbooks" / "roles" / "nvidia_driver"
BRANCH = "580"
NVIDIA_580 = standins.DRIVER_VERSION
# Ubuntu's own build of the same branch, newer than NVIDIA's in this test (packages.ubuntu.com, noble-updates).
UBUNTU_580 = "580.173.02"
UBUNTU_REVISION = "0ubuntu0.24.04.1"
# What an Ubuntu 24.04 server has installed before the driver (the packages the driver's relations name outside it).
BASE_SYSTEM = {"dkms": "3.0.11-1ubuntu13", "adduser": "3.137ubuntu1", "ocl-icd-libopencl1": "2.3.2-1build1"}


def nvidia_repository():
    packages = ubuntu_packaging.stanzas(BRANCH, NVIDIA_580, ubuntu_packaging.CUDA_REPO_REVISION)
    packages += ubuntu_packaging.stanzas(
        BRANCH, ubuntu_packaging.NEXT_BRANCH_VERSION, ubuntu_packaging.CUDA_REPO_REVISION, versioned_names=False
    )
    return packages


def ubuntu_archive():
    return (
        ubuntu_packaging.stanzas(BRANCH, UBUNTU_580, UBUNTU_REVISION)
        + ubuntu_packaging.stanzas(f"{BRANCH}-server", NVIDIA_580, standins.UBUNTU_DRIVER_REVISION)
        + lrm_packages()
    )


def lrm_packages():
    """Canonical's prebuilt modules for the test's AWS kernel and its flavour's metapackage (as standins.py builds)."""
    abi, flavour = standins.UBUNTU_KERNEL.rsplit("-", 1)
    version = f"{NVIDIA_580}-{standins.UBUNTU_DRIVER_REVISION}"
    common = f"nvidia-kernel-common-{BRANCH}-server (>= {NVIDIA_580})"
    stanzas = []
    for modules in (f"linux-modules-nvidia-{BRANCH}-server", f"linux-modules-nvidia-{BRANCH}-server-open"):
        stanzas += [
            ubuntu_packaging.Stanza(
                f"{modules}-{standins.UBUNTU_KERNEL}",
                f"{abi}+{version}",
                {"Depends": [common]},
                [f"/lib/modules/{standins.UBUNTU_KERNEL}/kernel/nvidia-580srv/nvidia.ko"],
            ),
            ubuntu_packaging.Stanza(
                f"{modules}-{flavour}", f"{abi}.1", {"Depends": [f"{modules}-{standins.UBUNTU_KERNEL}", common]}, []
            ),
        ]
    return stanzas


class Apt:
    """apt-get over a throwaway tree: these indexes, this dpkg status, these preferences; nothing else of the host."""

    def __init__(self, root, repositories, preferences):
        self.root = root
        sources = []
        for (origin, label), packages in repositories.items():
            directory = root / "repos" / origin
            directory.mkdir(parents=True)
            (directory / "Packages").write_text(ubuntu_packaging.packages_index(packages))
            standins._release(directory, ["Packages"], origin=origin, label=label)
            sources.append(f"deb [trusted=yes] file:{directory} ./\n")
        (root / "sources.list").write_text("".join(sources))
        (root / "preferences.d").mkdir()
        for name, text in preferences.items():
            (root / "preferences.d" / name).write_text(text)
        (root / "status").write_text(
            "".join(
                f"Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: misc\nMaintainer: x <x@x>\n"
                f"Architecture: all\nVersion: {version}\nDescription: {name}\n\n"
                for name, version in BASE_SYSTEM.items()
            )
        )
        for directory in ("lists/partial", "cache/archives/partial", "log"):
            (root / directory).mkdir(parents=True)
        self.run("update")

    def options(self):
        root = self.root
        return [
            "-o",
            f"Dir={root}",
            "-o",
            f"Dir::State::status={root}/status",
            "-o",
            f"Dir::State::lists={root}/lists",
            "-o",
            f"Dir::Cache={root}/cache",
            "-o",
            f"Dir::Log={root}/log",
            "-o",
            f"Dir::Etc::sourcelist={root}/sources.list",
            "-o",
            "Dir::Etc::sourceparts=-",
            "-o",
            f"Dir::Etc::preferences={root}/none",
            "-o",
            f"Dir::Etc::preferencesparts={root}/preferences.d",
            "-o",
            "Dir::Etc::parts=-",
            "-o",
            "APT::Architecture=amd64",
            "-o",
            "APT::Architectures::=amd64",
            "-o",
            "Debug::NoLocking=1",
            "-o",
            "APT::Get::List-Cleanup=0",
            "-o",
            "Acquire::Languages=none",
            "-o",
            "APT::Install-Recommends=0",
        ]

    def run(self, *args):
        return subprocess.run(
            ["apt-get", *self.options(), *args],
            capture_output=True,
            text=True,
            env={"LC_ALL": "C", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
        )

    def simulate(self, packages):
        """{package: version} apt would install for PACKAGES, or the error apt printed."""
        result = self.run("install", "-s", "-q", *packages)
        if result.returncode != 0:
            return result.stdout + result.stderr
        return dict(re.findall(r"^Inst (\S+) \((\S+) ", result.stdout, re.M))


def preferences(with_origin_pin=True):
    """The pinning package's preferences (as standins.py ships them) and, as the role writes it on Ubuntu, its origin
    pin (templates/nvidia-driver-origin.pref.j2, rendered)."""
    prefs = {f"nvidia-driver-pinning-{BRANCH}": standins.pinning_preferences(BRANCH)}
    if with_origin_pin:
        template = (ROLE / "templates" / "nvidia-driver-origin.pref.j2").read_text()
        prefs["00-nvidia-driver-origin.pref"] = template.replace("{{ ansible_managed }}", "Ansible managed").replace(
            "{{ nvidia_driver_branch }}", BRANCH
        )
    return prefs


@pytest.fixture
def apt(tmp_path):
    return Apt(
        tmp_path,
        {("NVIDIA", "NVIDIA CUDA"): nvidia_repository(), ("Ubuntu", "Ubuntu"): ubuntu_archive()},
        preferences(),
    )


def role_packages(expression, modules):
    (rendered,) = render(
        [f"{{{{ {expression} | join(' ') }}}}"], standins.UBUNTU_KERNEL, "noble", "24.04", "Ubuntu", modules
    )
    return rendered.split()


def assert_one_580_driver_with_its_tools(installed, source, version):
    assert isinstance(installed, dict), installed
    # Every NVIDIA package at the one release of the branch, none from 590, none from the other origin.
    drivers = {name: v for name, v in installed.items() if name.startswith(("libnvidia-", "nvidia-"))}
    assert drivers and set(drivers.values()) == {version}, drivers
    # nvidia-smi, nvidia-persistenced (with its unit) and, for DKMS, the module source: what the role then uses.
    wanted = ["/usr/bin/nvidia-smi", "/usr/bin/nvidia-persistenced", "/lib/systemd/system/nvidia-persistenced.service"]
    if source == "cuda_repo":
        wanted.append(f"/usr/src/nvidia-{NVIDIA_580}/dkms.conf")
    upstream, revision = version.split("-", 1)
    packages = (
        ubuntu_packaging.stanzas(BRANCH, upstream, revision)
        if source == "cuda_repo"
        else ubuntu_packaging.stanzas(f"{BRANCH}-server", upstream, revision)
    )
    for path in wanted:
        assert ubuntu_packaging.shipping(packages, path) & installed.keys(), path


@pytest.mark.parametrize("modules", ["open", "proprietary"])
def test_the_cuda_repository_set_resolves_to_one_580_release_from_nvidia(apt, modules):
    packages = role_packages("__nvidia_driver_cuda_repo_packages.compute[nvidia_driver_modules_flavour]", modules)
    assert_one_580_driver_with_its_tools(
        apt.simulate(packages), "cuda_repo", f"{NVIDIA_580}-{ubuntu_packaging.CUDA_REPO_REVISION}"
    )


@pytest.mark.parametrize("modules", ["open", "proprietary"])
def test_the_ubuntu_archive_set_resolves_to_the_server_series(tmp_path, modules):
    """The ubuntu source: the archive only, neither the pinning package nor the origin pin."""
    apt = Apt(tmp_path, {("Ubuntu", "Ubuntu"): ubuntu_archive()}, {})
    packages = role_packages("__nvidia_driver_ubuntu_archive_packages", modules)
    installed = apt.simulate(packages)
    assert_one_580_driver_with_its_tools(
        {k: v for k, v in installed.items() if not k.startswith("linux-")}
        if isinstance(installed, dict)
        else installed,
        "ubuntu",
        f"{NVIDIA_580}-{standins.UBUNTU_DRIVER_REVISION}",
    )
    assert f"linux-modules-nvidia-580-server{'-open' if modules == 'open' else ''}-aws" in installed


@pytest.mark.parametrize(
    "packages",
    [
        ["libnvidia-compute", "nvidia-dkms-open"],  # the 590 names the role asked for before: a 590 driver
        ["libnvidia-compute-580", "nvidia-dkms-580-open"],  # right names, but no nvidia-smi, no persistence daemon
        ["libnvidia-compute-580", "nvidia-utils-580", "nvidia-compute-utils-580", "nvidia-dkms-580-opn"],  # a typo
    ],
)
def test_a_wrong_set_fails_this_check(apt, packages):
    with pytest.raises(AssertionError):
        assert_one_580_driver_with_its_tools(
            apt.simulate(packages), "cuda_repo", f"{NVIDIA_580}-{ubuntu_packaging.CUDA_REPO_REVISION}"
        )


def test_without_the_origin_pin_ubuntus_newer_build_of_the_same_names_wins(tmp_path):
    """Why the role writes the origin pin: the pinning package raises Ubuntu's 580 build as much as NVIDIA's."""
    apt = Apt(
        tmp_path,
        {("NVIDIA", "NVIDIA CUDA"): nvidia_repository(), ("Ubuntu", "Ubuntu"): ubuntu_archive()},
        preferences(with_origin_pin=False),
    )
    installed = apt.simulate(role_packages("__nvidia_driver_cuda_repo_packages.compute.open", "open"))
    assert installed["libnvidia-compute-580"] == f"{UBUNTU_580}-{UBUNTU_REVISION}"


# The origin pin's packages as one regular expression, as the role wrote it before it used globs: the globs must
# name exactly these (apt matches both against the package's name without its architecture, ignoring case).
ORIGIN_PIN_AS_A_REGEX = re.compile(
    r"^(lib)?nvidia-|^libcuda|^libxnvctrl|^xserver-xorg-video-nvidia|^cuda-drivers", re.IGNORECASE
)
NAMES = [
    "nvidia-utils-580",
    "nvidia-dkms-580-open",
    "libnvidia-compute-580",
    "libcuda1",
    "libcudart12",
    "libxnvctrl0",
    "xserver-xorg-video-nvidia-580",
    "cuda-drivers",
    "cuda-drivers-580",
    "nvidia-prime",
    "NVIDIA-SETTINGS",
    # not the driver's
    "libnvidia",
    "python3-nvidia-ml",
    "cuda-toolkit-12-6",
    "libcufft11",
    "xserver-xorg-video-nouveau",
    "screen-resolution-extra",
]


def _package_entries(template):
    lines = [line for line in template.read_text().splitlines() if line.startswith("Package:")]
    assert lines, f"{template.name} has no Package: line"
    return [name for line in lines for name in line.removeprefix("Package:").split()]


def test_the_roles_pins_name_packages_by_glob_not_by_regular_expression():
    """apt compiles a pin's /regex/ afresh for every package name in its cache (apt-pkg/versionmatch.cc,
    ExpressionMatches): on the test host's Debian lists the origin pin as a regex cost 2.7 s each time apt read the
    preferences, in every apt-get run and once per package in every task of Ansible's apt module. Globs (fnmatch)
    name the same packages, case-insensitively as the regex did, in a fraction of that."""
    templates = sorted((ROLE / "templates").glob("*.pref.j2"))
    assert templates
    for template in templates:
        regexes = [name for name in _package_entries(template) if name.startswith("/") and name.endswith("/")]
        assert not regexes, f"{template.name}: {regexes}"


def test_the_origin_pins_globs_name_what_its_regex_named():
    globs = _package_entries(ROLE / "templates" / "nvidia-driver-origin.pref.j2")
    for name in NAMES:
        by_glob = any(fnmatch.fnmatch(name.lower(), glob.lower()) for glob in globs)  # apt: FNM_CASEFOLD
        assert by_glob == bool(ORIGIN_PIN_AS_A_REGEX.search(name)), name


@pytest.mark.parametrize(
    "with_fabricmanager_pin, expected", [(True, NVIDIA_580), (False, standins.NEWER_DRIVER_VERSION)]
)
def test_the_fabric_manager_stays_at_the_drivers_version_under_the_branch_pin(
    tmp_path, with_fabricmanager_pin, expected
):
    """The branch pin raises every 580 fabric manager alike and apt takes the first matching record, so without the
    role's own pin (templates/nvidia-fabricmanager.pref.j2) the branch's newest wins, which the driver refuses."""
    fabricmanager = [
        ubuntu_packaging.Stanza("nvidia-fabricmanager", f"{version}-1", {}, [])
        for version in (NVIDIA_580, standins.NEWER_DRIVER_VERSION)
    ]
    prefs = preferences(with_origin_pin=False)
    if with_fabricmanager_pin:
        template = (ROLE / "templates" / "nvidia-fabricmanager.pref.j2").read_text()
        prefs["00-nvidia-fabricmanager.pref"] = (
            template.replace("{{ ansible_managed }}", "Ansible managed")
            .replace("{{ nvidia_driver_branch }}", BRANCH)
            .replace("{{ __nvidia_driver_fabricmanager_packages | join(' ') }}", "nvidia-fabricmanager")
            .replace("{{ __nvidia_driver_upstream }}", NVIDIA_580)
        )
    apt = Apt(tmp_path, {("NVIDIA", "NVIDIA CUDA"): fabricmanager}, prefs)
    assert apt.simulate(["nvidia-fabricmanager"]) == {"nvidia-fabricmanager": f"{expected}-1"}

"""The scenario matrix: setup_gpu.yml against simulated hosts that the main provisioning test does not cover.

Each host is the debootstrapped Debian 12 tree with one thing changed at its narrowest boundary: the PCI bus (a dump
of real devices read by the real lspci, pci_bus.py), the Secure Boot EFI variable, /etc/os-release (Ubuntu 24.04),
the kernel release. Refusals run only the read-only checks (`--tags preflight`: the plays tagged always), so each
costs seconds; the Ubuntu host runs the driver role (`--tags nvidia_driver`) for real. The main provisioning test's
host is the HGX H100 with NVSwitch on a Debian cloud kernel (test_setup_gpu.py).
"""

import json
import shutil
import urllib.request

import pytest

from . import proxy, standins
from .conftest import Playbook, base_variables
from .test_setup_gpu import effective_exec_start

pytestmark = pytest.mark.integration

# What the firmware stores in SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c: 4 attribute bytes (non-volatile,
# boot service and runtime access), then 1 for enabled (the variable mokutil --sb-state reads; UEFI spec 3.3).
SECURE_BOOT_ON = bytes([0x06, 0, 0, 0, 1])
UBUNTU_NOBLE_OS_RELEASE = (  # /etc/os-release of Ubuntu 24.04 LTS (base-files 13ubuntu10)
    'PRETTY_NAME="Ubuntu 24.04.3 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION="24.04.3 LTS (Noble Numbat)"\n'
    "VERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=noble\n"
)


# Shim's MOK list lives in EFI variables (MokListRT), which need a real efivarfs: mokutil checks the file system's
# magic, so a chroot cannot give it one. The stand-in mokutil answers --test-key from the certificates the test
# "enrolls" into MOK_LIST, with mokutil's own messages ("<file> is already enrolled" / "<file> is not enrolled").
MOK_LIST = "/var/lib/dlbench-test/mok-list"
STAND_IN_MOKUTIL = f"""#!/bin/sh
# STAND-IN mokutil (dlbench test fixture): --test-key against {MOK_LIST}.
[ "$1" = --test-key ] || {{ echo "stand-in mokutil: only --test-key" >&2; exit 2; }}
for enrolled in {MOK_LIST}/*; do
  if [ -f "$enrolled" ] && cmp -s "$enrolled" "$2"; then echo "$2 is already enrolled"; exit 0; fi
done
echo "$2 is not enrolled"
"""


def stand_in_mokutil(host):
    host.path("/usr/bin/mokutil").write_text(STAND_IN_MOKUTIL)
    host.path("/usr/bin/mokutil").chmod(0o755)


def secure_boot_on(host):
    efivar = host.path("/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c")
    efivar.parent.mkdir(parents=True, exist_ok=True)
    efivar.write_bytes(SECURE_BOOT_ON)


def preflight(site, host, tmp_path, pci, *extra):
    playbook = Playbook(host, tmp_path / "ansible", base_variables(site, host, tmp_path, pci=pci))
    return playbook.run("--tags", "preflight", *extra)


def said(result, phrase):
    """PHRASE is in the output, however the callback wrapped its lines."""
    return phrase in " ".join(result.output.split())


def assert_refused(result, *phrases):
    assert result.rc != 0 and result.failed == 1 and result.changed == 0, result.tail()
    for phrase in phrases + ("Nothing was changed.",):
        assert said(result, phrase), result.tail()


@pytest.mark.parametrize(
    "pci, extra, phrases",
    [
        # CUDA 13 and cu130 (the stack's pins) cannot run Maxwell, Pascal or Volta; torch.cuda.is_available() would lie.
        (("m60",), (), ["GM204GL [Tesla M60] [10de:13f2] (Maxwell)", "CUDA 13.0 and cu130"]),
        (("v100",), (), ["[10de:1db1] (Volta)", 'pin stack_cuda_version "12.6"']),
        (("k80",), (), ["[10de:102d] (Kepler or older)", "R470 was their last"]),
        # A GPU newer than the role's table: no silent guess of the kernel modules.
        (("rubin",), (), ["Device [10de:3021] (unknown)", "set nvidia_driver_kernel_modules"]),
        # Open modules cannot drive a Volta, whatever the CUDA release.
        (
            ("v100",),
            (
                "-e",
                "stack_cuda_version=12.6",
                "-e",
                "stack_torch_cuda_variant=cu126",
                "-e",
                "nvidia_driver_kernel_modules=open",
            ),
            ["cannot run the open kernel modules"],
        ),
    ],
    ids=["maxwell-cuda13", "volta-cuda13", "kepler", "unknown-id", "volta-open-modules"],
)
def test_refused_before_anything_changes(site, fresh_host, tmp_path, pci, extra, phrases):
    assert_refused(preflight(site, fresh_host, tmp_path, pci, *extra), *phrases)


@pytest.mark.parametrize(
    "pci, extra, expected",
    [
        # Maxwell with the CUDA 12 / cu126 stack it needs: decided from the id, proprietary modules.
        (
            ("m60",),
            ("-e", "stack_cuda_version=12.6", "-e", "stack_torch_cuda_variant=cu126"),
            ["(Maxwell)", "kernel modules: proprietary"],
        ),
        # An old pci.ids prints a B200 as "Device 2901": the id still says Blackwell, open modules, fabric manager.
        (("b200",), (), ["Device [10de:2901] (Blackwell, HGX B200)", "kernel modules: open", "fabric manager: yes"]),
        (("rubin",), ("-e", "nvidia_driver_kernel_modules=open"), ["(unknown)", "kernel modules: open"]),
    ],
    ids=["maxwell-cuda12", "b200-old-pci-ids", "unknown-id-explicit"],
)
def test_detected_from_the_pci_bus(site, fresh_host, tmp_path, pci, extra, expected):
    result = preflight(site, fresh_host, tmp_path, pci, *extra)
    assert result.rc == 0 and result.changed == 0, result.tail()
    for phrase in expected:
        assert said(result, phrase), result.tail()


def test_secure_boot_refuses_dkms_with_the_enrollment_steps(site, fresh_host, tmp_path):
    secure_boot_on(fresh_host)
    result = preflight(site, fresh_host, tmp_path, ("t4",))
    assert_refused(result, "Secure Boot is on", "mokutil --import /var/lib/dkms/mok.pub", "Enroll MOK")
    assert not said(result, "dkms generate_mok;")  # not in Debian 12's dkms 3.0.10 (dell/dkms: since v3.1.0)
    # Said to be enrolled, and not: shim's MOK list is asked (mokutil --test-key), not the flag trusted.
    stand_in_mokutil(fresh_host)
    fresh_host.path("/var/lib/dkms").mkdir(parents=True, exist_ok=True)
    fresh_host.path("/var/lib/dkms/mok.pub").write_bytes(b"stand-in DER certificate")
    claimed = preflight(site, fresh_host, tmp_path, ("t4",), "-e", "nvidia_driver_secure_boot_key_enrolled=true")
    assert_refused(claimed, "/var/lib/dkms/mok.pub is not enrolled")
    fresh_host.path(MOK_LIST).mkdir(parents=True)
    shutil.copy(fresh_host.path("/var/lib/dkms/mok.pub"), fresh_host.path(MOK_LIST) / "dkms.der")
    enrolled = preflight(site, fresh_host, tmp_path, ("t4",), "-e", "nvidia_driver_secure_boot_key_enrolled=true")
    assert enrolled.rc == 0 and said(enrolled, "Secure Boot: on"), enrolled.tail()


def ubuntu_noble(host):
    host.path("/etc/os-release").unlink()
    host.path("/etc/os-release").write_text(UBUNTU_NOBLE_OS_RELEASE)
    host.path("/etc/lsb-release").write_text("DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=24.04\nDISTRIB_CODENAME=noble\n")
    return host


def installed_status(host):
    installed = host.run("dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\n").stdout
    return {line.split()[0]: line.split()[1:] for line in installed.splitlines()}


def test_shim_validation_off_is_no_secure_boot(site, fresh_host, tmp_path):
    """`mokutil --disable-validation`: shim sets MokSBStateRT to 1 and the kernel loads unsigned modules."""
    secure_boot_on(fresh_host)
    mok = fresh_host.path("/sys/firmware/efi/efivars/MokSBStateRT-605dab50-e046-4300-abb6-3dd810dd8b23")
    mok.write_bytes(bytes([0x06, 0, 0, 0, 1]))
    result = preflight(site, fresh_host, tmp_path, ("t4",))
    assert result.rc == 0 and said(result, "Secure Boot: off"), result.tail()


def test_without_lspci_the_preflight_refuses(site, fresh_host, tmp_path):
    """pciutils missing: no silent "no GPU" that lets every refusal pass."""
    for path in ("/usr/bin/lspci", "/usr/sbin/lspci"):
        fresh_host.path(path).unlink(missing_ok=True)
    assert_refused(preflight(site, fresh_host, tmp_path, ("t4",)), "lspci failed", "Install pciutils")


def test_ubuntu_cuda_repository_driver_installs_from_canonical_style_packages(site, fresh_host, tmp_path):
    """Ubuntu 24.04, the default source: NVIDIA's CUDA repository, whose stand-in carries Canonical's packaging of
    580 (and 590's unversioned names, which must not be taken), installed for real on the test host. Before the fix
    the role asked for libnvidia-compute and nvidia-dkms-open, which pulled 590 (or, with names right, left the host
    without nvidia-smi and the persistence daemon)."""
    host = ubuntu_noble(fresh_host)
    variables = base_variables(site, host, tmp_path, pci=("h100_sxm",))
    # The tree is Debian's: its kernel's headers stand in for Ubuntu's, which Debian's archive does not carry.
    variables["nvidia_driver_kernel_headers_packages"] = ["dkms"]
    result = Playbook(host, tmp_path / "ansible", variables).run("--tags", "nvidia_driver")
    assert result.rc == 0, result.tail()
    status = installed_status(host)
    for package in ("libnvidia-compute-580", "nvidia-compute-utils-580", "nvidia-utils-580", "nvidia-dkms-580-open"):
        assert status[package] == [f"{standins.DRIVER_VERSION}-0ubuntu1", "hi"], package
    assert not {"libnvidia-compute", "nvidia-dkms-open", "nvidia-driver-cuda"} & status.keys()
    # nvidia-smi from nvidia-utils-580 answers; the persistence daemon runs as Canonical's postinst's account, with
    # persistence mode on over Canonical's static unit.
    assert host.run("dpkg", "-S", "/usr/bin/nvidia-smi").stdout.startswith("nvidia-utils-580:")
    assert "--no-persistence-mode" in host.path("/lib/systemd/system/nvidia-persistenced.service").read_text()
    assert effective_exec_start(host, "nvidia-persistenced.service") == [
        "/usr/bin/nvidia-persistenced --user nvidia-persistenced --persistence-mode --verbose"
    ]
    # The module, asked of the kernel's module tree by the real modinfo; and the origin pin in apt's view.
    kernel = variables["nvidia_driver_kernel_release"]
    assert host.run("modinfo", "-k", kernel, "-F", "version", "nvidia").stdout.strip() == standins.DRIVER_VERSION
    assert said(result, f"NVIDIA module built for {kernel}"), result.tail()
    assert host.path("/etc/apt/preferences.d/00-nvidia-driver-origin.pref").exists()


def test_ubuntu_packaging_with_secure_boot_and_hgx_b200(site, fresh_host, tmp_path):
    """Ubuntu 24.04 on an AWS kernel with Secure Boot on and an HGX B200, the driver from the Ubuntu archive."""
    host = ubuntu_noble(fresh_host)
    secure_boot_on(host)
    variables = base_variables(site, host, tmp_path, pci=("b200",))
    variables.update(nvidia_driver_source="ubuntu", nvidia_driver_kernel_release=standins.UBUNTU_KERNEL)
    with urllib.request.urlopen(f"{site.base_url}/ubuntu/key.gpg") as response:  # the stand-ins' signing key
        host.path("/usr/share/keyrings/ubuntu-standin.gpg").write_bytes(response.read())
    host.path("/etc/apt/sources.list.d/ubuntu-nvidia.list").write_text(
        f"deb [signed-by=/usr/share/keyrings/ubuntu-standin.gpg] {site.base_url}/ubuntu/ /\n"
    )
    # An older AWS kernel kept in /boot: Canonical publishes a new driver's prebuilt modules for the current kernel ABIs
    # only, so it has none; the next boot does not pick it (a warning, not a failure).
    older = "6.8.0-1010-aws"
    host.path(f"/boot/vmlinuz-{older}").write_text("stand-in kernel image\n")
    host.path(f"/lib/modules/{older}").mkdir(parents=True)
    result = Playbook(host, tmp_path / "ansible", variables).run("--tags", "nvidia_driver")
    assert result.rc == 0, result.tail()
    assert said(result, f"Kernel {older} has no NVIDIA module at version 580.95.05"), result.tail()
    status = installed_status(host)
    # Canonical's signed prebuilt modules for the running AWS kernel and its flavour; nothing built by DKMS.
    for package in (
        "nvidia-headless-no-dkms-580-server-open",
        f"linux-modules-nvidia-580-server-open-{standins.UBUNTU_KERNEL}",
        "linux-modules-nvidia-580-server-open-aws",
        "nvidia-utils-580-server",
        "nvlsm",
        "infiniband-diags",
        f"linux-modules-extra-{standins.UBUNTU_KERNEL}",
    ):
        assert package in status, package
    assert "nvidia-open" not in status and "nvidia-dkms-580-server-open" not in status
    # The fabric manager under Ubuntu's names, at the driver's upstream version though the revisions differ.
    assert status["nvidia-fabricmanager-580"][0] == f"580.95.05-{standins.UBUNTU_FABRICMANAGER_REVISION}"
    assert status["libnvidia-nscq-580"][0] == f"580.95.05-{standins.UBUNTU_FABRICMANAGER_REVISION}"
    assert status["nvidia-fabricmanager-580"][-1] == "hi"
    # NVLink 5: the fabric manager's precheck refuses to start unless ib_umad is loaded; it is, at every boot.
    modules_load = host.path("/etc/modules-load.d/nvidia-fabricmanager.conf").read_text()
    assert [line for line in modules_load.splitlines() if not line.startswith("#")] == ["ib_umad"]
    # Ubuntu's static unit keeps --no-persistence-mode; the drop-in turns persistence mode on.
    assert "--no-persistence-mode" in host.path("/lib/systemd/system/nvidia-persistenced.service").read_text()
    assert effective_exec_start(host, "nvidia-persistenced.service") == [
        "/usr/bin/nvidia-persistenced --user nvidia-persistenced --persistence-mode --verbose"
    ]
    # Canonical's module for the AWS kernel, found by the real modinfo (the check now covers this source too).
    assert said(result, f"NVIDIA module built for {standins.UBUNTU_KERNEL}"), result.tail()


def test_behind_a_proxy_dockerd_pulls_through_it_too(site, fresh_host, tmp_path):
    """setup_proxy_env reaches apt and downloads, and dockerd, which pulls the container check's image itself: Docker's
    Engine 28 from its repository reads it from daemon.json's "proxies". The stand-in servers sit behind the proxy
    too (no no_proxy), so the requests it forwarded show the role's own traffic went through it."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with proxy.serving(mirror) as behind:
        variables = base_variables(site, fresh_host, tmp_path)
        variables["setup_proxy_env"] = {"http_proxy": behind.url, "https_proxy": behind.url}
        result = Playbook(fresh_host, tmp_path / "ansible", variables).run("--tags", "container")
    assert result.rc == 0, result.tail()
    assert any(request == f"GET {site.base_url}/docker/linux/debian/gpg" for request in behind.requests), (
        behind.requests
    )
    daemon = json.loads(fresh_host.path("/etc/docker/daemon.json").read_text())
    assert daemon["proxies"] == {"http-proxy": behind.url, "https-proxy": behind.url}
    assert daemon["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"  # nvidia-ctk kept it
    assert not fresh_host.path("/etc/systemd/system/docker.service.d/http-proxy.conf").exists()

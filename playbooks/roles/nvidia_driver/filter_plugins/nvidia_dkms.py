"""Read `dkms status -m nvidia` into the kernels that have the NVIDIA module installed, at the driver's version.

dkms prints one line per module version and kernel, in two formats (dkms's do_status, github.com/dell/dkms):
  dkms 3.x (Debian 12, Ubuntu 24.04): "nvidia/580.95.05, 6.1.0-26-cloud-amd64, x86_64: installed"
  dkms 2.x (Ubuntu 22.04's 2.8.7):     "nvidia, 580.95.05, 5.15.0-122-generic, x86_64: installed"
The state is "added" (no kernel: "nvidia/580.95.05: added"), "built" (compiled, not in /lib/modules: the next boot
has no driver) or "installed", which dkms may follow with a note such as "(WARNING! Diff between built and installed
module!)" or "(original_module exists)"; the module is in place either way. Only "installed" counts.
"""

import re

_STATUS = re.compile(
    r"^(?P<module>[^/,\s]+)(?:/|, )(?P<version>[^,:\s]+), (?P<kernel>[^,\s]+)(?:, (?P<arch>[^:\s]+))?: (?P<state>\w+)"
)


def nvidia_dkms_installed_kernels(lines, version="", module="nvidia"):
    """Kernels for which `module` is installed; at `version` only, when given (an older version left installed for a
    kernel would load there instead of the driver's own, with a driver/NVML mismatch)."""
    kernels = []
    for line in lines:
        match = _STATUS.match(line.strip())
        if not match or match["module"] != module or match["state"] != "installed":
            continue
        if version and match["version"] != version:
            continue
        if match["kernel"] not in kernels:
            kernels.append(match["kernel"])
    return sorted(kernels)


def _version_key(release):
    # Natural order, as `sort -V` (GRUB's grub-mkconfig_lib version_sort) puts kernel releases: 6.1.0-26 < 6.1.0-112.
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", release) if part]


def newest_kernel(releases):
    """The kernel release GRUB's generated menu boots by default: the newest of those in /boot, or "" if none."""
    return max(releases, key=_version_key, default="")


class FilterModule:
    def filters(self):
        return {"nvidia_dkms_installed_kernels": nvidia_dkms_installed_kernels, "newest_kernel": newest_kernel}

"""When a run of the nvidia_driver role reboots the host (vars/main.yml __nvidia_driver_reboot_reason, rendered by
Ansible's own templating with what tasks/reboot-and-verify.yml registers). A rerun on a live fleet must not reboot a
host whose nvidia-smi fails for one GPU fallen off the bus while the installed driver's module is loaded: that would
kill the jobs on its healthy GPUs."""

import base64

import pytest

from .test_kernel_flavour import render

# /proc/driver/nvidia/version as the open module prints it (NVIDIA driver README, "Verifying the installation").
PROC_VERSION = (
    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {}  Release Build  "
    "(dvs-builder@U22-I3-AF03-09-1)  Sun Sep 28 19:46:42 UTC 2025\nGCC version:  gcc version 12.2.0\n"
)


def reason(changed, smi_rc, loaded=None, installed="580.95.05"):
    extra = {
        "nvidia_driver_changed": changed,
        "__nvidia_driver_smi_before": {"rc": smi_rc},
        "__nvidia_driver_version": {"stdout": f"{installed}-0ubuntu1"},
    }
    if loaded is not None:
        extra["__nvidia_driver_loaded"] = {"content": base64.b64encode(PROC_VERSION.format(loaded).encode()).decode()}
    else:
        extra["__nvidia_driver_loaded"] = {"failed": True, "msg": "file not found"}
    (rendered,) = render(["{{ __nvidia_driver_reboot_reason }}"], "6.8.0-45-generic", "noble", "24.04", extra=extra)
    return rendered


@pytest.mark.parametrize(
    "changed, smi_rc, loaded, expected",
    [
        (True, 0, "580.95.05", "the driver changed"),
        (False, 0, "580.95.05", ""),  # all well
        # nvidia-smi fails, the installed driver's module is loaded: one GPU fell off the bus. Before the fix: a reboot.
        (False, 15, "580.95.05", ""),
        (False, 9, None, "no NVIDIA module is loaded"),
        (False, 18, "580.82.07", "the loaded module is 580.82.07, the installed driver 580.95.05"),  # NVML mismatch
    ],
)
def test_a_reboot_only_when_the_driver_cannot_run_otherwise(changed, smi_rc, loaded, expected):
    assert reason(changed, smi_rc, loaded) == expected

"""The nvidia_driver role's GPU table and lspci parser (filter_plugins/nvidia_pci.py), without Ansible or a host.

Each id below is a real device from pci.ids (the PCI ID repository, pci-ids.ucw.cz; github.com/pciutils/pciids
commit c1c12547, August 2026). The regex the role used before missed GM200/GM204/GM206 and let Kepler and unknown
ids through; these cases pin the decision to the device id.
"""

import importlib.util

import pytest
import yaml

from .conftest import REPO
from .pci_bus import DEVICES

ROLE = REPO / "playbooks" / "roles" / "nvidia_driver"
_spec = importlib.util.spec_from_file_location("nvidia_pci", ROLE / "filter_plugins" / "nvidia_pci.py")
nvidia_pci = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nvidia_pci)
GENERATIONS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__nvidia_driver_gpu_generations"]


def gpu_line(device_id, name="Device", class_id="0302"):
    """An `lspci -nn -mm` line for one NVIDIA device."""
    return (
        f'00:1e.0 "3D controller [{class_id}]" "NVIDIA Corporation [10de]" "{name} [{device_id}]" -ra1 -p00 '
        f'"NVIDIA Corporation [10de]" "Device [0000]"'
    )


@pytest.mark.parametrize(
    "device_id, name, generation, modules",
    [
        ("102d", "GK210GL [Tesla K80]", "Kepler or older", "unknown"),
        ("13f2", "GM204GL [Tesla M60]", "Maxwell", "proprietary"),
        ("13f3", "GM204GL [Tesla M6]", "Maxwell", "proprietary"),
        ("17fd", "GM200GL [Tesla M40]", "Maxwell", "proprietary"),
        ("1431", "GM206GL [Tesla M4]", "Maxwell", "proprietary"),
        ("15f8", "GP100GL [Tesla P100 PCIe 16GB]", "Pascal", "proprietary"),
        ("1b38", "GP102GL [Tesla P40]", "Pascal", "proprietary"),
        ("1db1", "GV100GL [Tesla V100 SXM2 16GB]", "Volta", "proprietary"),
        ("1eb8", "TU104GL [Tesla T4]", "Turing", "either"),
        ("20b0", "GA100 [A100 SXM4 40GB]", "Ampere", "either"),
        ("2236", "GA102GL [A10]", "Ampere", "either"),
        ("2330", "GH100 [H100 SXM5 80GB]", "Hopper", "either"),
        ("2342", "GH100 [GH200 120GB / 480GB]", "Hopper", "either"),
        ("27b8", "AD104GL [L4]", "Ada Lovelace", "either"),
        ("2901", "Device", "Blackwell, HGX B200", "open"),
        ("2bb5", "GB202GL [RTX PRO 6000 Blackwell Server Edition]", "Blackwell", "open"),
        ("3182", "GB110 [B300 SXM6 AC]", "Blackwell, HGX B300", "open"),
        ("3021", "Device", "unknown", "unknown"),  # GR100: newer than the table
    ],
)
def test_generation_from_the_device_id(device_id, name, generation, modules):
    (device,) = nvidia_pci.nvidia_pci_devices([gpu_line(device_id, name)], GENERATIONS)
    assert (device["kind"], device["generation"], device["modules"]) == ("gpu", generation, modules)
    assert device["supported"] is (generation != "Kepler or older")


def test_legacy_generations_carry_their_limits():
    for device_id in ("13f2", "15f8", "1db1"):
        (device,) = nvidia_pci.nvidia_pci_devices([gpu_line(device_id)], GENERATIONS)
        assert (device["last_branch"], device["last_cuda_major"], device["max_torch_variant"]) == (580, 12, 126)


def test_nvswitch_audio_and_other_vendors():
    lines = [
        DEVICES["h100_nvswitch"][0],
        gpu_line("1aef", "GA102 High Definition Audio Controller", class_id="0403"),  # a GPU's audio function
        '00:02.0 "VGA compatible controller [0300]" "Intel Corporation [8086]" "Device [46a8]" -r0c -p00 "" ""',
        "not an lspci line",
    ]
    (switch,) = nvidia_pci.nvidia_pci_devices(lines, GENERATIONS)
    assert (switch["kind"], switch["device_id"], switch["generation"]) == ("nvswitch", "22a3", "unknown")


def test_hgx_b200_wants_the_nvlink_subnet_manager():
    (b200,) = nvidia_pci.nvidia_pci_devices([DEVICES["b200"][0]], GENERATIONS)
    (h100,) = nvidia_pci.nvidia_pci_devices([DEVICES["h100_sxm"][0]], GENERATIONS)
    assert b200["nvlink_subnet_manager"] and not h100["nvlink_subnet_manager"]
    assert b200["label"] == "1b:00.0 GB100 [B200] [10de:2901] (Blackwell, HGX B200)"


def test_generation_ranges_do_not_overlap():
    ranges = sorted(
        (int(a, 16), int(b or a, 16), g["name"])
        for g in GENERATIONS
        for a, _, b in (r.partition("-") for r in g["ids"])
    )
    for (_, last, name), (first, _, next_name) in zip(ranges, ranges[1:]):
        assert last < first, f"{name} overlaps {next_name}"

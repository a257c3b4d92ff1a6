"""Simulated PCI buses for the playbook tests, read by the real lspci on the test host.

The nvidia_driver role decides from `lspci -nn -mm -d 10de:` (class and device ids). There is no GPU here, so each
simulated host gets an `lspci -x`-format dump of its NVIDIA devices' configuration space (vendor, device, revision,
class, subsystem: the bytes lspci prints these from), and the role reads it through `nvidia_driver_pci_dump`
(lspci -F). Debian 12's own pci.ids names the devices, so a GPU newer than that file is printed as "Device 2901"
exactly as on a host with an old pci.ids.

Each device below is the `lspci -nn -mm` line of a real device. Ids and names: pci.ids (https://pci-ids.ucw.cz,
github.com/pciutils/pciids commit c1c12547, August 2026). Slots and subsystem ids: as on the machines named (HGX
baseboards put NVIDIA's own subsystem ids on their GPUs and NVSwitches; cloud VMs show PCIe slots 00:xx.0).
"""

import re

# name: (lspci -nn -mm line, where it is seen)
DEVICES = {
    "h100_sxm": (
        '18:00.0 "3D controller [0302]" "NVIDIA Corporation [10de]" "GH100 [H100 SXM5 80GB] [2330]" -ra1 -p00 '
        '"NVIDIA Corporation [10de]" "GH100 [H100 SXM5 80GB] [16c1]"',
        "HGX H100 8-GPU baseboard",
    ),
    "h100_nvswitch": (
        '07:00.0 "Bridge [0680]" "NVIDIA Corporation [10de]" "GH100 [H100 NVSwitch] [22a3]" -ra1 -p00 '
        '"NVIDIA Corporation [10de]" "Device [1796]"',
        "HGX H100 8-GPU baseboard (4 NVSwitches)",
    ),
    "m60": (
        '00:1e.0 "VGA compatible controller [0300]" "NVIDIA Corporation [10de]" "GM204GL [Tesla M60] [13f2]" '
        '-ra1 -p00 "NVIDIA Corporation [10de]" "Device [113a]"',
        "AWS g3 instance",
    ),
    "v100": (
        '00:1e.0 "3D controller [0302]" "NVIDIA Corporation [10de]" "GV100GL [Tesla V100 SXM2 16GB] [1db1]" '
        '-ra1 -p00 "NVIDIA Corporation [10de]" "Device [1212]"',
        "AWS p3 instance",
    ),
    "k80": (
        '00:1e.0 "3D controller [0302]" "NVIDIA Corporation [10de]" "GK210GL [Tesla K80] [102d]" -ra1 -p00 '
        '"NVIDIA Corporation [10de]" "Device [106c]"',
        "AWS p2 instance",
    ),
    "t4": (
        '00:1e.0 "3D controller [0302]" "NVIDIA Corporation [10de]" "TU104GL [Tesla T4] [1eb8]" -ra1 -p00 '
        '"NVIDIA Corporation [10de]" "Device [12a2]"',
        "AWS g4dn instance",
    ),
    "b200": (
        '1b:00.0 "3D controller [0302]" "NVIDIA Corporation [10de]" "GB100 [B200] [2901]" -ra1 -p00 '
        '"NVIDIA Corporation [10de]" "Device [1999]"',
        "HGX B200 8-GPU baseboard",
    ),
    "rubin": (
        '1b:00.0 "3D controller [0302]" "NVIDIA Corporation [10de]" "GR100 [PCIe Faber] [3021]" -ra1 -p00 '
        '"NVIDIA Corporation [10de]" "Device [0000]"',
        "a GPU newer than the role's table (GR100)",
    ),
}
_IDS = re.compile(r'\[([0-9a-f]{4})\]"')


def lspci_dump(names):
    """`lspci -x` text for the named DEVICES: a header line, then 64 bytes of configuration space per device."""
    blocks = []
    for name in names:
        line = DEVICES[name][0]
        slot = line.split()[0]
        class_id, vendor, device, sub_vendor, sub_device = _IDS.findall(line)
        revision = int(re.search(r" -r([0-9a-f]{2})", line).group(1), 16)  # -p00: programming interface 0
        space = bytearray(64)
        space[0:2], space[2:4] = int(vendor, 16).to_bytes(2, "little"), int(device, 16).to_bytes(2, "little")
        space[8], space[10], space[11] = revision, int(class_id[2:], 16), int(class_id[:2], 16)
        space[0x2C:0x2E] = int(sub_vendor, 16).to_bytes(2, "little")
        space[0x2E:0x30] = int(sub_device, 16).to_bytes(2, "little")
        rows = [f"{row:02x}: " + " ".join(f"{b:02x}" for b in space[row : row + 16]) for row in range(0, 64, 16)]
        blocks.append(f"{slot} simulated device\n" + "\n".join(rows) + "\n")
    return "\n".join(blocks) + "\n"

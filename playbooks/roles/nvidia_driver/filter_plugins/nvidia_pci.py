"""Turn `lspci -nn -mm -d 10de:` lines into NVIDIA GPUs and NVSwitches with their generation.

The decision is made from the PCI class and device id, never from the name: an old pci.ids prints a new GPU as
"Device 2901", and a chip name is not a generation (GH100 is Hopper on x86 and in Grace Hopper alike).
"""

import re

# `lspci -nn -mm` quotes each field and ends it with the numeric id in brackets:
#   18:00.0 "3D controller [0302]" "NVIDIA Corporation [10de]" "GH100 [H100 SXM5 80GB] [2330]" -ra1 ...
_FIELD = re.compile(r'"([^"]*?)\s*\[([0-9a-fA-F]{4})\]"')
GPU_CLASSES = ("0300", "0302")  # VGA compatible controller, 3D controller
NVSWITCH_CLASS = "0680"  # bridge, other (NVIDIA's NVSwitch)
# Every device carries every field, so the role's Jinja never meets an undefined one. An id in no range of the table
# is "unknown": modules "unknown", and the role asks for an explicit choice.
DEFAULTS = {
    "supported": True,
    "modules": "unknown",
    "last_branch": 0,
    "last_cuda_major": 0,
    "max_torch_variant": 0,
    "open_only_on_aarch64": False,
    "nvlink_subnet_manager": False,
}


def _generation(device_id, generations):
    number = int(device_id, 16)
    for generation in generations:
        for id_range in generation["ids"]:
            first, _, last = id_range.partition("-")
            if int(first, 16) <= number <= int(last or first, 16):
                return generation
    return None


def nvidia_pci_devices(lines, generations):
    """Return one dict per NVIDIA GPU or NVSwitch: slot, kind, device_id, name, and the generation's fields."""
    devices = []
    for line in lines:
        fields = _FIELD.findall(line)
        if len(fields) < 3 or fields[1][1].lower() != "10de":
            continue
        (_, class_id), _, (name, device_id) = fields[:3]
        class_id, device_id = class_id.lower(), device_id.lower()
        if class_id in GPU_CLASSES:
            kind = "gpu"
        elif class_id == NVSWITCH_CLASS:
            kind = "nvswitch"
        else:  # the GPUs' audio and USB functions
            continue
        generation = (_generation(device_id, generations) if kind == "gpu" else None) or {}
        device = dict(DEFAULTS, **{key: value for key, value in generation.items() if key not in ("name", "ids")})
        slot, name = line.split()[0], name or "Device"
        device.update(slot=slot, kind=kind, device_id=device_id, name=name)
        device["generation"] = generation.get("name", "unknown")
        device["label"] = f"{slot} {name} [10de:{device_id}]" + (f" ({device['generation']})" if kind == "gpu" else "")
        devices.append(device)
    return devices


class FilterModule:
    def filters(self):
        return {"nvidia_pci_devices": nvidia_pci_devices}

"""What this host has, read through a `HostReader`: CPU, memory, storage, network, OS, GPUs and software versions.

A value the host cannot give is an `Unanswered` carrying the reason (it becomes a SKIP), never a guess.
"""

from __future__ import annotations

import re

from dlbench.hostspec.reader import HostReader, Unanswered

# /sys/block entries that are not disks someone ordered: loop, RAM-backed, device-mapper/RAID layers, optical.
VIRTUAL_BLOCK = re.compile(r"^(loop|ram|zram|dm-|md|sr|nbd|fd)")
# ARPHRD_INFINIBAND (include/uapi/linux/if_arp.h): the value of /sys/class/net/IF/type for an IPoIB interface.
ARPHRD_INFINIBAND = "32"


def cpu(reader: HostReader) -> dict:
    """Model, cores and threads from /proc/cpuinfo: threads = 'processor' entries, cores = distinct
    (physical id, core id) pairs (Documentation/filesystems/proc.rst and arch/x86/kernel/cpu/proc.c)."""
    text = reader.read("/proc/cpuinfo")
    models, threads, cores, block = set(), 0, set(), {}
    for stanza in text.split("\n\n"):
        block = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line)
        block = {k.strip(): v.strip() for k, v in block.items()}
        if "processor" not in block:
            continue
        threads += 1
        if "model name" in block:
            models.add(block["model name"])
        cores.add((block.get("physical id", "0"), block.get("core id", block["processor"])))
    # arm64 kernels print no "model name" (arch/arm64/kernel/cpuinfo.c): the model is then unknown, not guessed
    model = " + ".join(sorted(models)) or Unanswered("/proc/cpuinfo names no CPU model (arm64 kernels do not)")
    return {"model": model, "cores": len(cores), "threads": threads, "sockets": len({socket for socket, _ in cores})}


def memory(reader: HostReader) -> dict:
    """MemTotal (always readable), and from the SMBIOS tables (`dmidecode`, root only) the installed modules' sum,
    type and the array's error correction; ECC also shows as a registered EDAC memory controller."""
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", reader.read("/proc/meminfo"), re.MULTILINE)
    facts: dict = {"mem_total_bytes": int(match.group(1)) * 1024 if match else None}
    try:
        devices = reader.run("dmidecode", "--type", "17")
        sizes, types = [], set()
        for stanza in devices.split("\n\n"):
            size = re.search(r"^\s*Size:\s*(\d+)\s*(MB|GB|TB)", stanza, re.MULTILINE)
            kind = re.search(r"^\s*Type:\s*(\S+)", stanza, re.MULTILINE)
            if size:  # empty slots say "Size: No Module Installed"
                sizes.append(int(size.group(1)) * {"MB": 2**20, "GB": 2**30, "TB": 2**40}[size.group(2)])
                if kind and kind.group(1) not in ("Unknown", "Other"):
                    types.add(kind.group(1))
        facts["installed_bytes"] = sum(sizes) or Unanswered("dmidecode lists no memory module")
        facts["type"] = " + ".join(sorted(types)) or Unanswered("dmidecode gives no memory type")
    except Unanswered as why:
        facts["installed_bytes"] = facts["type"] = Unanswered(f"{why} (the SMBIOS tables need root)")
    facts["ecc"] = _ecc(reader)
    return facts


def _ecc(reader: HostReader):
    try:
        array = reader.run("dmidecode", "--type", "16")
        match = re.search(r"Error Correction Type:\s*(.+)", array)
        if match and match.group(1).strip() not in ("Unknown", "Other"):
            # "Single-bit ECC", "Multi-bit ECC", "CRC": on; "None" and "Parity" (detects, cannot correct): off
            return "ECC" in match.group(1) or match.group(1).strip() == "CRC"
    except Unanswered as why:
        reason = why
    else:
        reason = Unanswered("dmidecode gives no error correction type")
    # EDAC registers a memory controller only where it can report corrected errors, i.e. ECC is on
    # (Documentation/admin-guide/ras.rst, "EDAC"); its absence proves nothing (driver not loaded).
    if reader.listdir("/sys/devices/system/edac/mc"):
        return True
    return Unanswered(f"{reason}; no EDAC memory controller registered")


def storage(reader: HostReader) -> list[dict]:
    """Every disk in /sys/block: size from `size` (always in 512-byte sectors, Documentation/ABI/stable/sysfs-block),
    NVMe by name, SATA where the SCSI vendor is libata's "ATA", HDD where queue/rotational is 1."""
    disks = []
    for name in reader.listdir("/sys/block"):
        # hidden: the per-path nodes of a multipath NVMe namespace (nvme0c0n1); the namespace itself is listed
        if VIRTUAL_BLOCK.match(name) or _optional(reader, f"/sys/block/{name}/hidden") == "1":
            continue
        try:
            sectors = int(reader.read(f"/sys/block/{name}/size"))
            rotational = reader.read(f"/sys/block/{name}/queue/rotational").strip() == "1"
        except (Unanswered, ValueError):
            continue
        if sectors == 0:
            continue
        vendor = _optional(reader, f"/sys/block/{name}/device/vendor")
        if name.startswith("nvme"):
            kind = "NVMe SSD"
        elif vendor == "ATA":
            kind = "SATA HDD" if rotational else "SATA SSD"
        else:
            kind = "HDD" if rotational else "SSD"
            if name.startswith(("vd", "xvd")):
                kind = "virtual disk"
        model = _optional(reader, f"/sys/block/{name}/device/model")
        disks.append({"name": name, "type": kind, "bytes": sectors * 512, "model": model})
    return disks


def network(reader: HostReader) -> list[dict]:
    """Physical interfaces (those with a `device` link) in /sys/class/net: link speed (Mb/s; unreadable or -1 when
    the link is down) and RDMA: an RDMA device under the interface's PCI function, its port's link layer naming
    RoCE (Ethernet) or InfiniBand (Documentation/ABI/stable/sysfs-class-infiniband)."""
    links = []
    for name in reader.listdir("/sys/class/net"):
        if not reader.exists(f"/sys/class/net/{name}/device"):
            continue  # lo, bridges, veth, tunnels
        try:
            speed = int(reader.read(f"/sys/class/net/{name}/speed"))
        except (Unanswered, ValueError):
            speed = -1
        rdma = None
        for device in reader.listdir(f"/sys/class/net/{name}/device/infiniband"):
            port = f"/sys/class/infiniband/{device}/ports/1"
            layer = _optional(reader, f"{port}/link_layer")
            rdma = "RoCE" if layer == "Ethernet" else "InfiniBand" if layer == "InfiniBand" else "RDMA"
            # an IPoIB interface may not report a speed; the port's rate does ("200 Gb/sec (4X HDR)") while ACTIVE
            rate = re.match(r"(\d+)\s*Gb/sec", _optional(reader, f"{port}/rate") or "")
            if speed <= 0 and rate and "ACTIVE" in (_optional(reader, f"{port}/state") or ""):
                speed = int(rate.group(1)) * 1000
        if rdma is None and _optional(reader, f"/sys/class/net/{name}/type") == ARPHRD_INFINIBAND:
            rdma = "InfiniBand"
        links.append({"name": name, "speed_mbps": speed if speed > 0 else None, "rdma": rdma})
    return links


def nic_firmware(reader: HostReader) -> dict[str, str]:
    """Firmware of each RDMA device (`fw_ver`, Documentation/ABI/stable/sysfs-class-infiniband: "28.39.1002") and of
    each other physical interface as `ethtool -i` reports it ("firmware-version: 16.35.2000 (MT_0000000080)"); a
    fleet should run one firmware per NIC model (Imbue's cluster-health holds hosts to one)."""
    found = {}
    for device in reader.listdir("/sys/class/infiniband"):
        version = _optional(reader, f"/sys/class/infiniband/{device}/fw_ver")
        if version:
            found[device] = version
    for name in reader.listdir("/sys/class/net"):
        if not reader.exists(f"/sys/class/net/{name}/device") or reader.listdir(
            f"/sys/class/net/{name}/device/infiniband"
        ):
            continue  # virtual interfaces, and those whose RDMA device was read above
        try:
            output = reader.run("ethtool", "-i", name)
        except Unanswered:
            continue
        match = re.search(r"^firmware-version:\s*(\S.*)$", output, re.MULTILINE)
        if match and match.group(1).strip() not in ("", "N/A"):
            found[name] = match.group(1).strip()
    return found


def cpu_microcode(reader: HostReader) -> str | None:
    """The CPU microcode revision(s) /proc/cpuinfo reports on x86 ("microcode\t: 0x2b000571"), distinct values
    joined; None where the kernel prints none (other architectures, some VMs)."""
    try:
        text = reader.read("/proc/cpuinfo")
    except Unanswered:
        return None
    revisions = sorted(
        {line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("microcode") and ":" in line}
    )
    return " + ".join(revisions) if revisions else None


def os_release(reader: HostReader) -> dict:
    """/etc/os-release (os-release(5)), else /usr/lib/os-release."""
    try:
        text = reader.read("/etc/os-release")
    except Unanswered:
        text = reader.read("/usr/lib/os-release")
    values = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip("\"'")
    return {
        "id": values.get("ID", ""),
        "name": values.get("NAME", ""),
        "version": values.get("VERSION_ID", ""),
        "pretty": values.get("PRETTY_NAME", ""),
    }


def _optional(reader: HostReader, path: str) -> str | None:
    try:
        return reader.read(path).strip()
    except Unanswered:
        return None


# --- software ---------------------------------------------------------------------------------------------------
# Each tool's own version line: (command lines tried in order, pattern of the version in their output).
VERSION_COMMANDS = {
    # the daemon's version (what runs containers); the client's when the daemon is not reachable by this user
    "docker": ((("docker", "version", "--format", "{{.Server.Version}}"), ("docker", "--version")), r"(\d+\.\d+\.\d+)"),
    # "NVIDIA Container Toolkit CLI version 1.13.1"
    "nvidia_container_toolkit": ((("nvidia-ctk", "--version"),), r"version\s+(\d+\.\d+\.\d+)"),
    # "prometheus, version 2.42.0 (branch: HEAD, revision: ...)"
    "prometheus": ((("prometheus", "--version"),), r"version\s+(\d+\.\d+\.\d+)"),
    # "Version 9.4.7 (commit: ...)"; Grafana 11+ also ships `grafana -v`: "grafana version 11.2.0"
    "grafana": ((("grafana-server", "-v"), ("grafana", "-v")), r"[Vv]ersion\s+v?(\d+\.\d+\.\d+)"),
    # "Cuda compilation tools, release 12.1, V12.1.105": the CUDA toolkit installed on the host
    "cuda": ((("nvcc", "--version"),), r"release\s+(\d+\.\d+)"),
}


def tool_version(reader: HostReader, tool: str):
    commands, pattern = VERSION_COMMANDS[tool]
    reason = None
    for argv in commands:
        try:
            output = reader.run(*argv)
        except Unanswered as why:
            reason = reason or why
            continue
        match = re.search(pattern, output)
        if match:
            return match.group(1)
        reason = reason or Unanswered(f"no version in the output of {' '.join(argv)}")
    return reason


def python_packages(reader: HostReader) -> dict:
    """torch, its CUDA build and the cuDNN wheel."""
    try:
        build = reader.torch_build()
    except Unanswered as why:
        return {"pytorch": why, "pytorch_cuda": why, "cudnn": why}
    missing = Unanswered("torch is not installed (pip install 'dlbench[train]')")
    return {
        "pytorch": build["version"] or missing,
        "pytorch_cuda": (build["cuda"] or Unanswered("this torch is a CPU-only build"))
        if build["version"]
        else missing,
        "cudnn": build["cudnn"] or Unanswered("no cuDNN wheel (nvidia-cudnn-cu*) is installed"),
    }


# NVIDIA GPUs on the PCI bus, with or without a driver: vendor 0x10de (https://pci-ids.ucw.cz/read/PC/10de) and base
# class 03 display controller, subclass 00 VGA compatible or 02 3D controller (the data-centre GPUs); sysfs prints
# them as "0x%04x\n" and "0x%06x\n", e.g. "0x10de\n" and "0x030200\n" (Linux drivers/pci/pci-sysfs.c,
# pci_config_attr; class codes: PCI-SIG PCI Code and ID Assignment Specification). NVSwitches (0x0680) and the GPUs' audio (0x0403)
# and USB (0x0c03) functions share the vendor and are not GPUs. The same rule as scripts/torch-build.sh's
# find_nvidia_gpu (shell, before any Python exists) and the nvidia_driver role's lspci filter.
PCI_DEVICES = "/sys/bus/pci/devices"
NVIDIA_VENDOR = "0x10de"
GPU_CLASS_PREFIXES = ("0x0300", "0x0302")
NVSWITCH_CLASS_PREFIXES = ("0x0680",)  # "other bridge": how an NVSwitch of an HGX baseboard shows on the bus


def nvidia_pci_gpus(reader: HostReader) -> list[str] | None:
    """The PCI addresses of the NVIDIA GPUs on the bus, in bus order; None when there is no PCI bus to read (a
    container or chroot without /sys): "cannot tell", which is not "no GPU"."""
    return nvidia_pci_functions(reader, GPU_CLASS_PREFIXES)


def nvidia_pci_nvswitches(reader: HostReader) -> list[str] | None:
    """The PCI addresses of the NVSwitches on the bus (HGX baseboards), None when there is no PCI bus to read."""
    return nvidia_pci_functions(reader, NVSWITCH_CLASS_PREFIXES)


def nvidia_pci_functions(reader: HostReader, class_prefixes: tuple[str, ...]) -> list[str] | None:
    """The PCI addresses of NVIDIA functions whose class starts with one of `class_prefixes`, in bus order."""
    if not reader.exists(PCI_DEVICES):
        return None
    return [
        address
        for address, vendor, pci_class in pci_functions(reader)
        if vendor == NVIDIA_VENDOR and pci_class.startswith(class_prefixes)
    ]


def pci_functions(reader: HostReader) -> list[tuple[str, str, str]]:
    """(address, vendor, class) of every PCI function sysfs lists, in bus order, as lower-case text ("0x10de")."""
    found = []
    for address in reader.listdir(PCI_DEVICES):
        try:
            vendor = reader.read(f"{PCI_DEVICES}/{address}/vendor").strip().lower()
            pci_class = reader.read(f"{PCI_DEVICES}/{address}/class").strip().lower()
        except Unanswered:
            continue
        found.append((address, vendor, pci_class))
    return found


def gpus(nvml_reader=None) -> dict:
    """GPUs and the driver through the telemetry NVML reader (a simulated NVML in tests, see
    dlbench/nvml/simulated.py); an NvmlReader already started (by `dlbench validate`) is reused."""
    from dlbench.nvml.reader import NvmlReader

    own = nvml_reader is None
    reader = NvmlReader(watch_xid=False).start() if own else nvml_reader
    try:
        if not reader.up:
            why = Unanswered(reader.problem or "NVML unavailable")
            return {"gpus": why, "nvidia_driver": why}
        readings = reader.read_all()
        listed = [
            {"index": g.index, "model": g.name, "memory_bytes": readings.get(g.index, {}).get("memory_total_bytes")}
            for g in reader.gpus
        ]
        return {"gpus": listed, "nvidia_driver": reader.driver_version or Unanswered("NVML gives no driver version")}
    finally:
        if own:
            reader.close()


def collect(reader: HostReader | None = None, nvml_reader=None) -> dict:
    """Every fact the spec can ask about."""
    reader = reader or HostReader()
    facts: dict = {}
    for key, read in (("cpu", cpu), ("memory", memory), ("storage", storage), ("network", network), ("os", os_release)):
        try:
            facts[key] = read(reader)
        except Unanswered as why:
            facts[key] = why
    facts.update(gpus(nvml_reader))
    for tool in VERSION_COMMANDS:
        facts[tool] = tool_version(reader, tool)
    facts.update(python_packages(reader))
    return facts

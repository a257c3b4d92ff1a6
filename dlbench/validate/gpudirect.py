"""The GPUDirect RDMA path on any server: which RDMA NIC serves each GPU, whether the PCIe switch between them lets
peer traffic through, whether the IOMMU translates it, whether the driver can hand GPU memory to the NIC, and, where
perftest is installed, what each GPU-NIC pair moves.

Where it is read (Linux sysfs, Documentation/ABI/testing/sysfs-bus-pci): /sys/bus/pci/devices/ADDRESS is a link to
the function's place in the tree, /sys/devices/pciDOMAIN:BUS/ROOTPORT/[SWITCH-UP/SWITCH-DOWN/...]/ADDRESS, so the
link's target is the function's parent chain; `numa_node` names its CPU socket (-1: none known); `config` is its
configuration space (all 4 KiB of it for root; 64 bytes otherwise). RDMA devices: /sys/class/infiniband/NAME/device
leads to the NIC's PCI function (Documentation/ABI/stable/sysfs-class-infiniband). IOMMU: a function the IOMMU
handles has `iommu_group`, whose `type` is "identity" (pass-through), "DMA"/"DMA-FQ" (translated), "unmanaged" or
"blocked" (Documentation/ABI/testing/sysfs-kernel-iommu_groups).

How the path is judged, by NCCL's own distances (PIX/PXB = through PCIe switches only, PHB = through a CPU's host
bridge, SYS = across the CPUs' interconnect, as `nvidia-smi topo -m` prints them): NCCL enables GPUDirect RDMA only up
to PXB unless told otherwise (NVIDIA/nccl src/graph/paths.cc, ncclTopoCheckGdr: `netGdrLevel = PATH_PXB`, overridden
by NCCL_NET_GDR_LEVEL; recent releases relax it on some CPUs). So a GPU whose nearest RDMA NIC is behind the same
switch PASSes, one that reaches its nearest NIC only through a host bridge of its own CPU WARNs (NCCL stages that
traffic through host memory), and one whose nearest NIC hangs off another CPU FAILs (every message crosses the socket
link). The GPUDirect RDMA documentation itself limits the technology to devices that "share the same upstream PCI
Express root complex" (docs.nvidia.com/cuda/gpudirect-rdma, Overview).

ACS (PCI Express Base Specification, Access Control Services; control register at offset 6 of extended capability
0x000d, Linux include/uapi/linux/pci_regs.h PCI_EXT_CAP_ID_ACS/PCI_ACS_CTRL): with P2P Request Redirect, Completion
Redirect or Egress Control on a switch's downstream port, a GPU's writes to its NIC go up to the root complex and
back instead of across the switch. NCCL's troubleshooting guide, "PCI Access Control Services (ACS)": IO
virtualization "can interfere with GPU Direct by redirecting all PCI point-to-point traffic to the CPU root complex,
causing a significant performance reduction or even a hang"; its fix is `setpci -s BDF ECAP_ACS+0x6.w=0000` per
bridge (again after each reboot) or the BIOS (docs.nvidia.com/deeplearning/nccl/user-guide/docs/troubleshooting.html).
Linux itself turns ACS on at boot when an IOMMU is active (drivers/pci/pci.c, pci_std_enable_acs: SV, RR, CR, UF).
The IOMMU: "GPUDirect RDMA currently relies upon all physical addresses being the same from the PCI devices' point of
view" (GPUDirect RDMA documentation, Design Considerations), which a translating IOMMU breaks; pass-through
(iommu=pt, group type "identity") keeps it. Both FAIL on bare metal. In a virtual machine the bridges and IOMMU the
guest sees are the hypervisor's (passing a GPU through needs the host's IOMMU and ACS on), so there they are
reported, not judged.

Grace Hopper and Grace Blackwell (GH200, GB200, GB300): the GPU reaches its Grace CPU over NVLink-C2C, not PCIe. The
GPU still has a PCI function (0009:01:00.0 on a GH200; 0008:01:00.0 and 0009:01:00.0 on each Grace of a GB200 board,
Linux drivers/vfio/pci/nvgrace-gpu, whose nvgrace_gpu_vfio_pci_table lists these GPUs' device ids), alone below a root
port of its own, so no NIC ever shares a switch or a host bridge with it: by the PCIe tree alone every such GPU would
WARN. NCCL gives the GPU a C2C link to its CPU (src/graph/xml.cc, NVML_FI_DEV_C2C_LINK_COUNT; src/graph/topo.cc,
ncclTopoAddC2c), and a NIC on that CPU's host bridges is then PATH_P2C, "C2C + PHB" (src/graph/paths.cc,
mergePathType), on which GPUDirect RDMA is on by default since NCCL 2.27 (NCCL_NET_GDR_C2C=1; ncclTopoCheckGdr's
level is PATH_P2C); a NIC on the other Grace is still SYS. So a C2C-attached GPU whose nearest NIC is on its own CPU
PASSes (path "P2C"). Which GPUs are C2C-attached is read as NCCL reads it, NVML's count of active C2C links
(NVML_FI_DEV_C2C_LINK_COUNT and NVML_FI_DEV_C2C_LINK_GET_STATUS, src/graph/xml.cc), so a Grace GPU newer than this
code is recognised; the PCI device ids above are the fallback where NVML does not answer (an older driver, or no NVML).
ACS has nothing to judge on such a pair: the NIC's RDMA into the GPU's memory does not go to a PCIe BAR behind a
switch port but through the CPU over the coherent chip-to-chip link (Linux drivers/vfio/pci/nvgrace-gpu, the patch
that added it: the GPU's PCI BAR "is not used to access device memory once the faster chip-to-chip interconnect is
initialized"), so no switch's ACS redirect lies on the path, and `gpudirect.acs` says so in its SKIP.

GPU memory to the NIC: the nvidia-peermem module, which "must be loaded on each node boot" (NCCL troubleshooting,
"GPU-to-NIC communication"; MLNX_OFED's older nv_peer_mem), or DMA-BUF, which needs NVIDIA's open kernel modules
and a kernel whose RDMA core imports dma-bufs (Linux 5.12, drivers/infiniband/core/umem_dmabuf.c); NVIDIA's GPU
Operator documentation recommends DMA-BUF where it is supported.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass

from dlbench.hostspec import facts
from dlbench.hostspec.reader import HostReader, Unanswered
from dlbench.checks import FAIL, INFO, PASS, WARN, CheckResult, skip

PCI_DEVICES = facts.PCI_DEVICES
INFINIBAND = "/sys/class/infiniband"
# a PCI address as sysfs names it; the domain is printed %04x and can be longer (VMD domains, Hyper-V guests)
ADDRESS = re.compile(r"^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
# the path classes, nearest first, named as NCCL names them
SWITCH, C2C_CPU, HOST_BRIDGE, OTHER_CPU = "PXB", "P2C", "PHB", "SYS"
PATH_WORDS = {
    SWITCH: "behind the same PCIe switch",
    C2C_CPU: "on the GPU's own Grace CPU, reached over NVLink-C2C",
    HOST_BRIDGE: "through the CPU's host bridge",
    OTHER_CPU: "on another CPU",
}
# PCI device ids of the GPUs attached to a Grace CPU by NVLink-C2C: Linux drivers/vfio/pci/nvgrace-gpu/main.c,
# nvgrace_gpu_vfio_pci_table (GH200 120GB 0x2342, GH200 480GB 0x2345, GH200 0x2348, GB200 0x2941, GB300 0x31c2)
C2C_GPU_DEVICES = {"0x2342", "0x2345", "0x2348", "0x2941", "0x31c2"}
# PCIe extended capabilities start at 0x100 of the configuration space, each a 32-bit header: capability id (bits
# 15:0), version (19:16), next capability's offset (31:20); ACS is id 0x000d, its control register at +6.
EXTENDED_CAPABILITIES = 0x100
ACS_ID, ACS_CONTROL = 0x000D, 6
# ACS control bits (pci_regs.h): SV 0x01, TB 0x02, RR 0x04, CR 0x08, UF 0x10, EC 0x20, DT 0x40; RR, CR and EC send
# peer traffic to the root complex
ACS_BITS = {"SrcValid": 0x01, "TransBlk": 0x02, "ReqRedir": 0x04, "CmpltRedir": 0x08, "UpstreamFwd": 0x10}
ACS_BITS |= {"EgressCtrl": 0x20, "DirectTrans": 0x40}
ACS_REDIRECTS = 0x04 | 0x08 | 0x20
TRANSLATED = ("DMA", "DMA-FQ")
# kernel options that leave DMA untranslated (Documentation/admin-guide/kernel-parameters.txt: iommu=, iommu.passthrough=)
PASS_THROUGH_OPTIONS = {"iommu=pt", "iommu.passthrough=1", "iommu=off", "intel_iommu=off", "amd_iommu=off"}
# DMI vendors and products of the common hypervisors, for guests that hide the CPU flag
VIRTUAL_DMI = ("QEMU", "KVM", "VMware", "VirtualBox", "Xen", "Virtual Machine", "Amazon EC2", "Google Compute Engine")

TOPOLOGY_SOURCE = (
    "NCCL topology distances (PIX/PXB/P2C/PHB/SYS); GPUDirect RDMA up to PXB by default, up to P2C on C2C-attached "
    "GPUs since NCCL 2.27 (NVIDIA/nccl src/graph/paths.cc ncclTopoCheckGdr; NCCL_NET_GDR_LEVEL, NCCL_NET_GDR_C2C)"
)
ACS_SOURCE = (
    "NCCL troubleshooting, PCI Access Control Services (docs.nvidia.com/deeplearning/nccl/user-guide/docs/"
    "troubleshooting.html#pci-access-control-services-acs); ACS control at ECAP_ACS+6 (PCIe Base Specification)"
)
IOMMU_SOURCE = (
    "GPUDirect RDMA relies on one physical address seen by every device (docs.nvidia.com/cuda/gpudirect-rdma, "
    "Design Considerations): IOMMU off or pass-through; iommu_group/type: Documentation/ABI/testing/"
    "sysfs-kernel-iommu_groups"
)
PEERMEM_SOURCE = (
    "nvidia-peermem (NCCL troubleshooting, GPU-to-NIC communication) or DMA-BUF with the open kernel modules on "
    "Linux >= 5.12 (NVIDIA GPU Operator docs, GPUDirect RDMA)"
)
BANDWIDTH_SOURCE = (
    "Azure azurehpc-health-checks check_ib_bw_gdr: 380 Gb/s on a 400 Gb/s NDR port (95%), 180 of 200 on HDR (90%); "
    "perftest ib_write_bw --use_cuda -s 8388608, loopback through the NIC's own port"
)
BANDWIDTH_FRACTION = 0.90
# the message size Azure's threshold holds (check_ib_bw_gdr: ib_write_bw -s 8388608); perftest's default, 64 KiB,
# reads lower on a 400 Gb/s port
MESSAGE_BYTES = 8 * 2**20
LOOPBACK = "127.0.0.1"
CONNECT_TRIES = 10  # seconds for the server to start listening (Azure's check_ib_bw_gdr waits 5)


@dataclass(frozen=True)
class Function:
    address: str
    chain: tuple[str, ...]  # the bridges above it, root port first
    host_bridge: str  # "pci0000:17"
    numa_node: int | None
    rdma: str | None = None  # the RDMA device on it ("mlx5_0")
    c2c: bool = False  # a GPU attached to its CPU by NVLink-C2C (Grace Hopper, Grace Blackwell)


def _place(host: HostReader, address: str, rdma: str | None = None, c2c: bool = False) -> Function | None:
    try:
        path = host.resolve(f"{PCI_DEVICES}/{address}")
    except Unanswered:
        return None
    parts = path.split("/")
    bridges = [p for p in parts if p.startswith("pci")]
    if not bridges:
        return None
    chain = tuple(p for p in parts[parts.index(bridges[0]) + 1 :] if ADDRESS.match(p) and p != address)
    try:
        node = int(host.read(f"{PCI_DEVICES}/{address}/numa_node"))
    except (Unanswered, ValueError):
        node = -1
    return Function(address, chain, bridges[0], node if node >= 0 else None, rdma, c2c)


def c2c_attached(host: HostReader, address: str) -> bool:
    try:
        return host.read(f"{PCI_DEVICES}/{address}/device").strip().lower() in C2C_GPU_DEVICES
    except Unanswered:
        return False


def gpus(host: HostReader, c2c_links: dict[str, int] | None = None) -> list[Function]:
    """The GPUs on the PCI bus, each C2C-attached where NVML counts an active C2C link for it (`c2c_links`: PCI
    address -> active links, for the GPUs NVML answers for), else where its PCI device id says so."""
    addresses = facts.nvidia_pci_gpus(host) or []
    links = c2c_links or {}
    placed = (
        _place(host, address, c2c=links[address] > 0 if address in links else c2c_attached(host, address))
        for address in addresses
    )
    return [f for f in placed if f is not None]


def sysfs_address(pci_bus_id: str) -> str:
    """NVML's PCI bus id ("00000008:01:00.0", an 8-digit domain) as sysfs names the device ("0008:01:00.0")."""
    return pci_bus_id.lower()[-12:]


def nvml_c2c_links(ctx) -> dict[str, int]:
    """PCI address (as sysfs names it) -> active NVLink-C2C links NVML reports, for each GPU NVML answers the count
    for (nvml.static.read_c2c_links)."""
    from dlbench.nvml import static

    if not ctx.reader.up:
        return {}
    found = {}
    for gpu in ctx.gpus:
        links = static.read_c2c_links(ctx.reader.nvml, gpu.index)
        if links is not None and getattr(gpu, "pci_bus_id", None):
            found[sysfs_address(gpu.pci_bus_id)] = links
    return found


def rdma_nics(host: HostReader) -> list[Function]:
    """The PCI functions that carry an RDMA device (InfiniBand or RoCE), in device-name order."""
    found = {}
    for name in host.listdir(INFINIBAND):
        try:
            address = host.resolve(f"{INFINIBAND}/{name}/device").rsplit("/", 1)[1]
        except Unanswered:
            continue
        if ADDRESS.match(address) and address not in found:
            found[address] = _place(host, address, name)
    return [f for f in found.values() if f is not None]


def distance(gpu: Function, nic: Function) -> tuple[str, int]:
    """(NCCL's path class, bridges shared: more is nearer) between a GPU and a NIC."""
    if gpu.host_bridge == nic.host_bridge:
        shared = 0
        for mine, theirs in zip(gpu.chain, nic.chain):
            if mine != theirs:
                break
            shared += 1
        # a root port has one link: two devices below the same one sit behind a switch
        return (SWITCH if shared else C2C_CPU if gpu.c2c else HOST_BRIDGE), shared
    if gpu.numa_node is not None and nic.numa_node is not None and gpu.numa_node != nic.numa_node:
        return OTHER_CPU, 0
    # NCCL: the GPU's C2C link to its CPU merged with the NIC's PHB path to that CPU is P2C (paths.cc, mergePathType)
    return (C2C_CPU if gpu.c2c else HOST_BRIDGE), 0


RANK = {SWITCH: 0, C2C_CPU: 1, HOST_BRIDGE: 2, OTHER_CPU: 3}


def nearest(gpu: Function, nics: list[Function]) -> tuple[Function, str]:
    best = min(nics, key=lambda nic: (RANK[distance(gpu, nic)[0]], -distance(gpu, nic)[1]))
    return best, distance(gpu, best)[0]


def in_between(gpu: Function, nic: Function) -> list[str]:
    """The bridges below the pair's common switch port: the downstream ports peer traffic crosses."""
    _, shared = distance(gpu, nic)
    return sorted(set(gpu.chain[shared:]) | set(nic.chain[shared:]))


def read_acs(host: HostReader, address: str) -> int | None:
    """The ACS control register of one bridge; 0 when it has no ACS capability. Unanswered when the configuration
    space past the first 256 bytes cannot be read (not root)."""
    config = host.read_bytes(f"{PCI_DEVICES}/{address}/config")
    if len(config) <= EXTENDED_CAPABILITIES:
        raise Unanswered(f"only {len(config)} bytes of {address}'s configuration space are readable (run as root)")
    offset, seen = EXTENDED_CAPABILITIES, set()
    while offset and offset not in seen and offset + 8 <= len(config):
        seen.add(offset)
        (header,) = struct.unpack_from("<I", config, offset)
        if header in (0, 0xFFFFFFFF):
            return 0
        if header & 0xFFFF == ACS_ID:
            return struct.unpack_from("<H", config, offset + ACS_CONTROL)[0]
        offset = (header >> 20) & 0xFFC
    return 0


def describe_acs(control: int) -> str:
    """As lspci -vvv prints ACSCtl: "SrcValid+ TransBlk- ReqRedir+ ..."."""
    return " ".join(f"{name}{'+' if control & bit else '-'}" for name, bit in ACS_BITS.items())


def virtual_machine(host: HostReader) -> str | None:
    """Why this looks like a virtual machine (the CPU's hypervisor flag, or a hypervisor's DMI name), else None."""
    try:
        cpuinfo = host.read("/proc/cpuinfo")
    except Unanswered:
        cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and "hypervisor" in line.split(":", 1)[-1].split():
            return "the CPU reports the hypervisor flag (/proc/cpuinfo)"
    dmi = {}
    for name in ("sys_vendor", "product_name"):
        try:
            dmi[name] = host.read(f"/sys/class/dmi/id/{name}").strip()
        except Unanswered:
            continue
    if ".metal" in dmi.get("product_name", ""):
        # EC2's bare-metal instances carry "Amazon EC2" as its VMs do (systemd src/basic/virt.c, detect_vm_dmi)
        return None
    for name, value in dmi.items():
        if any(word.lower() in value.lower() for word in VIRTUAL_DMI):
            return f"DMI {name} is {value!r}"
    return None


def _not_judged_in_vm(result: CheckResult, reason: str) -> CheckResult:
    result.verdict = INFO
    result.detail = (
        f"in a virtual machine ({reason}): the bridges and IOMMU seen here are the hypervisor's, not the server's; "
        f"the host's operator owns them, and the RDMA bandwidth shows the path instead. Seen: {result.detail}"
    )
    return result


# --- the checks ---------------------------------------------------------------------------------------------------
def topology(pairs: dict[str, tuple[Function, str]], vm: str | None) -> CheckResult:
    check_id, title = "gpudirect.nic_affinity", "Each GPU has an RDMA NIC on NCCL's GPUDirect RDMA path"
    classes = {gpu: path for gpu, (_, path) in pairs.items()}
    far = [gpu for gpu, path in classes.items() if path == OTHER_CPU]
    via_cpu = [gpu for gpu, path in classes.items() if path == HOST_BRIDGE]
    verdict = FAIL if far else WARN if via_cpu else PASS
    detail = "; ".join(
        f"GPU {gpu}: nearest NIC {nic.address} ({nic.rdma}) {PATH_WORDS[path]}" for gpu, (nic, path) in pairs.items()
    )
    if far:
        detail += (
            ": a GPU whose nearest RDMA NIC is on another CPU sends every message across the socket link: put a NIC "
            "on each GPU's CPU (a riser or slot change), or pin the job's ranks to the NIC's socket"
        )
    elif via_cpu:
        detail += (
            ": NCCL does not use GPUDirect RDMA through the host bridge by default (NCCL_NET_GDR_LEVEL=PXB) and "
            "stages through host memory; a NIC behind the GPU's switch is the fast path"
        )
    result = CheckResult(
        check_id,
        title,
        verdict,
        f"{len(pairs) - len(far) - len(via_cpu)}/{len(pairs)} near their NIC",
        expected="every GPU's nearest RDMA NIC behind the same PCIe switch (NCCL PIX/PXB), or on the CPU a "
        "Grace GPU is attached to by NVLink-C2C (P2C)",
        source=TOPOLOGY_SOURCE,
        detail=detail,
        data={
            "pairs": {gpu: {"nic": nic.address, "rdma": nic.rdma, "path": path} for gpu, (nic, path) in pairs.items()}
        },
    )
    return _not_judged_in_vm(result, vm) if vm and verdict != PASS else result


def acs(host: HostReader, gpus_by_address: dict[str, Function], pairs, vm: str | None) -> CheckResult:
    check_id, title = "gpudirect.acs", "No PCIe ACS redirect between a GPU and its NIC"
    bridges = {}
    for gpu, (nic, path) in pairs.items():
        if path == SWITCH:
            for bridge in in_between(gpus_by_address[gpu], nic):
                bridges.setdefault(bridge, []).append(f"GPU {gpu} - NIC {nic.address}")
    if not bridges:
        over_c2c = sorted(gpu for gpu, (_, path) in pairs.items() if path == C2C_CPU)
        if over_c2c:
            return skip(
                check_id,
                title,
                f"GPU {', '.join(over_c2c)} reach their NIC over NVLink-C2C and their Grace CPU's root port (NCCL's "
                "P2C): the NIC's RDMA into a C2C-attached GPU's memory goes through the CPU's coherent chip-to-chip "
                "link, not to a PCIe BAR behind a switch (Linux drivers/vfio/pci/nvgrace-gpu), so no switch port's "
                "ACS redirect lies on the path; no other GPU shares a PCIe switch with an RDMA NIC",
            )
        return skip(check_id, title, "no GPU shares a PCIe switch with an RDMA NIC: no switch port to judge")
    controls, unread = {}, []
    for bridge in sorted(bridges):
        try:
            controls[bridge] = read_acs(host, bridge)
        except Unanswered as why:
            unread.append(str(why))
    if not controls:
        return skip(check_id, title, f"cannot read the bridges' ACS control: {unread[0]}")
    redirecting = {b: c for b, c in controls.items() if c & ACS_REDIRECTS}
    detail = "; ".join(
        f"bridge {b} (between {', '.join(bridges[b])}): ACSCtl {describe_acs(c)}" for b, c in redirecting.items()
    )
    if redirecting:
        fix = " && ".join(f"setpci -s {b} ECAP_ACS+0x6.w=0000" for b in redirecting)
        detail += (
            f": peer traffic goes up to the root complex and back: as root, {fix} (not kept across a reboot: run it "
            "from a boot-time unit, or turn ACS off in the BIOS; leave it on where GPUs are passed to VMs)"
        )
    result = CheckResult(
        check_id,
        title,
        FAIL if redirecting else PASS,
        len(redirecting),
        "bridges redirecting",
        expected="ReqRedir-, CmpltRedir- and EgressCtrl- on every switch port between a GPU and its NIC",
        source=ACS_SOURCE,
        detail=detail
        if redirecting
        else f"{len(controls)} switch ports between the GPUs and their NICs let peer traffic through",
        data={"acs_control": {b: f"0x{c:04x}" for b, c in controls.items()}, "unreadable": unread},
    )
    return _not_judged_in_vm(result, vm) if vm and redirecting else result


def iommu(host: HostReader, pairs, vm: str | None) -> CheckResult:
    check_id, title = "gpudirect.iommu", "The IOMMU passes the GPUs' and NICs' DMA through untranslated"
    devices = sorted({gpu for gpu in pairs} | {nic.address for nic, _ in pairs.values()})
    types = {}
    for address in devices:
        try:
            types[address] = host.read(f"{PCI_DEVICES}/{address}/iommu_group/type").strip()
        except Unanswered:
            # no group: no IOMMU handles the device; a group without `type` (kernels before 5.11) cannot tell
            types[address] = "none" if not host.exists(f"{PCI_DEVICES}/{address}/iommu_group") else "unknown"
    try:
        cmdline = host.read("/proc/cmdline").strip()
    except Unanswered:
        cmdline = ""
    iommu_words = [w for w in cmdline.split() if "iommu" in w]
    units = host.listdir("/sys/class/iommu")
    translated = {a: t for a, t in types.items() if t in TRANSLATED}
    evidence = (
        f"IOMMU units {', '.join(units) or 'none'} (/sys/class/iommu); kernel command line: "
        f"{' '.join(iommu_words) or 'no iommu option'}"
    )
    if translated:
        detail = (
            f"{', '.join(f'{a} {t}' for a, t in translated.items())} (translated); {evidence}: boot with iommu=pt "
            "(Intel: intel_iommu=on iommu=pt; AMD: iommu=pt) in GRUB_CMDLINE_LINUX, update-grub, reboot"
        )
    else:
        detail = f"{evidence}; " + ", ".join(f"{a} {t}" for a, t in types.items())
    untold = [a for a, t in types.items() if t == "unknown"]
    doubtful = untold and not translated and not set(iommu_words) & PASS_THROUGH_OPTIONS
    if doubtful:
        detail += (
            ": the kernel does not say whether these groups translate (iommu_group/type arrived in Linux 5.11) and "
            "the command line has no iommu=pt, so the IOMMU may translate: boot with iommu=pt"
        )
    result = CheckResult(
        check_id,
        title,
        FAIL if translated else WARN if doubtful else PASS,
        len(translated),
        "devices translated",
        expected="iommu_group type identity (pass-through), or no IOMMU",
        source=IOMMU_SOURCE,
        detail=detail,
        data={"iommu_group_type": types, "iommu_units": units, "cmdline_iommu": iommu_words},
    )
    return _not_judged_in_vm(result, vm) if vm and (translated or doubtful) else result


def _kernel_at_least(release: str, wanted: tuple[int, int]) -> bool:
    numbers = re.match(r"(\d+)\.(\d+)", release)
    return bool(numbers) and (int(numbers.group(1)), int(numbers.group(2))) >= wanted


def peermem(host: HostReader) -> CheckResult:
    check_id, title = "gpudirect.peermem", "The NVIDIA driver can hand GPU memory to the NIC"
    for module in ("nvidia_peermem", "nv_peer_mem"):
        if host.exists(f"/sys/module/{module}"):
            return CheckResult(
                check_id, title, PASS, module, expected="nvidia_peermem loaded, or DMA-BUF", source=PEERMEM_SOURCE,
                detail=f"{module} is loaded (/sys/module/{module})",
            )  # fmt: skip
    try:
        version = host.read("/proc/driver/nvidia/version")
    except Unanswered:
        version = ""
    try:
        release = host.read("/proc/sys/kernel/osrelease").strip()
    except Unanswered:
        release = ""
    open_modules = "Open Kernel Module" in version
    if open_modules and _kernel_at_least(release, (5, 12)):
        return CheckResult(
            check_id, title, PASS, "dma-buf", expected="nvidia_peermem loaded, or DMA-BUF", source=PEERMEM_SOURCE,
            detail=f"no nvidia_peermem, but the open kernel modules on Linux {release} give NCCL and perftest DMA-BUF",
        )  # fmt: skip
    why = (
        f"Linux {release or '(unknown)'} is older than 5.12"
        if open_modules
        else "the proprietary kernel modules (or no driver) offer no DMA-BUF"
    )
    return CheckResult(
        check_id,
        title,
        FAIL,
        "absent",
        expected="nvidia_peermem loaded, or DMA-BUF",
        source=PEERMEM_SOURCE,
        detail=(
            f"nvidia_peermem is not loaded and {why}: NCCL falls back to host memory for every network transfer; "
            "load it (sudo modprobe nvidia-peermem) and keep it (echo nvidia-peermem > /etc/modules-load.d/"
            "nvidia-peermem.conf)"
        ),
    )


# --- RDMA bandwidth per pair (perftest) -----------------------------------------------------------------------------
RESULT_LINE = re.compile(r"^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")


def parse_bandwidth(output: str) -> float | None:
    """BW average of ib_write_bw's result line ("#bytes #iterations BW peak BW average MsgRate"), in the unit the
    run asked for (Gb/s with --report_gbits)."""
    found = [float(m.group(4)) for line in output.splitlines() if (m := RESULT_LINE.match(line))]
    return found[-1] if found else None


def port_rate(host: HostReader, rdma: str) -> float | None:
    """The port's rate in Gb/s ("400 Gb/sec (4X NDR)"), from Documentation/ABI/stable/sysfs-class-infiniband."""
    try:
        match = re.match(r"([\d.]+)\s*Gb/sec", host.read(f"{INFINIBAND}/{rdma}/ports/1/rate"))
    except Unanswered:
        return None
    return float(match.group(1)) if match else None


def _perftest_environment() -> dict[str, str]:
    """The environment ib_write_bw runs in: --use_cuda takes a CUDA device index, and CUDA numbers the GPUs fastest
    first and within CUDA_VISIBLE_DEVICES (CUDA Programming Guide, CUDA Environment Variables); the indexes here are
    NVML's, which follow the PCI bus order. PCI_BUS_ID order over every GPU makes the two agree."""
    environment = {name: value for name, value in os.environ.items() if name != "CUDA_VISIBLE_DEVICES"}
    return environment | {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def _binds_to_an_address() -> bool:
    """Whether this perftest can bind its out-of-band TCP exchange to one address (--bind_source_ip, perftest 23.07
    on); without it the server listens on every interface (src/perftest_communication.c, ethernet_server_connect:
    getaddrinfo with AI_PASSIVE)."""
    try:
        listed = subprocess.run(
            ["ib_write_bw", "--help"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--bind_source_ip" in listed.stdout + listed.stderr


def measure_pair(rdma: str, gpu_index: int, port: int, seconds: int = 3, dmabuf: bool = False) -> float | None:
    """ib_write_bw from GPU memory to GPU memory through one NIC, its server and client on this host, their
    connection exchange on the loopback address (where this perftest can bind it there)."""
    base = ["ib_write_bw", "-d", rdma, f"--use_cuda={gpu_index}", "-D", str(seconds), "--report_gbits", "-F"]
    base += ["-p", str(port), "-s", str(MESSAGE_BYTES)]
    if dmabuf:  # no nvidia-peermem: GPU memory registered as a dma-buf (perftest 4.5-0.12 on)
        base.append("--use_cuda_dmabuf")
    if _binds_to_an_address():
        base += ["--bind_source_ip", LOOPBACK]
    environment = _perftest_environment()
    server = subprocess.Popen(
        base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, env=environment
    )
    try:
        for _ in range(CONNECT_TRIES):
            # the server opens the device before it listens (perftest write_bw.c): a client too early is refused
            # at once ("Couldn't connect to ...", perftest_communication.c) and tries again
            time.sleep(1)
            client = subprocess.run(
                [*base, LOOPBACK],
                capture_output=True,
                text=True,
                timeout=seconds + 30,
                stdin=subprocess.DEVNULL,
                env=environment,
            )
            if "Couldn't connect" not in client.stdout + client.stderr or server.poll() is not None:
                break
        return parse_bandwidth(client.stdout)
    except subprocess.TimeoutExpired:
        return None
    finally:
        server.kill()
        server.wait()


def bandwidth(host: HostReader, pairs, gpu_indexes: dict[str, int], dmabuf: bool = False) -> CheckResult:
    check_id, title = "gpudirect.rdma_bw", "GPUDirect RDMA write bandwidth per GPU-NIC pair near the port's rate"
    if shutil.which("ib_write_bw") is None:
        return skip(
            check_id,
            title,
            "ib_write_bw is not installed: install perftest built with CUDA (apt install perftest, or MLNX_OFED's) "
            "to measure each GPU-NIC pair",
        )
    measured, rates = {}, {}
    for number, (gpu, (nic, _)) in enumerate(pairs.items()):
        if gpu not in gpu_indexes:
            continue
        value = measure_pair(nic.rdma, gpu_indexes[gpu], 18515 + number, dmabuf=dmabuf)
        if value is not None:
            measured[f"GPU {gpu} - {nic.rdma}"] = value
            rates[f"GPU {gpu} - {nic.rdma}"] = port_rate(host, nic.rdma)
    if not measured:
        return skip(check_id, title, "ib_write_bw --use_cuda gave no result (no CUDA build of perftest, or no link)")
    slow = {k: v for k, v in measured.items() if rates[k] and v < BANDWIDTH_FRACTION * rates[k]}
    return CheckResult(
        check_id,
        title,
        WARN if slow else PASS if any(rates.values()) else INFO,
        min(measured.values()),
        "Gb/s",
        expected=f">= {BANDWIDTH_FRACTION:.0%} of each port's rate",
        source=BANDWIDTH_SOURCE,
        detail="; ".join(f"{k}: {v:.1f} of {rates[k]} Gb/s" for k, v in slow.items())
        + (": check the pair's PCIe path (ACS, IOMMU) and the port's link" if slow else ""),
        data={"per_pair_gbps": measured, "port_rate_gbps": rates},
    )


def run(ctx) -> list[CheckResult]:
    host = ctx.host
    c2c_links = nvml_c2c_links(ctx)
    found_gpus = gpus(host, c2c_links)
    nics = rdma_nics(host)
    title = "The GPUDirect RDMA path"
    if not found_gpus:
        return [skip("gpudirect.path", title, "no NVIDIA GPU on the PCI bus")]
    if not nics:
        return [skip("gpudirect.path", title, "no RDMA NIC (/sys/class/infiniband is empty): no GPUDirect RDMA")]
    links = ((ctx.options.spec or {}).get("hardware") or {}).get("network")
    if links and not any(link.get("rdma") for link in links):
        # a management or storage NIC in Ethernet mode is an RDMA device too: where the host's contract has no RDMA
        # fabric, where it sits and whether nvidia_peermem is loaded are no faults
        declared = ", ".join(link["text"] for link in links)
        return [skip("gpudirect.path", title, f"the spec's network ({declared}) has no RDMA link: not required")]
    pairs = {gpu.address: nearest(gpu, nics) for gpu in found_gpus}
    vm = virtual_machine(host)
    # for ib_write_bw's --use_cuda index
    indexes = {sysfs_address(g.pci_bus_id): g.index for g in ctx.gpus if getattr(g, "pci_bus_id", None)}
    driver = peermem(host)
    affinity = topology(pairs, vm)
    # how each C2C-attached GPU was recognised: NVML's active C2C links (as NCCL reads them), or its PCI device id
    affinity.data["c2c"] = {
        gpu.address: f"NVML: {c2c_links[gpu.address]} active C2C links"
        if gpu.address in c2c_links
        else "PCI device id (Linux nvgrace-gpu's table)"
        for gpu in found_gpus
        if gpu.c2c
    }
    return [
        affinity,
        acs(host, {g.address: g for g in found_gpus}, pairs, vm),
        iommu(host, pairs, vm),
        driver,
        bandwidth(host, pairs, indexes, dmabuf=driver.measured == "dma-buf"),
    ]

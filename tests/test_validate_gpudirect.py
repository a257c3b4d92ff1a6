"""The GPUDirect RDMA path, read from a host laid out as Linux's sysfs shows it.

The layouts, from the kernel's documentation: /sys/bus/pci/devices/ADDRESS links to the function's place under
/sys/devices/pciDOMAIN:BUS/<root port>/<switch upstream port>/<switch downstream port>/ADDRESS
(Documentation/ABI/testing/sysfs-bus-pci); `config` is the configuration space, with the PCIe extended capabilities
chained from offset 0x100 (PCI Express Base Specification; the ACS control register at +6 of capability 0x000d,
include/uapi/linux/pci_regs.h); /sys/class/infiniband/NAME links to .../ADDRESS/infiniband/NAME, whose `device` leads
back to the PCI function and `ports/1/rate` reads "400 Gb/sec (4X NDR)" (Documentation/ABI/stable/
sysfs-class-infiniband); `iommu_group` links to /sys/kernel/iommu_groups/N, whose `type` is "identity" or "DMA-FQ"
(Documentation/ABI/testing/sysfs-kernel-iommu_groups); a loaded module has /sys/module/NAME.
"""

from __future__ import annotations

import json
import os
import shutil
import struct

import pytest

from dlbench.hostspec.reader import RecordedHost
from dlbench.validate import gpudirect, runner
from dlbench.checks import FAIL, INFO, PASS, SKIP, WARN
from validate_support import context, pci_bus

BRIDGE = ("0x8086", "0x1234", "0x060400")  # a PCI-to-PCI bridge (class 0x0604, PCI Code and ID Assignment Spec.)
SWITCH = ("0x1000", "0xc030", "0x060400")  # Broadcom/LSI PEX890xx PCIe Gen5 switch ports (pci.ids 1000:c030)
H100 = ("0x10de", "0x2330", "0x030200")
CONNECTX7 = ("0x15b3", "0x1021", "0x020700")
# An HGX-like socket: root port 17:01.0, switch upstream 18:00.0, downstream ports 19:00.0 (GPU) and 19:01.0 (NIC)
RC0 = "pci0000:17/0000:17:01.0/0000:18:00.0"
GPU0, NIC0 = "0000:1a:00.0", "0000:1b:00.0"
GPU0_PATH, NIC0_PATH = f"{RC0}/0000:19:00.0/{GPU0}", f"{RC0}/0000:19:01.0/{NIC0}"
ACS_RR_CR_UF_SV = 0x001D  # what Linux enables on a switch downstream port when an IOMMU is on (pci_std_enable_acs)


def config_space(acs_control: int | None = 0) -> bytes:
    """4 KiB of configuration space: AER (0x0001) at 0x100 chained to ACS (0x000d) at 0x148 (the order a
    PEX switch port lists them; any order is legal), or no ACS capability when `acs_control` is None."""
    space = bytearray(4096)
    space[0:4] = struct.pack("<HH", 0x1000, 0xC030)
    next_offset = 0x148 if acs_control is not None else 0
    struct.pack_into("<I", space, 0x100, 0x0001 | (1 << 16) | (next_offset << 20))
    if acs_control is not None:
        struct.pack_into("<IHH", space, 0x148, 0x000D | (1 << 16), 0x005F, acs_control)
    return bytes(space)


def _link(link, target):
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(target, link.parent))


def node(
    tmp_path,
    acs=0,
    nic_path=NIC0_PATH,
    nic_numa=0,
    peermem=True,
    iommu_type=None,
    hypervisor=False,
    root=True,
):
    """One H100 and one ConnectX-7 (mlx5_0, 400 Gb/s) with the bridges between them, as sysfs lays them out."""
    host = tmp_path / "host"
    nic_chain = nic_path.split("/")
    bridges = ["pci0000:17/0000:17:01.0", RC0, f"{RC0}/0000:19:00.0"]
    bridges += ["/".join(nic_chain[: i + 1]) for i in range(1, len(nic_chain) - 1)]
    functions = [(path, *(SWITCH if "19:" in path or "18:" in path else BRIDGE)) for path in dict.fromkeys(bridges)]
    pci_bus(
        host,
        *functions,
        (GPU0_PATH, *H100, {"numa_node": "0\n"}),
        (nic_path, *CONNECTX7, {"numa_node": f"{nic_numa}\n"}),
    )
    devices = host / "sys/devices"
    for path, *_ in functions:
        (devices / path / "config").write_bytes(config_space(acs) if root else config_space(acs)[:64])
    rdma = devices / nic_path / "infiniband/mlx5_0"
    (rdma / "ports/1").mkdir(parents=True)
    (rdma / "ports/1/rate").write_text("400 Gb/sec (4X NDR)\n")
    _link(rdma / "device", devices / nic_path)
    _link(host / "sys/class/infiniband/mlx5_0", rdma)
    if iommu_type:
        for number, path in enumerate((GPU0_PATH, nic_path)):
            group = host / f"sys/kernel/iommu_groups/{number + 30}"
            group.mkdir(parents=True)
            (group / "type").write_text(f"{iommu_type}\n")
            _link(devices / path / "iommu_group", group)
        (host / "sys/class/iommu/dmar0").mkdir(parents=True)
    (host / "proc").mkdir()
    (host / "proc/cmdline").write_text("BOOT_IMAGE=/vmlinuz-6.8.0-45-generic root=/dev/sda1 intel_iommu=on\n")
    flags = "fpu vme sse2 avx512f" + (" hypervisor" if hypervisor else "")
    (host / "proc/cpuinfo").write_text(
        f"processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: {flags}\n"
    )
    if peermem:
        (host / "sys/module/nvidia_peermem").mkdir(parents=True)
    return RecordedHost(host)


def checks(host, gpus=({"preset": "h100-sxm"},)):
    return {c.id: c for c in gpudirect.run(context(*gpus, host=host))}


def test_a_healthy_node_passes_with_the_pair_named(tmp_path):
    found = checks(node(tmp_path))
    assert found["gpudirect.nic_affinity"].verdict == PASS
    assert found["gpudirect.nic_affinity"].data["pairs"] == {GPU0: {"nic": NIC0, "rdma": "mlx5_0", "path": "PXB"}}
    assert found["gpudirect.acs"].verdict == PASS and found["gpudirect.acs"].data["acs_control"] == {
        "0000:19:00.0": "0x0000",
        "0000:19:01.0": "0x0000",
    }
    assert found["gpudirect.iommu"].verdict == PASS and found["gpudirect.peermem"].verdict == PASS
    if shutil.which("ib_write_bw") is None:  # this machine has no RDMA NIC: perftest is not installed
        assert found["gpudirect.rdma_bw"].verdict == SKIP and "perftest" in found["gpudirect.rdma_bw"].detail


def test_acs_redirect_on_a_switch_port_between_a_gpu_and_its_nic_fails_with_the_fix(tmp_path):
    check = checks(node(tmp_path, acs=ACS_RR_CR_UF_SV))["gpudirect.acs"]
    assert check.verdict == FAIL and check.measured == 2
    assert "ACSCtl SrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-" in check.detail
    assert "setpci -s 0000:19:00.0 ECAP_ACS+0x6.w=0000" in check.detail
    assert "NCCL troubleshooting" in check.source


def test_source_validation_alone_does_not_redirect_and_a_port_without_acs_passes(tmp_path):
    assert checks(node(tmp_path, acs=0x0001))["gpudirect.acs"].verdict == PASS
    assert checks(node(tmp_path / "b", acs=None))["gpudirect.acs"].verdict == PASS


def test_acs_unreadable_without_root_skips_saying_so(tmp_path):
    check = checks(node(tmp_path, acs=ACS_RR_CR_UF_SV, root=False))["gpudirect.acs"]
    assert check.verdict == SKIP and "run as root" in check.detail


def test_in_a_virtual_machine_acs_is_reported_not_judged(tmp_path):
    check = checks(node(tmp_path, acs=ACS_RR_CR_UF_SV, hypervisor=True))["gpudirect.acs"]
    assert check.verdict == INFO and "hypervisor flag" in check.detail and "ReqRedir+" in check.detail


def test_peermem_absent_fails_with_the_module_to_load(tmp_path):
    check = checks(node(tmp_path, peermem=False))["gpudirect.peermem"]
    assert check.verdict == FAIL and "modprobe nvidia-peermem" in check.detail


def test_open_kernel_modules_on_a_recent_kernel_give_dma_buf_instead(tmp_path):
    host = node(tmp_path, peermem=False)
    (tmp_path / "host/proc/driver/nvidia").mkdir(parents=True)
    (tmp_path / "host/proc/driver/nvidia/version").write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.124.06  Release Build\n"
    )
    (tmp_path / "host/proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "host/proc/sys/kernel/osrelease").write_text("6.8.0-45-generic\n")
    check = checks(host)["gpudirect.peermem"]
    assert check.verdict == PASS and check.measured == "dma-buf"


def test_a_nic_on_the_other_cpus_root_complex_fails(tmp_path):
    far = f"pci0000:97/0000:97:01.0/0000:98:00.0/0000:99:00.0/{NIC0.replace('1b', '9a')}"
    found = checks(node(tmp_path, nic_path=far, nic_numa=1))
    check = found["gpudirect.nic_affinity"]
    assert check.verdict == FAIL and "on another CPU" in check.detail and "socket" in check.detail
    assert found["gpudirect.acs"].verdict == SKIP  # no switch shared: ACS has nothing to redirect


def test_a_nic_on_another_root_complex_of_the_same_cpu_warns(tmp_path):
    near = f"pci0000:30/0000:30:01.0/{NIC0.replace('1b', '31')}"
    check = checks(node(tmp_path, nic_path=near, nic_numa=0))["gpudirect.nic_affinity"]
    assert check.verdict == WARN and "through the CPU's host bridge" in check.detail


# A GB200 compute tray, as sysfs shows it: two Grace CPUs (NUMA nodes 0 and 1), each with two GB200 GPUs
# (10de:2941, Linux drivers/vfio/pci/nvgrace-gpu/main.c) at 0008:01:00.0 and 0009:01:00.0 (0018/0019 on the second
# Grace; the GPU list of /sys/class/egm/egm4 in NVIDIA's "vfio/nvgrace-gpu: Add link from pci to EGM" patch, and
# NVIDIA/bare-metal-manager-core crates/bmc-mock/src/hw/nvidia_gb200.rs), each GPU alone below a root port of its own
# PCI domain; a ConnectX-7 (mlx5) in PCI domains 0000 and 0002 of the first Grace, 0010 and 0012 of the second, at
# DOMAIN:03:00.0 behind a root port and a switch (nvidia_gb200.rs, IoBoard::discovery_infiniband). The bridges' ids
# are illustrative.
GB200 = ("0x10de", "0x2941", "0x030200")
GRACE_GPUS = {"0008": 0, "0009": 0, "0018": 1, "0019": 1}
GRACE_NICS = {"0000": 0, "0002": 0, "0010": 1, "0012": 1}


def grace_board(tmp_path, gpu=GB200, nic_domains=GRACE_NICS):
    host = tmp_path / "host"
    functions = []
    for domain, numa in GRACE_GPUS.items():
        functions.append((f"pci{domain}:00/{domain}:00:00.0", *BRIDGE))
        functions.append((f"pci{domain}:00/{domain}:00:00.0/{domain}:01:00.0", *gpu, {"numa_node": f"{numa}\n"}))
    nics = []
    for number, (domain, numa) in enumerate(nic_domains.items()):
        chain = [f"pci{domain}:00/{domain}:00:00.0"]
        chain += [f"{chain[-1]}/{domain}:01:00.0", f"{chain[-1]}/{domain}:01:00.0/{domain}:02:00.0"]
        functions += [(path, *(SWITCH if ":00:00.0" not in path.rsplit("/", 1)[1] else BRIDGE)) for path in chain]
        nics.append((f"{chain[-1]}/{domain}:03:00.0", f"mlx5_{number}"))
        functions.append((nics[-1][0], *CONNECTX7, {"numa_node": f"{numa}\n"}))
    pci_bus(host, *functions)
    for path, rdma in nics:
        device = host / "sys/devices" / path
        (device / "infiniband" / rdma / "ports/1").mkdir(parents=True)
        (device / "infiniband" / rdma / "ports/1/rate").write_text("400 Gb/sec (4X NDR)\n")
        _link(device / "infiniband" / rdma / "device", device)
        _link(host / "sys/class/infiniband" / rdma, device / "infiniband" / rdma)
    (host / "sys/module/nvidia_peermem").mkdir(parents=True)
    return RecordedHost(host)


def test_a_grace_gpu_with_a_nic_on_its_own_grace_passes_as_nccls_c2c_path(tmp_path):
    # by the PCIe tree alone each GPU reaches its NIC only through host bridges (PHB, a WARN); over NVLink-C2C it is
    # NCCL's P2C, on which GPUDirect RDMA is on by default (NCCL 2.27 and later)
    check = checks(grace_board(tmp_path))["gpudirect.nic_affinity"]
    assert check.verdict == PASS, check.detail
    pairs = check.data["pairs"]
    assert {gpu: pair["path"] for gpu, pair in pairs.items()} == {f"{d}:01:00.0": "P2C" for d in GRACE_GPUS}
    # each GPU's nearest NIC is one of its own Grace's
    assert {pairs[f"{d}:01:00.0"]["nic"][:4] for d in ("0008", "0009")} <= {"0000", "0002"}
    assert {pairs[f"{d}:01:00.0"]["nic"][:4] for d in ("0018", "0019")} <= {"0010", "0012"}
    assert "NVLink-C2C" in check.detail and "P2C" in check.source
    # recognised by the PCI device id here (the simulated NVML GPU is not on this board's bus)
    assert set(check.data["c2c"].values()) == {"PCI device id (Linux nvgrace-gpu's table)"}


def test_acs_on_c2c_attached_gpus_is_skipped_saying_their_peer_traffic_crosses_no_pcie_switch(tmp_path):
    check = checks(grace_board(tmp_path))["gpudirect.acs"]
    assert check.verdict == SKIP
    assert "GPU 0008:01:00.0, 0009:01:00.0, 0018:01:00.0, 0019:01:00.0 reach their NIC over NVLink-C2C" in check.detail
    assert "no switch port's ACS redirect lies on the path" in check.detail and "nvgrace-gpu" in check.detail


# A Grace GPU this code has no PCI device id for (a newer one than Linux's nvgrace-gpu table lists: 0x3fff stands for
# it), each one NVML answers for at its place on the board; the C2C link count is illustrative (NCCL only asks for
# a count above 0 with a link active, src/graph/xml.cc)
NEW_GRACE_GPU = ("0x10de", "0x3fff", "0x030200")


def _grace_nvml(links: int = 10, status: int = 1) -> list[dict]:
    return [
        {
            "preset": "h100-sxm",
            "values": {
                "pci_bus_id": f"0000{domain}:01:00.0",
                "c2c_links": links,
                "c2c_status": {str(link): status for link in range(links)},
            },
        }
        for domain in GRACE_GPUS
    ]


def test_a_grace_gpu_is_recognised_by_nvmls_c2c_links_as_nccl_reads_them_without_its_pci_id(tmp_path):
    check = checks(grace_board(tmp_path, gpu=NEW_GRACE_GPU), gpus=_grace_nvml())["gpudirect.nic_affinity"]
    assert check.verdict == PASS, check.detail
    assert {pair["path"] for pair in check.data["pairs"].values()} == {"P2C"}
    assert check.data["c2c"] == {f"{domain}:01:00.0": "NVML: 10 active C2C links" for domain in GRACE_GPUS}
    # without NVML's answer the unknown id is a PCIe GPU: through the host bridge only
    unknown = checks(grace_board(tmp_path / "b", gpu=NEW_GRACE_GPU))["gpudirect.nic_affinity"]
    assert unknown.verdict == WARN and {pair["path"] for pair in unknown.data["pairs"].values()} == {"PHB"}


def test_nvml_with_no_active_c2c_link_outranks_the_pci_id(tmp_path):
    # NCCL adds no C2C link when none is active (src/graph/xml.cc: count of links with status 1): nor does validate
    check = checks(grace_board(tmp_path), gpus=_grace_nvml(status=0))["gpudirect.nic_affinity"]
    assert check.verdict == WARN and check.data["c2c"] == {}
    assert {pair["path"] for pair in check.data["pairs"].values()} == {"PHB"}


def test_a_grace_gpu_whose_nearest_nic_is_on_the_other_grace_fails(tmp_path):
    found = checks(grace_board(tmp_path, nic_domains={"0000": 0, "0002": 0}))["gpudirect.nic_affinity"]
    assert found.verdict == FAIL and found.measured == "2/4 near their NIC"
    assert found.data["pairs"]["0018:01:00.0"]["path"] == "SYS" and "on another CPU" in found.detail


def test_a_pcie_gpu_in_the_same_layout_is_still_judged_by_the_pcie_tree(tmp_path):
    check = checks(grace_board(tmp_path, gpu=H100))["gpudirect.nic_affinity"]
    assert check.verdict == WARN and {pair["path"] for pair in check.data["pairs"].values()} == {"PHB"}


def test_an_iommu_translating_the_gpus_dma_fails_on_bare_metal_with_the_boot_option(tmp_path):
    check = checks(node(tmp_path, iommu_type="DMA-FQ"))["gpudirect.iommu"]
    assert check.verdict == FAIL and check.measured == 2
    assert "iommu=pt" in check.detail and "intel_iommu=on" in check.detail and "dmar0" in check.detail


def test_an_iommu_in_pass_through_passes(tmp_path):
    check = checks(node(tmp_path, iommu_type="identity"))["gpudirect.iommu"]
    assert check.verdict == PASS and check.data["iommu_group_type"] == {GPU0: "identity", NIC0: "identity"}


def test_no_rdma_nic_skips_the_path(tmp_path):
    host = RecordedHost(pci_bus(tmp_path / "host", (GPU0_PATH.replace(f"/{GPU0}", ""), *BRIDGE), (GPU0_PATH, *H100)))
    (result,) = gpudirect.run(context({"preset": "h100-sxm"}, host=host))
    assert result.verdict == SKIP and "no RDMA NIC" in result.detail


@pytest.mark.parametrize(
    "output,gbps",
    [
        # ib_write_bw --report_gbits result block (perftest's REPORT_FMT: bytes, iterations, peak, average, msg rate)
        (
            " #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]   MsgRate[Mpps]\n"
            " 65536      1834829          0.00               384.72             0.733798\n",
            384.72,
        ),
        ("Couldn't connect to localhost:18515\n", None),
    ],
)
def test_the_bandwidth_is_read_from_perftests_result_line(output, gbps):
    assert gpudirect.parse_bandwidth(output) == gbps


@pytest.mark.parametrize(
    "fault,check_id",
    [({"acs": ACS_RR_CR_UF_SV}, "gpudirect.acs"), ({"peermem": False}, "gpudirect.peermem")],
)
def test_a_gpudirect_fault_fails_the_run_with_exit_code_1_and_a_healthy_node_exits_0(
    monkeypatch, tmp_path, fault, check_id
):
    monkeypatch.setattr(runner, "families", lambda ctx: [("gpudirect", gpudirect.run)])
    healthy = runner.validate(context({"preset": "h100-sxm"}, host=node(tmp_path / "ok")))
    assert healthy.exit_code == 0
    broken = runner.validate(context({"preset": "h100-sxm"}, host=node(tmp_path / "bad", **fault)))
    assert [c.id for c in broken.checks if c.verdict == FAIL] == [check_id] and broken.exit_code == 1


def test_the_report_carries_the_nic_firmware_and_cpu_microcode_for_the_fleet_summary(monkeypatch, tmp_path):
    host = node(tmp_path)
    (tmp_path / "host/sys/devices" / NIC0_PATH / "infiniband/mlx5_0/fw_ver").write_text("28.39.1002\n")
    with open(tmp_path / "host/proc/cpuinfo", "a") as cpuinfo:
        cpuinfo.write("microcode\t: 0x2b000571\n")
    monkeypatch.setattr(runner, "families", lambda ctx: [])
    report = runner.validate(context({"preset": "h100-sxm"}, host=host))
    assert report.environment["firmware"] == {"nic": {"mlx5_0": "28.39.1002"}, "cpu_microcode": "0x2b000571"}


# A stand-in for perftest's ib_write_bw (there is no RDMA NIC here), built from linux-rdma/perftest: `--help` lists
# --bind_source_ip (src/perftest_parameters.c, releases from 23.07 on); the server is the run without a host argument;
# the client prints the REPORT_FMT result block. Each run records its argv and environment.
FAKE_IB_WRITE_BW = """#!{python}
import json, os, sys, time
if "--help" in sys.argv:
    print("  -p, --port=<port>  Listen on/connect to port <port> (default 18515)")
    if {new}:
        print("      --bind_source_ip  Source IP of the interface used for connection establishment.")
    sys.exit(0)
server = sys.argv[-2] == "--bind_source_ip" or "." not in sys.argv[-1]  # the client ends with the host
listening = os.path.join({log!r}, "listening")
if server:
    time.sleep({setup})  # the device and CUDA contexts before the socket listens (write_bw.c main)
    open(listening, "w").close()
elif not os.path.exists(listening):
    sys.exit("Couldn't connect to 127.0.0.1:18599")  # perftest_communication.c, ethernet_client_connect
with open(os.path.join({log!r}, "server.json" if server else "client.json"), "w") as log:
    json.dump({{"argv": sys.argv[1:], "env": dict(os.environ)}}, log)
if server:
    time.sleep(60)
print(" #bytes     #iterations    BW peak[Gb/sec]    BW average[Gb/sec]   MsgRate[Mpps]")
print(" 65536      1834829          0.00               384.72             0.733798")
"""


def _fake_perftest(monkeypatch, tmp_path, new=True, setup=0.0) -> None:
    """The stand-in ib_write_bw first on PATH; `setup`: seconds before its server listens."""
    import sys

    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin/ib_write_bw"
    fake.write_text(FAKE_IB_WRITE_BW.format(python=sys.executable, new=new, log=str(tmp_path), setup=setup))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize("new_perftest", [True, False])
def test_ib_write_bw_listens_on_loopback_alone_and_picks_the_gpu_by_nvml_index(monkeypatch, tmp_path, new_perftest):
    _fake_perftest(monkeypatch, tmp_path, new=new_perftest)
    # an operator's (or a scheduler's) CUDA_VISIBLE_DEVICES would renumber the GPUs ib_write_bw sees
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert gpudirect.measure_pair("mlx5_0", 3, 18599, seconds=1) == 384.72
    server, client = (json.loads((tmp_path / f"{side}.json").read_text()) for side in ("server", "client"))
    for side in (server, client):
        assert "--use_cuda=3" in side["argv"] and "CUDA_VISIBLE_DEVICES" not in side["env"]
        # the message size the 90% threshold was set with (azurehpc-health-checks check_ib_bw_gdr: -s 8388608)
        assert side["argv"][side["argv"].index("-s") + 1] == "8388608"
        assert side["env"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # CUDA numbers the GPUs as NVML does
    assert client["argv"][-1] == "127.0.0.1"
    if new_perftest:  # the out-of-band exchange listens on loopback, not on every interface
        assert server["argv"][server["argv"].index("--bind_source_ip") + 1] == "127.0.0.1"
    else:
        assert "--bind_source_ip" not in server["argv"]


@pytest.mark.parametrize("product,verdict", [("p4d.24xlarge", INFO), ("g4dn.metal", FAIL)])
def test_an_ec2_bare_metal_instance_is_judged_as_a_server_and_an_ec2_vm_is_not(tmp_path, product, verdict):
    # EC2 names itself "Amazon EC2" in DMI on VMs and bare-metal instances alike; ".metal" in the product name marks
    # the latter (systemd src/basic/virt.c, detect_vm_dmi: "don't help us distinguish between Amazon EC2 virtual
    # machines and bare-metal instances")
    host = node(tmp_path, acs=ACS_RR_CR_UF_SV)
    dmi = tmp_path / "host/sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "sys_vendor").write_text("Amazon EC2\n")
    (dmi / "product_name").write_text(f"{product}\n")
    assert checks(host)["gpudirect.acs"].verdict == verdict


@pytest.mark.parametrize("network,judged", [("100GbE", False), ("400Gb/s InfiniBand", True), (None, True)])
def test_a_host_whose_spec_has_no_rdma_network_is_not_held_to_gpudirect(tmp_path, network, judged):
    # a management or storage ConnectX in Ethernet mode is an RDMA device too (/sys/class/infiniband/mlx5_N): on a
    # host whose contract has no RDMA fabric its place and nvidia_peermem are not faults
    from dlbench.hostspec import spec

    path = tmp_path / "spec.yml"
    path.write_text(f"hardware:\n  network: {network}\n" if network else "hardware:\n  ram: 512GB DDR4 ECC\n")
    host = node(tmp_path, nic_path="pci0000:80/0000:80:01.0/0000:81:00.0", nic_numa=1, peermem=False)
    found = {c.id: c for c in gpudirect.run(context({"preset": "h100-sxm"}, host=host, spec=spec.load(path)))}
    if judged:
        assert found["gpudirect.nic_affinity"].verdict == found["gpudirect.peermem"].verdict == FAIL
    else:
        assert list(found) == ["gpudirect.path"] and found["gpudirect.path"].verdict == SKIP
        assert "no RDMA" in found["gpudirect.path"].detail and "100GbE" in found["gpudirect.path"].detail


def test_a_client_that_came_before_the_server_listened_tries_again(monkeypatch, tmp_path):
    _fake_perftest(monkeypatch, tmp_path, setup=2.5)
    assert gpudirect.measure_pair("mlx5_0", 0, 18598, seconds=1) == 384.72


@pytest.mark.parametrize("dmabuf", [True, False])
def test_without_nvidia_peermem_ib_write_bw_registers_gpu_memory_through_dma_buf(monkeypatch, tmp_path, dmabuf):
    # perftest maps GPU memory through nvidia-peermem unless told --use_cuda_dmabuf (src/perftest_parameters.c)
    _fake_perftest(monkeypatch, tmp_path)
    assert gpudirect.measure_pair("mlx5_0", 0, 18597, seconds=1, dmabuf=dmabuf) == 384.72
    for side in ("server", "client"):
        argv = json.loads((tmp_path / f"{side}.json").read_text())["argv"]
        assert ("--use_cuda_dmabuf" in argv) is dmabuf


@pytest.mark.parametrize("cmdline,verdict", [("intel_iommu=on", WARN), ("intel_iommu=on iommu=pt", PASS)])
def test_an_iommu_group_without_its_type_is_judged_by_the_boot_options(tmp_path, cmdline, verdict):
    # before Linux 5.11 a group has no `type` (Documentation/ABI/testing/sysfs-kernel-iommu_groups: v5.11): the
    # translation cannot be read, and without iommu=pt the IOMMU translates by default
    host = node(tmp_path)
    for number, path in enumerate((GPU0_PATH, NIC0_PATH)):
        group = tmp_path / f"host/sys/kernel/iommu_groups/{number + 30}"
        group.mkdir(parents=True)
        _link(tmp_path / "host/sys/devices" / path / "iommu_group", group)
    (tmp_path / "host/sys/class/iommu/dmar0").mkdir(parents=True)
    (tmp_path / "host/proc/cmdline").write_text(f"BOOT_IMAGE=/vmlinuz-5.4.0-216-generic root=/dev/sda1 {cmdline}\n")
    check = checks(host)["gpudirect.iommu"]
    assert check.verdict == verdict
    if verdict == WARN:
        assert "iommu=pt" in check.detail and "5.11" in check.detail

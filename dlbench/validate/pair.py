"""`dlbench validate pair`: this host's half of a two-host all-reduce over the network only.

Two hosts, one rank each, join one torch.distributed job whose rendezvous is rank 0's address and port; the job
sweeps all-reduce message sizes with nccl-tests' definitions (interconnect.bus_bandwidth) and writes what it
measured, for `dlbench validate pairs` to judge on the control node. On GPUs NCCL is kept off every path but the
network: NCCL_P2P_DISABLE=1 and NCCL_SHM_DISABLE=1, as Azure's health checks run their network all-reduce
(azurehpc-health-checks, check_nccl_allreduce_ib_loopback). On the CPU the same job runs over gloo.

Which network NCCL used is recorded: where no RDMA device is usable (no libibverbs, no active port, NCCL_IB_HCA
naming none) NCCL falls back to TCP sockets without an error, and a pair over sockets proves nothing about an RDMA
fabric. NCCL names its choice on each communicator, INFO(NCCL_INIT, "Using network %s") in src/init.cc: "IB" (its
verbs transport, InfiniBand and RoCE, src/transport/net_ib), "Socket" (src/transport/net_socket.cc) or a plugin's
name; NCCL_DEBUG=INFO with NCCL_DEBUG_FILE (%h host, %p process, src/debug.cc) writes it to a file, not the output.

Nothing waits forever: `timeout` bounds the rendezvous and every collective, and the processes are killed past it.
Rank 0's rendezvous store listens on the pair's address alone, and only while the job runs; both ranks' backend
sockets are bound to the interface that carries that address (GLOO_SOCKET_IFNAME, NCCL_SOCKET_IFNAME).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

from dlbench import atomic
from dlbench.errors import UserError

# Keep NCCL on the network: no GPU peer-to-peer over NVLink/PCIe, no shared memory between processes
# (https://docs.nvidia.com/deeplearning/nccl/user-guide/docs/env.html#nccl-p2p-disable, #nccl-shm-disable).
NETWORK_ONLY = {"NCCL_P2P_DISABLE": "1", "NCCL_SHM_DISABLE": "1"}
NCCL_NETWORK = re.compile(r"NCCL INFO Using network (.+?)\s*$", re.MULTILINE)
NCCL_LOG = "nccl.%h.%p.log"
DEFAULT_PORT = 29600
DEFAULT_TIMEOUT = 300.0


def interface_of(address: str) -> str:
    """The network interface that holds `address` on this host (psutil's view of getifaddrs)."""
    import psutil

    for name, addresses in psutil.net_if_addrs().items():
        if any(entry.address.split("%")[0] == address for entry in addresses):
            return name
    raise UserError(f"no interface on this host holds {address}")


def local_address_towards(peer: str) -> str:
    """The source address the kernel picks to reach `peer` (a UDP connect sends nothing)."""
    family = socket.AF_INET6 if ipaddress.ip_address(peer).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((peer, 9))
        return probe.getsockname()[0]


def _names_loopback(master: str) -> bool:
    """Whether `master` asks for the loopback itself (127.0.0.1, ::1, localhost): two ranks on one machine."""
    try:
        return ipaddress.ip_address(master).is_loopback
    except ValueError:
        return master.lower().rstrip(".") in ("localhost", "localhost.localdomain", "ip6-localhost")


def resolve(master: str) -> str:
    try:
        return socket.getaddrinfo(master, None, proto=socket.IPPROTO_TCP)[0][4][0]
    except (socket.gaierror, UnicodeError) as error:
        raise UserError(f"--master {master}: cannot resolve it ({error})") from None


def nccl_network(folder: Path) -> str | None:
    """The network NCCL's communicators used, from their INFO logs in `folder` ("IB", "Socket"); None when none
    said."""
    names = {
        match.group(1)
        for log in sorted(folder.glob("nccl.*.log"))
        for match in NCCL_NETWORK.finditer(log.read_text(errors="replace"))
    }
    return ", ".join(sorted(names)) or None


def _log_nccl_network() -> Path | None:
    """Have NCCL write its INFO lines to a new folder (unless the operator set NCCL_DEBUG or NCCL_DEBUG_FILE)."""
    if "NCCL_DEBUG" in os.environ or "NCCL_DEBUG_FILE" in os.environ:
        return None
    folder = Path(tempfile.mkdtemp(prefix="dlbench-nccl-"))
    os.environ.update(NCCL_DEBUG="INFO", NCCL_DEBUG_SUBSYS="INIT", NCCL_DEBUG_FILE=str(folder / NCCL_LOG))
    return folder


def run(
    rank: int,
    master: str,
    port: int,
    level: str,
    timeout: float,
    use_cuda: bool,
    label: str,
    interface: str | None = None,
) -> dict:
    """Join the two-rank job as `rank` and return the result written to the JSON file."""
    from dlbench.validate import interconnect  # not at the top: `dlbench --help` stays free of the checks

    address = resolve(master)
    if rank == 0 and ipaddress.ip_address(address).is_loopback and not _names_loopback(master):
        # Debian's and Ubuntu's /etc/hosts give the machine's own name 127.0.1.1: the peer, which resolves the name
        # elsewhere, could never reach a rendezvous there
        raise UserError(
            f"--master {master} resolves to {address} on this host, a loopback address the other host cannot reach "
            "(/etc/hosts): give the host's address on the pair network (--master ADDRESS; validate_pair_address)"
        )
    own = address if rank == 0 else local_address_towards(address)
    interface = interface or interface_of(own)
    environment = dict(NETWORK_ONLY, GLOO_SOCKET_IFNAME=interface, NCCL_SOCKET_IFNAME=interface)
    for name, value in environment.items():
        os.environ.setdefault(name, value)  # an operator's own choice (e.g. NCCL_SOCKET_IFNAME=ib0) stands
    level = level if use_cuda else "cpu"
    logs = _log_nccl_network() if use_cuda else None
    started = time.time()
    try:
        outcome = interconnect.sweep({rank: 0 if use_cuda else None}, 2, address, port, level, timeout)
        network = "TCP" if not use_cuda else nccl_network(logs) if logs else None
    finally:
        if logs:
            shutil.rmtree(logs, ignore_errors=True)
    result = {
        "label": label,
        "rank": rank,
        "host": socket.gethostname(),
        "master": f"{master}:{port}",
        "interface": interface,
        "backend": "nccl" if use_cuda else "gloo",
        "network": network,  # gloo: TCP; NCCL: the transport it chose ("IB", "Socket"), None when not known
        "level": level,
        "environment": {name: os.environ[name] for name in environment},
        "started": started,
        "seconds": round(time.time() - started, 3),
    }
    if "error" in outcome:
        return result | {"error": outcome["error"]}
    sweep = {
        str(nbytes): dict(
            zip(("algbw_gbs", "busbw_gbs"), (round(v, 3) for v in interconnect.bus_bandwidth(nbytes, seconds, 2)))
        )
        for nbytes, seconds in outcome["seconds"].items()
    }
    return result | {
        "correct": outcome["correct"],
        "sweep": sweep,
        "busbw_gbs": max(point["busbw_gbs"] for point in sweep.values()),
    }


def main(args) -> int:
    atomic.check_writable(args.pair_json)
    use_cuda = False
    if not args.cpu:
        import torch

        use_cuda = torch.cuda.is_available() and torch.distributed.is_nccl_available()
    result = run(args.rank, args.master, args.port, args.pair_level, args.timeout, use_cuda, args.label, args.interface)
    atomic.write_json(args.pair_json, result)
    if "error" in result:
        print(f"pair {args.label}: {result['error']}")
        return 1
    print(f"pair {args.label}: rank {args.rank}, bus bandwidth {result['busbw_gbs']} GB/s over {result['interface']}")
    return 0 if result["correct"] else 1

"""The two-host network all-reduce: the playbook's pairing (filter_plugins/validate_pairs.py), the judgement against
the spec's NIC speed (dlbench/validate/pairs.py), and `dlbench validate pair` run for real as two processes on
127.0.0.1 over gloo, joined by their rendezvous, then judged by `dlbench validate pairs`.

The playbook on local hosts is tests/test_validate_playbook.py.
"""

import importlib.util
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import run_dlbench
from dlbench.hostspec import spec
from dlbench.validate import pair, pairs

REPO = Path(__file__).resolve().parents[1]
_plugin = importlib.util.spec_from_file_location(
    "validate_pairs", REPO / "playbooks" / "roles" / "validate" / "filter_plugins" / "validate_pairs.py"
)
validate_pairs = importlib.util.module_from_spec(_plugin)
_plugin.loader.exec_module(validate_pairs)


@pytest.mark.parametrize("count", [2, 3, 4, 5, 8, 9])
def test_every_host_is_paired_and_none_runs_two_pairs_at_once(count):
    hosts = [f"gpu{n:02}" for n in range(count)]
    rounds = validate_pairs.validate_pair_rounds(hosts)
    paired = [host for round_ in rounds for pair in round_ for host in pair]
    assert set(paired) == set(hosts)
    for round_ in rounds:
        in_round = [host for pair in round_ for host in pair]
        assert len(in_round) == len(set(in_round)) and all(len(pair) == 2 for pair in round_)
    # even: each host once, one round; odd: the one left over is paired with the first host in a second round
    assert len(rounds) == 1 + count % 2
    assert len(paired) == count + count % 2


def test_the_first_half_is_paired_with_the_second_and_the_odd_host_with_the_first():
    assert validate_pairs.validate_pair_rounds(["a", "b", "c", "d", "e"]) == [[["a", "c"], ["b", "d"]], [["e", "a"]]]
    assert validate_pairs.validate_pair_rounds(["a", "b"]) == [[["a", "b"]]]
    assert validate_pairs.validate_pair_rounds(["a"]) == [] and validate_pairs.validate_pair_rounds([]) == []


def _link(tmp_path, network):
    path = tmp_path / "spec.yml"
    path.write_text(json.dumps({"hardware": {"network": network}}))
    return pairs.fastest_link(spec.load(path))


def _result(rank, busbw, correct=True, label="a--b", backend="nccl", network="IB"):
    return {
        "label": label,
        "rank": rank,
        "busbw_gbs": busbw,
        "correct": correct,
        "backend": backend,
        "network": network,
    }


def test_a_pair_below_the_achievable_share_of_line_rate_fails_on_rdma_and_warns_on_tcp(tmp_path):
    # 400 Gb/s NDR = 50 GB/s; the floor is 0.72 of it, Azure's network-only all-reduce share (18 of 25 GB/s on HDR)
    ndr = _link(tmp_path, ["100GbE", "400Gb/s InfiniBand"])
    assert ndr["gbs"] == 50 and ndr["rdma"] == "InfiniBand"
    healthy = pairs.judge("a--b", [_result(0, 45.1), _result(1, 45.1)], ndr)
    slow = pairs.judge("a--b", [_result(0, 30.0), _result(1, 30.0)], ndr)
    assert healthy["verdict"] == "PASS" and healthy["expected"].startswith(">= 36.0 GB/s")
    assert slow["verdict"] == "FAIL" and "60% of line rate" in slow["detail"] and "Azure" in slow["source"]
    tcp = pairs.judge("a--b", [_result(0, 5.0)], _link(tmp_path, "100GbE"))
    assert tcp["verdict"] == "WARN" and "TCP" in tcp["detail"]


@pytest.mark.parametrize(
    "backend, network, carrier",
    [("gloo", "TCP", "over gloo (TCP sockets)"), ("nccl", "Socket", "over NCCL's socket transport")],
)
def test_a_pair_that_did_not_use_the_rdma_fabric_the_spec_declares_fails_however_fast(
    tmp_path, backend, network, carrier
):
    # an acceptance run must not pass a host whose RDMA fabric it never tested: a fast figure over TCP proves nothing
    roce = _link(tmp_path, "100GbE RoCE")  # 12.5 GB/s: the floor is 9 GB/s
    fast = pairs.judge("a--b", [_result(0, 11.0, backend=backend, network=network)], roce)
    assert fast["verdict"] == "FAIL" and carrier in fast["detail"] and "RoCE fabric was not exercised" in fast["detail"]
    assert ("without --cpu" if backend == "gloo" else "rdma-core") in fast["detail"]
    # on a spec without RDMA the same pair is judged by its speed alone
    assert (
        pairs.judge("a--b", [_result(0, 11.0, backend=backend, network=network)], _link(tmp_path, "100GbE"))["verdict"]
        == "PASS"
    )
    # over NCCL's RDMA transport, or where NCCL's choice was not recorded (NCCL_DEBUG set by the operator), by speed
    assert pairs.judge("a--b", [_result(0, 11.0, network="IB")], roce)["verdict"] == "PASS"
    assert pairs.judge("a--b", [_result(0, 11.0, network=None)], roce)["verdict"] == "PASS"


def test_the_network_nccl_chose_is_read_from_its_info_lines(tmp_path):
    # NCCL's INFO line as src/debug.cc prints it (host:pid:tid [cudaDev] NCCL INFO ...) for src/init.cc's
    # INFO(NCCL_INIT, "Using network %s") after src/transport/net_ib/init.cc found no device and net_socket.cc took
    # the interface, one file per process as NCCL_DEBUG_FILE=nccl.%h.%p.log names them
    (tmp_path / "nccl.node1.4711.log").write_text(
        "node1:4711:4790 [0] NCCL INFO NET/IB : No device found.\n"
        "node1:4711:4790 [0] NCCL INFO NET/Socket : Using [0]eth0:10.0.0.11<0>\n"
        "node1:4711:4790 [0] NCCL INFO Using network Socket\n"
    )
    assert pair.nccl_network(tmp_path) == "Socket"
    (tmp_path / "nccl.node1.4711.log").write_text("node1:4711:4790 [0] NCCL INFO Using network IB\n")
    assert pair.nccl_network(tmp_path) == "IB"
    assert pair.nccl_network(tmp_path / "nothing") is None


def test_a_pair_that_did_not_run_fails_with_its_reason_and_no_spec_means_no_verdict(tmp_path):
    link = _link(tmp_path, "100GbE RoCE")
    timed_out = {"label": "a--b", "rank": 1, "error": "rank 1: DistStoreError: timed out after 600s"}
    assert pairs.judge("a--b", [timed_out], link) == pairs.judge("a--b", [_result(0, 12.0), timed_out], link)
    assert "rank 1" in pairs.judge("a--b", [timed_out], link)["detail"]
    assert pairs.judge("a--b", [_result(1, 12.0)], link)["detail"].startswith("no result from rank 0")
    assert pairs.judge("a--b", [_result(0, 12.0, correct=False)], link)["verdict"] == "FAIL"
    assert pairs.judge("a--b", [_result(0, 12.0)], None)["verdict"] == "INFO"


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port):
    return [c.laddr.ip for c in psutil.net_connections("inet") if c.status == "LISTEN" and c.laddr.port == port]


def _pair(tmp_path, ranks=(0, 1), timeout="120s", label="host-a--host-b", listeners=None):
    """Start the ranks, rank 0 first; with `listeners` (a list), record the addresses rank 0 listens on before rank 1
    starts."""
    port, processes = _free_port(), []
    for rank in ranks:
        if rank == 1 and listeners is not None:
            for _ in range(600):  # rank 0 imports torch first: seconds on a loaded machine
                listeners[:] = _listening(port)
                if listeners:
                    break
                time.sleep(0.2)
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "dlbench", "validate", "pair", "--rank", str(rank), "--master", "127.0.0.1"]
                + ["--port", str(port), "--cpu", "--timeout", timeout, "--label", label]
                + ["--json", str(tmp_path / f"{label}.rank{rank}.json")],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [process.communicate(timeout=300) for process in processes]
    return [(process.returncode, *output) for process, output in zip(processes, outputs)]


def test_two_processes_join_over_127_0_0_1_and_their_pair_is_judged(tmp_path):
    listeners = []
    outcomes = _pair(tmp_path, listeners=listeners)
    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    assert listeners == ["127.0.0.1"]  # the rendezvous on the pair's address, not on every interface
    result = json.loads((tmp_path / "host-a--host-b.rank0.json").read_text())
    assert result["correct"] is True and result["backend"] == "gloo" and result["interface"] == "lo"
    assert result["network"] == "TCP"
    assert result["environment"]["NCCL_P2P_DISABLE"] == "1" and result["environment"]["NCCL_SHM_DISABLE"] == "1"
    assert result["environment"]["GLOO_SOCKET_IFNAME"] == "lo"
    assert set(result["sweep"]) == {"4096", "262144", "4194304"} and result["busbw_gbs"] > 0
    # 10 Mb/s is far below what loopback carries; 400 Gb/s RoCE (50 GB/s) is far above what gloo reaches on a CPU
    slow_spec, ok_spec = tmp_path / "fast-network.yml", tmp_path / "slow-network.yml"
    slow_spec.write_text("hardware:\n  network: 400GbE RoCE\n")
    ok_spec.write_text("hardware:\n  network: 10Mb/s\n")
    (tmp_path / "out").mkdir()
    passed = run_dlbench("validate", "pairs", tmp_path, "--spec", ok_spec, "--json", tmp_path / "out" / "ok.json")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.startswith("PASS host-a--host-b:")
    failed = run_dlbench("validate", "pairs", tmp_path, "--spec", slow_spec)
    assert failed.returncode == 1 and "slow or failed pairs: host-a--host-b" in failed.stdout
    verdicts = json.loads((tmp_path / "out" / "ok.json").read_text())
    assert [v["pair"] for v in verdicts["pairs"]] == ["host-a--host-b"] and verdicts["link"]["gbs"] == 0.00125


def test_a_rank_whose_peer_never_comes_gives_up_after_its_timeout(tmp_path):
    [(code, stdout, _)] = _pair(tmp_path, ranks=(0,), timeout="3s", label="lonely--gone")
    result = json.loads((tmp_path / "lonely--gone.rank0.json").read_text())
    assert code == 1 and "error" in result and "lonely--gone" in stdout
    judged = run_dlbench("validate", "pairs", tmp_path)
    assert judged.returncode == 1 and "FAIL lonely--gone: - " in judged.stdout


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    empty = run_dlbench("validate", "pairs", tmp_path)
    assert empty.returncode == 2 and "no pair results" in empty.stderr and "Traceback" not in empty.stderr
    unresolvable = run_dlbench(
        "validate", "pair", "--rank", "1", "--master", "no-such-host.invalid", "--json", tmp_path / "r.json"
    )
    assert unresolvable.returncode == 2 and "cannot resolve" in unresolvable.stderr
    assert not (tmp_path / "r.json").exists()
    (tmp_path / "other.json").write_text("{}")
    assert "not a `dlbench validate pair` result" in run_dlbench("validate", "pairs", tmp_path).stderr


def test_a_pair_measured_over_gloo_on_an_rdma_fabric_says_the_fabric_was_not_exercised(tmp_path):
    # gloo moves tensors over TCP sockets only: its figure says nothing about the RoCE or InfiniBand NICs
    gloo = dict(_result(0, 2.0), backend="gloo")
    verdict = pairs.judge("a--b", [gloo], _link(tmp_path, "400GbE RoCE"))
    assert verdict["verdict"] == "FAIL" and "gloo" in verdict["detail"] and "not exercised" in verdict["detail"]
    assert "over RoCE" not in verdict["detail"]


def test_rank_0_refuses_a_name_that_resolves_to_loopback_on_its_own_host(monkeypatch):
    # Debian's and Ubuntu's /etc/hosts map the machine's own name to 127.0.1.1 (cloud-init's template too): rank 0
    # would listen there, and its peer, which resolves the name through DNS, would wait out its whole timeout
    from dlbench.errors import UserError
    from dlbench.validate import pair

    real = socket.getaddrinfo
    hosts_file = {"node1": "127.0.1.1"}

    def resolver(name, *args, **kwargs):
        if name in hosts_file:
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (hosts_file[name], 0))]
        return real(name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    started = time.monotonic()
    with pytest.raises(UserError, match=r"--master node1 resolves to 127\.0\.1\.1 .*validate_pair_address"):
        pair.run(0, "node1", 29651, "quick", 30.0, False, "node1--node2")
    assert time.monotonic() - started < 10  # refused at once, not after the rendezvous timeout
    # a loopback address given as such (the test hosts', or a single machine's) stands
    assert pair.resolve("127.0.0.1") == "127.0.0.1" and pair.resolve("localhost") in ("127.0.0.1", "::1")

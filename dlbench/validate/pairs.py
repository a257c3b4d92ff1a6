"""`dlbench validate pairs DIR`: judge the two-host all-reduces (`dlbench validate pair` results) of a fleet and name
the slow pairs.

A pair's bus bandwidth is judged against the line rate of the spec's fastest network link: with one rank per host
each rank's traffic crosses one NIC, and for two ranks busbw = algbw (nccl-tests: busbw = algbw · 2(n−1)/n), which a
full-duplex link caps at its line rate in one direction. The floor is the fraction of line rate Azure's health checks
hold the same network-only NCCL all-reduce to: 18 GB/s on ND A100 v4 nodes, whose NICs are 200 Gb/s HDR InfiniBand
(25 GB/s), i.e. 0.72 (azurehpc-health-checks, check_nccl_allreduce_ib_loopback, NCCL_P2P_DISABLE=1 and
NCCL_SHM_DISABLE=1). Below it a pair FAILs on an RDMA fabric (InfiniBand, RoCE); on a spec whose network is plain
Ethernet (TCP sockets), where NCCL and gloo often fall short of a fast link on healthy hosts, it is a WARN. Without a
spec the pairs are measured, never judged.

On a spec that declares an RDMA fabric, a pair that did not run over RDMA FAILs whatever its speed: over gloo (a
host without a CUDA GPU, or `--cpu`), or over NCCL's socket transport (NCCL found no usable RDMA device and fell back
to TCP; `dlbench validate pair` records its "Using network" line). An acceptance run must not accept a host whose
fabric it never tested, and a fast TCP figure says nothing about the RDMA path; the detail says how to run it there.
"""

from __future__ import annotations

import json
from pathlib import Path

from dlbench import atomic
from dlbench.errors import UserError
from dlbench.checks import FAIL, INFO, PASS, WARN

ACHIEVABLE_FRACTION = 0.72
SOURCE = (
    "Azure azurehpc-health-checks check_nccl_allreduce_ib_loopback: 18 GB/s busbw on 200 Gb/s HDR (0.72 of line rate)"
)


def fastest_link(spec: dict | None) -> dict | None:
    """The spec's fastest network link: {"gbs": line rate in GB/s, "rdma": RoCE | InfiniBand | RDMA | None, "text"}."""
    links = ((spec or {}).get("hardware") or {}).get("network") or []
    if not links:
        return None
    link = max(links, key=lambda entry: entry["speed_mbps"])
    return {"gbs": link["speed_mbps"] / 8000, "rdma": link["rdma"], "text": link["text"]}


def judge(label: str, results: list[dict], link: dict | None) -> dict:
    """One pair's verdict from its ranks' results (rank 0 carries the sweep both ranks measured)."""
    verdict = {"pair": label, "busbw_gbs": None, "expected": None, "source": None}
    errors = [f"rank {r.get('rank')}: {r['error']}" for r in results if "error" in r]
    by_rank = {r.get("rank"): r for r in results if "error" not in r}
    if errors:
        return verdict | {"verdict": FAIL, "detail": "; ".join(errors)}
    if 0 not in by_rank:
        return verdict | {"verdict": FAIL, "detail": "no result from rank 0 (the job did not run there)"}
    measured = by_rank[0]
    verdict |= {key: measured.get(key) for key in ("busbw_gbs", "backend", "network")}
    if not measured.get("correct", False):
        return verdict | {"verdict": FAIL, "detail": "the all-reduce summed wrongly"}
    if link is None:
        return verdict | {"verdict": INFO, "detail": "no network link in the spec: measured, not judged"}
    floor = round(ACHIEVABLE_FRACTION * link["gbs"], 3)
    verdict |= {"expected": f">= {floor} GB/s ({ACHIEVABLE_FRACTION} of {link['text']})", "source": SOURCE}
    share = f"{measured['busbw_gbs'] / link['gbs']:.0%} of line rate"
    if link["rdma"] and (not_rdma := _not_over_rdma(measured)):
        carrier, how = not_rdma
        detail = f"{share} over {carrier}: the {link['rdma']} fabric was not exercised; {how}"
        return verdict | {"verdict": FAIL, "detail": detail}
    if measured["busbw_gbs"] >= floor:
        return verdict | {"verdict": PASS, "detail": share}
    if link["rdma"]:
        return verdict | {"verdict": FAIL, "detail": f"slow: {share} over {link['rdma']}"}
    return verdict | {"verdict": WARN, "detail": f"slow: {share} (no RDMA in the spec: TCP sockets)"}


def _not_over_rdma(measured: dict) -> tuple[str, str] | None:
    """(what carried the pair, how to run it over RDMA) for a pair that did not use an RDMA transport, else None."""
    if measured.get("backend") == "gloo":
        # gloo has no RDMA transport: the host had no CUDA GPU for NCCL, or the pair was run with --cpu
        return "gloo (TCP sockets)", (
            "run the pair over NCCL on the GPUs: `dlbench validate pair` without --cpu on hosts whose torch sees a "
            "CUDA GPU (playbooks/validate.yml: no --cpu in validate_pair_extra_args)"
        )
    if measured.get("network") == "Socket":
        return "NCCL's socket transport (NCCL found no usable RDMA device)", (
            "NCCL uses RDMA where libibverbs (rdma-core) loads and a port is ACTIVE (`ibv_devinfo`): install "
            "rdma-core and the NIC's driver, and check NCCL_IB_HCA and NCCL_IB_DISABLE if set"
        )
    return None


def load(folder: Path) -> dict[str, list[dict]]:
    """Every pair result in `folder` (`*.json`), grouped by the pair's label."""
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    pairs: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"{path}: not a pair result ({error})") from None
        if not isinstance(result, dict) or "label" not in result or "rank" not in result:
            raise UserError(f"{path}: not a `dlbench validate pair` result (no label and rank)")
        pairs.setdefault(result["label"], []).append(result)
    if not pairs:
        raise UserError(f"{folder}: no pair results (*.json from `dlbench validate pair`)")
    return pairs


def main(folder: Path, spec_path: Path | None, output: Path | None) -> int:
    from dlbench.hostspec import spec

    if output is not None:
        atomic.check_writable(output)
    link = fastest_link(spec.load(spec_path) if spec_path else None)
    verdicts = [judge(label, results, link) for label, results in sorted(load(folder).items())]
    slow = [v for v in verdicts if v["verdict"] in (FAIL, WARN)]
    for v in verdicts:
        measured = "-" if v["busbw_gbs"] is None else f"{v['busbw_gbs']} GB/s"
        print(f"{v['verdict']:4} {v['pair']}: {measured}  {v['expected'] or ''}  {v['detail']}".rstrip())
    if slow:
        print("slow or failed pairs: " + ", ".join(v["pair"] for v in slow))
    if output is not None:
        atomic.write_json(output, {"link": link, "fraction": ACHIEVABLE_FRACTION, "pairs": verdicts})
    return 1 if any(v["verdict"] == FAIL for v in verdicts) else 0

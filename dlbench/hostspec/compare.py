"""The spec against the host, field by field, as checks of `dlbench validate`'s report model (family `spec`).

PASS: the host has what the spec declares. FAIL: it has something else, with the expected and the found value.
WARN: more than ordered (RAM, which costs nothing to the workload but means the order and the host differ).
SKIP: the host cannot answer (no Docker, no permission to read the SMBIOS tables), with the reason.
"""

from __future__ import annotations

import re

from dlbench.hostspec import units
from dlbench.hostspec.reader import Unanswered
from dlbench.checks import FAIL, PASS, SKIP, WARN, CheckResult

# Storage: vendors' "2TB" is 2·10^12 bytes and real drives have a little more (IDEMA LBA1-03: 2 000 398 934 016 B);
# `lsblk`'s "1.8T" is binary and rounded to one decimal (1.1% off). 3% absorbs both without mistaking a
# 1.92TB drive for a 2TB one by more than the seller does.
STORAGE_TOLERANCE = 0.03
# RAM read from /proc/meminfo: MemTotal is the installed memory less what the firmware reserves (e820) and the
# kernel's own code and early allocations (Documentation/filesystems/proc.rst: "Total usable RAM"): typically 1-3%
# below the modules' sum on servers; 5% still tells 512 GB from 480 GB. The modules' own sum (dmidecode) is exact.
MEMTOTAL_TOLERANCE = 0.05
INSTALLED_TOLERANCE = 0.01
# NVML's total memory of a GPU is its usable memory: an "80GB" H100 reports 81559 MiB of 81920 (99.6%).
GPU_MEMORY_TOLERANCE = 0.02

SOFTWARE_TITLES = {
    "nvidia_driver": "NVIDIA driver",
    "cuda": "CUDA toolkit (nvcc)",
    "cudnn": "cuDNN (the torch wheel's)",
    "pytorch": "PyTorch",
    "pytorch_cuda": "PyTorch's CUDA build",
    "docker": "Docker Engine",
    "nvidia_container_toolkit": "NVIDIA Container Toolkit",
    "prometheus": "Prometheus",
    "grafana": "Grafana",
}


def check(spec: dict, facts: dict) -> list[CheckResult]:
    source = spec["source"]
    hardware, software = spec["hardware"], spec["software"]
    results: list[CheckResult] = []
    if "cpu" in hardware:
        results += _cpu(hardware["cpu"], facts.get("cpu"), source)
    for i, gpu in enumerate(hardware.get("gpu", []), 1):
        results += _gpu(i, gpu, facts.get("gpus"), source)
    if "ram" in hardware:
        results += _ram(hardware["ram"], facts.get("memory"), source)
    if "storage" in hardware:
        results += _storage(hardware["storage"], facts.get("storage"), source)
    for i, link in enumerate(hardware.get("network", []), 1):
        results.append(_network(i, link, facts.get("network"), source))
    if "os" in software:
        results.append(_os(software["os"], facts.get("os"), source))
    for name, rule in software.items():
        if name != "os":
            results.append(_version(name, rule, facts.get(name, Unanswered("not read on this host")), source))
    return results


def _result(
    check_id: str, title: str, ok: bool, found, expected: str, source: str, detail: str = "", verdict: str | None = None
) -> CheckResult:
    verdict = verdict or (PASS if ok else FAIL)
    if verdict == FAIL and not detail:
        detail = f"expected {expected}, found {found}"
    return CheckResult(check_id, title, verdict, found, expected=expected, source=source, detail=detail)


def _skip(check_id: str, title: str, why, expected: str, source: str) -> CheckResult:
    return CheckResult(check_id, title, SKIP, expected=expected, source=source, detail=str(why))


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[\s\-_,()]+", text.lower()) if t and t not in ("nvidia", "processor")]


def _model_matches(wanted: str, found: str) -> bool:
    """Every word of the declared model is a word of the host's name ('A100 80GB' in 'NVIDIA A100-SXM4-80GB'),
    whole words: an 'A10' is not an 'A100', a '7543' not a '7543P'."""
    return set(_tokens(wanted)) <= set(_tokens(found))


def _cpu(want: dict, have, source: str) -> list[CheckResult]:
    rows = [
        ("cpu_model", "CPU model", want.get("model")),
        ("cpu_sockets", "CPU sockets", want.get("sockets")),
        ("cpu_cores", "CPU cores", want.get("cores")),
        ("cpu_threads", "CPU threads", want.get("threads")),
    ]
    results = []
    for key, title, expected in rows:
        if expected is None:
            continue
        answer = have if isinstance(have, Unanswered) else have[key.split("_")[1]]
        if isinstance(answer, Unanswered):
            results.append(_skip(f"spec.{key}", title, answer, str(expected), source))
        elif key == "cpu_model":
            results.append(
                _result(
                    "spec.cpu_model",
                    title,
                    _model_matches(expected, have["model"]),
                    have["model"],
                    f"contains {expected!r}",
                    source,
                )
            )
        else:
            found = have[key.split("_")[1]]
            results.append(_result(f"spec.{key}", title, found == expected, found, f"== {expected}", source))
    return results


def _gpu(i: int, want: dict, have, source: str) -> list[CheckResult]:
    label = want.get("model")
    title = f"GPUs: {want['count']} × {label}"
    expected = f"{want['count']} × {label}"
    if isinstance(have, Unanswered):
        return [_skip(f"spec.gpu_{i}", title, have, expected, source)]
    matching = [g for g in have if _model_matches(want.get("match", label), g["model"])]
    names = ", ".join(f"{g['index']}: {g['model']}" for g in have) or "no GPU"
    found = f"{len(matching)} × {label}"
    results = [
        _result(
            f"spec.gpu_{i}",
            title,
            len(matching) == want["count"],
            found,
            expected,
            source,
            detail=""
            if len(matching) == want["count"]
            else f"expected {expected}, found {found} (the host's GPUs: {names})",
        )
    ]
    if want.get("memory_bytes") and matching:
        sizes = [g["memory_bytes"] for g in matching if g["memory_bytes"]]
        if sizes:
            low, nominal = min(sizes), want["memory_bytes"]
            results.append(
                _result(
                    f"spec.gpu_{i}_memory",
                    f"memory of each {label}",
                    low >= nominal * (1 - GPU_MEMORY_TOLERANCE),
                    f"{low / 2**30:.1f} GiB",
                    f">= {(1 - GPU_MEMORY_TOLERANCE):.0%} of {nominal / 2**30:.0f} GiB",
                    source,
                )
            )
    return results


def _ram(want: dict, have, source: str) -> list[CheckResult]:
    results = []
    nominal = want["bytes"]
    expected_text = units.human_bytes(nominal, memory=True)
    if isinstance(have, Unanswered):
        return [_skip("spec.ram_size", "installed memory", have, expected_text, source)]
    installed = have.get("installed_bytes")
    if isinstance(installed, int):
        found, tolerance, how = installed, INSTALLED_TOLERANCE, "memory modules (dmidecode)"
    else:
        found, tolerance, how = have["mem_total_bytes"], MEMTOTAL_TOLERANCE, "MemTotal (/proc/meminfo)"
    floor = nominal * (1 - tolerance)
    verdict = FAIL if found < floor else WARN if found > nominal * (1 + INSTALLED_TOLERANCE) else PASS
    detail = {
        FAIL: f"expected {expected_text}, found {found / 2**30:.1f} GiB ({how})",
        WARN: "more memory than the spec declares",
        PASS: "",
    }[verdict]
    results.append(
        _result(
            "spec.ram_size",
            "installed memory",
            verdict == PASS,
            f"{found / 2**30:.1f} GiB",
            f"{expected_text} (>= {floor / 2**30:.1f} GiB by {how}: {tolerance:.0%} tolerance)",
            source,
            detail,
            verdict,
        )
    )
    if want.get("type"):
        kind = have.get("type")
        if isinstance(kind, Unanswered):
            results.append(_skip("spec.ram_type", "memory type", kind, want["type"], source))
        else:
            results.append(
                _result(
                    "spec.ram_type",
                    "memory type",
                    kind.upper() == want["type"].upper(),
                    kind,
                    f"== {want['type']}",
                    source,
                )
            )
    if want.get("ecc") is not None:
        ecc, expected = have.get("ecc"), "ECC on" if want["ecc"] else "ECC off"
        if isinstance(ecc, Unanswered) or ecc is None:
            results.append(_skip("spec.ram_ecc", "memory ECC", ecc, expected, source))
        else:
            results.append(
                _result(
                    "spec.ram_ecc", "memory ECC", ecc == want["ecc"], "ECC on" if ecc else "ECC off", expected, source
                )
            )
    return results


TYPE_MATCHES = {
    "NVMe SSD": {"NVMe SSD"},
    "SATA SSD": {"SATA SSD"},
    "SATA HDD": {"SATA HDD"},
    "SAS SSD": {"SSD"},
    "SSD": {"NVMe SSD", "SATA SSD", "SSD"},
    "HDD": {"SATA HDD", "HDD"},
}


def _storage(wanted: list[dict], disks, source: str) -> list[CheckResult]:
    if isinstance(disks, Unanswered):
        return [_skip("spec.storage", "storage devices", disks, "", source)]
    unused = list(disks)
    results = []
    # the most specific declarations take their disks first, so an "SSD" does not take the disk an "NVMe SSD" needs
    order = sorted(range(len(wanted)), key=lambda i: len(TYPE_MATCHES[wanted[i]["type"]]))
    for i in order:
        want = wanted[i]
        title = f"storage: {want['count']} × {want['type']} {units.human_bytes(want['bytes'])}"
        expected = f"{want['count']} × {want['type']} of {units.human_bytes(want['bytes'])} ±{STORAGE_TOLERANCE:.0%}"
        taken = []
        for disk in list(unused):
            if len(taken) == want["count"]:
                break
            if disk["type"] in TYPE_MATCHES[want["type"]] and units.within(
                disk["bytes"], want["bytes"], STORAGE_TOLERANCE
            ):
                taken.append(disk)
                unused.remove(disk)
        found = ", ".join(_disk(d) for d in taken) or "none"
        detail = (
            ""
            if len(taken) == want["count"]
            else (
                f"expected {expected}, found {len(taken)}; the host's other disks: "
                f"{', '.join(_disk(d) for d in unused) or 'none'}"
            )
        )
        results.append(
            (i, _result(f"spec.storage_{i + 1}", title, len(taken) == want["count"], found, expected, source, detail))
        )
    return [result for _, result in sorted(results, key=lambda pair: pair[0])]


def _disk(disk: dict) -> str:
    return f"{disk['name']} {disk['type']} {units.human_bytes(disk['bytes'])}"


def _network(i: int, want: dict, links, source: str) -> CheckResult:
    speed = f"{want['speed_mbps'] / 1000:g}GbE" if want["speed_mbps"] >= 1000 else f"{want['speed_mbps']}Mb/s"
    expected = f"{want['count']} × link >= {speed}" + (f" with {want['rdma']}" if want["rdma"] else "")
    title = f"network: {want['text']}"
    if isinstance(links, Unanswered):
        return _skip(f"spec.network_{i}", title, links, expected, source)

    def fits(link):
        rdma_ok = not want["rdma"] or (link["rdma"] is not None and want["rdma"] in (link["rdma"], "RDMA"))
        return (link["speed_mbps"] or 0) >= want["speed_mbps"] and rdma_ok

    def describe(link):
        speed_text = f"{link['speed_mbps'] / 1000:g}Gb/s" if link["speed_mbps"] else "link down"
        return f"{link['name']} {speed_text}" + (f" {link['rdma']}" if link["rdma"] else "")

    matching = [link for link in links if fits(link)]
    ok = len(matching) >= want["count"]
    return _result(
        f"spec.network_{i}",
        title,
        ok,
        ", ".join(describe(link) for link in matching) or "none",
        expected,
        source,
        ""
        if ok
        else f"expected {expected}; the host's interfaces: {', '.join(describe(link) for link in links) or 'none'}",
    )


def _os(want: dict, have, source: str) -> CheckResult:
    expected = f"{want['name']} {want['version'] or ''}".strip()
    if isinstance(have, Unanswered):
        return _skip("spec.os", "operating system and release", have, expected, source)
    name = want["name"].lower()
    name_ok = (
        name in (have["id"].lower(), have["name"].lower())
        or have["id"].lower() in name.split()
        or name in have["name"].lower()
    )
    version_ok = want["version"] is None or units.version_satisfies(have["version"], want["version"])
    return _result(
        "spec.os",
        "operating system and release",
        name_ok and version_ok,
        have["pretty"] or f"{have['name']} {have['version']}",
        expected,
        source,
    )


def _version(name: str, rule: str, found, source: str) -> CheckResult:
    title = SOFTWARE_TITLES.get(name, name)
    expected = rule if re.match(r"[<>=]", rule) else f"== {rule}"
    if isinstance(found, Unanswered):
        return _skip(f"spec.{name}", title, found, expected, source)
    return _result(f"spec.{name}", title, units.version_satisfies(str(found), rule), str(found), expected, source)

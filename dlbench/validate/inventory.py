"""Inventory: the GPUs present against what was ordered, and the settings a compute node should have.

GPU count and model (against --expect-gpus / --expect-model), memory (the same on every GPU), persistence mode,
ECC mode where the card has ECC (judged against the mode the card ships with), MIG mode, and the PCIe link: read under load (an idle GPU trains its link down to
save power, so an idle reading says nothing), it must reach the maximum the GPU and the slot support.
"""

from __future__ import annotations

from dlbench.validate.context import Context
from dlbench.checks import FAIL, INFO, PASS, WARN, CheckResult, skip

NVML_SOURCE = "NVML device queries"
PCI_SOURCE = "/sys/bus/pci/devices (vendor 0x10de, class 0x0300xx or 0x0302xx)"


def _no_gpu(ctx: Context) -> str:
    nvml = ctx.nvml_problem or "NVML lists no GPU"
    if ctx.pci_gpus:
        return f"{len(ctx.pci_gpus)} NVIDIA GPU(s) on the PCI bus ({', '.join(ctx.pci_gpus)}) but none in NVML: {nvml}"
    return f"no GPU: {ctx.nvml_problem}" if ctx.nvml_problem else nvml


def run(ctx: Context) -> list[CheckResult]:
    options, gpus = ctx.options, ctx.gpus
    results = []
    count = len(gpus)
    if options.expect_gpus is not None:
        verdict = PASS if count == options.expect_gpus else FAIL
        results.append(
            CheckResult(
                "inventory.gpu_count",
                "number of GPUs",
                verdict,
                count,
                "GPUs",
                expected=f"== {options.expect_gpus}",
                source="--expect-gpus",
                detail="" if verdict == PASS else _no_gpu(ctx) if not count else "",
            )
        )
    elif count:
        results.append(
            CheckResult("inventory.gpu_count", "number of GPUs", INFO, count, "GPUs", detail="no --expect-gpus given")
        )
    elif ctx.pci_gpus:
        results.append(_driver_not_answering(ctx))
    else:
        results.append(skip("inventory.gpu_count", "number of GPUs", _no_gpu(ctx)))
    if not count:
        return results
    results.append(_model(ctx))
    results.append(_memory(ctx))
    results += _modes(ctx)
    return results


def _driver_not_answering(ctx: Context) -> CheckResult:
    """NVIDIA GPUs on the PCI bus but none in NVML: the driver is missing, not loaded or broken (e.g. built for
    another kernel). An acceptance run must not mistake that host for a CPU-only one."""
    return CheckResult(
        "inventory.gpu_count",
        "number of GPUs",
        FAIL,
        0,
        "GPUs",
        expected=f"== {len(ctx.pci_gpus)} (the NVIDIA GPUs on the PCI bus)",
        source=PCI_SOURCE,
        detail=_no_gpu(ctx),
    )


def _model(ctx: Context) -> CheckResult:
    names = {str(gpu.index): gpu.name for gpu in ctx.gpus}
    distinct = sorted(set(names.values()))
    expected = ctx.options.expect_model
    title = "GPU model"
    if expected:
        wrong = {i: n for i, n in names.items() if expected.lower() not in n.lower()}
        verdict = FAIL if wrong else PASS
        detail = "; ".join(f"GPU {i} is {n}" for i, n in wrong.items())
        return CheckResult(
            "inventory.gpu_model",
            title,
            verdict,
            " + ".join(distinct),
            expected=f"contains {expected!r}",
            source="--expect-model",
            detail=detail,
            per_gpu=names,
        )
    verdict = WARN if len(distinct) > 1 else INFO
    detail = "mixed GPU models in one host" if len(distinct) > 1 else "no --expect-model given"
    return CheckResult("inventory.gpu_model", title, verdict, " + ".join(distinct), detail=detail, per_gpu=names)


def _memory(ctx: Context) -> CheckResult:
    per_gpu = {str(i): r.get("memory_total_bytes") for i, r in ctx.baseline.items() if r.get("memory_total_bytes")}
    if not per_gpu:
        return skip("inventory.gpu_memory", "GPU memory", "NVML reports no memory size")
    largest = max(per_gpu.values())
    short = {i: v for i, v in per_gpu.items() if v < 0.99 * largest}
    verdict = FAIL if short else PASS
    return CheckResult(
        "inventory.gpu_memory",
        "GPU memory, the same on every GPU of the model",
        verdict,
        round(min(per_gpu.values()) / 2**30, 2),
        "GiB",
        expected=f">= 99% of {largest / 2**30:.2f} GiB",
        source=NVML_SOURCE,
        per_gpu={i: round(v / 2**30, 2) for i, v in per_gpu.items()},
        detail="; ".join(f"GPU {i} reports {v / 2**30:.2f} GiB" for i, v in short.items()),
    )


def _per_gpu_mode(
    ctx: Context, check_id: str, title: str, field: str, good, bad_verdict: str, source: str, unsupported: str
) -> CheckResult:
    values = {str(i): getattr(state, field) for i, state in ctx.static.items()}
    known = {i: v for i, v in values.items() if v is not None}
    if not known:
        return skip(check_id, title, unsupported)
    bad = sorted(i for i, v in known.items() if v != good)
    verdict = bad_verdict if bad else PASS
    return CheckResult(
        check_id,
        title,
        verdict,
        f"{len(known) - len(bad)}/{len(known)} GPUs",
        expected=f"{field.replace('_', ' ')} = {good} on every GPU",
        source=source,
        per_gpu=known,
        detail=f"GPUs {', '.join(bad)} differ" if bad else "",
    )


def _ecc_mode(ctx: Context) -> CheckResult:
    """ECC on every card that has it. How bad "off" is depends on how the card ships (nvmlDeviceGetDefaultEccMode):
    a data-centre card ships with ECC on, so off means someone turned it off: FAIL. A workstation card (RTX / Quadro,
    e.g. RTX 6000 Ada, RTX A6000) ships with it off, so off is the factory setting, a choice of capacity and speed
    over integrity that a training host should not make silently: WARN, with the command that turns it on. A card
    without ECC (GeForce: NVML answers NOT_SUPPORTED) has nothing to judge. Where NVML does not report the default,
    it is taken as on, the stricter reading."""
    check_id, title = "inventory.ecc_mode", "ECC enabled where the card has it"
    states = {str(i): state for i, state in ctx.static.items()}
    with_ecc = {i: state for i, state in states.items() if state.ecc_enabled is not None}
    if not with_ecc:
        return skip(check_id, title, "no GPU here has ECC (NVML: not supported, as on GeForce cards)")
    turned_off = [i for i, state in with_ecc.items() if not state.ecc_enabled and state.ecc_default is not False]
    shipped_off = [i for i, state in with_ecc.items() if not state.ecc_enabled and state.ecc_default is False]
    without = [i for i in states if i not in with_ecc]
    notes = []
    if turned_off:
        notes.append(f"ECC is off on GPU {', '.join(turned_off)}, a card that ships with it on")
    if shipped_off:
        notes.append(
            f"ECC is off on GPU {', '.join(shipped_off)}, as this workstation card ships; on, it guards "
            "training against silent memory errors for a little memory and bandwidth"
        )
    if turned_off or shipped_off:
        notes.append(
            f"turn it on with: {_ecc_on_command(sorted(turned_off + shipped_off, key=int), len(states))}, then reboot"
        )
    if without:
        notes.append(f"GPU {', '.join(without)} has no ECC")
    per_gpu = {
        i: "no ECC"
        if i not in with_ecc
        else "on"
        if with_ecc[i].ecc_enabled
        else "off (ships off)"
        if i in shipped_off
        else "off"
        for i in states
    }
    enabled = len(with_ecc) - len(turned_off) - len(shipped_off)
    return CheckResult(
        check_id,
        title,
        FAIL if turned_off else WARN if shipped_off else PASS,
        f"{enabled}/{len(with_ecc)} GPUs with ECC",
        expected="ECC on for every GPU that has it",
        source="NVML nvmlDeviceGetEccMode and nvmlDeviceGetDefaultEccMode (the mode the card ships "
        "with: on for data-centre cards, off for workstation cards); nvidia-smi -e",
        per_gpu=per_gpu,
        detail="; ".join(notes),
    )


def _ecc_on_command(gpus: list[str], gpu_count: int) -> str:
    # nvidia-smi(1): -e "will impact all GPUs unless a single GPU is specified using the -i argument", and takes
    # effect after the next reboot; so one command when every GPU of the host needs it, else one per GPU.
    if len(gpus) == gpu_count:
        return "sudo nvidia-smi -e 1"
    return " && ".join(f"sudo nvidia-smi -i {gpu} -e 1" for gpu in gpus)


def _modes(ctx: Context) -> list[CheckResult]:
    results = [
        _per_gpu_mode(
            ctx,
            "inventory.persistence_mode",
            "persistence mode",
            "persistence_enabled",
            True,
            WARN,
            "NVIDIA driver persistence documentation: keep the driver loaded on compute nodes",
            "NVML does not report persistence mode",
        ),
        _ecc_mode(ctx),
        _per_gpu_mode(
            ctx,
            "inventory.mig_mode",
            "MIG disabled (whole GPUs)",
            "mig_enabled",
            False,
            WARN,
            "MIG user guide: with MIG on, a process sees one GPU instance, not the whole GPU",
            "no GPU here supports MIG",
        ),
    ]
    pending = [
        str(i)
        for i, s in ctx.static.items()
        if (s.ecc_pending is not None and s.ecc_pending != s.ecc_enabled)
        or (s.mig_pending is not None and s.mig_pending != s.mig_enabled)
    ]
    if pending:
        results.append(
            CheckResult(
                "inventory.pending_mode_change",
                "no ECC or MIG change waiting for a GPU reset",
                WARN,
                ", ".join(pending),
                detail="reset these GPUs (or reboot) to apply it",
            )
        )
    return results


def pcie_link(ctx: Context) -> CheckResult:
    """Highest link generation and width seen under load against the maximum: run after the load checks."""
    check_id, title = "inventory.pcie_link", "PCIe link at its maximum generation and width under load"
    samples = ctx.load_samples(gpu_load_only=True)
    if not samples:
        return skip(check_id, title, "no NVML samples under GPU load (no GPU load ran; idle links train down)")
    best: dict[int, tuple[int, int]] = {}
    for _, _, readings in samples:
        for index, reading in readings.items():
            if "pcie_link_generation" in reading and "pcie_link_width" in reading:
                gen, width = best.get(index, (0, 0))
                best[index] = (max(gen, reading["pcie_link_generation"]), max(width, reading["pcie_link_width"]))
    per_gpu, down = {}, []
    for index, (gen, width) in sorted(best.items()):
        state = ctx.static.get(index)
        if state is None or not state.pcie_max_generation or not state.pcie_max_width:
            continue
        per_gpu[str(index)] = f"Gen{gen} x{width} of Gen{state.pcie_max_generation} x{state.pcie_max_width}"
        if gen < state.pcie_max_generation or width < state.pcie_max_width:
            down.append(str(index))
    if not per_gpu:
        return skip(check_id, title, "NVML does not report the PCIe link")
    verdict = FAIL if down else PASS
    return CheckResult(
        check_id,
        title,
        verdict,
        f"{len(per_gpu) - len(down)}/{len(per_gpu)} GPUs at maximum",
        expected="current link = maximum link (nvmlDeviceGetMaxPcieLinkGeneration/Width) under load",
        source=NVML_SOURCE,
        per_gpu=per_gpu,
        detail=f"downtrained link on GPU {', '.join(down)}: reseat the card or check the riser/slot" if down else "",
    )

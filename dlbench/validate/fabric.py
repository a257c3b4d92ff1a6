"""NVLink fabric: every link a GPU of this model should have is up, no link counted errors while the load ran, and
on NVSwitch systems the GPUs are registered with Fabric Manager.

What is judged and on whose word:
- links: NVIDIA Health Validation's NVLink checks expect every link of the model active (18 per H100 SXM,
  `max_inactive_nvlinks` 0); the count per model is the table's (dlbench/data/validate_baselines.json). NVML's link
  count (NVML_FI_DEV_NVLINK_LINK_COUNT) is what the board has; a link NVML reports INACTIVE is down. A GPU the table
  does not know is reported (links active of links present) without a verdict.
- errors: the data-link counters NVML keeps per link (CRC, replay, recovery; cumulative since the driver loaded),
  read before any load and after the last. DCGM's diagnostic counts any NVLink error during a test as critical
  (DCGM_FR_NVLINK_ERROR_CRITICAL, "1 or more errors") and fails at more than 100 CRC errors (pcie plugin
  crc_error_threshold); here a link recovery or more than 100 CRC errors during the run is a FAIL, fewer CRC or any
  replay errors a WARN with the counts: replays alone are the link correcting itself.
- Fabric Manager: on an NVSwitch system a GPU is usable for NVLink only once Fabric Manager has registered it
  (NVIDIA Fabric Manager user guide). Hopper and newer report it through nvmlDeviceGetGpuFabricInfo (state
  COMPLETED, status SUCCESS); elsewhere, where NVSwitches are on the PCI bus, the service must be active
  (`systemctl is-active nvidia-fabricmanager`, as DeepOps' NHC and Imbue's cluster-health check it).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Callable

from dlbench.validate import baselines
from dlbench.validate.context import Context
from dlbench.nvml.static import NVLINK_ERROR_FIELDS, NvLinks, read_nvlinks
from dlbench.checks import FAIL, INFO, PASS, WARN, CheckResult, skip

NVLINK_INACTIVE = 0  # nvmlNvlinkState NVML_NVLINK_STATE_INACTIVE
CRC_FAIL_ABOVE = 100  # DCGM pcie plugin crc_error_threshold (nvvs/diag-skus.yaml.in, plugin default)
ERRORS_SOURCE = (
    "NVML NVLink data-link counters (NVML_FI_DEV_NVLINK_ERROR_DL_CRC/REPLAY/RECOVERY) before and after "
    "the load; DCGM diagnostic: DCGM_FR_NVLINK_ERROR_CRITICAL, CRC threshold 100"
)
FABRIC_SOURCE = (
    "NVML nvmlDeviceGetGpuFabricInfo (NVML_GPU_FABRIC_STATE_COMPLETED, status NVML_SUCCESS); NVIDIA "
    "Fabric Manager user guide; systemctl is-active nvidia-fabricmanager where NVML cannot tell"
)
FABRIC_STATES = {1: "not started", 2: "in progress", 3: "completed"}
SERVICE = "nvidia-fabricmanager"


def service_state(unit: str = SERVICE) -> str | None:
    """`systemctl is-active UNIT` ("active", "failed", "inactive"...), or None where systemd cannot be asked."""
    if shutil.which("systemctl") is None:
        return None
    try:
        answer = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return answer.stdout.strip() or None


def _links(ctx: Context, now: dict[int, NvLinks | None]) -> CheckResult:
    check_id, title = "fabric.nvlink_links", "every NVLink link of every GPU active"
    names = {gpu.index: gpu.name for gpu in ctx.gpus}
    model = names[min(names)]
    reference = baselines.nvlinks_reference(model)
    present = {i: links for i, links in now.items() if links is not None}
    if not present:
        if reference is not None and reference.value > 0:
            return CheckResult(
                check_id,
                title,
                FAIL,
                0,
                "links",
                expected=f"{reference.value:g} links per GPU",
                source=reference.source,
                detail=f"NVML reports no NVLink on any GPU; a {baselines.model_name(model)} has "
                f"{reference.value:g}: check the baseboard and the driver",
            )
        return skip(check_id, title, "no GPU here reports NVLink links (PCIe cards, consumer GPUs)")
    active = {str(i): sum(state != NVLINK_INACTIVE for state in links.state.values()) for i, links in present.items()}
    down = {
        i: sorted(link for link, state in links.state.items() if state == NVLINK_INACTIVE)
        for i, links in present.items()
    }
    per_gpu = {str(i): f"{active[str(i)]}/{links.count} active" for i, links in present.items()}
    if reference is None:
        return CheckResult(
            check_id,
            title,
            INFO,
            min(active.values()),
            "links",
            per_gpu=per_gpu,
            detail=baselines.no_reference(model, len(names), "NVLink links per GPU"),
        )
    expected = int(reference.value)
    problems = [f"GPU {i} link {', '.join(map(str, links))} inactive" for i, links in down.items() if links]
    problems += [
        f"GPU {i} has {present[i].count} links, a {baselines.model_name(model)} has {expected}"
        for i in present
        if present[i].count != expected
    ]
    problems += [f"GPU {i} reports no NVLink" for i in names if i not in present and expected > 0]
    detail = "; ".join(problems)
    if problems:
        detail += ": reseat the GPU or its baseboard, check `nvidia-smi nvlink -s`, then the vendor's RMA process"
    return CheckResult(
        check_id,
        title,
        FAIL if problems else PASS,
        min(active.values()),
        "links",
        expected=f"{expected} active links on every GPU, none inactive",
        source=reference.source,
        per_gpu=per_gpu,
        detail=detail,
    )


def _errors(ctx: Context, now: dict[int, NvLinks | None]) -> CheckResult:
    check_id, title = "fabric.nvlink_errors", "no NVLink errors during the run"
    grown: dict[str, dict[str, dict[str, int]]] = {}  # GPU -> counter -> link -> errors during the run
    counted = False
    for index, links in now.items():
        before = ctx.nvlinks_before.get(index)
        if links is None or before is None:
            continue
        for counter in NVLINK_ERROR_FIELDS:
            for link, value in links.errors.get(counter, {}).items():
                counted = True
                delta = value - before.errors.get(counter, {}).get(link, value)
                if delta > 0:
                    grown.setdefault(str(index), {}).setdefault(counter, {})[str(link)] = delta
    if not counted:
        return skip(check_id, title, "no GPU here reports NVLink error counters")
    totals = {
        counter: sum(n for per_gpu in grown.values() for n in per_gpu.get(counter, {}).values())
        for counter in NVLINK_ERROR_FIELDS
    }
    failing = [
        i
        for i, counters in grown.items()
        if counters.get("recovery") or sum(counters.get("crc", {}).values()) > CRC_FAIL_ABOVE
    ]
    verdict = FAIL if failing else WARN if grown else PASS
    detail = "; ".join(
        f"GPU {i}: "
        + ", ".join(
            f"{counter} +{n} on link {link}" for counter, per_link in counters.items() for link, n in per_link.items()
        )
        for i, counters in grown.items()
    )
    if failing:
        detail += (
            f"; GPU {', '.join(failing)}: link errors beyond what a healthy link shows under load: check the "
            "link (`nvidia-smi nvlink -e`), reseat, then RMA"
        )
    return CheckResult(
        check_id,
        title,
        verdict,
        sum(totals.values()),
        "errors",
        expected=f"no increase; FAIL on any recovery or more than {CRC_FAIL_ABOVE} CRC errors, WARN "
        "on fewer CRC or any replay errors",
        source=ERRORS_SOURCE,
        per_gpu=grown,
        data={"totals": totals},
        detail=detail,
    )


def _fabric_manager(ctx: Context, service: Callable[[], str | None]) -> CheckResult:
    check_id, title = "fabric.manager", "GPUs registered with Fabric Manager (NVSwitch systems)"
    reported = {str(i): s for i, s in ctx.static.items() if s.fabric_state is not None}
    if reported:
        per_gpu = {
            i: FABRIC_STATES.get(s.fabric_state, str(s.fabric_state))
            + ("" if s.fabric_status == 0 else f", status {s.fabric_status}")
            for i, s in reported.items()
        }
        bad = sorted((i for i, s in reported.items() if s.fabric_state != 3 or s.fabric_status != 0), key=int)
        detail = (
            f"GPU {', '.join(bad)} not registered: `systemctl status {SERVICE}`, its log "
            "(/var/log/fabricmanager.log), and the driver and Fabric Manager versions must match"
            if bad
            else ""
        )
        return CheckResult(
            check_id,
            title,
            FAIL if bad else PASS,
            f"{len(reported) - len(bad)}/{len(reported)} GPUs",
            expected="state completed, status success on every GPU",
            source=FABRIC_SOURCE,
            per_gpu=per_gpu,
            detail=detail,
        )
    if not ctx.pci_nvswitches:
        return skip(
            check_id, title, "no NVSwitch on the PCI bus and NVML reports no fabric state: no Fabric Manager needed"
        )
    state = service()
    if state is None:
        return skip(
            check_id,
            title,
            f"{len(ctx.pci_nvswitches)} NVSwitches on the bus but systemd cannot be asked whether {SERVICE} runs",
        )
    return CheckResult(
        check_id,
        title,
        PASS if state == "active" else FAIL,
        state,
        expected=f"{SERVICE} active",
        source=FABRIC_SOURCE,
        detail=""
        if state == "active"
        else f"{len(ctx.pci_nvswitches)} NVSwitches and {SERVICE} is "
        f"{state}: `sudo systemctl enable --now {SERVICE}` (same version as the driver)",
    )


def run(ctx: Context, service: Callable[[], str | None] = service_state) -> list[CheckResult]:
    """Read after the load checks, so the error counters span them."""
    if not ctx.gpus:
        reason = f"no GPU: {ctx.nvml_problem}" if ctx.nvml_problem else "NVML lists no GPU"
        return [skip("fabric.nvlink_links", "every NVLink link of every GPU active", reason)]
    now = {gpu.index: read_nvlinks(ctx.reader.nvml, gpu.index) for gpu in ctx.gpus}
    return [_links(ctx, now), _errors(ctx, now), _fabric_manager(ctx, service)]

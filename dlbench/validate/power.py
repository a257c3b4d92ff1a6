"""Power: the power limit in force on each GPU against the limit the board ships with and the model's datasheet TDP.

A GPU capped below its default (`nvidia-smi -pl`, a DCGM power policy, a boot script) runs every load slower and
passes every health check while doing so: DCGM's diagnostic reports it (DCGM_FR_ENFORCED_POWER_LIMIT). The default
limit itself (nvmlDeviceGetPowerManagementDefaultLimit, nvidia-smi's "Default Power Limit") is the board's; one below
the model's datasheet TDP is a lower-power variant of the board (an OEM configuration, e.g. 500 W H100 SXM boards), to
be checked against what was ordered.
"""

from __future__ import annotations

from dlbench.validate import baselines
from dlbench.validate.context import Context
from dlbench.validate.report import FAIL, PASS, WARN, CheckResult, skip

CHECK_ID, TITLE = "power.limit", "enforced power limit at the default and the model's TDP"
SOURCE = ("NVML nvmlDeviceGetEnforcedPowerLimit and nvmlDeviceGetPowerManagementDefaultLimit; DCGM diagnostic "
          "DCGM_FR_ENFORCED_POWER_LIMIT")
SLACK = 0.99  # limits are set in whole watts; a watt or so below the default is not a cap


def _set_default_command(capped: dict[str, float], gpu_count: int) -> str:
    # nvidia-smi(1): -pl applies to all GPUs unless -i selects one; it lasts until the driver reloads
    limits = set(capped.values())
    if len(capped) == gpu_count and len(limits) == 1:
        return f"sudo nvidia-smi -pl {limits.pop():g}"
    return " && ".join(f"sudo nvidia-smi -i {gpu} -pl {limit:g}" for gpu, limit in capped.items())


def run(ctx: Context) -> list[CheckResult]:
    if not ctx.gpus:
        return [skip(CHECK_ID, TITLE, f"no GPU: {ctx.nvml_problem}" if ctx.nvml_problem else "NVML lists no GPU")]
    states = {str(i): s for i, s in sorted(ctx.static.items()) if s.power_enforced_limit_watts is not None}
    if not states:
        return [skip(CHECK_ID, TITLE, "NVML reports no enforced power limit on this GPU")]
    model = ctx.gpus[0].name
    tdp = baselines.tdp_reference(model)
    capped = {i: s.power_default_limit_watts for i, s in states.items()
              if s.power_default_limit_watts and s.power_enforced_limit_watts < SLACK * s.power_default_limit_watts}
    low_default = {i: s.power_default_limit_watts for i, s in states.items()
                   if tdp and s.power_default_limit_watts and s.power_default_limit_watts < SLACK * tdp.value}
    below_tdp = {i: s.power_enforced_limit_watts for i, s in states.items()
                 if tdp and not s.power_default_limit_watts and s.power_enforced_limit_watts < SLACK * tdp.value}
    notes = []
    if capped:
        notes.append("; ".join(f"GPU {i} capped at {states[i].power_enforced_limit_watts:g} W of its default "
                               f"{default:g} W" for i, default in capped.items())
                     + f": restore with `{_set_default_command(capped, len(ctx.gpus))}` and remove what set the cap")
    if below_tdp:
        notes.append("; ".join(f"GPU {i} limited to {limit:g} W" for i, limit in below_tdp.items())
                     + f", below the {tdp.value:g} W TDP of a {baselines.model_name(model)}")
    if low_default:
        notes.append("; ".join(f"GPU {i} ships with a {default:g} W default" for i, default in low_default.items())
                     + f", below the {tdp.value:g} W TDP of a {baselines.model_name(model)} datasheet: a lower-power "
                       "board configuration; check it against the order")
    if not tdp:
        notes.append(baselines.no_reference(model, len(ctx.gpus), "TDP") + " (only the default limit is judged)")
    per_gpu = {i: {"enforced_watts": s.power_enforced_limit_watts, "default_watts": s.power_default_limit_watts}
               for i, s in states.items()}
    verdict = FAIL if capped or below_tdp else WARN if low_default else PASS
    expected = "enforced limit = default limit" + (f" = {tdp.value:g} W TDP" if tdp else "")
    return [CheckResult(CHECK_ID, TITLE, verdict, min(s.power_enforced_limit_watts for s in states.values()), "W",
                        expected=expected, source=f"{SOURCE}; {tdp.source}" if tdp else SOURCE, per_gpu=per_gpu,
                        detail="; ".join(notes))]

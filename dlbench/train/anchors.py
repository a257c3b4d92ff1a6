"""A decoder run in the units of the published Llama figures: tokens/s per GPU, MFU by torchtitan's formula against
the dense bf16 peak, peak memory as the most any rank used, and the published figure of the same configuration.

torchtitan's FLOPs per token (torchtitan/models/utils.py, get_dense_model_nparams_and_flops): 6 x the parameters
that take part in a matmul (all of them when the embedding is tied to the output head, all but the embedding
otherwise) + 6 x layers x heads x 2·head_dim x sequence length for attention (causal sparsity not discounted). It
counts the norms' weights as matmul parameters, so it is 6 x their count above what the FLOP counter measures
(0.003% for 8B); dlbench's own `training_flops_per_sample` stays the counted figure.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

import torch

from dlbench.train import peaks
from dlbench.workloads import Workload

MFU_PEAK_PRECISION = "bf16"  # torchtitan's MFU is against the dense bf16 peak, Float8 runs included


@lru_cache(maxsize=1)
def _anchors() -> dict:
    return json.loads(resources.files("dlbench").joinpath("data/anchors.json").read_text())["anchors"]


def torchtitan_flops_per_token(workload: Workload, seq_len: int) -> int:
    with torch.device("meta"):
        model = workload.build_model()
    config = model.config
    parameters = sum(p.numel() for p in model.parameters())  # a tied weight counts once
    matmul_parameters = parameters if config.tie_embeddings else parameters - model.tok_embeddings.weight.numel()
    return 6 * matmul_parameters + 6 * config.n_layers * config.n_heads * 2 * config.head_dim * seq_len


def memory_type(device_name: str | None) -> str | None:
    """The memory technology as the device name states it ("NVIDIA H100 80GB HBM3"); None where it does not."""
    found = re.search(r"\b(HBM\w*|GDDR\w*)\b", device_name or "")
    return found.group(1) if found else None


def figure_for(workload: str, precision: str, compiled: bool) -> dict | None:
    anchor = _anchors().get(workload)
    if anchor is None:
        return None
    for figure in anchor["figures"]:
        if figure["precision"] == precision and figure["compile"] == compiled:
            return {key: value for key, value in anchor.items() if key != "figures"} | figure
    return None


def conditions_differ(result: dict, figure: dict | None) -> list[str]:
    """Where the run's configuration is not the published figure's (GPU count, local batch, sequence length,
    checkpointing, sharding): a ratio to a figure of another configuration would compare unlike with unlike."""
    if figure is None:
        return []
    config = result.get("config") or {}
    world_size = (result.get("distributed") or {}).get("world_size") or 1
    differ = [] if world_size == figure["gpus"] else [f"gpus {world_size}, anchor {figure['gpus']}"]
    for key, wanted in figure.get("conditions", {}).items():
        if config.get(key) != wanted:
            differ.append(f"{key} {json.dumps(config.get(key))}, anchor {json.dumps(wanted)}".replace('"', ""))
    return differ


def section(
    result: dict, workload: Workload, precision: str, compiled: bool, flops_per_token: int, mamf: dict | None = None
) -> dict | None:
    """The `llm` section of a finished result, or None when no tokens were timed. `mamf`: the host's measured bf16
    matmul rate (dlbench.train.mamf.for_device), where `dlbench run --mamf-from` gave one."""
    metrics = result.get("metrics") or {}
    throughput = metrics.get("throughput") or {}
    job = result.get("distributed") or {}
    env = result.get("environment") or {}
    per_gpu = None
    if job.get("aggregate") and job["aggregate"].get("tokens_per_second") is not None:
        per_gpu = job["aggregate"]["tokens_per_second"] / job["world_size"]
    elif not job:
        per_gpu = throughput.get("tokens_per_second")
    rank_peaks = [rank.get("peak_device_memory_bytes") for rank in job.get("ranks") or []]
    peak_memory = max(rank_peaks) if rank_peaks and None not in rank_peaks else metrics.get("peak_device_memory_bytes")
    device_name = env.get("device_name") if str(env.get("device", "")).startswith("cuda") else None
    peak = peaks.applied(device_name, MFU_PEAK_PRECISION) if device_name else None
    gpu = (result.get("telemetry") or {}).get("gpu") or {}
    figure = figure_for(workload.recipe.anchor, precision, compiled) if workload.recipe.anchor else None
    differ = conditions_differ(result, figure)
    mfu = per_gpu * flops_per_token / (peak["tflops"] * 1e12) if per_gpu and peak else None
    mfu_vs_mamf = per_gpu * flops_per_token / (mamf["tflops"] * 1e12) if per_gpu and mamf and mamf["applies"] else None
    return {
        "tokens_per_second_per_gpu": per_gpu,
        "flops_per_token": flops_per_token,
        "flops_formula": "torchtitan get_dense_model_nparams_and_flops: 6 x matmul parameters + 12 x layers x heads "
        "x head_dim x seq_len",
        "mfu": mfu,
        "mfu_peak_tflops": peak["tflops"] if peak else None,
        "mfu_vs_mamf": mfu_vs_mamf,
        "mamf": mamf,
        "peak_memory_max_over_ranks_bytes": peak_memory,
        "gpu_power_limit_watts": gpu.get("power_limit_watts"),
        "gpu_memory_type": memory_type(device_name),
        "anchor": figure,
        "anchor_conditions_differ": differ,
        "ratio_to_anchor": (
            per_gpu / figure["tokens_per_second_per_gpu"] if per_gpu and figure and not differ else None
        ),
    }

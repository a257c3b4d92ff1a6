"""The Llama 3 workloads: the model held to torchtitan's flavours (parameters, FLOPs per token, attention, RoPE), the
fit check, and the refusals. The runs themselves (single process, DDP, FSDP, defaults) are in test_llama_runs.py.

torchtitan's figures (pytorch/torchtitan, torchtitan/models/llama3/__init__.py and models/utils.py at v0.3.0):
8B = 32 layers, dim 4,096, 32 heads, 8 KV heads, FFN 14,336 (multiplier 1.3, multiple of 1,024), vocabulary 128,256,
untied: 8,030,261,248 parameters; 1B = 16 layers, dim 2,048, FFN 8,192 (multiplier 1.5), tied: 1,235,814,400.
FLOPs per token = 6 x matmul parameters + 6 x layers x heads x 2·head_dim x seq: 57.9 GFLOP for 8B at 8,192
(benchmarks/llama3_h100_202412_torchtitan.md's MFU is this over 989 TFLOP/s).
"""

import math
from types import SimpleNamespace

import pytest
import torch

from dlbench import cli
from dlbench.errors import UserError
from dlbench.models.llama import SIZES, Llama, rotary_table
from dlbench.train import anchors, fit, flops
from dlbench.train.runner import Run, RunConfig
from dlbench.workloads import get_workload

GB = 10**9


def _meta(size: str) -> Llama:
    with torch.device("meta"):
        return Llama(size)


@pytest.mark.parametrize(
    "workload,parameters,hidden,tied",
    [
        ("llama3-8b", 8_030_261_248, 14336, False),
        ("llama3-1b", 1_235_814_400, 8192, True),
        ("llama-tiny", 229_696, 192, False),
    ],
)
def test_parameter_counts_are_torchtitans_on_the_meta_device(workload, parameters, hidden, tied):
    spec = get_workload(workload)
    model = _meta(spec.builder_kwargs["size"])
    assert sum(p.numel() for p in model.parameters()) == parameters == spec.parameters
    assert model.config.ffn_hidden_dim == hidden
    assert (model.output.weight is model.tok_embeddings.weight) is tied
    assert not any(m.bias is not None for m in model.modules() if isinstance(m, torch.nn.Linear))


def test_the_8b_and_1b_shapes_are_the_flavour_table():
    big, small = SIZES["8B"], SIZES["1B"]
    assert (big.n_layers, big.dim, big.n_heads, big.n_kv_heads, big.vocab_size) == (32, 4096, 32, 8, 128256)
    assert (small.n_layers, small.dim, small.n_heads, small.n_kv_heads) == (16, 2048, 32, 8)
    assert big.rope_theta == small.rope_theta == 500_000 and big.rope_scaling and small.rope_scaling
    assert (big.ffn_dim_multiplier, small.ffn_dim_multiplier, big.multiple_of) == (1.3, 1.5, 1024)


@pytest.mark.parametrize(
    "workload,seq_len,expected",
    [
        ("llama3-8b", 8192, 57_914_449_920),  # 6 x 7,504,924,672 + 6 x 32 x 32 x 256 x 8,192
        ("llama3-1b", 8192, 7_414_886_400 + 6 * 16 * 32 * 128 * 8192),  # tied: all 1,235,814,400 take part in a matmul
    ],
)
def test_flops_per_token_follow_torchtitans_formula_and_the_flop_counter(workload, seq_len, expected):
    spec = get_workload(workload)
    assert anchors.torchtitan_flops_per_token(spec, seq_len) == expected
    assert round(expected / 1e9, 1) == {"llama3-8b": 57.9, "llama3-1b": 10.6}[workload]
    # the FLOP counter, run on the meta device, measures the same matmuls and attention; torchtitan's formula also
    # counts the RMSNorm weights (2 per layer + 1) as if they were matmul parameters, 6 FLOPs each
    model = _meta(spec.builder_kwargs["size"])
    norms = sum(p.numel() for name, p in model.named_parameters() if "norm" in name)
    assert flops.training_flops_per_sample(spec, seq_len) / seq_len == expected - 6 * norms


def test_grouped_query_attention_is_the_textbook_computation():
    """Fused q/k/v projection, RoPE on adjacent pairs, 2 KV heads shared by 4 query heads, causal softmax."""
    torch.manual_seed(0)
    model = Llama("tiny")
    attention, config = model.layers[0].attention, model.config
    x = torch.randn(2, 16, config.dim)
    B, T, hd = 2, 16, config.head_dim
    q, k, v = attention.wqkv(x).split([config.n_heads * hd, config.n_kv_heads * hd, config.n_kv_heads * hd], -1)

    def rotate(t, heads):  # (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos) per adjacent pair, per position
        t = t.view(B, T, heads, hd // 2, 2)
        angle = torch.view_as_real(model.rotary[:T]).view(1, T, 1, hd // 2, 2)
        cos, sin = angle[..., 0], angle[..., 1]
        return torch.stack([t[..., 0] * cos - t[..., 1] * sin, t[..., 0] * sin + t[..., 1] * cos], -1).view(
            B, T, heads, hd
        )

    q, k = rotate(q, config.n_heads), rotate(k, config.n_kv_heads)
    v = v.view(B, T, config.n_kv_heads, hd)
    group = config.n_heads // config.n_kv_heads
    k, v = k.repeat_interleave(group, dim=2), v.repeat_interleave(group, dim=2)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    expected = attention.wo(torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v).reshape(B, T, -1))
    torch.testing.assert_close(attention(x, model.rotary), expected, atol=1e-5, rtol=1e-4)


def test_rope_has_llama_3_1_frequency_scaling():
    """Theta 500,000; wavelengths below 8,192/4 keep their frequency, above 8,192 are slowed eightfold, and the band
    between is blended (Llama 3.1's rope_scaling: factor 8, low 1, high 4, original context 8,192)."""
    config = SIZES["8B"]
    table = rotary_table(config)
    measured = table[1].angle().abs()  # position 1: the angle is the frequency itself
    plain = 1.0 / (500_000 ** (torch.arange(0, 128, 2).float() / 128))
    wavelength = 2 * math.pi / plain
    short, long = wavelength < 8192 / 4, wavelength > 8192
    torch.testing.assert_close(measured[short], plain[short])
    torch.testing.assert_close(measured[long], plain[long] / 8)
    middle = ~short & ~long
    assert middle.any() and bool(((measured[middle] < plain[middle]) & (measured[middle] > plain[middle] / 8)).all())
    assert table.shape == (8192, 64)


def test_the_defaults_are_torchtitans_benchmark_configuration():
    spec = get_workload("llama3-8b")
    assert (spec.seq_len, spec.default_batch_size, spec.blocks) == (8192, 2, "layers")
    recipe = spec.recipe
    assert (recipe.optimizer, recipe.fsdp, recipe.activation_checkpointing, recipe.compile_unit) == (
        "adamw",
        True,
        "selective",
        "block",
    )
    assert recipe.grad_clip_norm == 1.0 and recipe.float8 and recipe.anchor == "llama3-8b"
    anchor = anchors.figure_for("llama3-8b", "bf16", False)
    assert anchor["tokens_per_second_per_gpu"] == 5762 and anchor["gpu_power_limit_watts"] == 500
    assert anchor["gpu_memory_type"] == "HBM2e" and "llama3_h100_202412_torchtitan.md" in anchor["source"]
    assert anchors.figure_for("llama3-8b", "bf16", True)["tokens_per_second_per_gpu"] == 6667
    assert anchors.figure_for("llama3-8b", "fp8", True)["tokens_per_second_per_gpu"] == 8532


# -- the fit check -----------------------------------------------------------------------------------------------


@pytest.fixture
def one_gpu(monkeypatch):
    """One visible GPU of `memory` bytes: torch.cuda's device queries only (no GPU here). The 24 GB card is
    the simulated NVML's rtx4090 (24,564 MiB, dlbench/nvml/simulated.py), as CUDA names it."""

    def install(name="NVIDIA GeForce RTX 4090", memory=24564 * 2**20, capability=(8, 9)):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
        monkeypatch.setattr(
            torch.cuda,
            "get_device_properties",
            lambda device=None: SimpleNamespace(
                name=name, total_memory=memory, major=capability[0], minor=capability[1]
            ),
        )

    return install


def test_8b_on_one_24_gb_gpu_is_refused_before_it_starts_naming_what_would_fit(one_gpu, capsys):
    one_gpu()
    code = cli.main(["run", "llama3-8b", "--device", "cuda", "--no-telemetry"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "llama3-8b does not fit one NVIDIA GeForce RTX 4090 (26 GB)" in err
    assert "128.5 GB parameters, gradients and adamw state" in err
    assert "FSDP over at least 16 such GPUs (--gpus 16, or torchrun across nodes)" in err
    assert "a smaller size (llama3-1b, llama-tiny)" in err


def test_1b_fits_one_80_gb_gpu_and_the_estimate_is_in_the_result_config(one_gpu):
    one_gpu("NVIDIA H100 80GB HBM3", 81559 * 2**20, (9, 0))
    run = Run(RunConfig("llama3-1b", device="cuda"))
    estimate = run.memory_estimate
    assert estimate["ranks"] == 1 and not estimate["fsdp"] and estimate["activation_checkpointing"] == "selective"
    assert estimate["model_state"] == 16 * 1_235_814_400 and estimate["total"] < estimate["capacity"]


def test_8b_fits_eight_80_gb_gpus_with_fsdp_but_not_without_checkpointing():
    shape = fit.shape_of(get_workload("llama3-8b"))
    spec, capacity = get_workload("llama3-8b"), 80 * GB
    tokens = 2 * 8192
    estimate = fit.check(spec, shape, capacity, "one H100", 8, True, "adamw", 2, 8192, "selective")
    assert estimate["model_state"] == 16 * 8_030_261_248 // 8 and estimate["total"] < capacity
    # without checkpointing the kept activations alone exceed what an 80 GB GPU holds beside the shards
    assert fit.activation_bytes(shape, tokens, "none") > 60 * GB
    with pytest.raises(
        UserError,
        match=r"75.0 GB activations \(none checkpointing\)\); would fit: "
        r"--activation-checkpointing selective; or a smaller size",
    ):
        fit.check(spec, shape, capacity, "one H100", 8, True, "adamw", 2, 8192, "none")
    # the same GPUs without sharding: every rank holds the whole model state
    with pytest.raises(
        UserError,
        match=r"unsharded .* would fit: --fsdp \(shard across the 8 ranks rather than "
        r"replicate\)",
    ):
        fit.check(spec, shape, capacity, "one H100", 8, False, "adamw", 2, 8192, "selective")


# -- refusals ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            ["llama-tiny", "--device", "cpu", "--precision", "fp8"],
            "--precision fp8 needs an NVIDIA GPU of the Ada or Hopper generation or newer",
        ),
        (["gpt2-tiny", "--device", "cpu", "--activation-checkpointing", "full", "--precision", "fp32"], None),
        # Llama's 128,256 is 64 x 2,004 already
        (["llama-tiny", "--device", "cpu", "--pad-vocab"], "--pad-vocab applies to GPT-2 workloads"),
        (
            ["mnist-mlp", "--device", "cpu", "--activation-checkpointing", "selective"],
            "--activation-checkpointing selective wraps a transformer's blocks; mnist-mlp has none",
        ),
    ],
)
def test_bad_combinations_are_refused_in_one_line(argv, message, capsys, tmp_path):
    if message is None:  # gpt2's blocks take checkpointing too: accepted (not run here)
        Run(RunConfig("gpt2-tiny", device="cpu", activation_checkpointing="full"))
        return
    code = cli.main(["run", *argv, "--no-telemetry", "--output", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r.json").exists()


def test_fp8_is_refused_before_hopper_and_for_other_workloads(one_gpu, capsys):
    one_gpu("NVIDIA A100-SXM4-80GB", 81920 * 2**20, (8, 0))
    assert cli.main(["run", "llama3-1b", "--device", "cuda", "--precision", "fp8", "--no-telemetry"]) == 2
    assert "NVIDIA A100-SXM4-80GB is 8.0: use --precision bf16" in capsys.readouterr().err
    one_gpu("NVIDIA H100 80GB HBM3", 81559 * 2**20, (9, 0))
    with pytest.raises(UserError, match="gpt2 is not one"):
        Run(RunConfig("gpt2", device="cuda", precision="fp8"))


def test_fp8_is_offered_on_ada_as_torchtitan_offers_it(one_gpu):
    """Ada (compute capability 8.9: L4, L40S, RTX 4090) has Float8 tensor cores and torch._scaled_mm runs there;
    torchtitan refuses Float8 only below SM89 (torchtitan/components/quantization/float8.py,
    has_cuda_capability(8, 9))."""
    from dlbench.train import recipe

    one_gpu("NVIDIA L40S", 46068 * 2**20, (8, 9))
    recipe.check_float8(torch.device("cuda"))  # no refusal
    one_gpu("NVIDIA A100-SXM4-80GB", 81920 * 2**20, (8, 0))
    with pytest.raises(UserError, match="compute capability 8.9"):
        recipe.check_float8(torch.device("cuda"))


def test_float8_swaps_every_linear_but_the_output_head_for_torchaos():
    """The conversion itself runs anywhere (a module swap); the Float8 matmuls need Hopper (benchmarks/)."""
    from torchao.float8.float8_linear import Float8Linear

    from dlbench.train import recipe

    model = Llama("tiny")
    assert recipe.convert_float8(model, sharded=True) == {
        "library": "torchao.float8",
        "recipe": "tensorwise",
        "fsdp_float8_all_gather": True,
        "linears": 10,
    }
    converted = [name for name, module in model.named_modules() if isinstance(module, Float8Linear)]
    assert len(converted) == 10 and all(name.startswith("layers.") for name in converted)
    assert type(model.output) is torch.nn.Linear
    assert converted[0] == "layers.0.attention.wqkv" and converted[0] + "" in dict(model.named_modules())


def test_llama_tiny_trains_in_one_process_with_default_settings():
    from run_support import execute

    result = execute(RunConfig("llama-tiny", device="cpu"))
    assert result["status"] == "completed", result["error"]
    config = result["config"]
    # torchtitan's configuration where one process can have it: AdamW, selective checkpointing, no sharding
    assert (config["optimizer"], config["activation_checkpointing"], config["fsdp"]) == ("adamw", "selective", False)
    assert (config["batch_size"], config["seq_len"]) == (4, 128)
    loss = result["metrics"]["loss"]
    assert loss["last"] < loss["first"]
    llm = result["llm"]
    formula = 6 * (229_696 - 1024 * 64) + 6 * 2 * 4 * (2 * 16) * 128
    assert llm["flops_per_token"] == formula == 1_181_568
    assert result["workload"]["training_flops_per_sample"] / 128 == formula - 6 * (2 * 2 + 1) * 64
    assert llm["tokens_per_second_per_gpu"] == result["metrics"]["throughput"]["tokens_per_second"]
    assert llm["mfu"] is None and llm["anchor"] is None  # the CPU has no peak; llama-tiny no published figure
    assert result["memory_estimate"]["total"] < result["memory_estimate"]["capacity"]


def test_a_job_that_cannot_fit_is_refused_once_before_torchrun_starts(capsys, monkeypatch):
    """`--nproc 2` on the CPU: the ranks would share this host's memory; refused in the launching process."""
    import os

    monkeypatch.delenv("RANK", raising=False)
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if host >= 128.5 * GB:  # two FSDP ranks of llama3-8b need 64 GB of model state each
        pytest.skip("this host has the memory for two ranks of llama3-8b")
    code = cli.main(["run", "llama3-8b", "--nproc", "2", "--device", "cpu", "--no-telemetry"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "llama3-8b does not fit this host's memory shared by 2 ranks" in err and "FSDP over 2 ranks" in err


def _mm_calls_per_step(model: torch.nn.Module, tokens: torch.Tensor, steps: int) -> list[int]:
    """aten.mm calls of each training step (forward, recomputation and backward), seen by a dispatch mode."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class CountMatmuls(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.calls += func is torch.ops.aten.mm.default
            return func(*args, **(kwargs or {}))

    counts = []
    for _ in range(steps):
        with CountMatmuls() as counter:
            model(tokens).float().sum().backward()
        counts.append(counter.calls)
    return counts


def test_selective_checkpointing_recomputes_the_same_matmuls_every_step_as_torchtitans_policy():
    """torchtitan's SelectiveAC builds a fresh policy each time a block runs (context_fn calls _get_custom_policy),
    so every step saves the 1st, 3rd and 5th matmul of a block and recomputes the 2nd and 4th. A policy whose
    matmul count carried over from step to step would alternate: with five matmuls a block, every other step would
    recompute three of them and keep two, changing both the memory and the time of alternate steps."""
    from dlbench.train import recipe

    torch.manual_seed(0)
    model = Llama("tiny")
    recipe.checkpoint_blocks(model, "layers", "selective")
    tokens = torch.randint(0, 1024, (2, 16))
    plain = Llama("tiny")
    eager = _mm_calls_per_step(plain, tokens, 1)[0]  # forward + backward, nothing recomputed
    per_step = _mm_calls_per_step(model, tokens, 3)
    # two recomputed matmuls per block (wo and w3), the same in every step
    assert per_step == [eager + 2 * model.config.n_layers] * 3


def _finished_llama3_8b(
    world_size: int, batch_size: int, seq_len: int = 8192, checkpointing: str = "selective", fsdp: bool = True
) -> dict:
    """The parts of a finished result that the `llm` section reads, as the runner writes them, on 80 GB H100s."""
    tokens = 6000.0 * world_size
    return {
        "config": {
            "batch_size": batch_size,
            "seq_len": seq_len,
            "activation_checkpointing": checkpointing,
            "fsdp": fsdp,
        },
        "metrics": {"throughput": {"tokens_per_second": tokens}},
        "distributed": {
            "world_size": world_size,
            "aggregate": {"tokens_per_second": tokens},
            "ranks": [{"peak_device_memory_bytes": 60 * GB}] * world_size,
        },
        "environment": {"device": "cuda:0", "device_name": "NVIDIA H100 80GB HBM3"},
    }


def test_the_anchor_ratio_is_given_only_for_the_anchors_configuration():
    """torchtitan's 5,762 tok/s/GPU is 8 GPUs, local batch 2, seq 8,192, FSDP, selective checkpointing (Table 1 of
    benchmarks/llama3_h100_202412_torchtitan.md): a run in another configuration gets the figure for reference, but
    no ratio to it, and the differences named."""
    spec = get_workload("llama3-8b")
    same = anchors.section(_finished_llama3_8b(8, 2), spec, "bf16", False, 1)
    assert same["ratio_to_anchor"] == pytest.approx(6000 / 5762) and same["anchor_conditions_differ"] == []
    other = anchors.section(_finished_llama3_8b(4, 1, checkpointing="full"), spec, "bf16", False, 1)
    assert other["anchor"]["tokens_per_second_per_gpu"] == 5762 and other["ratio_to_anchor"] is None
    assert other["anchor_conditions_differ"] == [
        "gpus 4, anchor 8",
        "batch_size 1, anchor 2",
        "activation_checkpointing full, anchor selective",
    ]


def test_mfu_of_the_anchors_figures_is_torchtitans_33_and_39_percent():
    """benchmarks/llama3_h100_202412_torchtitan.md: 8B on 8 H100 without Float8 "achieves 33% to 39% MFU"
    (5,762 and 6,667 tok/s/GPU): torchtitan's FLOPs per token against the dense bf16 peak, 989.4 TFLOP/s."""
    spec = get_workload("llama3-8b")
    flops_per_token = anchors.torchtitan_flops_per_token(spec, 8192)
    for tokens_per_gpu, percent in ((5762, 33), (6667, 39)):  # whole percent, as the benchmark states them
        result = _finished_llama3_8b(8, 2)
        result["distributed"]["aggregate"]["tokens_per_second"] = 8 * tokens_per_gpu
        llm = anchors.section(result, spec, "bf16", False, flops_per_token)
        assert llm["mfu_peak_tflops"] == 989.4 and int(100 * llm["mfu"]) == percent

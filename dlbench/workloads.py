"""The reference workloads: what each trains, on what input, counted in which unit.

This module must not import torch: `dlbench list` reads it to answer instantly. Parameter counts are declared
here (and checked against the built models in tests/test_models.py) for the same reason.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field, replace

from dlbench.errors import UserError


# A CPU run's batch, where the workload names no cpu_batch_size
CPU_MAX_DEFAULT_BATCH = 32


@dataclass(frozen=True)
class Recipe:
    """How a workload trains when the command line does not say: the harness's plain loop (SGD, DDP under
    torchrun, whole-model compile), or, for the Llama workloads, torchtitan's benchmark configuration."""

    optimizer: str = "sgd"
    fsdp: bool = False  # under torchrun: FSDP2 over all ranks unless --no-fsdp
    activation_checkpointing: str = "none"  # none, selective (per-op) or full, per transformer block
    compile_unit: str = "model"  # "block": --compile compiles each transformer block, as torchtitan does
    grad_clip_norm: float | None = None
    float8: bool = False  # --precision fp8 converts its linears with torchao
    anchor: str | None = None  # key of its published reference figures in data/anchors.json
    compared_with: str | None = None  # "torchtitan": the result reports tokens/s/GPU and MFU as torchtitan counts


# torchtitan's Llama 3 benchmark (pytorch/torchtitan, benchmarks/llama3_h100_202412_torchtitan.md and
# torchtitan/models/llama3/train_configs/llama3_8b.toml): FSDP2 over every rank, per-op selective activation
# checkpointing, AdamW, gradient clipping at 1.0, per-block torch.compile, Float8 linears as the third rung
TORCHTITAN = Recipe(
    optimizer="adamw",
    fsdp=True,
    activation_checkpointing="selective",
    compile_unit="block",
    grad_clip_norm=1.0,
    float8=True,
    compared_with="torchtitan",
)


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    task: str  # "classification" (images), "causal-lm" or "masked-lm" (tokens)
    builder: str  # "module:function" returning an nn.Module; imported only when the workload runs
    parameters: int
    default_batch_size: int
    image_size: int = 0  # images: square side in pixels
    channels: int = 3
    num_classes: int = 1000
    vocab_size: int = 0  # language models
    seq_len: int = 0
    builder_kwargs: dict = field(default_factory=dict)
    # transformers: the attribute path of the model's list of blocks, which `--fsdp` shards one by one; empty for
    # the CNNs and the MLP, which train with DDP only
    blocks: str = ""
    recipe: Recipe = Recipe()
    # On a CPU, without --batch-size / --seq-len: sizes at which the default run (warm-up until step time settles,
    # then at least 10 timed steps) ends within about a minute on two cores, at roughly 100 GFLOP of training per step
    # or less (6 x parameters x tokens for the transformers; ResNet-18 at 16 images measured 91 CPU-seconds for its
    # whole run); 0: the GPU default, the batch at most 32. `dlbench list` shows them.
    cpu_batch_size: int = 0
    cpu_seq_len: int = 0

    @property
    def is_image(self) -> bool:
        return self.task == "classification"

    @property
    def sample_unit(self) -> str:
        """What the workload's headline throughput counts. A language model's sample is one sequence; its
        throughput is reported per sequence and, as the field does, per token."""
        return "images" if self.is_image else "tokens"

    def default_sizes(self, on_cpu: bool) -> tuple[int, int]:
        """(batch size, sequence length) when none is asked for: on a CPU the CPU defaults above."""
        if not on_cpu:
            return self.default_batch_size, self.seq_len
        batch = self.cpu_batch_size or min(self.default_batch_size, CPU_MAX_DEFAULT_BATCH)
        return batch, self.cpu_seq_len or self.seq_len

    def tokens_per_sample(self, seq_len: int | None = None) -> int:
        return 0 if self.is_image else (seq_len or self.seq_len)

    def build_model(self, **overrides):
        module_name, function_name = self.builder.split(":")
        builder = getattr(importlib.import_module(module_name), function_name)
        return builder(**{**self.builder_kwargs, **overrides})


_ALL = [
    Workload(
        "mnist-mlp",
        "784-128-64-10 MLP on 28x28 grey digits (smoke test)",
        "classification",
        "dlbench.models.small:MnistMLP",
        109_386,
        128,
        image_size=28,
        channels=1,
        num_classes=10,
    ),
    Workload(
        "cifar-cnn",
        "two conv + two fully connected layers on 32x32 colour images (smoke test)",
        "classification",
        "dlbench.models.small:CifarCNN",
        545_098,
        128,
        image_size=32,
        num_classes=10,
    ),
    Workload(
        "resnet18",
        "ResNet-18, ImageNet classification at 224x224",
        "classification",
        "dlbench.models.resnet:resnet18",
        11_689_512,
        64,
        image_size=224,
        cpu_batch_size=16,
    ),
    Workload(
        "resnet50",
        "ResNet-50 v1.5, ImageNet classification at 224x224",
        "classification",
        "dlbench.models.resnet:resnet50",
        25_557_032,
        64,
        image_size=224,
        cpu_batch_size=4,
    ),
    Workload(
        "vit_b_16",
        "Vision Transformer B/16, ImageNet classification at 224x224",
        "classification",
        "dlbench.models.vit:vit_b_16",
        86_567_656,
        32,
        image_size=224,
        blocks="layers",
        cpu_batch_size=2,
    ),
    Workload(
        "gpt2",
        "GPT-2 124M causal language model, context 1024",
        "causal-lm",
        "dlbench.models.gpt2:GPT",
        124_439_808,
        8,
        vocab_size=50257,
        seq_len=1024,
        builder_kwargs={"size": "gpt2"},
        blocks="transformer.h",
        cpu_batch_size=1,
        cpu_seq_len=128,
    ),
    Workload(
        "gpt2-medium",
        "GPT-2 350M causal language model, context 1024",
        "causal-lm",
        "dlbench.models.gpt2:GPT",
        354_823_168,
        4,
        vocab_size=50257,
        seq_len=1024,
        builder_kwargs={"size": "gpt2-medium"},
        blocks="transformer.h",
        cpu_batch_size=1,
        cpu_seq_len=128,
    ),
    Workload(
        "gpt2-tiny",
        "GPT-2 at 2 layers x 64 wide, context 128 (transformer smoke test)",
        "causal-lm",
        "dlbench.models.gpt2:GPT",
        3_324_736,
        8,
        vocab_size=50257,
        seq_len=128,
        builder_kwargs={"size": "gpt2-tiny"},
        blocks="transformer.h",
    ),
    Workload(
        "llama3-8b",
        "Llama 3.1 8B decoder (torchtitan's 8B flavour), context 8192, torchtitan's benchmark configuration",
        "causal-lm",
        "dlbench.models.llama:Llama",
        8_030_261_248,
        2,
        vocab_size=128256,
        seq_len=8192,
        builder_kwargs={"size": "8B"},
        blocks="layers",
        recipe=replace(TORCHTITAN, anchor="llama3-8b"),
    ),
    Workload(
        "llama3-1b",
        "Llama 3.2 1B decoder (torchtitan's 1B flavour, tied embeddings), context 8192, "
        "torchtitan's benchmark configuration",
        "causal-lm",
        "dlbench.models.llama:Llama",
        1_235_814_400,
        2,
        vocab_size=128256,
        seq_len=8192,
        builder_kwargs={"size": "1B"},
        blocks="layers",
        recipe=TORCHTITAN,
    ),
    Workload(
        "llama-tiny",
        "Llama 3 architecture at 2 layers x 64 wide, context 128 (smoke test of the Llama workloads' configuration)",
        "causal-lm",
        "dlbench.models.llama:Llama",
        229_696,
        4,
        vocab_size=1024,
        seq_len=128,
        builder_kwargs={"size": "tiny"},
        blocks="layers",
        recipe=TORCHTITAN,
    ),
    Workload(
        "bert-base",
        "BERT-base masked language model, sequence 128",
        "masked-lm",
        "dlbench.models.bert:BertForMaskedLM",
        109_514_298,
        32,
        vocab_size=30522,
        seq_len=128,
        blocks="layers",
        cpu_batch_size=2,
    ),
    Workload(
        "bert-tiny",
        "BERT at 2 layers x 128 wide, sequence 128 (masked-lm smoke test)",
        "masked-lm",
        "dlbench.models.bert:BertForMaskedLM",
        4_416_698,
        32,
        vocab_size=30522,
        seq_len=128,
        builder_kwargs={"size": "bert-tiny"},
        blocks="layers",
    ),
    Workload(
        "bert-base-512",
        "BERT-base masked language model, sequence 512",
        "masked-lm",
        "dlbench.models.bert:BertForMaskedLM",
        109_514_298,
        8,
        vocab_size=30522,
        seq_len=512,
        blocks="layers",
        cpu_batch_size=1,
    ),
]

WORKLOADS: dict[str, Workload] = {w.name: w for w in _ALL}


def get_workload(name: str) -> Workload:
    if name in WORKLOADS:
        return WORKLOADS[name]
    close = difflib.get_close_matches(name, WORKLOADS, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise UserError(f"unknown workload '{name}'{hint} (see 'dlbench list')")


def check_fsdp(workload: Workload, distributed: bool) -> None:
    """`--fsdp` shards a transformer's blocks across the ranks of a torchrun job: refuse it for anything else."""
    if not workload.blocks:
        shardable = ", ".join(w.name for w in _ALL if w.blocks)
        raise UserError(
            f"--fsdp shards transformer workloads block by block ({shardable}); {workload.name} is not "
            "one: drop --fsdp to train it data-parallel with DDP"
        )
    if not distributed:
        raise UserError(
            "--fsdp shards the model across processes: add --nproc N (CPU) or --gpus N, or start the run under torchrun"
        )

"""The reference workloads: what each trains, on what input, counted in which unit.

This module must not import torch: `dlbench list` reads it to answer instantly. Parameter counts are declared
here (and checked against the built models in tests/test_models.py) for the same reason.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field

from dlbench.errors import UserError


# A CPU run's batch, where the workload names no cpu_batch_size
CPU_MAX_DEFAULT_BATCH = 32


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
    Workload("mnist-mlp", "784-128-64-10 MLP on 28x28 grey digits (smoke test)", "classification",
             "dlbench.models.small:MnistMLP", 109_386, 128, image_size=28, channels=1, num_classes=10),
    Workload("cifar-cnn", "two conv + two fully connected layers on 32x32 colour images (smoke test)",
             "classification", "dlbench.models.small:CifarCNN", 545_098, 128, image_size=32, num_classes=10),
    Workload("resnet18", "ResNet-18, ImageNet classification at 224x224", "classification",
             "dlbench.models.resnet:resnet18", 11_689_512, 64, image_size=224, cpu_batch_size=16),
    Workload("resnet50", "ResNet-50 v1.5, ImageNet classification at 224x224", "classification",
             "dlbench.models.resnet:resnet50", 25_557_032, 64, image_size=224, cpu_batch_size=4),
    Workload("vit_b_16", "Vision Transformer B/16, ImageNet classification at 224x224", "classification",
             "dlbench.models.vit:vit_b_16", 86_567_656, 32, image_size=224, blocks="layers", cpu_batch_size=2),
    Workload("gpt2", "GPT-2 124M causal language model, context 1024", "causal-lm",
             "dlbench.models.gpt2:GPT", 124_439_808, 8, vocab_size=50257, seq_len=1024,
             builder_kwargs={"size": "gpt2"}, blocks="transformer.h", cpu_batch_size=1, cpu_seq_len=128),
    Workload("gpt2-medium", "GPT-2 350M causal language model, context 1024", "causal-lm",
             "dlbench.models.gpt2:GPT", 354_823_168, 4, vocab_size=50257, seq_len=1024,
             builder_kwargs={"size": "gpt2-medium"}, blocks="transformer.h", cpu_batch_size=1, cpu_seq_len=128),
    Workload("gpt2-tiny", "GPT-2 at 2 layers x 64 wide, context 128 (transformer smoke test)", "causal-lm",
             "dlbench.models.gpt2:GPT", 3_324_736, 8, vocab_size=50257, seq_len=128,
             builder_kwargs={"size": "gpt2-tiny"}, blocks="transformer.h"),
    Workload("bert-base", "BERT-base masked language model, sequence 128", "masked-lm",
             "dlbench.models.bert:BertForMaskedLM", 109_514_298, 32, vocab_size=30522, seq_len=128, blocks="layers",
             cpu_batch_size=2),
    Workload("bert-base-512", "BERT-base masked language model, sequence 512", "masked-lm",
             "dlbench.models.bert:BertForMaskedLM", 109_514_298, 8, vocab_size=30522, seq_len=512, blocks="layers",
             cpu_batch_size=1),
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
        raise UserError(f"--fsdp shards transformer workloads block by block ({shardable}); {workload.name} is not "
                        "one: drop --fsdp to train it data-parallel with DDP")
    if not distributed:
        raise UserError("--fsdp shards the model across processes: add --nproc N (CPU) or --gpus N, or start the run "
                        "under torchrun")

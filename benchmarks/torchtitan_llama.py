"""torchtitan's own run of the configuration dlbench's Llama workloads default to, for the side-by-side ratio in
benchmarks/gpu_reference.sh: a config registry for torchtitan 0.3.0's trainer (`torchtitan.train --module
benchmarks.torchtitan_llama --config llama3_1b_bf16`; torchtitan/config/manager.py accepts a module path).

Built like torchtitan's own llama3_8b() (torchtitan/models/llama3/config_registry.py): its model registry's 1B or 8B
flavour with its default attention, AdamW at 3e-4, selective per-op activation checkpointing, FSDP over every rank;
and like the 2024-12 benchmark: local batch 2, sequence 8,192. Data: torchtitan's bundled `c4_test` sample and test
tokenizer (a checkout's tests/assets: run from the checkout), since the GPU machines reach no network; token ids below
2,048 change no matmul's shape. Checkpoints, validation, profiling and TensorBoard are off, as in a throughput run.

Not importable without a GPU build of torch (torchtitan imports triton), so it is only compiled by the tests here.
Two differences that the ratio carries and docs/benchmarks.md states: torchtitan 0.3.0 no longer offers SDPA for
language models (torchtitan/models/common/config_utils.py: get_attention_config) and runs FlexAttention with
per-document (block-causal) masks, where dlbench runs causal SDPA (cuDNN or flash) over the whole sequence; and
torchtitan 0.3.0's Float8 recipes are rowwise ("rowwise", "rowwise_with_gw_hp"); dlbench's fp8 is tensorwise with
Float8 all-gather as in the 2024-12 benchmark, so the fp8 rung's ratio compares two recipes and says so.
"""

from torchtitan.components.checkpoint import CheckpointManager
from torchtitan.components.loss import ChunkedLossWrapper, CrossEntropyLoss
from torchtitan.components.metrics import MetricsProcessor
from torchtitan.components.optimizer import default_adamw
from torchtitan.components.quantization import Float8LinearConverter
from torchtitan.config import CompileConfig, TrainingConfig
from torchtitan.distributed.activation_checkpoint import SelectiveAC
from torchtitan.hf_datasets.text_datasets import HuggingFaceTextDataLoader
from torchtitan.models.common.config_utils import decoder_vocab_size
from torchtitan.models.llama3 import model_registry
from torchtitan.trainer import Trainer

STEPS = 100  # torchtitan's benchmark reads its throughput at steps 90 to 100


def _config(flavor: str, compiled: bool, float8: bool) -> Trainer.Config:
    converters = [Float8LinearConverter.Config(model_compile_enabled=compiled)] if float8 else None
    model_spec = model_registry(flavor, converters=converters)
    return Trainer.Config(
        loss=ChunkedLossWrapper.Config(
            loss_fn=CrossEntropyLoss.Config(global_vocab_size=decoder_vocab_size(model_spec))
        ),
        hf_assets_path="./tests/assets/tokenizer",
        model_spec=model_spec,
        optimizer=default_adamw(lr=3e-4),
        training=TrainingConfig(local_batch_size=2, seq_len=8192, steps=STEPS),
        dataloader=HuggingFaceTextDataLoader.Config(dataset="c4_test"),
        metrics=MetricsProcessor.Config(log_freq=10),
        checkpoint=CheckpointManager.Config(enable=False),
        activation_checkpoint=SelectiveAC.Config(),
        compile=CompileConfig(enable=compiled, components=["model"]),
    )


def llama3_1b_bf16() -> Trainer.Config:
    return _config("1B", compiled=False, float8=False)


def llama3_1b_bf16_compiled() -> Trainer.Config:
    return _config("1B", compiled=True, float8=False)


def llama3_1b_fp8_compiled() -> Trainer.Config:
    return _config("1B", compiled=True, float8=True)


def llama3_8b_bf16() -> Trainer.Config:
    return _config("8B", compiled=False, float8=False)


def llama3_8b_bf16_compiled() -> Trainer.Config:
    return _config("8B", compiled=True, float8=False)


def llama3_8b_fp8_compiled() -> Trainer.Config:
    return _config("8B", compiled=True, float8=True)

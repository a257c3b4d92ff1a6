"""The reference models are the canonical architectures: parameter counts and output shapes."""

import pytest
import torch

from dlbench.workloads import WORKLOADS

# Published parameter counts: torchvision's model cards, GPT-2 124M with tied embeddings, BertForMaskedLM.
CANONICAL = {
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "vit_b_16": 86_567_656,
    "gpt2": 124_439_808,
    "bert-base": 109_514_298,
}


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_declared_parameter_count_matches_built_model(name):
    workload = WORKLOADS[name]
    # On the meta device: the shapes without the memory or the initialisation (bert-base builds in 1.3 s on the CPU
    # and 0.02 s here; llama3-8b would take 32 GB of real fp32 parameters), and tied weights are still one parameter.
    with torch.device("meta"):
        model = workload.build_model()
    assert sum(p.numel() for p in model.parameters()) == workload.parameters


@pytest.mark.parametrize("name,count", sorted(CANONICAL.items()))
def test_canonical_parameter_counts(name, count):
    assert WORKLOADS[name].parameters == count


@pytest.mark.parametrize("name", ["mnist-mlp", "cifar-cnn", "resnet18", "resnet50", "vit_b_16"])
def test_image_models_output_one_logit_per_class(name):
    w = WORKLOADS[name]
    with torch.device("meta"):
        model = w.build_model()
        out = model(torch.empty(2, w.channels, w.image_size, w.image_size))
    assert tuple(out.shape) == (2, w.num_classes)


@pytest.mark.parametrize("name", ["gpt2", "gpt2-medium", "bert-base", "bert-tiny"])
def test_language_models_output_vocabulary_logits_per_token(name):
    w = WORKLOADS[name]
    with torch.device("meta"):
        model = w.build_model()
        out = model(torch.zeros(2, 64, dtype=torch.long))
    assert tuple(out.shape) == (2, 64, w.vocab_size)


def test_gpt2_ties_output_head_to_token_embedding():
    with torch.device("meta"):
        model = WORKLOADS["gpt2"].build_model()
    assert model.lm_head.weight is model.transformer.wte.weight

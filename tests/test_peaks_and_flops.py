"""MFU inputs: the peak table keyed on the detected GPU name, and FLOP counts checked against analytic formulas."""

import pytest

from dlbench.train import flops, peaks
from dlbench.workloads import WORKLOADS


@pytest.mark.parametrize(
    "device_name,gpu",
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("NVIDIA H200", "H200 SXM"),
        ("NVIDIA GH200 480GB", "GH200"),
        ("NVIDIA B200", "B200"),
        ("NVIDIA A100-SXM4-80GB", "A100 SXM"),
        ("NVIDIA A100 80GB PCIe", "A100 PCIe"),
        ("NVIDIA A10", "A10"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40S", "L40S"),
        ("Tesla T4", "T4"),
        ("Tesla V100-SXM2-32GB", "V100 SXM"),
        ("NVIDIA GeForce RTX 3090", "RTX 3090"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
    ],
)
def test_known_gpus_are_recognised(device_name, gpu):
    assert peaks.lookup(device_name).gpu == gpu


@pytest.mark.parametrize("device_name", ["NVIDIA A10G", "NVIDIA H200 NVL", "NVIDIA GeForce RTX 5090", "NVIDIA L40"])
def test_unknown_gpus_get_no_peak_rather_than_a_wrong_one(device_name):
    assert peaks.lookup(device_name) is None
    assert peaks.peak_flops(device_name, "bf16") is None


def test_peak_is_per_precision():
    assert peaks.peak_flops("NVIDIA H100 80GB HBM3", "bf16") == pytest.approx(989.4e12)
    assert peaks.peak_flops("NVIDIA H100 80GB HBM3", "tf32") == pytest.approx(494.7e12)
    assert peaks.peak_flops("NVIDIA H100 80GB HBM3", "fp32") == pytest.approx(67e12)
    assert peaks.peak_flops("Tesla T4", "bf16") is None  # Turing has no bf16: no MFU, not a wrong one


def test_every_table_entry_names_its_source():
    for _, peak in peaks._table():
        assert peak.source and peak.tflops["fp32"] > 0


def test_gpt2_flops_match_the_6n_plus_attention_estimate():
    w = WORKLOADS["gpt2"]
    counted = flops.training_flops_per_sample(w, 1024) / 1024
    n_without_position_embedding = w.parameters - 1024 * 768
    analytic = flops.gpt_analytic_flops_per_token(n_without_position_embedding, 12, 768, 1024)
    assert counted == pytest.approx(analytic, rel=0.01)
    assert counted == pytest.approx(0.855e9, rel=0.01)  # facts: ~0.855 GFLOP per token for GPT-2 124M training


def test_resnet50_training_flops_are_three_forward_passes():
    # ResNet-50 forward is 4.09 GMACs at 224x224 (torchvision model card: 4.09 GFLOPS, counted as MACs)
    counted = flops.training_flops_per_sample(WORKLOADS["resnet50"], 0)
    assert counted == pytest.approx(3 * 2 * 4.09e9, rel=0.02)


def test_bert_flops_scale_with_sequence_length():
    w = WORKLOADS["bert-base"]
    short, long = (flops.training_flops_per_sample(w, n) for n in (128, 512))
    assert 4 < long / short < 4.5  # linear in tokens, plus the quadratic attention term

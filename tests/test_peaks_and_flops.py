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
        ("Tesla V100-SXM2-32GB", "V100 SXM2"),
        ("Tesla V100-SXM3-32GB", "V100 SXM3 (DGX-2)"),
        ("NVIDIA GeForce RTX 3090", "RTX 3090"),
        ("NVIDIA GeForce RTX 4090", "RTX 4090"),
    ],
)
def test_known_gpus_are_recognised(device_name, gpu):
    assert peaks.lookup(device_name).gpu == gpu


# DGX-2H's 450 W V100 has no NVIDIA datasheet figure (only press reports of "2.1 PFLOPS"): no MFU rather than a
# derived one, and not the DGX-2 part's lower 125/15.7, which would overstate its MFU
@pytest.mark.parametrize(
    "device_name", ["NVIDIA A10G", "NVIDIA H200 NVL", "NVIDIA GeForce RTX 5090", "NVIDIA L40", "Tesla V100-SXM3-32GB-H"]
)
def test_unknown_gpus_get_no_peak_rather_than_a_wrong_one(device_name):
    assert peaks.lookup(device_name) is None
    assert peaks.peak_flops(device_name, "bf16") is None


def test_peak_is_per_precision():
    assert peaks.peak_flops("NVIDIA H100 80GB HBM3", "bf16") == pytest.approx(989.4e12)
    assert peaks.peak_flops("NVIDIA H100 80GB HBM3", "tf32") == pytest.approx(494.7e12)
    assert peaks.peak_flops("NVIDIA H100 80GB HBM3", "fp32") == pytest.approx(67e12)
    assert peaks.peak_flops("Tesla T4", "bf16") is None  # Turing has no bf16: no MFU, not a wrong one


@pytest.mark.parametrize(
    "device_name,precision,tflops",
    [
        ("NVIDIA B200", "fp32", 75),  # HGX B200 per GPU; 80 is GB200's
    ],
)
def test_corrected_peaks(device_name, precision, tflops):
    assert peaks.peak_flops(device_name, precision) == pytest.approx(tflops * 1e12)


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


def test_the_images_gradient_is_not_counted_for_the_first_convolution():
    # The convention (flops.CONVENTION, docs/results.md): what the step executes. Autograd computes no gradient for
    # the input batch, so training = 3 x forward minus the first convolution's input-gradient (2 x its MACs).
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    workload = WORKLOADS["resnet50"]
    with torch.device("meta"):
        counter = FlopCounterMode(display=False)
        with counter:
            workload.build_model()(torch.empty(1, 3, 224, 224))
    forward = counter.get_total_flops()
    first_conv_macs = 112 * 112 * 64 * (7 * 7 * 3)  # output pixels x channels x kernel volume
    assert flops.training_flops_per_sample(workload, 0) == 3 * forward - 2 * first_conv_macs
    assert "no gradient for the input batch" in flops.CONVENTION


def test_padded_vocabulary_adds_its_rows_to_the_output_layer():
    gpt2 = WORKLOADS["gpt2"]
    padded = flops.training_flops_per_sample(gpt2, 1024, vocab_size=50304) / 1024
    plain = flops.training_flops_per_sample(gpt2, 1024) / 1024
    assert padded - plain == 6 * (50304 - 50257) * 768  # 6 FLOPs per weight per token, 47 more rows of 768
    model = gpt2.build_model(vocab_size=50304)
    assert sum(p.numel() for p in model.parameters()) == 124_475_904  # nanoGPT's "124.47M" with 50304

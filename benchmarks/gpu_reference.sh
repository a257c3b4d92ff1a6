#!/usr/bin/env bash
# The reference GPU runs recorded in docs/benchmarks.md: ResNet-50 (bf16, channels_last, compiled) and GPT-2
# (bf16, compiled), plus precision variants and the harness-overhead comparison on CUDA.
# Usage: benchmarks/gpu_reference.sh OUTDIR    (each run writes OUTDIR/<name>.json; a log goes to stdout)
set -uo pipefail
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
dl() { name=$1; shift; echo "== dlbench run $*"; timeout 240 python3 -m dlbench run "$@" --output "$out/$name.json"; echo "rc=$?"; }

dl resnet18_default resnet18
dl resnet50_bf16_cl_compiled resnet50 --precision bf16 --channels-last --compile --batch-size 256 --steps 50 --warmup 15
dl gpt2_bf16_compiled gpt2 --precision bf16 --compile --batch-size 16 --steps 30 --warmup 10
dl resnet50_bf16_cl resnet50 --precision bf16 --channels-last --batch-size 256 --steps 30 --warmup 5
dl resnet50_tf32_cl resnet50 --precision tf32 --channels-last --batch-size 256 --steps 20 --warmup 5
dl resnet50_fp32 resnet50 --precision fp32 --batch-size 128 --steps 10 --warmup 3
dl gpt2_fp16 gpt2 --precision fp16 --batch-size 8 --steps 10 --warmup 3
dl bert_base_bf16 bert-base --precision bf16 --batch-size 128 --steps 20 --warmup 5
dl vit_b_16_bf16 vit_b_16 --precision bf16 --batch-size 128 --steps 20 --warmup 5
echo "== out of memory on purpose"
timeout 120 python3 -m dlbench run gpt2-medium --batch-size 1024 --steps 2 --warmup 0 --output "$out/oom.json"; echo "rc=$?"
echo "== harness overhead on CUDA"
timeout 200 python3 benchmarks/harness_overhead.py --device cuda --workload resnet50 --batch-size 128 --steps 40 \
    --rounds 3 --json "$out/harness_overhead_cuda.json"

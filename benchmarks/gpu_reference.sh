#!/usr/bin/env bash
# The reference GPU runs recorded in docs/benchmarks.md, in about 8 minutes on one GPU:
#   the two published comparisons with dlbench run's defaults (time-based 30 s window, warm-up until step time
#   settles, cuDNN autotuning): ResNet-50 bf16 + channels_last + compile at batch 256 (DeepLearningExamples, Lambda)
#   and GPT-2 124M bf16 + compile with nanoGPT's padded vocabulary (llm.c, nanoGPT); then shorter variants, a
#   deliberate out-of-memory run (eager and compiled: each must end with one line naming the batch size, exit 1),
#   and the harness overhead on CUDA with the default observers on.
# Usage: benchmarks/gpu_reference.sh OUTDIR    (each run writes OUTDIR/<name>.json; a log goes to stdout)
set -uo pipefail
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
python=${PYTHON:-python3}
dl() {
    local name=$1 limit=$2
    shift 2
    echo "== dlbench run $*"
    timeout "$limit" "$python" -m dlbench run "$@" --output "$out/$name.json"
    echo "rc=$?"
}

"$python" -m dlbench env --json > "$out/env.json"
dl resnet50_bf16_cl_compiled 240 resnet50 --precision bf16 --channels-last --compile --batch-size 256
dl gpt2_bf16_compiled_padded 240 gpt2 --precision bf16 --compile --pad-vocab --batch-size 16
dl resnet50_bf16_cl 60 resnet50 --precision bf16 --channels-last --batch-size 256 --duration 10
dl resnet50_tf32_cl 60 resnet50 --precision tf32 --channels-last --batch-size 256 --duration 10
dl gpt2_fp16 60 gpt2 --precision fp16 --batch-size 8 --duration 10
echo "== out of memory on purpose (expect rc=1 and one line)"
dl oom_eager 60 gpt2-medium --batch-size 1024 --steps 2 --warmup 0
dl oom_compiled 180 gpt2-medium --batch-size 1024 --steps 2 --warmup 0 --compile
echo "== harness overhead on CUDA (default observers on)"
timeout 150 "$python" benchmarks/harness_overhead.py --device cuda --workload resnet50 --batch-size 128 --steps 40 \
    --rounds 3 --json "$out/harness_overhead_cuda.json"
echo "rc=$?"

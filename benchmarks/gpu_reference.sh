#!/usr/bin/env bash
# The reference GPU runs recorded in docs/benchmarks.md, in about 8 minutes on one GPU:
#   the two published comparisons with dlbench run's defaults (time-based 30 s window, warm-up until step time
#   settles, cuDNN autotuning): ResNet-50 bf16 + channels_last + compile at batch 256 (DeepLearningExamples, Lambda)
#   and GPT-2 124M bf16 + compile with nanoGPT's padded vocabulary (llm.c, nanoGPT); then shorter variants, a
#   deliberate out-of-memory run (eager and compiled: each must end with one line naming the batch size, exit 1),
#   and the harness overhead on CUDA with the default observers on; then torchtitan's three Llama rungs (bf16,
#   bf16 + compile, Float8 + compile; pytorch/torchtitan benchmarks/llama3_h100_202412_torchtitan.md) on the GPUs
#   present with dlbench's defaults (llama3-8b on 8 or more GPUs, llama3-1b on fewer), each beside torchtitan's own
#   run of the same rung where torchtitan imports and TORCHTITAN_DIR names a torchtitan checkout (its tests/assets
#   hold the tokenizer and data sample), reported as a ratio (benchmarks/torchtitan_ratio.py).
# Usage: benchmarks/gpu_reference.sh OUTDIR    (each run writes OUTDIR/<name>.json; a log goes to stdout)
#   DRY_RUN=1 prints the commands without running them; NGPU and CAPABILITY_MAJOR stand in for the GPUs' count and
#   compute capability there (tests/test_gpu_reference.py).
set -uo pipefail
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
python=${PYTHON:-python3}
dry=${DRY_RUN:-0}
repo=$(cd "$(dirname "$0")/.." && pwd)
dl() {
    local name=$1 limit=$2
    shift 2
    echo "== dlbench run $*"
    [ "$dry" = 1 ] && return 0
    timeout "$limit" "$python" -m dlbench run "$@" --output "$out/$name.json"
    echo "rc=$?"
}
# torchtitan's own run of one rung (benchmarks/torchtitan_llama.py), then dlbench's result over it
titan() {
    local name=$1 config=$2
    echo "== torchtitan --module benchmarks.torchtitan_llama --config $config on $ngpu GPU(s)"
    [ "$dry" = 1 ] && return 0
    (cd "$TORCHTITAN_DIR" && PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" timeout 900 "$python" -m torch.distributed.run \
        --standalone --nproc-per-node "$ngpu" -m torchtitan.train --module benchmarks.torchtitan_llama --config "$config") \
        > "$out/$name.torchtitan.log" 2>&1
    echo "rc=$?"
    "$python" "$repo/benchmarks/torchtitan_ratio.py" "$out/$name.json" "$out/$name.torchtitan.log" | tee "$out/$name.ratio.json"
}

[ "$dry" = 1 ] || "$python" -m dlbench env --json > "$out/env.json"
dl resnet50_bf16_cl_compiled 240 resnet50 --precision bf16 --channels-last --compile --batch-size 256
dl gpt2_bf16_compiled_padded 240 gpt2 --precision bf16 --compile --pad-vocab --batch-size 16
dl resnet50_bf16_cl 60 resnet50 --precision bf16 --channels-last --batch-size 256 --duration 10
dl resnet50_tf32_cl 60 resnet50 --precision tf32 --channels-last --batch-size 256 --duration 10
dl gpt2_fp16 60 gpt2 --precision fp16 --batch-size 8 --duration 10
echo "== out of memory on purpose (expect rc=1 and one line)"
dl oom_eager 60 gpt2-medium --batch-size 1024 --steps 2 --warmup 0
dl oom_compiled 180 gpt2-medium --batch-size 1024 --steps 2 --warmup 0 --compile
echo "== harness overhead on CUDA (default observers on)"
if [ "$dry" != 1 ]; then
    timeout 150 "$python" benchmarks/harness_overhead.py --device cuda --workload resnet50 --batch-size 128 --steps 40 \
        --rounds 3 --json "$out/harness_overhead_cuda.json"
    echo "rc=$?"
fi

echo "== Llama 3: torchtitan's rungs with dlbench's defaults (seq 8192, local batch 2, FSDP2, selective AC, AdamW)"
ngpu=${NGPU:-$("$python" -c "import torch; print(torch.cuda.device_count())")}
capability=${CAPABILITY_MAJOR:-$("$python" -c "import torch; print(torch.cuda.get_device_capability()[0])")}
if [ "$ngpu" -ge 8 ]; then llama=llama3-8b; size=8b; else llama=llama3-1b; size=1b; fi
gpus=()
[ "$ngpu" -gt 1 ] && gpus=(--gpus "$ngpu")
rungs=("bf16:--precision bf16" "bf16_compiled:--precision bf16 --compile")
if [ "$capability" -ge 9 ]; then
    rungs+=("fp8_compiled:--precision fp8 --compile")
else
    echo "== skip the Float8 rung: compute capability $capability (Float8 linears need Hopper, 9.0, or newer)"
fi
side_by_side=0
if [ -n "${TORCHTITAN_DIR:-}" ] && "$python" -c "import torchtitan.train" 2>/dev/null; then
    side_by_side=1
else
    echo "== torchtitan side by side skipped: set TORCHTITAN_DIR to a torchtitan checkout and install torchtitan"
fi
for rung in "${rungs[@]}"; do
    name=${llama}_${rung%%:*}
    # shellcheck disable=SC2086  # the rung's options are words
    dl "$name" 600 "$llama" ${rung#*:} "${gpus[@]}"
    [ "$side_by_side" = 1 ] && titan "$name" "llama3_${size}_${rung%%:*}"
done
true

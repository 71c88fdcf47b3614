#!/bin/bash
# Prior training on a CUDA machine, run from the repository root there with the .gpu/ that
# build-cuda.sh packed (tools/gpu/README.md): probe the step rate, then one run sized to the time left.
# Settings: BATCH (1024), LR (8e-4), RUN_SECONDS (480, this script's whole budget), INIT (the
# weights to start from: a prior file such as assets/prior.safetensors, or a run's checkpoint;
# default the shipped prior), OUT (the folder the model, the log and the checkpoint's parts are left in; set it).
BATCH=${BATCH:-1024} LR=${LR:-8e-4} RUN_SECONDS=${RUN_SECONDS:-480}
INIT=${INIT:-assets/prior.safetensors}
: "${OUT:?set OUT to the folder the results are left in}"
T0=$(date +%s)
mkdir -p /tmp/culib
for n in libcuda.so.1 libcurand.so.10 libcublas.so.13 libcublasLt.so.13 libcudart.so.13 libnvrtc.so.13; do
  f=$(find /usr/local/nvidia /usr/lib/x86_64-linux-gnu /opt /usr/local -name "$n*" \( -type f -o -type l \) 2>/dev/null | head -1)
  echo "$n -> $f"; [ -n "$f" ] && ln -sf "$f" /tmp/culib/$n
done
export LD_LIBRARY_PATH=/tmp/culib:$LD_LIBRARY_PATH
xz -d -T16 -c .gpu/rebar.xz > /tmp/rebar && chmod +x /tmp/rebar
xz -d -c .gpu/train.safetensors.xz > /tmp/train.safetensors
ldd /tmp/rebar | grep -i 'not found'
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
COMMON="--cuda --data /tmp/train.safetensors --valid .gpu/valid.safetensors --init-from $INIT --clean-context 0.5 --repeat-weight 0.3 --phrase-crops 0.5 --batch $BATCH --lr $LR"
/tmp/rebar train prior $COMMON --out /tmp/probe --steps 400 --eval-every 200 --checkpoint-every 100000 2>&1 | grep -v '^\s*$' | tail -4
# The rate between the probe's two log lines: its start (CUDA, the first validation) is not counted.
RATE=$(python3 -c "import json;l=[json.loads(x) for x in open('/tmp/probe/log.jsonl')];print((l[-1]['step']-l[-2]['step'])/(l[-1]['seconds']-l[-2]['seconds']))") || exit 1
LEFT=$(( RUN_SECONDS - ($(date +%s) - T0) - 40 ))
STEPS=$(python3 -c "print(int($RATE*$LEFT*0.95))")
echo "rate $RATE steps/s, $LEFT s left: $STEPS steps"
/tmp/rebar train prior $COMMON --out /tmp/main --steps $STEPS --eval-every 1000 --checkpoint-every 2000 --max-minutes $(( LEFT / 60 + 1 )) 2>&1 | grep -v '^\s*$' | tail -3
cp /tmp/main/prior.safetensors /tmp/main/log.jsonl $OUT/
split -b 15M /tmp/main/checkpoint.safetensors $OUT/checkpoint.part-
ls -la $OUT; echo "total $(( $(date +%s) - T0 )) s"

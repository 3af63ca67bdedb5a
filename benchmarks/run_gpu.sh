#!/usr/bin/env bash
# Every benchmark with --device cuda, plus a short real training run, in one go on a GPU machine.
#
# The machine has torch but not egail's other dependencies, and cannot download: CARRY holds wheels
# (CARRY/whl) and configs + tokenizers of the embedded models (CARRY/assets, from export_assets.py; the
# weights are too large to carry, so models get random weights). Results go to OUT as gpu-<name>.json
# and gpu-log.txt. Arguments name the parts to run (default: all of them, in this order).
#
#   OUT=/tmp/out CARRY=.bench_carry bash benchmarks/run_gpu.sh [smoke step memory generation discriminator]
#   DEVICE=cpu PYTHON=/work/venv/bin/python SKIP_INSTALL=1 EXTRA=--quick bash benchmarks/run_gpu.sh   # dry run
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=${CARRY:-.bench_carry}
OUT=${OUT:?set OUT to the results folder}
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
EXTRA=${EXTRA:-}
PARTS=${*:-smoke step memory generation discriminator}
mkdir -p "$OUT"
LOG="$OUT/gpu-log.txt"

if [ -z "${SKIP_INSTALL:-}" ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$CARRY"/whl/*.whl >>"$LOG" 2>&1 || { echo "wheel install failed"; tail -20 "$LOG"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

"$PYTHON" - >>"$LOG" 2>&1 <<'EOF'
import importlib, torch
for name in ("torch", "transformers", "trl", "accelerate", "peft", "datasets", "tokenizers", "vaderSentiment"):
    module = importlib.import_module(name)
    print(name, getattr(module, "__version__", "?"), getattr(module, "__file__", ""))
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")
EOF
[ $? -ne 0 ] && { echo "imports failed"; tail -30 "$LOG"; exit 1; }

ARGS=(--device "$DEVICE" --assets "$CARRY/assets" $EXTRA)
status=0
for part in $PARTS; do
  case $part in
    smoke)         cmd=(smoke_train.py) limit=100 ;;
    step)          cmd=(bench_step.py --batch 32 --minibatch 8 --num-generations 8 --max-completion-length 64) limit=130 ;;
    memory)        cmd=(bench_memory.py --jobs 3) limit=170 ;;
    generation)    cmd=(bench_generation.py --repeats 2) limit=150 ;;
    discriminator) cmd=(bench_discriminator.py) limit=50 ;;
    *) echo "unknown part $part"; exit 2 ;;
  esac
  [ "$DEVICE" = cpu ] && limit=$((limit * 20))
  echo "=== $part: ${cmd[*]} (limit ${limit}s)" | tee -a "$LOG"
  start=$(date +%s)
  timeout "$limit" "$PYTHON" "benchmarks/${cmd[0]}" "${cmd[@]:1}" "${ARGS[@]}" \
    --output "$OUT/gpu-$part.json" >>"$LOG" 2>&1
  rc=$?
  echo "=== $part: exit $rc after $(( $(date +%s) - start ))s" | tee -a "$LOG"
  [ $rc -ne 0 ] && { status=1; tail -15 "$LOG"; }
done
grep -v -e '^{' -e '^round' "$LOG" | tail -120
exit $status

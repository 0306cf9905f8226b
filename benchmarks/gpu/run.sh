#!/usr/bin/env bash
# The one command a session holding a device runs (device tool: run, carry [".whl"]):
#   bash benchmarks/gpu/run.sh "$OUT"                 # every phase, < 8 minutes on one H200
#   bash benchmarks/gpu/run.sh "$OUT" --only llama,t5 # a subset (env always runs: it measures the peak)
# Installs the carried wheels (.whl/, from prepare_wheels.sh) with --no-deps into a private
# folder and puts this checkout's src/ on the path (no build step: the image's setuptools may lack
# what a build of ours needs, and a wheel built here could be stale), checks every import the
# check needs (exit 3 with the list of what is missing), then runs check.py.
# Results: OUT/summary.json, OUT/summary.md, OUT/log.
set -uo pipefail
OUT=${1:?usage: run.sh OUT_DIR [check.py options]}
shift
cd "$(dirname "$0")/../.."
mkdir -p "$OUT"
SITE=/tmp/synthlm-site
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
{
  if compgen -G ".whl/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit 3
  else
    echo "no .whl/ carried: relying on what the image has (see prepare_wheels.sh)"
  fi
  export PYTHONPATH="$SITE:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
  $PY benchmarks/gpu/deps.py || exit 3
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>/dev/null
  # check.py keeps the total under --budget (460 s by default), whatever the phases take
  # scratch (stores, runs, checkpoints) stays in /tmp: only the summaries and the log come back
  $PY benchmarks/gpu/check.py --out "$OUT" --work /tmp/synthlm-gpu-work "$@"
} 2>&1 | tee "$OUT/log"
exit "${PIPESTATUS[0]}"

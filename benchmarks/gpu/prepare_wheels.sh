#!/usr/bin/env bash
# Fetch, HERE (before calling the device), wheels of what the device image lacks, into .whl/ at
# the repo root; run.sh installs them there. The device has Python 3.12 x86-64 with torch,
# transformers, accelerate, tokenizers, sentencepiece, safetensors, numpy, pyarrow, typer, rich,
# tqdm, jinja2, pyyaml, pytest; not pydantic (and its helpers), pysbd or orjson.
# Versions are the ones installed here, so the device runs what the tests ran.
#   bash benchmarks/gpu/prepare_wheels.sh            # -> .whl/ (git-ignored through info/exclude)
#   WHEELS=/tmp/w bash benchmarks/gpu/prepare_wheels.sh
#   PYVER=3.11 WHEELS=/tmp/w bash ...                 # for a rehearsal in another Python here
# Wheel files are never committed: /.whl/ goes into the repository's info/exclude.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
DEST=${WHEELS:-.whl}
if [ "$DEST" = ".whl" ]; then
  EXCLUDE=$(git rev-parse --git-path info/exclude)
  grep -qxF '/.whl/' "$EXCLUDE" 2>/dev/null || echo '/.whl/' >> "$EXCLUDE"
fi
PY=${PYTHON:-python3}
NAMES="pydantic pydantic-core annotated-types typing-inspection typing-extensions pysbd orjson"
SPECS=$($PY - $NAMES <<'PYEOF'
import sys
from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in sys.argv[1:]))
PYEOF
)
rm -rf "$DEST" && mkdir -p "$DEST"
PLATFORMS=""
for p in manylinux_2_39_x86_64 manylinux_2_35_x86_64 manylinux_2_34_x86_64 manylinux_2_31_x86_64 manylinux_2_28_x86_64 \
         manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS="$PLATFORMS --platform $p"
done
# one version of each: two would stop the whole install there
$PY -m pip download -q --no-deps --only-binary=:all: --python-version "${PYVER:-3.12}" --implementation cp $PLATFORMS -d "$DEST" $SPECS
ls -la "$DEST"
du -sh "$DEST"

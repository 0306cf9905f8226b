#!/usr/bin/env bash
# The CPU comparison in one command (a few minutes on a laptop): natural-only vs shuffle-Dyck
# first, both with 200 natural steps, compared at equal natural tokens on held-out text.
# Run from the directory that should hold quickstart/ and runs/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ -f quickstart/data/shakespeare_text_document_valid.idx ] || synthlm quickstart --out quickstart --steps 1 -q
synthlm train "$here/cpu_base.yaml" "$here/cpu_natural_only.yaml" --quiet
synthlm train "$here/cpu_base.yaml" "$here/cpu_synth_first.yaml" --quiet
synthlm report runs/pre_pretraining/natural_only runs/pre_pretraining/synth_first \
    --out runs/pre_pretraining/report --equal-tokens shakespeare --at 100K,200K,400K

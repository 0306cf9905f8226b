#!/usr/bin/env bash
# Hu et al. 2025 on one GPU node (hours on an H100): shuffle-Dyck -> C4 vs C4 only, compared at
# equal C4 tokens. Prepare data/pythia_tokenizer and data/c4_text_document_{train,valid} first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
synthlm train "$here/gpu_hu2025_base.yaml" "$here/gpu_hu2025_c4_only.yaml"
synthlm train "$here/gpu_hu2025_base.yaml" "$here/gpu_hu2025_shuffle_dyck.yaml"
synthlm train "$here/gpu_hu2025_base.yaml" "$here/gpu_hu2025_c4_after_dyck.yaml"
synthlm report runs/hu2025/c4_only runs/hu2025/c4_after_dyck --out runs/hu2025/report \
    --equal-tokens c4 --at 50M,100M,200M,300M,327M

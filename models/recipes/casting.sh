#!/usr/bin/env bash
# Trains the three models on the real casting photos (train split only), evaluates them on the test split
# under the standard protocol, benchmarks speed, and writes docs/results.json.
# The weights are NOT to be committed or shipped: the photos' licence (CC BY-NC-ND 4.0) forbids it.
# Usage: bash models/recipes/casting.sh [DATA] [OUT]   (defaults: ../shared/data/casting runs/casting)
set -euo pipefail
DATA=${1:-../shared/data/casting}
OUT=${2:-runs/casting}
COMMON=(--data "$DATA" --out "$OUT" --version casting-v1 --seed 0 --quiet)
time inspection train noise    "${COMMON[@]}" --arch freq_vgg_small --input-size 64 --epochs 10 --lr 0.003 --threads 1
time inspection train denoiser "${COMMON[@]}" --arch unet_ae_fast --input-size 96 --epochs 8 --noise-types gaussian \
  --lr 0.002 --threads 1
time inspection train defect   "${COMMON[@]}" --arch defect_cnn_small --input-size 128 --epochs 12 --noise-aug 0.6 \
  --denoiser "$OUT/denoiser/casting-v1" --lr 0.003 --threads 1

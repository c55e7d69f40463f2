#!/usr/bin/env bash
# Reproduces the shipped default models exactly, from synthetic data only (no photos of anyone's).
# Usage: bash models/train_defaults.sh [OUT_DIR]   (default: models)
set -euo pipefail
OUT=${1:-models}
DATA=$(mktemp -d)/synthetic
COMMON=(--out "$OUT" --version synthetic-v1 --threads 2 --seed 0 --quiet)
inspection synth --out "$DATA" --n-train 1600 --n-test 0 --size 160 --seed 0
inspection train noise    --data "$DATA" "${COMMON[@]}" --arch freq_vgg_small --input-size 64 --epochs 12 --lr 0.003
inspection train denoiser --data "$DATA" "${COMMON[@]}" --arch unet_ae_fast --input-size 96 --epochs 12 \
  --noise-types gaussian --lr 0.002
inspection train defect   --data "$DATA" "${COMMON[@]}" --arch defect_cnn_small --input-size 128 --epochs 10 \
  --noise-aug 0.5 --denoiser "$OUT/denoiser/synthetic-v1" --lr 0.003 --threads 1
rm -rf "$(dirname "$DATA")"

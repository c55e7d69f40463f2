#!/usr/bin/env bash
# Trains the models on the real casting photos (train split only; every choice is made on a seeded
# validation split carved out of it), evaluates them on the test split under the standard protocol,
# benchmarks speed, and writes docs/results.json.
# The weights are NOT to be committed or shipped: the photos' licence (CC BY-NC-ND 4.0) forbids it.
# Usage: bash models/recipes/casting.sh [DATA] [OUT]   (defaults: ../shared/data/casting runs/casting)
set -euo pipefail
DATA=${1:-../shared/data/casting}
OUT=${2:-runs/casting}
# The models train one after another, each on both cores of the 2-core reference machine (THREADS to change it):
# the three pipeline models took 1,019 s of train_seconds so (1,215 s with one thread each; issue 12's target
# is 1,200 s), with the same validation scores.
COMMON=(--data "$DATA" --seed 0 --quiet --threads "${THREADS:-2}")
# The routed pipeline's three models. Noise and defect: 6 epochs, stopping after 2 without a better validation
# score (issue 12: 10 and 8 epochs reached the same validation accuracy at about twice the training time).
time inspection train noise    "${COMMON[@]}" --out "$OUT" --version casting-v1 --arch freq_vgg_small --input-size 64 \
  --epochs 6 --patience 2 --lr 0.003
# The denoiser: unet_ae_lite_wide (24 channels at half resolution, additive skips), chosen (issue 11) as the best on
# validation among candidates no slower than unet_ae_lite at batch 1: 30.81 dB against 30.25 dB at 8 epochs, same
# seed, at 0.95-1.00x the time at batch 1, 1.04-1.08x at batch 32 (2 threads); 12 epochs add 0.26 dB on validation.
# Test split: 33.10 dB against unet_ae_lite's 32.12 dB (same evaluate command, same day).
time inspection train denoiser "${COMMON[@]}" --out "$OUT" --version casting-v2 --arch unet_ae_lite_wide \
  --input-size 96 --epochs 12 --noise-types gaussian --lr 0.002
time inspection train defect   "${COMMON[@]}" --out "$OUT" --version casting-v2 --arch defect_cnn_small --input-size 128 \
  --epochs 6 --patience 2 --noise-aug 0.6 --denoiser "$OUT/denoiser/casting-v2" --lr 0.003
# Comparisons: one blind denoiser for every noise type, and a defect classifier trained with noise
# augmentation but no denoiser.
time inspection train denoiser "${COMMON[@]}" --out "$OUT-blind" --version casting-blind-v1 --arch unet_ae_fast \
  --input-size 96 --epochs 6 --noise-types gaussian salt_pepper periodic --lr 0.002
time inspection train defect   "${COMMON[@]}" --out "$OUT-aug" --version casting-aug-v1 --arch defect_cnn_small \
  --input-size 128 --epochs 8 --noise-aug 0.6 --lr 0.003
# Evaluation (standard protocol, all 651 test photos) and speed.
inspection evaluate --data "$DATA" --models "$OUT" --reports runs/reports --name casting --quiet \
  --blind-denoiser "$OUT-blind/denoiser/casting-blind-v1" --defect-aug "$OUT-aug/defect/casting-aug-v1" \
  --methods median median_classic nlmeans notch autoencoder blind
inspection evaluate --data "$DATA" --models "$OUT" --reports runs/reports --name casting-bm3d --quiet \
  --methods bm3d --max-images 20 --no-realistic
inspection bench --models "$OUT" --data "$DATA" --n 256 --reference-n 32 --json runs/bench.json
python -m inspection.summary "$(ls -d runs/reports/*-casting | tail -n 1)" runs/bench.json --out docs/results.json

#!/usr/bin/env bash
# Zhou et al., "Go Wide, Then Narrow: Efficient Training of Deep Thin
# Networks" (ICML 2020), on Fashion-MNIST with resnet20:
#
#   1. widen the thin network: the thin one is resnet20 at width THIN
#      (default 0.5), the wide one the same architecture at WIDE (default 1,
#      twice as wide: same depth, same block names);
#   2. train the wide one from scratch;
#   3. warm the thin one up by layerwise imitation of the wide one (block by
#      block, IMITATION epochs in all), then fine-tune it end to end with KD
#      for the remaining EPOCHS - IMITATION epochs (`distill --mode layerwise`);
#   4. for comparison, the same thin network trained from labels alone for the
#      same EPOCHS (imitation epochs counted) and, when KD=1, distilled by KD alone.
#
# Every run uses the same seed, batch, learning rate, schedule and
# augmentation. The wide model's training is reported on its own: the
# comparison is between thin students with the same number of epochs.
#
#   OUT=out/wtn EPOCHS=10 bash scripts/wide-then-narrow.sh
#
# Variables (defaults): OUT (out/wide-then-narrow), THIN (0.5), WIDE (1),
# WIDE_EPOCHS (30), EPOCHS (10), IMITATION (2), LR (0.05), THREADS (2),
# SEED (1), DATA (the default Fashion-MNIST directory), KD (1),
# WIDE_MODEL (a trained wide model to use instead of step 2, e.g.
# models/resnet20.bin when WIDE is 1), COMPRESSOR (.build/release/compressor).
set -euo pipefail

OUT=${OUT:-out/wide-then-narrow}
THIN=${THIN:-0.5}
WIDE=${WIDE:-1}
WIDE_EPOCHS=${WIDE_EPOCHS:-30}
EPOCHS=${EPOCHS:-10}
IMITATION=${IMITATION:-2}
LR=${LR:-0.05}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
KD=${KD:-1}
COMPRESSOR=${COMPRESSOR:-.build/release/compressor}
DATA_OPTIONS=()
if [[ -n "${DATA:-}" ]]; then DATA_OPTIONS=(--data "$DATA"); fi
TRAINING=(--lr "$LR" --crop-padding 2 --flip --seed "$SEED" --threads "$THREADS" "${DATA_OPTIONS[@]}")

mkdir -p "$OUT"
log() { echo "== $*"; }

# 1-2. The wide network, trained (or given).
if [[ -n "${WIDE_MODEL:-}" ]]; then
    WIDE_FILE=$WIDE_MODEL
else
    WIDE_FILE=$OUT/wide.bin
    log "wide: resnet20 at width $WIDE, $WIDE_EPOCHS epochs"
    "$COMPRESSOR" init --arch resnet20 --width "$WIDE" --seed "$SEED" -o "$OUT/wide-init.bin"
    "$COMPRESSOR" finetune "$OUT/wide-init.bin" -o "$WIDE_FILE" --epochs "$WIDE_EPOCHS" --keep-zeros false "${TRAINING[@]}"
fi

# The thin network's initial weights, shared by every student run.
"$COMPRESSOR" init --arch resnet20 --width "$THIN" --seed "$SEED" -o "$OUT/thin-init.bin"

# 3. Layerwise imitation of the wide network, then KD.
log "thin, layerwise imitation ($IMITATION epochs) + KD ($((EPOCHS - IMITATION)) epochs)"
"$COMPRESSOR" distill --teacher "$WIDE_FILE" --student "$OUT/thin-init.bin" -o "$OUT/thin-layerwise.bin" \
    --mode layerwise --imitation-epochs "$IMITATION" --epochs "$EPOCHS" "${TRAINING[@]}"

# 4. Baselines: the thin network from labels alone, and by KD alone.
log "thin, from labels ($EPOCHS epochs)"
"$COMPRESSOR" finetune "$OUT/thin-init.bin" -o "$OUT/thin-scratch.bin" --epochs "$EPOCHS" --keep-zeros false "${TRAINING[@]}"
if [[ "$KD" == 1 ]]; then
    log "thin, KD alone ($EPOCHS epochs)"
    "$COMPRESSOR" distill --teacher "$WIDE_FILE" --student "$OUT/thin-init.bin" -o "$OUT/thin-kd.bin" \
        --mode kd --epochs "$EPOCHS" "${TRAINING[@]}"
fi

for model in "$WIDE_FILE" "$OUT"/thin-*.bin; do
    [[ "$model" == *thin-init.bin ]] && continue
    "$COMPRESSOR" eval "$model" --threads "$THREADS" "${DATA_OPTIONS[@]}" | grep -i top-1 || true
done

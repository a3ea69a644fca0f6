#!/usr/bin/env bash
# The int8 post-training table of docs/quantization.md: `compressor quantize
# --format int8` on models/vgg-small.bin and models/resnet20.bin with minmax,
# percentile 99.999 and 99.99, and entropy calibration (512 validation images),
# plus float16 on every shipped model. Prints a Markdown table: model, format,
# calibration, file bytes, ratio vs the shipped file, validation top-1 (the
# split the choice is made on, as the pass records it) and test top-1
# (`compressor eval`). Release build, seed 0, one thread.
#
# Usage: scripts/quantize-table.sh OUTDIR
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUTDIR=$1
REPO=$(cd "$(dirname "$0")/.." && pwd)
(cd "$REPO" && swift build -c release --product compressor >&2)
COMPRESSOR=$REPO/.build/release/compressor
mkdir -p "$OUTDIR"

echo "| model | format | calibration | bytes | ratio | validation top-1 | test top-1 |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: |"
row() {  # model format label out [quantize options...]
  local model=$1 format=$2 label=$3 out=$4; shift 4
  local log
  log=$("$COMPRESSOR" quantize "$REPO/models/$model.bin" -o "$out" --format "$format" --threads 1 "$@" 2>&1)
  local validation test bytes base
  validation=$(grep -o 'validation-accuracy=[0-9.]*' <<<"$log" | cut -d= -f2 || true)
  test=$("$COMPRESSOR" eval "$out" --threads 1 2>&1 | grep -o 'top-1 [0-9.]*%' | cut -d' ' -f2)
  bytes=$(stat -c %s "$out")
  base=$(stat -c %s "$REPO/models/$model.bin")
  awk -v m="$model" -v f="$format" -v l="$label" -v b="$bytes" -v r="$base" -v v="$validation" -v t="$test" \
    'BEGIN { printf "| %s | %s | %s | %d | %.3fx | %s | %s |\n", m, f, l, b, r / b, (v == "" ? "" : sprintf("%.2f%%", v * 100)), t }' 
}
for model in lenet300 lenet5 vgg-small resnet20; do
  row "$model" float16 - "$OUTDIR/$model-float16.bin"
done
for model in vgg-small resnet20; do
  row "$model" int8 minmax "$OUTDIR/$model-int8-minmax.bin" --calibration minmax
  row "$model" int8 "percentile 99.999" "$OUTDIR/$model-int8-p99999.bin" --calibration percentile --percentile 99.999
  row "$model" int8 "percentile 99.99" "$OUTDIR/$model-int8-p9999.bin" --calibration percentile --percentile 99.99
  row "$model" int8 entropy "$OUTDIR/$model-int8-entropy.bin" --calibration entropy
done

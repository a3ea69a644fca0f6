#!/usr/bin/env bash
# Weight-sharing bits sweep on a pruned LeNet-5: `compressor share` at conv/fc
# index widths 8/5, 6/4, 5/4, 5/3, 4/3, 4/2 and 3/2, each once without
# fine-tuning and once with 3 epochs of tied (centroid) fine-tuning, Huffman
# coding allowed, seed 0, one thread; then one `compressor report --validation`
# of the baseline and every shared model, in that order, so the report's
# "Top-1 accuracy per model" chart reads as the sweep (validation and test).
# Prints a Markdown table (bits, fine-tuned, validation, test, bytes, ratio vs
# models/lenet5.bin). Finished models are kept: rerunning after an interruption
# shares only the missing ones (delete OUTDIR to start over).
#
# Usage: scripts/sharing-sweep.sh PRUNED.bin OUTDIR [--base BASE.bin]
#   BASE.bin is the report's baseline (default: PRUNED.bin); with another
#   baseline (e.g. models/lenet5.bin) PRUNED.bin follows it in the report.
# See docs/sharing-sweep.md.
set -euo pipefail

usage() { echo "usage: $0 PRUNED.bin OUTDIR [--base BASE.bin]" >&2; exit 2; }
[[ $# -eq 2 || ($# -eq 4 && $3 == --base) ]] || usage
PRUNED=$(realpath "$1")
OUTDIR=$2
BASE=$PRUNED
if [[ $# -eq 4 ]]; then BASE=$(realpath "$4"); fi
[[ -f $PRUNED ]] || { echo "$0: $PRUNED: no such file" >&2; exit 1; }
[[ -f $BASE ]] || { echo "$0: $BASE: no such file" >&2; exit 1; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
(cd "$REPO" && swift build -c release --product compressor >&2)
COMPRESSOR=$REPO/.build/release/compressor
REFERENCE_BYTES=$(stat -c %s "$REPO/models/lenet5.bin")

mkdir -p "$OUTDIR"
FINETUNE=(--finetune-epochs 3 --finetune-lr 0.001 --finetune-crop-padding 2)
MODELS=()
for bits in 8/5 6/4 5/4 5/3 4/3 4/2 3/2; do
  conv=${bits%/*} fc=${bits#*/}
  for suffix in "" -ft; do
    name=share-c$conv-f$fc$suffix
    out=$OUTDIR/$name.bin
    MODELS+=("$out")
    if [[ -f $out ]]; then echo "$name: kept from an earlier run" >&2; continue; fi
    echo "$name: conv $conv bits, fc $fc bits$([[ -n $suffix ]] && echo ", 3 epochs of tied fine-tuning")" >&2
    args=(share "$PRUNED" -o "$out" --conv-bits "$conv" --fc-bits "$fc" --huffman true --seed 0 --threads 1)
    if [[ -n $suffix ]]; then args+=("${FINETUNE[@]}"); fi
    "$COMPRESSOR" "${args[@]}" > "$OUTDIR/$name.log" 2>&1 || { cat "$OUTDIR/$name.log" >&2; exit 1; }
  done
done

REPORTED=("$BASE")
if [[ $BASE != "$PRUNED" ]]; then REPORTED+=("$PRUNED"); fi
"$COMPRESSOR" report "${REPORTED[@]}" "${MODELS[@]}" -o "$OUTDIR/report" --validation > "$OUTDIR/report.log" 2>&1 \
  || { cat "$OUTDIR/report.log" >&2; exit 1; }

python3 - "$OUTDIR/report/report.json" "$REFERENCE_BYTES" <<'PY'
import json, re, sys
report = json.load(open(sys.argv[1]))
reference = int(sys.argv[2])
def pct(a): return "-" if a is None else f"{a['top1'] * 100:.2f}%"
print(f"| model | conv / fc bits | fine-tuned | validation | test | file bytes | smaller than lenet5.bin ({reference:,} B) |")
print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
for m in report["models"]:
    found = re.fullmatch(r"share-c(\d+)-f(\d+)(-ft)?", m["label"])
    bits, tuned = (f"{found[1]} / {found[2]}", "3 epochs" if found[3] else "no") if found else ("-", "-")
    print(f"| {m['label']} | {bits} | {tuned} | {pct(m['validationAccuracy'])} | {pct(m['accuracy'])} "
          f"| {m['fileBytes']:,} | {reference / m['fileBytes']:.1f}x |")
PY
echo "report: $OUTDIR/report/report.html (.md, .json)" >&2

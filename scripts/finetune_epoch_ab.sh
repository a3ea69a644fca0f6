#!/usr/bin/env bash
# Times one fine-tune epoch of vgg-small on Fashion-MNIST end to end (data loading,
# augmentation, training, the validation and test passes, the write) for each given
# build of compressor, alternating builds for ROUNDS rounds, and prints the wall
# clock and what the run's JSON says (epoch and step seconds, images/s, accuracies).
#
# Usage: scripts/finetune_epoch_ab.sh OUTDIR BUILD [BUILD...]
#   THREADS (default 2), ROUNDS (default 2), DATA (default /usr/share/datasets/fashion-mnist),
#   MODEL (default models/vgg-small.bin) in the environment.
# Example (issue 17): a release build of the commit before the work against the current one:
#   git worktree add /tmp/before 48b5e83 && (cd /tmp/before && swift build -c release --product compressor)
#   scripts/finetune_epoch_ab.sh /tmp/epoch /tmp/before/.build/release/compressor .build/release/compressor
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; }
out=$1; shift
threads=${THREADS:-2}; rounds=${ROUNDS:-2}
data=${DATA:-/usr/share/datasets/fashion-mnist}
repo=$(cd "$(dirname "$0")/.." && pwd)
model=${MODEL:-$repo/models/vgg-small.bin}
mkdir -p "$out"
for b in "$@"; do [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 1; }; done
for r in $(seq 1 "$rounds"); do
  k=0
  for b in "$@"; do
    k=$((k + 1))
    start=$(date +%s.%N)
    "$b" finetune "$model" -o "$out/out-$k.bin" --epochs 1 --data "$data" --threads "$threads" \
      --crop-padding 2 --flip true --lr 0.01 --json > "$out/build$k-r$r.json"
    end=$(date +%s.%N)
    python3 - "$out/build$k-r$r.json" "$b" "$r" "$start" "$end" <<'PY'
import json, sys
path, build, r, start, end = sys.argv[1:]
d = json.load(open(path)); e = d["epochs"][0]
print(f"{build} round {r}: wall {float(end) - float(start):.1f} s, epoch {e['seconds']:.1f} s, "
      f"steps {e['steps']['fullSeconds']:.1f} s, {e['imagesPerSecond']:.0f} images/s, "
      f"validation {100 * e['validationAccuracy']:.2f}%, test {100 * d['testAccuracy']:.2f}%")
PY
  done
done

#!/usr/bin/env bash
# Same-run comparisons with the peers on this machine (run it on a quiet machine):
#  - inference: `compressor bench` vs onnxruntime (../shared/bench/ort_latency.py), in
#    ROUNDS alternating rounds (each round: per model, ours then onnxruntime), on
#      lenet5, vgg-small, resnet20, mobilenet-small at batch 1 and 64, and the ImageNet-shaped
#      built-ins resnet18 and mobilenetv2 at batch 1 and 8 (freshly initialized, seed 0,
#      exported by `compressor convert` for onnxruntime), and
#      torchvision's resnet18 and mobilenet_v2 as PyTorch exports them
#      (scripts/export-torch-cnns.py; both runtimes read the same .onnx file), batch 1 and 8;
#    1 and 2 threads. When `compressor bench` has --kernels, our side runs once per kernel
#    set the CPU has (avx512 and avx2 on an AVX-512 CPU), each against the same onnxruntime run;
#  - conv GFLOP/s of the built-in resnet18 at batch 8 on one thread, per kernel set:
#    2 x conv MACs (padding zeros not counted, scripts/conv_macs.py) / the sum of those conv
#    layers' `bench --layers` medians;
#  - training: `compressor bench --train` vs PyTorch (scripts/torch_train_bench.py),
#    one full SGD step at batch 64 with the data in memory.
# Then scripts/bench_peers_table.py prints the Markdown tables (median over the rounds per
# cell) with the CPU model, its vector extensions and the load average before and after.
#
# Needs a release build (swift build -c release --product compressor) and two Python
# environments, named by environment variables:
#   ORT_PYTHON   numpy, onnx, onnxruntime. Default: the repository's .venv/bin/python
#                (what scripts/onnx-checks.sh creates) if it exists, else /tmp/peer/bin/python:
#                python3 -m venv /tmp/peer && /tmp/peer/bin/pip install numpy onnx onnxruntime
#   TORCH_PYTHON torch, torchvision, onnx. Default /tmp/torchenv/bin/python:
#                python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch torchvision onnx
#   SHARED_BENCH the directory of ort_latency.py (default ../shared/bench next to the repository)
#   TORCH_ONNX   a directory that already holds resnet18.onnx and mobilenet_v2.onnx written by
#                scripts/export-torch-cnns.py (default: written into OUTDIR/torch)
#   ROUNDS       alternating rounds (default 3)
# Usage: scripts/bench_peers.sh [--quick] [OUTDIR]    (default OUTDIR /tmp/peer-bench)
#   --quick: a smoke run: one round, short timings (3 runs, 0.1 s), lenet5 and mobilenet-small
#   among the small models, training lenet5 only. Its numbers are not for quoting.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
out=${1:-/tmp/peer-bench}
bin=$repo/.build/release/compressor
if [ -n "${ORT_PYTHON:-}" ]; then ort=$ORT_PYTHON
elif [ -x "$repo/.venv/bin/python" ]; then ort=$repo/.venv/bin/python
else ort=/tmp/peer/bin/python; fi
torch=${TORCH_PYTHON:-/tmp/torchenv/bin/python}
shared=${SHARED_BENCH:-$repo/../shared/bench}
rounds=${ROUNDS:-3}
small="lenet5 vgg-small resnet20 mobilenet-small"
train_models="lenet5 vgg-small resnet20 mobilenet-small"
timing=()        # compressor bench: at least 20 runs and 1 s per configuration (its defaults)
ort_timing=(--min-runs 20 --min-seconds 1)
big_timing=(--repetitions 10 --seconds 1)
big_ort_timing=(--min-runs 10 --min-seconds 1)
train_reps=15
if [ $quick = 1 ]; then
  rounds=1
  small="lenet5 mobilenet-small"
  train_models="lenet5"
  timing=(--repetitions 3 --seconds 0.1)
  ort_timing=(--min-runs 3 --min-seconds 0.1 --warmup 1)
  big_timing=("${timing[@]}")
  big_ort_timing=("${ort_timing[@]}")
  train_reps=3
fi

[ -x "$bin" ] || { echo "no release build at $bin: swift build -c release --product compressor" >&2; exit 1; }
"$ort" -c "import numpy, onnx, onnxruntime" \
  || { echo "ORT_PYTHON=$ort lacks numpy, onnx or onnxruntime" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/ours-*.json "$out"/ort-*.json "$out"/layers-*.json "$out"/train-*.json "$out"/train-torch*.txt

# The machine: CPU model, vector extensions, load average (again at the end).
{
  if [ -r /proc/cpuinfo ]; then
    field() { grep -m1 "^$1[[:space:]]*:" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'; }
    echo "cpu: $(field 'model name') (family $(field 'cpu family'), model $(field model))"
    flags=$(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2-)
  else
    echo "cpu: $(sysctl -n machdep.cpu.brand_string 2>/dev/null || uname -m)"
    flags=""
  fi
  extensions=""
  for f in avx2 fma avx512f avx512bw avx512vl avx512dq; do
    if [[ " $flags " == *" $f "* ]]; then extensions="$extensions $f"; fi
  done
  echo "extensions:${extensions:- none found}"
  echo "cores: $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')"
  echo "onnxruntime: $("$ort" -c 'import onnxruntime; print(onnxruntime.__version__)')"
  echo "compressor: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "rounds: $rounds$([ $quick = 1 ] && echo ' (quick: not for quoting)')"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)"
  # One core's FMA peak, the denominator of the conv GFLOP/s line's percent of peak.
  if cc -O2 "$repo/scripts/fma_peak.c" -o "$out/fma_peak" 2>/dev/null; then "$out/fma_peak"; fi
} > "$out/machine.txt"
cat "$out/machine.txt"
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2- || true)

# The kernel sets our side runs: every one `bench --kernels` accepts on this CPU.
sets=(default)
"$bin" init --arch lenet5 --seed 0 -o "$out/lenet5.bin" > /dev/null
if "$bin" bench --help | grep -q -- '--kernels'; then
  sets=()
  candidates=()
  [[ " $flags " == *" avx512f "* ]] && candidates+=(avx512)
  [[ " $flags " == *" avx2 "* ]] && candidates+=(avx2)
  [ ${#candidates[@]} = 0 ] && candidates=(portable)
  for s in "${candidates[@]}"; do
    if "$bin" bench "$out/lenet5.bin" --batch 1 --repetitions 1 --seconds 0 --kernels "$s" > /dev/null 2> "$out/kernels-$s.err"; then
      sets+=("$s")
    else
      echo "kernel set $s refused: $(head -1 "$out/kernels-$s.err")" | tee -a "$out/machine.txt"
    fi
  done
fi
echo "kernel sets: ${sets[*]}" | tee -a "$out/machine.txt"
kernel_flag() { [ "$1" = default ] || echo "--kernels $1"; }

# Models: built-ins (ours: .bin; onnxruntime: its export), torchvision's files (both: the .onnx).
for a in $small resnet18 mobilenetv2; do
  "$bin" init --arch "$a" --seed 0 -o "$out/$a.bin" > /dev/null
  "$bin" convert "$out/$a.bin" -o "$out/$a.onnx" > /dev/null
done
torch_dir=${TORCH_ONNX:-$out/torch}
if [ ! -f "$torch_dir/resnet18.onnx" ] || [ ! -f "$torch_dir/mobilenet_v2.onnx" ]; then
  "$torch" "$repo/scripts/export-torch-cnns.py" "$torch_dir"
fi
cp "$torch_dir/resnet18.onnx" "$out/torch-resnet18.onnx"
cp "$torch_dir/mobilenet_v2.onnx" "$out/torch-mobilenet_v2.onnx"

# One model's cells in one round: ours (every kernel set), then onnxruntime.
bench_model() {  # name ours-file onnx-file batches round big
  local name=$1 ours=$2 onnx=$3 batches=$4 round=$5 big=$6 s
  local t=("${timing[@]}") ot=("${ort_timing[@]}")
  if [ "$big" = 1 ]; then t=("${big_timing[@]}"); ot=("${big_ort_timing[@]}"); fi
  for s in "${sets[@]}"; do
    # shellcheck disable=SC2046
    "$bin" bench "$ours" --batch "$batches" --threads 1,2 ${t[@]+"${t[@]}"} $(kernel_flag "$s") --json \
      > "$out/ours-$name-$s-r$round.json"
  done
  "$ort" "$shared/ort_latency.py" "$onnx" --batch "$batches" --threads 1,2 "${ot[@]}" \
    --json "$out/ort-$name-r$round.json" > /dev/null
}
for round in $(seq 1 "$rounds"); do
  echo "round $round of $rounds" >&2
  for a in $small; do bench_model "$a" "$out/$a.bin" "$out/$a.onnx" 1,64 "$round" 0; done
  for a in resnet18 mobilenetv2; do bench_model "$a" "$out/$a.bin" "$out/$a.onnx" 1,8 "$round" 1; done
  for a in torch-resnet18 torch-mobilenet_v2; do bench_model "$a" "$out/$a.onnx" "$out/$a.onnx" 1,8 "$round" 1; done
done

# Conv GFLOP/s of resnet18 at batch 8 on one thread: per-layer times for each kernel set.
"$ort" "$repo/scripts/conv_macs.py" "$out/resnet18.onnx" > "$out/conv-macs-resnet18.json"
for s in "${sets[@]}"; do
  # shellcheck disable=SC2046
  "$bin" bench "$out/resnet18.bin" --batch 8 --threads 1 --layers ${big_timing[@]+"${big_timing[@]}"} \
    $(kernel_flag "$s") --json > "$out/layers-resnet18-$s.json"
done

# Training: one SGD step at batch 64, compressor and PyTorch alternating, $rounds rounds.
for r in $(seq 1 "$rounds"); do
  for a in $train_models; do  # (a subset of $small: its .bin exists)
    "$bin" bench "$out/$a.bin" --train --batch 64 --threads 1,2 --repetitions "$train_reps" --json \
      > "$out/train-compressor-$a-r$r.json"
  done
  # shellcheck disable=SC2086
  "$torch" "$repo/scripts/torch_train_bench.py" $train_models > "$out/train-torch-r$r.txt"
done

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)" >> "$out/machine.txt"
python3 "$repo/scripts/bench_peers_table.py" "$out"

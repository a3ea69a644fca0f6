#!/usr/bin/env bash
# libFuzzer runs of the file readers (docs/fuzzing.md).
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]   one run of one target
#   scripts/fuzz.sh seeds                                  (re)make every target's seed files
#   scripts/fuzz.sh build                                  build the fuzzer only
#
# TARGET: native, header, onnx, pipeline, idx, npy (FuzzTarget in
# Sources/FuzzEntries/FuzzEntries.swift says what each reads). A run stops after
# SECONDS or FUZZ_RUNS executions (default: no limit), whichever comes first.
# FUZZ_SKIP_BUILD=1 runs the fuzzer as last built (a sequence of runs while the
# sources change).
#
# The fuzzer is built with `--sanitize fuzzer --sanitize address` into
# .build-fuzz (COMPRESSOR_FUZZ=1 adds its executable to Package.swift; the
# normal build never sees it). Seeds are small files made with the CLI
# (.build-fuzz/seeds/TARGET, at most 64 KB each); the corpus the fuzzer grows
# is kept in .build-fuzz/corpus/TARGET and carried over to the next run; a
# crash, leak, timeout or out-of-memory input goes to .build-fuzz/crashes/TARGET.
# Replay one with: COMPRESSOR_FUZZ_TARGET=TARGET .build-fuzz/release/compressor-fuzz FILE
# and, once fixed, copy it to Tests/CompressTests/Fixtures/fuzz/TARGET/
# (FuzzRegressionTests replays every file there).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FUZZ_DIR="${COMPRESSOR_FUZZ_DIR:-$ROOT/.build-fuzz}"
FUZZER="$FUZZ_DIR/release/compressor-fuzz"
TARGETS="native header onnx pipeline idx npy"

# -max_len of each target: models and data up to 64 KB, the header's 24 bytes
# and a little payload, pipelines up to 8 KB (the longest shipped one is 2 KB).
max_len() {
    case "$1" in
        header) echo 256 ;;
        pipeline) echo 8192 ;;
        *) echo 65536 ;;
    esac
}

build() {
    # `--sanitize fuzzer` makes SwiftPM link libFuzzer's main; the one
    # -sanitize=fuzzer,address after it is what swiftc keeps (the last
    # -sanitize wins: `--sanitize fuzzer --sanitize address` passes two flags in
    # no fixed order, so coverage was instrumented in one build out of two).
    (cd "$ROOT" && COMPRESSOR_FUZZ=1 nice -n 5 swift build -c release --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address \
        -Xcc -fsanitize=address --scratch-path "$FUZZ_DIR" --product compressor-fuzz 2>&1 \
        | grep -E "error|warning: |Compiling|Build" | tail -5)
    # Refuse a fuzzer without coverage counters in the library (it would run blind).
    local counters
    counters=$(COMPRESSOR_FUZZ_TARGET=header "$FUZZER" -runs=0 2>&1 | sed -n 's/.*(\([0-9]*\) inline 8-bit counters).*/\1/p' | head -1)
    if [ "${counters:-0}" -lt 20000 ]; then
        echo "fuzz.sh: $FUZZER has ${counters:-no} coverage counters: not instrumented" >&2; exit 1
    fi
}

# The small models (lenet5, mobilenet-small and resnet20 at width 0.1), each
# encoding, their ONNX exports, the shipped pipelines, and IDX/NPY arrays of
# every element type.
seeds() {
    local cli="$ROOT/.build/debug/compressor"
    [ -x "$ROOT/.build/release/compressor" ] && cli="$ROOT/.build/release/compressor"
    if [ ! -x "$cli" ]; then (cd "$ROOT" && nice -n 5 swift build --product compressor); fi
    local s="$FUZZ_DIR/seeds" work
    work="$(mktemp -d)"
    rm -rf "$s"
    mkdir -p "$s"/{native,header,onnx,pipeline,idx,npy}
    (
        cd "$work"
        "$cli" init --arch lenet5 --width 0.1 --seed 0 -o lenet5.bin
        "$cli" init --arch mobilenet-small --width 0.1 --seed 0 -o mobilenet-small.bin
        "$cli" init --arch resnet20 --width 0.1 --seed 0 -o resnet20.bin
        "$cli" prune lenet5.bin --sparsity 0.8 -o sparse.bin
        "$cli" share lenet5.bin -o codebook.bin
        "$cli" huffman codebook.bin -o huffman.bin
        "$cli" hash lenet5.bin --compression 4 -o hashed.bin
        "$cli" quantize lenet5.bin --format float16 -o float16.bin
        "$cli" quantize lenet5.bin --format int8 -o int8.bin
        "$cli" prune lenet5.bin --granularity channel --sparsity 0.5 -o channel-pruned.bin
        for m in lenet5 mobilenet-small resnet20 int8 float16; do "$cli" convert $m.bin -o $m.onnx; done
    ) > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
    cp "$work"/*.bin "$s/native/"
    cp "$work"/*.onnx "$s/onnx/"
    cp "$ROOT"/pipelines/*.yaml "$s/pipeline/"
    python3 - "$work" "$s" <<'PY'
import glob, os, struct, sys, zlib
work, s = sys.argv[1], sys.argv[2]
# Header: each file's first 24..64 bytes, and a whole file with an empty payload.
for path in sorted(glob.glob(os.path.join(work, "*.bin"))):
    data = open(path, "rb").read()
    name = os.path.basename(path)[:-4]
    for n in (24, 40, 64):
        open(os.path.join(s, "header", f"{name}-{n}"), "wb").write(data[:n])
empty = b"CMPRSSR\0" + struct.pack("<IQI", 2, 0, zlib.crc32(b""))
open(os.path.join(s, "header", "empty-payload"), "wb").write(empty)
# IDX: every element type, rank 1 and 3.
idx_types = {0x08: ">B", 0x09: ">b", 0x0B: ">h", 0x0C: ">i", 0x0D: ">f", 0x0E: ">d"}
for code, fmt in idx_types.items():
    for dims in ((6,), (2, 3, 4)):
        count = 1
        for d in dims: count *= d
        values = [(i * 7) % 100 - (0 if fmt[1] in "BH" else 50) for i in range(count)]
        if fmt[1] == "B": values = [abs(v) for v in values]
        body = struct.pack(f">{len(dims)}I", *dims) + b"".join(struct.pack(fmt, v) for v in values)
        open(os.path.join(s, "idx", f"type{code:02x}-rank{len(dims)}"), "wb").write(bytes([0, 0, code, len(dims)]) + body)
# NPY: every dtype the reader takes, versions 1.0 and 2.0.
npy_types = {"<f4": "<f", "<f8": "<d", "|u1": "<B", "|i1": "<b", "|b1": "<B", "<i4": "<i", "<i8": "<q",
             "<u2": "<H", "<u4": "<I", "<i2": "<h"}
for descr, fmt in npy_types.items():
    for version, shape in ((1, (3, 4)), (2, (5,))):
        count = 1
        for d in shape: count *= d
        values = [i % 2 if descr == "|b1" else i for i in range(count)]
        header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
            descr, ", ".join(map(str, shape)) + ("," if len(shape) == 1 else ""))
        size_field = 2 if version == 1 else 4
        pad = (-(6 + 2 + size_field + len(header) + 1)) % 64
        header = header + " " * pad + "\n"
        head = b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<H" if version == 1 else "<I", len(header))
        body = b"".join(struct.pack(fmt, v) for v in values)
        name = descr.replace("<", "le-").replace("|", "")
        open(os.path.join(s, "npy", f"{name}-v{version}"), "wb").write(head + header.encode() + body)
PY
    rm -rf "$work"
    for t in $TARGETS; do
        local big
        big=$(find "$s/$t" -type f -size +64k | wc -l)
        [ "$big" = 0 ] || { echo "seeds: $big file(s) of $t over 64 KB" >&2; exit 1; }
        echo "seeds/$t: $(ls "$s/$t" | wc -l) files, $(du -sk "$s/$t" | cut -f1) KB"
    done
}

case "${1:-}" in
    build) build; exit ;;
    seeds) seeds; exit ;;
    native|header|onnx|pipeline|idx|npy) ;;
    *) echo "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...] | seeds | build" >&2
       echo "targets: $TARGETS" >&2; exit 2 ;;
esac
TARGET="$1"
SECONDS_LIMIT="${2:?usage: scripts/fuzz.sh TARGET SECONDS}"
shift 2
[ "${FUZZ_SKIP_BUILD:-0}" = 1 ] || build
[ -d "$FUZZ_DIR/seeds/$TARGET" ] || seeds
CORPUS="$FUZZ_DIR/corpus/$TARGET"
CRASHES="$FUZZ_DIR/crashes/$TARGET"
mkdir -p "$CORPUS" "$CRASHES"
LOG="$(mktemp)"
# A copy runs, so the fuzzer can be rebuilt while it does.
RUNNING="$(mktemp "$FUZZ_DIR/compressor-fuzz.XXXXXX")"
cp "$FUZZER" "$RUNNING" && chmod +x "$RUNNING"
trap 'rm -f "$LOG" "$RUNNING"' EXIT
# New inputs go to the corpus (the first directory); the seeds are only read.
# -malloc_limit_mb: the readers refuse declared sizes over FuzzTarget.budget
# (256 MB), and nothing else a 64 KB file justifies comes near it.
status=0
SWIFT_BACKTRACE=enable=no COMPRESSOR_FUZZ_TARGET="$TARGET" nice -n 10 "$RUNNING" "$CORPUS" "$FUZZ_DIR/seeds/$TARGET" \
    -max_len="$(max_len "$TARGET")" -max_total_time="$SECONDS_LIMIT" -runs="${FUZZ_RUNS:--1}" \
    -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 -detect_leaks=1 \
    -artifact_prefix="$CRASHES/" -print_final_stats=1 "$@" 2>&1 | tee "$LOG" || status=$?
# The summary: executions, speed, coverage (edges: cov; features: ft), corpus, findings.
last=$(grep -E "^#[0-9]+" "$LOG" | tail -1)
echo "== $TARGET: $(grep -o "stat::number_of_executed_units: *[0-9]*" "$LOG" | grep -o "[0-9]*$") executions," \
     "$(grep -o "stat::average_exec_per_sec: *[0-9]*" "$LOG" | grep -o "[0-9]*$") exec/s," \
     "cov $(echo "$last" | grep -o "cov: [0-9]*" | grep -o "[0-9]*")," \
     "ft $(echo "$last" | grep -o "ft: [0-9]*" | grep -o "[0-9]*")," \
     "corpus $(ls "$CORPUS" | wc -l) files," \
     "findings $(ls "$CRASHES" | wc -l) in $CRASHES"
exit "$status"

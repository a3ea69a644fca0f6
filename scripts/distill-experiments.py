#!/usr/bin/env python3
"""Issue 14's distillation comparisons: a student trained (or a compressed
model fine-tuned) from labels alone against the same one distilled from a
teacher (Hinton KD), with the same tuning budget for both.

    scripts/distill-experiments.py make OUTDIR [NAME ...]    # trains (hours; resumable)
    scripts/distill-experiments.py table OUTDIR [NAME ...]   # prints the Markdown table

For each experiment and each mode (`labels`, `kd`): every learning rate of the
grid is trained with seed 0, the one with the best validation accuracy (the
5,000 images held out of the training split) is chosen, and that rate is run
again with seed 1. The test split is only read for the reported numbers
(`compressor train` evaluates the chosen epoch on it at the end). Same epochs,
schedule, batch and augmentation for both modes; the teacher runs on the
student's augmented batches (or, without augmentation, once over the training
split: --teacher-cache); T and alpha are the defaults (4, 0.9). Modes:
`labels` (train or fine-tune from labels alone), `kd` (the same with the
teacher, Hinton KD) and `layerwise` (the student, initialized with the same
seed, imitates the teacher's block outputs for 2 epochs, all blocks on every
step, then KD for the rest: `compressor distill --mode layerwise --imitation
joint`, Zhou et al. 2020; joint rather than sequential order was chosen on
validation in a pilot, docs/distillation.md).
`make` skips runs whose JSON result exists, and `train --resume` continues an
interrupted run from its checkpoint. Release build, one thread per run; set
JOBS=2 to run two at once, COMPRESSOR=PATH to use another binary.
"""
import concurrent.futures
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("COMPRESSOR", os.path.join(REPO, ".build/release/compressor"))
MODELS = os.path.join(REPO, "models")
AUGMENT = ["--crop-padding", "2", "--flip", "true"]

# name: (student, teacher file, epochs, learning-rate grid[, modes, augmentation]).
# A student is ("train", architecture, width): trained from its seeded
# initialization; or ("finetune", command): the file that
# `compressor COMMAND ... -o FILE` writes, fine-tuned (the teacher is then the
# model the command started from, which is what `teacher: input` means in a
# pipeline).
EXPERIMENTS = {
    "lenet5-from-vgg": (("train", "lenet5", 1.0), "vgg-small.bin", 10, ["0.002", "0.005", "0.01", "0.02"]),
    # The same student without augmentation, 20 epochs: the teacher's outputs
    # are cached once, and the student (which overfits without augmentation)
    # has more to gain from soft targets.
    "lenet5-from-vgg-noaug": (("train", "lenet5", 1.0), "vgg-small.bin", 20, ["0.002", "0.005", "0.01"],
                              ("labels", "kd"), []),
    "vgg-half-from-vgg": (("train", "vgg-small", 0.5), "vgg-small.bin", 10, ["0.02", "0.05"]),
    # The same at 20 epochs (the teacher trained 30): whether the 10-epoch
    # student's distance to its teacher is a matter of training length.
    "vgg-half-from-vgg-20": (("train", "vgg-small", 0.5), "vgg-small.bin", 20, ["0.02", "0.05"]),
    "r20-pruned-0.3": (("finetune", ["prune", os.path.join(MODELS, "resnet20.bin"), "--granularity", "channel",
                                     "--criterion", "l1", "--target-macs", "0.3", "--round-to", "8"]),
                       "resnet20.bin", 5, ["0.01", "0.02"]),
    # Go wide, then narrow: resnet20 (the wide model, models/README.md) teaches
    # resnet20 at width 0.5; imitation epochs count in the student's 10.
    "r20-half-layerwise": (("train", "resnet20", 0.5), "resnet20.bin", 10, ["0.05", "0.1"], ("labels", "layerwise")),
}


def spec(name):
    """(student, teacher, epochs, grid, modes, augmentation) of an experiment."""
    e = EXPERIMENTS[name]
    return e[:4] + (e[4] if len(e) > 4 else ("labels", "kd"), e[5] if len(e) > 5 else AUGMENT)


def run_name(name, mode, lr, seed):
    return f"{name}-{mode}-lr{lr}-s{seed}"


def start_model(out, name):
    """The file a fine-tuning experiment starts from, written once."""
    path = os.path.join(out, name + "-start.bin")
    if not os.path.exists(path):
        subprocess.run([BIN, *EXPERIMENTS[name][0][1], "-o", path, "--threads", "1"], check=True,
                       capture_output=True, text=True)
    return path


def train(out, name, mode, lr, seed):
    student, teacher, epochs, _, _, augment = spec(name)
    base = os.path.join(out, run_name(name, mode, lr, seed))
    if os.path.exists(base + ".json"):
        return json.load(open(base + ".json"))
    common = ["-o", base + ".bin", "--epochs", str(epochs), "--lr", lr, "--seed", str(seed), "--threads", "1",
              "--json", *augment]
    if mode == "layerwise":
        init = base + "-init.bin"
        if not os.path.exists(init):
            subprocess.run([BIN, "init", "--arch", student[1], "--width", str(student[2]), "--seed", str(seed),
                            "-o", init], check=True, capture_output=True, text=True)
        args = [BIN, "distill", "--teacher", os.path.join(MODELS, teacher), "--student", init, "--mode", "layerwise",
                "--imitation", "joint", "--imitation-epochs", "2", *common]
    elif student[0] == "train":
        args = [BIN, "train", "--arch", student[1], *common]
        if student[2] != 1.0:
            args += ["--width", str(student[2])]
    else:
        args = [BIN, "finetune", start_model(out, name), *common]
    if mode == "kd":
        args += ["--teacher", os.path.join(MODELS, teacher)]
        if not augment:
            args += ["--teacher-cache", "true"]
    if os.path.isdir(base + ".bin.ckpt"):
        args.append("--resume")
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0 and "diverged" in done.stderr:
        # A rate that diverges is a result of the grid: recorded, never chosen.
        result = json.dumps({"diverged": done.stderr.strip(), "validationAccuracy": 0.0, "testAccuracy": None})
    elif done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    else:
        result = done.stdout
    with open(base + ".json.tmp", "w") as f:
        f.write(result)
    os.replace(base + ".json.tmp", base + ".json")
    print(f"done {base}", file=sys.stderr, flush=True)
    return json.loads(result)


def chosen_rate(out, name, mode):
    grid = spec(name)[3]
    results = {lr: train(out, name, mode, lr, 0) for lr in grid}
    return max(grid, key=lambda lr: results[lr]["validationAccuracy"]), results


def make(out, names):
    os.makedirs(out, exist_ok=True)
    jobs = int(os.environ.get("JOBS", "1"))
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        # One experiment after another: seed 0 over the grid, both modes, then
        # seed 1 at each mode's chosen rate.
        for n in names:
            if EXPERIMENTS[n][0][0] == "finetune":
                start_model(out, n)
            grid_runs = [pool.submit(train, out, n, m, lr, 0) for m in spec(n)[4] for lr in spec(n)[3]]
            for f in grid_runs:
                f.result()
            seed_runs = [pool.submit(train, out, n, m, chosen_rate(out, n, m)[0], 1) for m in spec(n)[4]]
            for f in seed_runs:
                f.result()


def table(out, names):
    print("| experiment | mode | lr grid: validation (seed 0) | chosen lr | test seed 0 | test seed 1 | mean |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for name in names:
        means = {}
        modes = spec(name)[4]
        for mode in modes:
            paths = {lr: os.path.join(out, run_name(name, mode, lr, 0) + ".json") for lr in spec(name)[3]}
            done = {lr: json.load(open(p)) for lr, p in paths.items() if os.path.exists(p)}
            if len(done) < len(paths):
                print(f"| {name} | {mode} | {len(done)} of {len(paths)} grid runs done | | | | |")
                continue
            lr = max(done, key=lambda r: done[r]["validationAccuracy"])
            grid = ", ".join(f"{r}: diverged" if "diverged" in done[r] else
                             f"{r}: {done[r]['validationAccuracy'] * 100:.2f}%" for r in done)
            s1 = os.path.join(out, run_name(name, mode, lr, 1) + ".json")
            t0 = done[lr]["testAccuracy"]
            t1 = json.load(open(s1))["testAccuracy"] if os.path.exists(s1) else None
            mean = (t0 + t1) / 2 if t1 is not None else None
            means[mode] = mean
            print(f"| {name} | {mode} | {grid} | {lr} | {t0 * 100:.2f}% | "
                  f"{'not run' if t1 is None else f'{t1 * 100:.2f}%'} | "
                  f"{'' if mean is None else f'{mean * 100:.2f}%'} |")
        if means.get(modes[1]) is not None and means.get("labels") is not None:
            print(f"| {name} | {modes[1]} - labels | | | | | {(means[modes[1]] - means['labels']) * 100:+.2f} |")


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("make", "table"):
        sys.exit(__doc__)
    names = sys.argv[3:] or list(EXPERIMENTS)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        sys.exit(f"unknown experiment(s): {', '.join(unknown)}; known: {', '.join(EXPERIMENTS)}")
    (make if sys.argv[1] == "make" else table)(sys.argv[2], names)

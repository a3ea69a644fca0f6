#!/usr/bin/env python3
"""Plain vs multirate fine-tuning, run back to back with the same epochs,
schedule, learning rate and seed (Vlaar & Leimkuhler, "Multirate Training of
Neural Networks", ICML 2022). See docs/multirate.md.

Cases:
  lenet5              transfer: lenet5 trained on Fashion-MNIST classes 0-4
                      (its own run per seed, kept in OUTDIR), given a new head
                      for classes 5-9 and fine-tuned on them
                      (--classes 5-9 --new-head).
  vgg-small           recovery: models/vgg-small.bin channel-pruned (l1,
                      one-shot, no fine-tuning, --round-to 8), then fine-tuned.
  vgg-small-transfer  transfer as for lenet5, with vgg-small.

Protocol (--protocol): with seed 0, the plain run and then one multirate run
per setting of --grid (K:N = --multirate K --fast-last N); the setting chosen
is the one that reaches the plain run's best validation accuracy soonest (if
none does, the one with the best validation accuracy). Then, for each seed of
--seeds, the plain run and the chosen setting back to back. Choices use the
validation split only; test accuracy is printed for the report. Without
--protocol: one seed (--seed), one setting (--multirate, --*-fast-last).

For each pair it prints the exact commands and a Markdown table: best
validation accuracy, the wall-clock training time until an epoch first
reached the plain run's best validation accuracy (epoch granularity: the
summed `seconds` of the epochs up to and including it, validation included),
the whole run's time, the final test accuracy (of the best epoch's model)
and the measured mean time per full and per fast-only step.

Finished models are kept: the pretraining and pruning steps are skipped when
their output exists, and with --protocol so is every run whose JSON report
is in OUTDIR (delete OUTDIR to start over; a resumed pair is then no longer
back to back). COMPRESSOR=PATH uses that binary instead of building
.build/release/compressor.

Usage: scripts/multirate-bench.py OUTDIR [--case lenet5|vgg-small|vgg-small-transfer|all]
         [--epochs 5] [--lr 0.01] [--multirate 5] [--threads 1] [--seed 1]
         [--lenet5-fast-last 2] [--vgg-fast-last 3] [--pretrain-epochs 5] [--pretrain-lr 0.01]
         [--sparsity 0.5] [--protocol --grid 3:2,5:2,3:3,5:3 --seeds 1,2]
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPRESSOR = os.environ.get("COMPRESSOR", os.path.join(REPO, ".build", "release", "compressor"))


def run(args):
    """An untimed step (pretraining, pruning); its output goes to stderr."""
    print("$ compressor " + " ".join(shlex.quote(a) for a in args), file=sys.stderr, flush=True)
    subprocess.run([COMPRESSOR] + args, check=True, text=True, stdout=sys.stderr)


def finetune(base_args, extra, cache=None):
    """One timed fine-tuning run; its --json report (kept in `cache` when given)."""
    if cache and os.path.exists(cache):
        return json.load(open(cache))
    args = base_args + extra + ["--json"]
    print("$ compressor " + " ".join(shlex.quote(a) for a in args), file=sys.stderr, flush=True)
    done = subprocess.run([COMPRESSOR] + args, text=True, capture_output=True)
    if done.returncode != 0 and "diverged" in done.stderr:
        # A diverged run is a result: it reaches nothing.
        report = {"diverged": True, "bestEpoch": 0, "validationAccuracy": 0.0, "testAccuracy": 0.0, "epochs": []}
    elif done.returncode != 0:
        sys.exit(f"compressor {' '.join(args)}: {done.stderr.strip()}")
    else:
        report = json.loads(done.stdout)
    if cache:
        with open(cache + ".tmp", "w") as f:
            json.dump(report, f)
        os.replace(cache + ".tmp", cache)
    return report


def summary(name, report, target):
    epochs = report["epochs"]
    elapsed, reached = 0.0, None
    for e in epochs:
        elapsed += e["seconds"]
        if reached is None and e["validationAccuracy"] >= target:
            reached = elapsed
    full = sum(e["steps"]["fullSeconds"] for e in epochs)
    full_n = sum(e["steps"]["fullSteps"] for e in epochs)
    fast = sum(e["steps"]["fastSeconds"] for e in epochs)
    fast_n = sum(e["steps"]["fastSteps"] for e in epochs)
    return {
        "run": name + (" (diverged)" if report.get("diverged") else ""), "best_epoch": report["bestEpoch"],
        "validation": report["validationAccuracy"],
        "reached": reached, "total": elapsed, "test": report.get("testAccuracy") or 0.0,
        "full_ms": 1000 * full / full_n if full_n else None, "fast_ms": 1000 * fast / fast_n if fast_n else None,
        "mean_ms": 1000 * (full + fast) / (full_n + fast_n) if full_n + fast_n else None,
    }


def table(title, rows):
    def ms(v):
        return "-" if v is None else f"{v:.1f}"
    plain = rows[0]
    lines = [f"### {title}", "",
             "| run | best epoch | best validation | time to plain's best | ratio | whole run | test top-1 | ms/full step | ms/fast step | ms/step (mean) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        reached = "not reached" if r["reached"] is None else f"{r['reached']:.1f} s"
        ratio = "-" if r["reached"] is None else f"{r['reached'] / plain['reached']:.2f}"
        lines.append(f"| {r['run']} | {r['best_epoch']} | {100 * r['validation']:.2f}% | {reached} | {ratio} | "
                     f"{r['total']:.1f} s | {100 * r['test']:.2f}% | {ms(r['full_ms'])} | {ms(r['fast_ms'])} | {ms(r['mean_ms'])} |")
    return "\n".join(lines)


def setting_args(setting):
    k, n = setting
    return ["--multirate", k, "--fast-last", n]


def setting_name(setting):
    return f"multirate {setting[0]}, fast-last {setting[1]}"


def prepare(name, a, seed):
    """(title, fine-tuning command without -o) of a case for one seed."""
    common = ["--epochs", str(a.epochs), "--lr", a.lr, "--seed", seed, "--threads", a.threads]
    if name in ("lenet5", "vgg-small-transfer"):
        arch = "lenet5" if name == "lenet5" else "vgg-small"
        pretrained = os.path.join(a.outdir, f"{arch}-classes0-4-seed{seed}.bin")
        if not os.path.exists(pretrained):
            augment = ["--crop-padding", "2"] + (["--flip", "true"] if arch == "vgg-small" else [])
            run(["train", "--arch", arch, "--classes", "0-4", "-o", pretrained, "--epochs", a.pretrain_epochs,
                 "--lr", a.pretrain_lr, "--seed", seed, "--threads", a.threads] + augment)
        return (f"{arch}: classes 0-4 -> new head, classes 5-9, seed {seed}",
                ["finetune", pretrained, "--classes", "5-9", "--new-head"] + common)
    pruned = os.path.join(a.outdir, "vgg-small-channel.bin")
    if not os.path.exists(pruned):
        run(["prune", os.path.join(REPO, "models", "vgg-small.bin"), "-o", pruned, "--granularity", "channel",
             "--criterion", "l1", "--sparsity", a.sparsity, "--round-to", "8", "--threads", a.threads])
    return (f"vgg-small channel-pruned (l1, sparsity {a.sparsity}) fine-tuned, seed {seed}", ["finetune", pruned] + common)


def pair(name, a, seed, settings):
    """The plain run and each setting's run for one seed, back to back; the table and the summaries."""
    title, base = prepare(name, a, seed)
    stem = os.path.join(a.outdir, f"{name}-s{seed}")
    cache = a.protocol
    plain = finetune(base, ["-o", stem + "-plain.bin"], stem + "-plain.json" if cache else None)
    rows = [summary("plain", plain, plain["validationAccuracy"])]
    for s in settings:
        tag = f"-k{s[0]}-f{s[1]}"
        report = finetune(base, ["-o", stem + tag + ".bin"] + setting_args(s), stem + tag + ".json" if cache else None)
        rows.append(summary(setting_name(s), report, plain["validationAccuracy"]))
    return table(title, rows), rows


def chosen(rows, settings):
    """The setting that reached the plain run's best validation accuracy soonest (else the most accurate)."""
    scored = list(zip(settings, rows[1:]))
    reached = [(r["reached"], s) for s, r in scored if r["reached"] is not None]
    if reached:
        return min(reached)[1]
    return max(scored, key=lambda sr: sr[1]["validation"])[0]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir")
    p.add_argument("--case", choices=["lenet5", "vgg-small", "vgg-small-transfer", "all"], default="all")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", default="0.01")
    p.add_argument("--multirate", default="5")
    p.add_argument("--threads", default="1")
    p.add_argument("--seed", default="1")
    p.add_argument("--lenet5-fast-last", default="2")
    p.add_argument("--vgg-fast-last", default="3")
    p.add_argument("--pretrain-epochs", default="5")
    p.add_argument("--pretrain-lr", default="0.01")
    p.add_argument("--sparsity", default="0.5")
    p.add_argument("--protocol", action="store_true",
                   help="choose the setting on seed 0's validation from --grid, then run --seeds")
    p.add_argument("--grid", default="3:2,5:2,3:3,5:3", help="K:N settings (--multirate K --fast-last N)")
    p.add_argument("--seeds", default="1,2")
    a = p.parse_args()
    if "COMPRESSOR" not in os.environ:
        subprocess.run(["swift", "build", "-c", "release", "--product", "compressor"], cwd=REPO, check=True,
                       stdout=sys.stderr)
    os.makedirs(a.outdir, exist_ok=True)
    cases = ["lenet5", "vgg-small", "vgg-small-transfer"] if a.case == "all" else [a.case]
    for name in cases:
        if a.protocol:
            grid = [tuple(s.split(":")) for s in a.grid.split(",")]
            text, rows = pair(name, a, "0", grid)
            best = chosen(rows, grid)
            print(text + f"\n\nChosen on seed 0's validation: {setting_name(best)}.\n", flush=True)
            for seed in a.seeds.split(","):
                print(pair(name, a, seed, [best])[0] + "\n", flush=True)
        else:
            fast_last = a.lenet5_fast_last if name == "lenet5" else a.vgg_fast_last
            print(pair(name, a, a.seed, [(a.multirate, fast_last)])[0] + "\n", flush=True)


if __name__ == "__main__":
    main()

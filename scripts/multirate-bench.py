#!/usr/bin/env python3
"""Plain vs multirate fine-tuning, run back to back with the same epochs,
schedule, learning rate and seed (Vlaar & Leimkuhler, "Multirate Training of
Neural Networks", ICML 2022). See docs/multirate.md.

Cases:
  lenet5     transfer: lenet5 trained on Fashion-MNIST classes 0-4 (its own
             run, kept in OUTDIR), given a new head for classes 5-9 and
             fine-tuned on them (--classes 5-9 --new-head).
  vgg-small  recovery: models/vgg-small.bin channel-pruned (l1, one-shot, no
             fine-tuning, --round-to 8), then fine-tuned.

For each case it prints the exact commands and a Markdown table: best
validation accuracy, the wall-clock training time until an epoch first
reached the plain run's best validation accuracy (epoch granularity: the
summed `seconds` of the epochs up to and including it, validation included),
the whole run's time, the final test accuracy (of the best epoch's model)
and the measured mean time per full and per fast-only step.

Finished models are kept: the pretraining and pruning steps are skipped when
their output exists (delete OUTDIR to start over); the timed runs always run.

Usage: scripts/multirate-bench.py OUTDIR [--case lenet5|vgg-small|all]
         [--epochs 5] [--lr 0.01] [--multirate 5] [--threads 1] [--seed 1]
         [--lenet5-fast-last 2] [--vgg-fast-last 3] [--pretrain-epochs 5] [--pretrain-lr 0.01]
         [--sparsity 0.5]
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPRESSOR = os.path.join(REPO, ".build", "release", "compressor")


def run(args, capture=False):
    print("$ compressor " + " ".join(shlex.quote(a) for a in args), file=sys.stderr, flush=True)
    result = subprocess.run([COMPRESSOR] + args, check=True, text=True,
                            stdout=subprocess.PIPE if capture else sys.stderr)
    return result.stdout if capture else None


def finetune(base_args, extra):
    """One timed fine-tuning run; its --json report."""
    return json.loads(run(base_args + extra + ["--json"], capture=True))


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
        "run": name, "best_epoch": report["bestEpoch"], "validation": report["validationAccuracy"],
        "reached": reached, "total": elapsed, "test": report.get("testAccuracy"),
        "full_ms": 1000 * full / full_n if full_n else None, "fast_ms": 1000 * fast / fast_n if fast_n else None,
        "mean_ms": 1000 * (full + fast) / (full_n + fast_n),
    }


def table(case, rows):
    def ms(v):
        return "-" if v is None else f"{v:.1f}"
    plain = rows[0]
    lines = [f"### {case}", "",
             "| run | best epoch | best validation | time to plain's best | ratio | whole run | test top-1 | ms/full step | ms/fast step | ms/step (mean) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        reached = "not reached" if r["reached"] is None else f"{r['reached']:.1f} s"
        ratio = "-" if r["reached"] is None else f"{r['reached'] / plain['reached']:.2f}"
        lines.append(f"| {r['run']} | {r['best_epoch']} | {100 * r['validation']:.2f}% | {reached} | {ratio} | "
                     f"{r['total']:.1f} s | {100 * r['test']:.2f}% | {ms(r['full_ms'])} | {ms(r['fast_ms'])} | {ms(r['mean_ms'])} |")
    return "\n".join(lines)


def compare(case, base_args, multirate_args):
    plain = finetune(base_args, ["-o", case["plain"]])
    multi = finetune(base_args, ["-o", case["multirate"]] + multirate_args)
    target = plain["validationAccuracy"]
    return table(case["title"], [summary("plain", plain, target),
                                 summary("multirate " + " ".join(multirate_args), multi, target)])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir")
    p.add_argument("--case", choices=["lenet5", "vgg-small", "all"], default="all")
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
    a = p.parse_args()
    subprocess.run(["swift", "build", "-c", "release", "--product", "compressor"], cwd=REPO, check=True,
                   stdout=sys.stderr)
    os.makedirs(a.outdir, exist_ok=True)
    common = ["--epochs", str(a.epochs), "--lr", a.lr, "--seed", a.seed, "--threads", a.threads]
    out = []
    if a.case in ("lenet5", "all"):
        pretrained = os.path.join(a.outdir, f"lenet5-classes0-4-seed{a.seed}.bin")
        if not os.path.exists(pretrained):
            run(["train", "--arch", "lenet5", "--classes", "0-4", "-o", pretrained, "--epochs", a.pretrain_epochs,
                 "--lr", a.pretrain_lr, "--seed", a.seed, "--threads", a.threads])
        base = ["finetune", pretrained, "--classes", "5-9", "--new-head"] + common
        case = {"title": "lenet5: classes 0-4 -> new head, classes 5-9",
                "plain": os.path.join(a.outdir, "lenet5-plain.bin"),
                "multirate": os.path.join(a.outdir, "lenet5-multirate.bin")}
        out.append(compare(case, base, ["--multirate", a.multirate, "--fast-last", a.lenet5_fast_last]))
    if a.case in ("vgg-small", "all"):
        pruned = os.path.join(a.outdir, "vgg-small-channel.bin")
        if not os.path.exists(pruned):
            run(["prune", os.path.join(REPO, "models", "vgg-small.bin"), "-o", pruned, "--granularity", "channel",
                 "--criterion", "l1", "--sparsity", a.sparsity, "--round-to", "8", "--threads", a.threads])
        base = ["finetune", pruned] + common
        case = {"title": f"vgg-small channel-pruned (l1, sparsity {a.sparsity}) fine-tuned",
                "plain": os.path.join(a.outdir, "vgg-small-plain.bin"),
                "multirate": os.path.join(a.outdir, "vgg-small-multirate.bin")}
        out.append(compare(case, base, ["--multirate", a.multirate, "--fast-last", a.vgg_fast_last]))
    print("\n\n".join(out))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch CPU training throughput for the architectures the Swift training
engine is benchmarked on: images/s of forward + backward + SGD step (momentum
0.9, weight decay 5e-4) at batch 64 on 1x28x28 inputs held in memory, median
step time after warm-up, with torch.set_num_threads(1) and (2). With one thread it also reports
images per CPU-second of the calling thread, which stays comparable when
other processes share the machine.

Usage: python3 scripts/torch_train_bench.py [lenet5] [vgg-small] [resnet20] [mobilenet-small]
"""
import statistics
import sys
import time

import torch
from torch import nn


def lenet5() -> nn.Module:
    # Caffe LeNet-5 as Deep Compression uses it (no nonlinearity after the convs).
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


def vgg_small() -> nn.Module:
    layers, channels = [], 1
    for width in (32, 64, 128):
        for _ in range(2):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(2))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet's basic block as `compressor init --arch resnet20` builds it: conv3x3-BN-ReLU-conv3x3-BN
    plus the identity or a 1x1 conv + BN projection, then ReLU."""

    def __init__(self, channels: int, width: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))
        self.shortcut = nn.Identity() if stride == 1 and channels == width else nn.Sequential(
            nn.Conv2d(channels, width, 1, stride, bias=False), nn.BatchNorm2d(width))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


def resnet20() -> nn.Module:
    layers, channels = [nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for stage, width in enumerate((16, 32, 64)):
        for block in range(3):
            layers.append(BasicBlock(channels, width, 2 if stage > 0 and block == 0 else 1))
            channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def mobilenet_small() -> nn.Module:
    layers, channels = [nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()], 16
    for width, stride in ((32, 2), (64, 1), (128, 2), (128, 1)):
        layers += [nn.Conv2d(channels, channels, 3, stride, 1, groups=channels, bias=False),
                   nn.BatchNorm2d(channels), nn.ReLU6(),
                   nn.Conv2d(channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU6()]
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10)]
    return nn.Sequential(*layers)


ARCHITECTURES = {"lenet5": lenet5, "vgg-small": vgg_small, "resnet20": resnet20, "mobilenet-small": mobilenet_small}


def images_per_second(build, threads: int, steps: int, batch: int = 64) -> tuple[float, float]:
    """(images/s by wall-clock time, images per CPU-second of the calling
    thread); the second is meaningful with one thread on a shared machine."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(batch, 1, 28, 28)
    y = torch.arange(batch) % 10

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    for _ in range(3):
        step()
    times, cpu_times = [], []
    for _ in range(steps):
        start, cpu_start = time.perf_counter(), time.thread_time()
        step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.thread_time() - cpu_start)
    return batch / statistics.median(times), batch / statistics.median(cpu_times)


def main() -> None:
    names = sys.argv[1:] or list(ARCHITECTURES)
    print(f"torch {torch.__version__}")
    for name in names:
        for threads in (1, 2):
            rate, cpu_rate = images_per_second(ARCHITECTURES[name], threads, steps=40 if name == "lenet5" else 15)
            cpu = f", {cpu_rate:.0f} images/CPU-s" if threads == 1 else ""
            print(f"{name} threads {threads}: {rate:.0f} images/s (median step){cpu}")


if __name__ == "__main__":
    main()
